"""A firing that comes while the scheduler's previous run still goes is skipped, and said:
on stdout, one line among the firings' lines. It was said on stderr, so a log of the
scheduler's stdout (one line per firing, as the README has it) missed every skipped firing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from factories import sales_files, sales_toml, slowfit_env, wait_for

BIN = Path(sys.executable).parent
SPEC = sales_toml(
    "overlap", '[schedule]\ncron = "* * * * * *"\nwhen = ["all"]\n', estimator="slowfit:make"
)


@pytest.mark.slow
def test_a_firing_skipped_while_the_run_goes_is_a_line_on_stdout(tmp_path: Path) -> None:
    env = slowfit_env(tmp_path)
    spec, data, root = sales_files(tmp_path, SPEC)
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen(
            [BIN / "manymodels", "scheduler", spec, data, "--registry", root,
             "--backend", "local", "--no-catch-up"],
            stdout=stdout, stderr=stderr, env={**env, "SLOWFIT_DIR": str(blocked)},
        )  # fmt: skip
        try:
            # its first firing held in a fit, and a later one skipped: the skip may come
            # before the fit (the first run still reading its data a second later)
            wait_for(
                lambda: (blocked / "fitting").exists() and "skipped" in out.read_text(),
                "the first firing held in a fit and a later one skipped",
                timeout=60, process=proc, output=lambda: out.read_text() + err.read_text(),
            )  # fmt: skip
        finally:
            proc.kill()
            proc.wait(30)
    skipped = [line for line in out.read_text().splitlines() if "skipped" in line]
    assert skipped[0].endswith(" skipped: the previous run is still going"), skipped
    assert "skipped" not in err.read_text()
