"""``manymodels scheduler --json``'s lines (``cli.schedule_lines``): what each names, as the
firing ran, and the same members for the same event."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from factories import sales_files, sales_toml

from manymodels.registry import Registry

BIN = Path(sys.executable).parent
EVERY = '[schedule]\ncron = "*/5 * * * * *"\n'


def _scheduler(spec: Path, data: Path, root: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [BIN / "manymodels", "scheduler", spec, data, "--registry", root, "--backend", "local",
         "--no-catch-up", "--json", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


@pytest.mark.slow
def test_a_firing_after_the_spec_was_renamed_is_named_by_its_new_name(tmp_path: Path) -> None:
    """The spec renamed while the scheduler runs: the firing reads the file and records its
    run under the new name, yet its JSON line said the name read at start (``schedule``: the
    old one), unlike the run it reported."""
    spec, data, root = sales_files(tmp_path, sales_toml("before", EVERY))
    scheduler = _scheduler(spec, data, root, "--max-runs", "1")
    assert scheduler.stderr is not None
    try:
        started = scheduler.stderr.readline()  # said once it runs, before its first firing
        assert started.startswith("scheduler: before on "), started
        spec.write_text(sales_toml("after", EVERY))
        out, err = scheduler.communicate(timeout=120)
    finally:
        scheduler.kill()
        scheduler.wait(30)
    assert scheduler.returncode == 0, out + err
    (fired,) = [json.loads(line) for line in out.splitlines() if '"overlap"' not in line]
    assert fired["event"] == "trained", fired
    with Registry.open(root) as reg:
        (run,) = reg.list_runs()
    assert run.spec_name == "after" and fired["run"]["run_id"] == run.run_id
    assert fired["schedule"] == "after", fired
