"""A finished run's verdict: why it failed as a whole, or what its summary must warn of.

``pipeline.train`` closes a run with these once its chunks are in; the CLI words a lost run's
resume command with ``lost_failure``. Kept apart from the orchestration as the run's outcome
in words: each reads at most a couple of indexed outcome rows, and only when it has to (a run
that trained nothing names its first partition's reason).
"""

from __future__ import annotations

from manymodels.partition import FALLBACK_KEY
from manymodels.registry.client import Registry
from manymodels.registry.entities import Run


def run_failure(
    reg: Registry, run: Run, fallback: str | None, max_failed_fraction: float, lost: int = 0
) -> str | None:
    """Why a finished run failed as a whole, or ``None``. Partitions lost to the infrastructure
    (a dead worker, a full disk) always fail it: the run is incomplete, and resumable. A run
    that trained nothing names its first partition's reason (``_first_reason``: read only
    then, two indexed reads at most)."""
    n, failed = run.n_partitions, run.n_failed
    # every partition too small, and a fallback (trained now or before) serves them
    served_by_fallback = failed == 0 and fallback == "trained"
    if lost:
        return lost_failure(run.run_id, lost, n)
    if n and run.n_trained == 0 and not served_by_fallback:
        why = _first_reason(reg, run.run_id, ("failed", "skipped"))
        return f"no partition trained: {failed} of {n} failed, {run.n_skipped} skipped{why}"
    if n and failed / n > max_failed_fraction:
        return (
            f"{failed} of {n} partitions failed ({failed / n:.1%}), more than "
            f"--max-failed-fraction {max_failed_fraction:g} allows"
        )
    if fallback is not None and fallback.startswith(("failed", "lost")):
        return f"the fallback model {fallback}; unknown keys would not be served by it"
    return None


def lost_failure(run_id: str, lost: int, n: int, *, where: str = "", resume: str = "") -> str:
    """Why a run that lost ``lost`` of ``n`` partitions failed, and how to finish it. The CLI
    gives ``where`` (the options naming its registry) and ``resume`` (the whole command)."""
    finish = f" with: {resume}" if resume else f" with --resume {run_id}"
    return (
        f"{lost} of {n} partition(s) were lost to infrastructure faults (a worker died, the disk "
        f"is full…; see `manymodels runs show {run_id}{where}`); once fixed, finish the run{finish}"
    )


def all_skipped(reg: Registry, run: Run) -> str | None:
    """The warning of a run in which every partition was skipped and nothing failed (it
    succeeds where a fallback model exists): a valid setup (tiny partitions, below
    ``min_rows``), and what a spec's mistake looks like too (folds longer than the series),
    so the summary says so, naming the first partition's reason."""
    if not run.n_partitions or run.n_trained or run.n_skipped < run.n_partitions:
        return None
    why = _first_reason(reg, run.run_id, ("skipped",))
    return (
        f"no partition trained a model in this run: all {run.n_skipped:,} were skipped{why}; "
        "each is served by its production version if it has one, else by the fallback model"
    )


def _first_reason(reg: Registry, run_id: str, statuses: tuple[str, ...]) -> str:
    """`` (the first, KEY: why)`` of the run's first partition in ``statuses`` (in that
    order of preference), or ``""``: a run that trained nothing says why in its one line, not
    only in ``runs show`` (lags longer than every series read "0 of 36 failed, 36 skipped").
    One indexed read a status, ``limit=2``."""
    for status in statuses:  # the fallback's own outcome (its key sorts first) is said apart
        found = reg.store.run_outcomes(run_id, status=status, limit=2)
        first = next((o for o in found if o.key != FALLBACK_KEY), None)
        if first is not None:
            return f" (the first, {first.key}: {first.message})"
    return ""


def fallback_failed_before(reg: Registry, run_id: str) -> str | None:
    """How the fallback model failed in this run before it was resumed, or ``None``: the run
    stays failed for it (a resume read it as done and reported the run completed)."""
    found = reg.store.run_outcomes(run_id, status=("failed", "lost"), key=FALLBACK_KEY, limit=1)
    return f"{found[0].status}: {found[0].error_type}: {found[0].message}" if found else None
