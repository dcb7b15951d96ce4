"""``manymodels scheduler ... --json | head -1``: once the reader of stdout leaves, the next
firing's report cannot be written. It failed inside APScheduler's worker thread, was logged,
and the scheduler went on firing for ever with nowhere to say so; now it stops after the run
being reported, and the process ends from the main thread as every command whose reader left
(``cli.pipe_closed``): killed by SIGPIPE, silent."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from factories import sales_files, sales_toml

from manymodels.registry import Registry

BIN = Path(sys.executable).parent
# each firing trains; 3 s apart so that a run (~1 s, 2–3 s on a loaded machine) ends before the
# next firing: a firing that meets a run still going writes an overlap line instead, which meets
# the closed pipe first and stops the scheduler after one run (2 s apart failed so under load 20)
EVERY = '[schedule]\ncron = "*/3 * * * * *"\nwhen = ["all"]\n'


@pytest.mark.slow  # real firings three seconds apart, each a run: ~10 s
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_the_scheduler_stops_after_its_run_when_its_reader_leaves(tmp_path: Path) -> None:
    spec, data, root = sales_files(tmp_path, sales_toml("piped", EVERY))
    proc = subprocess.Popen(
        [BIN / "manymodels", "scheduler", spec, data, "--registry", root, "--backend", "local",
         "--no-catch-up", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    try:
        first = proc.stdout.readline()  # `head -1`: one line, then the reader leaves
        proc.stdout.close()
        code = proc.wait(timeout=90)  # before: it went on firing, never exiting
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        proc.stderr.close()
    assert '"schedule": "piped"' in first, first
    assert code == -signal.SIGPIPE, (code, err)
    assert "Traceback" not in err and "Broken pipe" not in err, err
    with Registry.open(root) as reg:
        runs = [r for r in reg.list_runs() if r.options.get("trigger") == "schedule"]
    assert len(runs) >= 2, runs  # the reported one, and the one whose report had no reader
    assert {r.status for r in runs} == {"completed"}, [(r.run_id, r.status) for r in runs]
