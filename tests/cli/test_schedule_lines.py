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


@pytest.mark.slow
def test_both_lines_of_a_firing_that_trained_nothing_have_the_same_members(
    tmp_path: Path,
) -> None:
    """A firing that trains nothing prints ``"event": "nothing"`` whether the monitor flagged
    no partition (``when = ["drifted"]``) or every partition had the data it was trained on
    (``when = ["changed"]``); the first alone had ``"selected": []``, so a script reading the
    lines met two shapes for one event."""
    spec, data, root = sales_files(tmp_path, sales_toml("nothing", EVERY))
    subprocess.run([BIN / "manymodels", "train", spec, data, "--registry", root, "--backend",
                    "local"], check=True, capture_output=True, timeout=120)  # fmt: skip
    lines = []
    for when in ("drifted", "changed"):
        spec.write_text(sales_toml("nothing", EVERY + f'when = ["{when}"]\n'))
        out, err = _scheduler(spec, data, root, "--max-runs", "1").communicate(timeout=120)
        (line,) = [json.loads(line) for line in out.splitlines() if '"overlap"' not in line]
        assert line["event"] == "nothing", (line, err)
        lines.append(line)
    flagged, unchanged = lines
    assert flagged["reason"] == "nothing to retrain: no partition is flagged"
    assert unchanged["reason"].startswith("nothing to train: all 6 partitions have the data")
    assert (flagged["unchanged"], unchanged["unchanged"]) == (0, 6)
    assert set(flagged) == set(unchanged), set(flagged) ^ set(unchanged)
