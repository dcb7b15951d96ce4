"""What ``train`` returns: the run record, its failures, where time went, and how the new
versions fared (``RunSummary``). A module of its own, with nothing heavy imported, so that the
console, the CLI and the retrain API can name the type without loading the pipeline.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from manymodels.registry.entities import PartitionOutcome, Run
    from manymodels.run_chunks import ShortIntervals

__all__ = ["CandidateFailures", "RunSummary", "SkillSummary"]


@dataclass(frozen=True, repr=False)
class RunSummary:
    """The outcome of ``train``: the run record, its failures, and where time went. Its repr
    is short (``__repr__``); every field is an attribute."""

    run: Run
    failures: list[PartitionOutcome]
    seconds: float
    startup_seconds: float
    versions: dict[str, int] = field(default_factory=dict)
    decisions: dict[str, int] = field(default_factory=dict)
    """How new versions fared: ``first`` (no production yet), ``returned`` (back in
    production after a retirement, uncompared as a first version is), ``promoted``, ``kept``
    (the champion stays; the new version is the ``candidate``), ``overruled`` (its verdict
    was to promote, but production moved during the run — another run, a promotion or a
    rollback — so it is the ``candidate``)."""
    rows_dropped: dict[str, int] = field(default_factory=dict)
    """Rows left out of training, by reason (``missing_target``, ``undefined_lags``), summed
    over the partitions trained."""
    chosen: dict[str, int] = field(default_factory=dict)
    """How many of the versions this call trained chose a candidate, the naive baseline, a
    global model…: after a resume, only those trained since (``trained_now``)."""
    fallback: str | None = None
    """``trained``, ``failed: …`` or ``None`` when the run did not train the fallback."""
    backend: str = ""
    """Where the work ran (``local``, ``ray``, or the class of a backend passed in), and why
    (``backend_reason``): ``auto`` picks by the size of the job."""
    backend_reason: str = ""
    skill: SkillSummary | None = None
    """How the new versions compare with the naive baseline on their validation rows."""
    global_members: int = 0
    """New versions whose ``top2`` ensemble holds a global model (``chosen`` counts them as
    ``ensemble``)."""
    short_intervals: dict[float, ShortIntervals] = field(default_factory=dict)
    """Per ``[intervals]`` level, the new versions whose band rests on too few validation
    errors to cover that level (``run_chunks.ShortIntervals``)."""
    candidate_failures: dict[str, CandidateFailures] = field(default_factory=dict)
    """Per candidate label, the new versions where it failed (some grid point raised): those
    chose among the rest, and the summary says so rather than let them read as partitions
    where no candidate beat naive."""
    global_unjudged: dict[str, CandidateFailures] = field(default_factory=dict)
    """Per global model (its label), the new versions it could not be judged on, with the
    first key and why: a partition an ``--append`` added, which the stored model (not
    refitted by a run of some partitions) never saw before its validation rows, or one whose
    rows the stored model was fitted on. They chose among the local candidates; ``models
    show KEY`` records why, and the summary says so in one line."""
    lost: int = 0
    """Partitions lost to infrastructure faults (a dead worker, a full disk), which a resume
    trains again: not failed, though the run's row counts them in ``n_failed``."""

    @property
    def trained_now(self) -> int:
        """Partitions this call trained (a resumed run's earlier ones not counted)."""
        return sum(self.chosen.values())

    @property
    def rate(self) -> float:
        """Partitions per second, excluding backend start-up."""
        work = max(self.seconds - self.startup_seconds, 1e-9)
        return self.run.n_done / work

    def __repr__(self) -> str:
        """The run in one line, its failures counted: the dataclass's repr held the whole
        spec and every failure's outcome (thousands at 100,000 partitions), a wall of text
        in a notebook cell ending in ``mm.train(…)``."""
        return (
            f"RunSummary(run={self.run!r}, failures={len(self.failures)}, "
            f"seconds={self.seconds:.3g}, fallback={self.fallback!r})"
        )


@dataclass(frozen=True)
class CandidateFailures:
    """A candidate that failed on ``partitions`` of a run's new versions; the first of them
    ``key``, with its ``error`` as the version records it (``models show KEY`` lists all)."""

    partitions: int
    key: str
    error: str

    def add(self) -> CandidateFailures:
        return CandidateFailures(self.partitions + 1, self.key, self.error)


@dataclass(frozen=True)
class SkillSummary:
    """Of ``compared`` new versions with a naive score, ``beat_naive`` scored strictly better;
    ``median`` is the median of their skill, ``(score − naive) / |naive|`` (0.25 = 25 %
    better, as ``ModelVersion.skill``)."""

    compared: int
    beat_naive: int
    median: float
    zero_naive: int = 0
    """New versions left out of ``compared``: their naive baseline's validation error was 0
    (an intermittent series all zeros over its validation rows), so no skill is defined. The
    summary said "955 of 1814 beat naive" of 2,000 trained, and the other 186 went unsaid."""

    @classmethod
    def of(cls, skills: list[float], zero_naive: int = 0) -> SkillSummary | None:
        if not skills:
            return None
        beat = sum(s > 0 for s in skills)
        return cls(len(skills), beat, float(statistics.median(skills)), zero_naive)
