"""``Registry``'s reads of runs: pages of runs, one run's progress, its failed partitions.

Each is one or two bounded reads of the SQL store (a page, or one run's counts), never a
walk over the run's partitions: what ``manymodels runs``, the dashboard and ``GET /v1/runs``
show at 100,000 partitions.
"""

from __future__ import annotations

from collections.abc import Sequence

from manymodels.keys import FALLBACK_KEY
from manymodels.registry.entities import PartitionOutcome, Run
from manymodels.registry.progress import RunProgress, counted, progress_of
from manymodels.registry.store import SqlStore


class RunViews:
    """``Registry``'s run reads (``Registry.__init__`` sets ``store``)."""

    store: SqlStore

    def run_failures(
        self,
        run_id: str,
        *,
        statuses: Sequence[str] = ("failed", "skipped"),
        limit: int = 100,
        after: str | None = None,
        prefix: str | None = None,
    ) -> list[PartitionOutcome]:
        """A run's partitions that produced no version (``failed``, ``skipped``, ``lost``),
        with the reason, by key, a page after ``after``."""
        return self.store.run_failures(
            run_id, statuses=statuses, limit=limit, after=after, prefix=prefix
        )

    def list_runs(self, *, limit: int = 50, offset: int = 0) -> list[Run]:
        return self.store.list_runs(limit=limit, offset=offset)

    def get_run(self, run_id: str) -> Run:
        return self.store.get_run(run_id)

    def run_progress(self, run_id: str) -> dict[str, int]:
        """A run's recorded outcomes by status (see ``RunsMixin.run_progress``)."""
        return self.store.run_progress(run_id)

    def runs_page(self, *, limit: int = 50, after: str | None = None) -> list[RunProgress]:
        """Runs newest first, a page after the run ``after``, each with its progress from the
        counts its row keeps (one more read for their ``lost`` outcomes: O(page))."""
        runs = self.store.runs_page(limit=limit, after=after)
        lost = self.store.lost_counts([r.run_id for r in runs])
        return [progress_of(r, counted(r, lost.get(r.run_id, 0))) for r in runs]

    def get_run_progress(self, run_id: str) -> RunProgress:
        """One run's progress from its recorded outcomes (``registry.progress``); the
        fallback model's outcome is reported apart from the planned partitions'."""
        run = self.store.get_run(run_id)
        by_status = self.store.run_progress(run_id)
        fallback = self.store.outcome_status(run_id, FALLBACK_KEY)
        if fallback is not None and by_status.get(fallback):
            by_status[fallback] -= 1
        return progress_of(run, by_status, fallback=fallback)

    def unfinished_runs(self) -> list[tuple[Run, int]]:
        """Runs ``--resume`` would finish, each with its count of ``lost`` partitions."""
        return self.store.unfinished_runs()

    def count_runs(self) -> int:
        return self.store.count_runs()
