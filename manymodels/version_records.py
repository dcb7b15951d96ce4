"""What a version records of how it was chosen (``validation``) and of the promotion policy's
verdict on it (``evaluation``), as typed records.

The registry stores both as JSON documents beside the version (``ModelVersion.validation``,
``ModelVersion.evaluation``: what the API answers). Training writes them
(``manymodels.training.records``); readers parse them here — ``ModelVersion.selection`` and
``ModelVersion.decision`` — so that their layout is known to this module and to the writer
alone. Light on purpose (no numpy, no pandas, no pydantic): read-only commands read them too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Basis = Literal["unseen", "refit"]
Outcome = Literal["first", "returned", "promoted", "kept"]


@dataclass(frozen=True)
class Decision:
    """The promotion policy's verdict on a version (``manymodels.evaluate.decide``): whether
    it replaced the production version it was compared with (``champion_version``; ``None``
    for a partition's first version), why, and the two scores on the same rows; for a version
    that put a retired partition back in production, the version it was retired from
    (``retired_from``, written by the registry's ``record``). A version imported from MLflow
    records no scores: its fields read as their defaults."""

    promote: bool = False
    reason: str = ""
    policy: str | None = None
    challenger_score: float | None = None
    champion_version: int | None = None
    champion_score: float | None = None
    improvement: float | None = None
    basis: Basis | None = None
    retired_from: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The document stored as ``evaluation``; ``retired_from`` only where there is one
        (the registry adds it when it records the version)."""
        doc = asdict(self)
        if doc["retired_from"] is None:
            del doc["retired_from"]
        return doc

    @classmethod
    def parse(cls, doc: Mapping[str, Any]) -> Decision:
        """The verdict of a stored ``evaluation`` document (extra keys — the rows compared, a
        metric of its own, an import's source — are the document's)."""
        return cls(
            promote=bool(doc.get("promote")),
            reason=str(doc.get("reason") or ""),
            policy=doc.get("policy"),
            challenger_score=_number(doc.get("challenger_score")),
            champion_version=doc.get("champion_version"),
            champion_score=_number(doc.get("champion_score")),
            improvement=_number(doc.get("improvement")),
            basis=doc.get("basis"),
            retired_from=doc.get("retired_from"),
        )

    @property
    def outcome(self) -> Outcome:
        """``returned`` when it put a retired partition back in production, ``first`` when
        there was no champion to judge it against, else whether it was promoted. (A first
        version that became a candidate because another run's first version took production
        meanwhile reads ``first`` still: its ``promote`` is false, its ``overruled`` says
        why, and a run's summary counts it apart, from ``record``'s ``Recorded.overruled``.)"""
        if self.retired_from is not None:
            return "returned"
        if self.champion_version is None:
            return "first"
        return "promoted" if self.promote else "kept"


@dataclass(frozen=True, slots=True)
class Selection:
    """How a version was chosen (its ``validation`` document): the validation ``strategy``,
    its ``folds`` and ``rows``, what was ``chosen`` (``candidate``, ``global``, ``ensemble``,
    ``naive``, ``too_few_rows`` …), the score of each target transform ``transforms`` tried
    (``None``: that transform failed), and the training rows ``dropped``, by reason."""

    strategy: str | None = None
    folds: int = 0
    rows: int = 0
    chosen: str = "candidate"
    transforms: dict[str, float | None] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)

    @classmethod
    def parse(cls, doc: Mapping[str, Any]) -> Selection:
        return cls(
            strategy=doc.get("strategy"),
            folds=int(doc.get("folds") or 0),
            rows=int(doc.get("rows") or 0),
            chosen=str(doc.get("chosen") or "candidate"),
            transforms=dict(doc.get("transforms") or {}),
            dropped={str(k): v for k, v in (doc.get("dropped") or {}).items() if type(v) is int},
        )


def _number(value: Any) -> float | None:
    """A recorded score as a float (the registry stores a non-finite one as ``NaN`` or
    ``Infinity``, which read back as floats); ``None`` where none is recorded."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
