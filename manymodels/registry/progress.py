"""How far a run has got: its planned partitions, those settled by status, the share done, the
rate and (while it runs) an ETA — what ``GET /v1/runs`` and the dashboard's Runs panel show.

**Done** counts the partitions with a settled outcome: ``trained``, ``skipped`` or ``failed``.
A ``lost`` partition (its task died: a worker crash, a lost node) is *not* done — it is shown
on its own, waiting for ``train --resume``, which forgets its outcome and trains it again
(``RunsMixin.reopen_run``). Counting it as done would make progress step back on resume;
left out, ``done`` only grows: outcomes are only ever added, and the only ones ever removed
are ``lost``. The pooled fallback model is not one of the planned partitions (its outcome is
reported apart), and a changed-only run's ``unchanged`` partitions were never planned.

The rate is settled partitions per second since the run started — or since it was resumed
(``resumed_at`` / ``done_at_resume`` in its options), so a pause between an interruption and
its resume does not dilute it. The ETA is what is left at that rate, while the run is running
and has settled something since it (re)started.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from manymodels.registry.entities import Run
from manymodels.run_busy import seen_stopped

SETTLED = ("trained", "skipped", "failed")
STATUSES = (*SETTLED, "lost")
"""Always in ``by_status`` (0 when none), in this order."""


@dataclass(frozen=True)
class RunProgress:
    """One run and how far it has got (see the module)."""

    run: Run
    planned: int
    done: int
    by_status: dict[str, int] = field(default_factory=dict)
    unchanged: int = 0
    fallback: str | None = None
    elapsed_seconds: float = 0.0
    rate_per_second: float | None = None
    eta_seconds: float | None = None

    @property
    def share_done(self) -> float:
        return 1.0 if self.planned <= 0 else min(self.done / self.planned, 1.0)


def _seconds(start: str, end: str) -> float:
    return max((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds(), 0.0)


def progress_of(
    run: Run,
    by_status: Mapping[str, int],
    *,
    fallback: str | None = None,
    at: str | None = None,
) -> RunProgress:
    """``run``'s progress from its outcomes counted by status (the planned partitions' only:
    the fallback's outcome, if any, is ``fallback``), as of ``at`` (default: now)."""
    now = at or datetime.now(UTC).isoformat(timespec="microseconds")
    counts = {s: 0 for s in STATUSES} | {s: int(n) for s, n in by_status.items() if n}
    done = sum(counts.get(s, 0) for s in SETTLED)
    elapsed = _seconds(run.started_at, run.ended_at or now)
    since, done_before = run.started_at, 0
    resumed = run.options.get("resumed_at")
    if isinstance(resumed, str):
        since, done_before = resumed, int(run.options.get("done_at_resume") or 0)
    window = _seconds(since, run.ended_at or now)
    moved = done - done_before
    rate = moved / window if window > 0 and moved > 0 else None
    eta = None
    # a killed run moves no more, and a silent one, or one whose beat proves nothing, is not
    # seen to move: the rule of ``run_busy.training_now``, so the two cannot drift
    moving = not seen_stopped(run)
    if run.status == "running" and rate and moving:
        eta = max(run.n_partitions - done, 0) / rate
    return RunProgress(
        run=run,
        planned=run.n_partitions,
        done=done,
        by_status=counts,
        unchanged=int(run.options.get("unchanged") or 0),
        fallback=fallback,
        elapsed_seconds=elapsed,
        rate_per_second=rate,
        eta_seconds=eta,
    )


def counted(run: Run, lost: int) -> dict[str, int]:
    """A run's outcomes by status from the counts its row keeps (``n_failed`` includes
    ``lost``), given its ``lost`` count: what a listing of many runs shows without counting
    each run's outcomes."""
    return {
        "trained": run.n_trained,
        "skipped": run.n_skipped,
        "failed": run.n_failed - lost,
        "lost": lost,
    }
