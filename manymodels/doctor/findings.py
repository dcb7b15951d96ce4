"""What ``manymodels doctor`` reports: one ``Problem`` per thing wrong, and the ``Checkup``
that holds them with what was checked (the CLI prints both, as text or ``--json``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One thing wrong; ``key``/``version``/``alias``/``run_id``/``sha256`` say where."""

    kind: str  # model_missing | model_corrupted | model_unreadable | member_… | rows_…
    #            | dangling_alias | unfinished_run | temp_files | signature_missing
    #            | signature_invalid | signature_other_key | artifact_store_unreachable
    #            | global_signature_missing | global_signature_invalid | artifact_store_wrong
    #            | mixed_targets
    message: str
    repairable: bool = False
    repaired: bool = False
    key: str | None = None
    version: int | None = None
    alias: str | None = None
    run_id: str | None = None
    sha256: str | None = None
    versions: int = 0  # how many versions reference a bad artifact
    note: bool = False
    """Worth saying, but nothing wrong: a run training right now. A ``doctor`` from cron
    failed whenever it overlapped a healthy ``train``."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Checkup:
    """What ``check`` looked at and what it found."""

    registry: str
    versions: int
    artifacts: int
    aliases: int
    runs: int
    problems: list[Problem] = field(default_factory=list)
    signed: bool = False  # whether signatures were checked (a signing key was set)
    retired: int = 0
    """Retired partitions, apart from ``aliases``: each keeps its last version under a
    'retired' alias row, which is no alias a user set and serves nothing."""

    @property
    def unresolved(self) -> list[Problem]:
        return [p for p in self.problems if not p.repaired and not p.note]

    @property
    def notes(self) -> list[Problem]:
        return [p for p in self.problems if p.note]

    @property
    def ok(self) -> bool:
        return not self.unresolved

    def counts(self) -> str:
        """What was checked; artifacts are "verified" only when none had a problem (it said
        so beside a missing one)."""
        stores = ("artifact_store_unreachable", "artifact_store_wrong")
        bad = any(p.sha256 or p.kind in stores for p in self.problems)
        return (
            f"{self.versions} version(s), {self.artifacts} artifact(s)"
            f"{'' if bad else ' verified'}, "
            f"{self.aliases} alias(es), "
            + (f"{self.retired} retired partition(s), " if self.retired else "")
            + f"{self.runs} run(s)"
            + (", signatures checked" if self.signed else "")
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "registry": self.registry,
            "checked": {
                "versions": self.versions,
                "artifacts": self.artifacts,
                "aliases": self.aliases,
                "retired_partitions": self.retired,
                "runs": self.runs,
            },
            "signatures_checked": self.signed,
            # notes apart: a consumer that alerts on any problem must not alert on a train
            "problems": [p.to_dict() for p in self.problems if not p.note],
            "notes": [p.to_dict() for p in self.notes],
            "repaired": sum(p.repaired for p in self.problems),
        }
