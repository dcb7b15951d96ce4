"""Run progress (#15): a run's recorded outcomes counted by status, read from the registry."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from manymodels.registry import Registry

pytest_plugins = ["tests.serving.test_ui_api"]


def test_a_finished_runs_progress_matches_its_outcomes(with_failures: Path) -> None:
    with Registry.open(with_failures) as reg:
        for run in reg.list_runs(limit=5):
            outcomes = reg.store.run_outcomes(run.run_id, limit=1_000_000)
            assert reg.run_progress(run.run_id) == dict(Counter(o.status for o in outcomes))
        assert reg.run_progress("no-such-run") == {}
