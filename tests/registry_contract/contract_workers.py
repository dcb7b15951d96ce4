"""What each writer process of the concurrency contract does: a module of its own that imports
only the registry (not ``factories``, whose scikit-learn and pandas would cost a spawned
process seconds), so that writers start fast and truly overlap."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from manymodels.registry import Registry
from manymodels.registry.entities import NewVersion, Run
from manymodels.registry.store import now

KEY = "k=shared"
LIBS = {"python": "3.11"}


def run(run_id: str) -> Run:
    return Run(
        run_id=run_id, kind="train", status="running", spec_name="contract", spec_hash="0" * 64,
        spec={}, data_source="<test>", data_fingerprint="f" * 32, started_at=now(),
        ended_at=None, n_partitions=1, n_trained=0, n_skipped=0, n_failed=0,
    )  # fmt: skip


def version(key: str, sha: str, size: int) -> NewVersion:
    return NewVersion(
        key=key, key_values={"k": key}, n_rows=10, data_fingerprint="fp", estimator="Ridge",
        params={}, metric="neg_mean_absolute_error", score=-1.0, naive_score=-2.0,
        candidates=[], feature_schema={"features": ["x"]}, artifact_sha256=sha,
        artifact_size=size, train_seconds=0.01,
    )  # fmt: skip


def record_one(reg: Registry, run_id: str) -> int:
    """A new version of ``KEY`` in its own run (one write transaction); its number."""
    sha, size = reg.artifacts.put(b"shared-model")
    reg.store.create_run(run(run_id))
    return reg.store.record(run_id, [version(KEY, sha, size)], [], libraries=LIBS)[KEY]


def write_and_promote(
    db_url: str, root: str, rounds: int, worker: int, start: Any, results: Any
) -> None:
    """``rounds`` times: record a new version of ``KEY`` (one transaction), then promote it
    (another). Puts ``(worker, [version per round])`` on ``results``, or the error's text."""
    got: list[int] = []
    try:
        with Registry.open(Path(root), db_url=db_url) as reg:
            reg.get_partition(KEY)  # connected before the start: the race is over writes only
            start.wait(timeout=60)  # every writer begins together
            for i in range(rounds):
                number = record_one(reg, f"w{worker}r{i}")
                reg.promote(KEY, number, reason=f"worker {worker}")
                got.append(number)
    except Exception as e:  # reported, not lost with the process: the test shows it
        results.put((worker, f"{type(e).__name__}: {e}"))
        return
    results.put((worker, got))


def create_and_record(db_url: str, root: str, worker: int, start: Any, results: Any) -> None:
    """Start the registry (``create=True``) at once with the other writers, then record one
    version of ``KEY``; puts ``(worker, version)`` on ``results``, or the error's text."""
    start.wait(timeout=60)
    try:
        with Registry(Path(root), db_url=db_url) as reg:
            results.put((worker, record_one(reg, f"first{worker}")))
    except Exception as e:  # reported, not lost with the process: the test shows it
        results.put((worker, f"{type(e).__name__}: {e}"))
