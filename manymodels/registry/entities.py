"""What the registry stores and returns: frozen dataclasses, never database rows.

Training produces ``NewVersion`` and ``PartitionOutcome`` (it knows nothing of SQL); the store
turns them into rows and hands back ``ModelVersion``, ``Run``, ``AliasMove`` and friends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, Literal

from manymodels.feature_schema import FeatureSchema
from manymodels.heartbeat import SILENT_AFTER, ahead_by, silent_for, spoken
from manymodels.stamps import seconds_between
from manymodels.tempnames import owner_alive
from manymodels.version_records import Decision, Selection

RunStatus = Literal["running", "completed", "failed", "interrupted"]
OutcomeStatus = Literal["trained", "skipped", "failed", "lost"]


@dataclass(frozen=True)
class CandidateResult:
    """One grid point of one candidate, scored on the partition's validation rows."""

    label: str
    estimator: str
    params: dict[str, Any]
    score: float | None
    error: str | None = None


class _Records:
    """A version's stored documents read as typed records, parsed once on first use: how
    every reader reads them. The documents stay what the API answers and a signature covers;
    they are never changed once the version exists (a test that edits one must do so before
    reading a view)."""

    feature_schema: dict[str, Any]
    validation: dict[str, Any]
    evaluation: dict[str, Any]

    @cached_property
    def schema(self) -> FeatureSchema:
        """``feature_schema`` parsed (``manymodels.feature_schema``)."""
        return FeatureSchema.parse(self.feature_schema)

    @cached_property
    def selection(self) -> Selection:
        """``validation`` parsed: how it was chosen (``manymodels.version_records``)."""
        return Selection.parse(self.validation)

    @cached_property
    def decision(self) -> Decision | None:
        """``evaluation`` parsed: the promotion policy's verdict; ``None`` when it records
        none (a direct store call, or a version from before decisions were recorded)."""
        return Decision.parse(self.evaluation) if self.evaluation else None


@dataclass(frozen=True)
class NewVersion(_Records):
    """A trained partition, its artifact already stored, waiting to be registered."""

    key: str
    key_values: dict[str, Any]
    n_rows: int
    data_fingerprint: str
    estimator: str
    params: dict[str, Any]
    metric: str
    score: float
    naive_score: float | None
    candidates: list[CandidateResult]
    feature_schema: dict[str, Any]
    artifact_sha256: str
    artifact_size: int
    train_seconds: float
    warnings: list[str] = field(default_factory=list)
    validation: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)
    data_sha256: str | None = None
    """The partition's input rows in the artifact store (``None`` for the fallback)."""
    members: tuple[str, ...] = ()
    """The global models its artifact names (an ensemble's: ``manymodels.global_members``)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PartitionOutcome:
    """A partition that did not produce a version in a run, and why."""

    key: str
    status: OutcomeStatus
    error_type: str
    message: str
    n_rows: int = 0
    data_fingerprint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, repr=False)
class ModelVersion(_Records):
    """An immutable, registered model of one partition. Its repr is short (``__repr__``);
    every field is an attribute, ``to_dict()`` holds them all."""

    key: str
    version: int
    run_id: str
    created_at: str
    estimator: str
    params: dict[str, Any]
    metric: str
    score: float
    naive_score: float | None
    n_rows: int
    data_fingerprint: str
    feature_schema: dict[str, Any]
    artifact_sha256: str
    artifact_size: int
    libraries: dict[str, str]
    candidates: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    validation: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    data_sha256: str | None = None
    """The rows it was trained on, as given (see ``Registry.training_rows``)."""
    signature: str | None = None
    """HMAC of its key, version and digests, when it was signed (``manymodels.signing``)."""
    members: tuple[str, ...] = ()
    """The sha256s of the global models its artifact names as ensemble members (loaded with
    it: ``manymodels.global_members``); ``gc`` keeps them while it exists."""

    @property
    def artifact_format(self) -> str:
        """``skops`` when skops stored its model (recorded in ``libraries``), else ``pickle``.
        A record only: loaders go by the bytes (``manymodels.serialization``)."""
        return "skops" if "skops" in self.libraries else "pickle"

    @property
    def skill(self) -> float | None:
        """Relative improvement over the naive baseline (0.25 = 25 % better), when defined."""
        if self.naive_score is None or self.naive_score == 0:
            return None
        return (self.score - self.naive_score) / abs(self.naive_score)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["aliases"] = list(self.aliases)
        out["skill"] = self.skill
        return out

    def __repr__(self) -> str:
        """Which model this is, in one line, as MLflow's ``ModelVersion`` shows one: the
        dataclass's repr held the whole feature schema, candidates and libraries, a wall of
        text in a notebook for each version (and in ``LoadedModel``'s and
        ``PartitionSummary``'s reprs)."""
        score = f"{self.score:.6g}" if isinstance(self.score, int | float) else repr(self.score)
        return (
            f"ModelVersion(key={self.key!r}, version={self.version}, "
            f"estimator={self.estimator!r}, metric={self.metric!r}, score={score}, "
            f"aliases={list(self.aliases)!r}, created_at={self.created_at!r})"
        )


@dataclass(frozen=True)
class PartitionSummary:
    """One row of ``models list``: a partition and where its aliases point."""

    key: str
    key_values: dict[str, Any]
    latest_version: int
    aliases: dict[str, int]
    production: ModelVersion | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["production"] = self.production.to_dict() if self.production else None
        return out


RETIRED = "retired"
"""The alias a retired partition's last production version is kept under (``retire``): gc
keeps every aliased version, so the version ``rollback`` restores stays; the router reads the
row as production's removal. A move of ``production`` back onto the partition deletes it."""


@dataclass(frozen=True)
class AliasMove:
    """One entry of an alias's history: promotions, rollbacks, first registrations and
    retirements (``action`` "retire", ``to_version`` ``None``: the partition left production)."""

    key: str
    alias: str
    from_version: int | None
    to_version: int | None
    reason: str
    run_id: str | None
    at: str
    action: str = "promote"
    moved: bool = field(default=True, compare=False)
    """Whether the call that returned this entry wrote it: ``False`` when a promotion found
    production already there and returned the entry that put it there (decided in its write
    transaction; not a column)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def row(self) -> dict[str, Any]:
        """The ``alias_history`` row it is."""
        out = self.to_dict()
        del out["moved"]
        return out


@dataclass(frozen=True, repr=False)
class Run:
    """One training or retraining job and its counts. Its repr is short (``__repr__``);
    every field is an attribute."""

    run_id: str
    kind: str
    status: RunStatus
    spec_name: str
    spec_hash: str
    spec: dict[str, Any]
    data_source: str
    data_fingerprint: str
    started_at: str
    ended_at: str | None
    n_partitions: int
    n_trained: int
    n_skipped: int
    n_failed: int
    options: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    heartbeat_at: str | None = None
    """When its process last showed it was alive (``manymodels.heartbeat``): the database
    server's time (``registry.db_clock``), whichever host's process beat."""
    read_at: str | None = field(default=None, compare=False)
    """The database server's time when the row was read (``db_clock.db_now``): the clock its
    heartbeat is judged by, as it was stamped by it. Judged by this host's clock, a host
    minutes behind or ahead of the one that beat took a live run for silent (and started a
    second beside it) or a dead one for beating. ``None`` (built by hand): this clock."""

    @property
    def n_done(self) -> int:
        return self.n_trained + self.n_skipped + self.n_failed

    def __repr__(self) -> str:
        """Which run this is and its counts, in one line: the dataclass's repr held the
        whole spec and options, a wall of text in a notebook for each run (and in
        ``RunSummary``'s repr), as a version's was."""
        error = f", error={self.error!r:.200}" if self.error else ""
        return (
            f"Run(run_id={self.run_id!r}, kind={self.kind!r}, status={self.status!r}, "
            f"spec_name={self.spec_name!r}, n_partitions={self.n_partitions}, "
            f"n_trained={self.n_trained}, n_skipped={self.n_skipped}, "
            f"n_failed={self.n_failed}, started_at={self.started_at!r}, "
            f"ended_at={self.ended_at!r}{error})"
        )

    @property
    def owner_alive(self) -> bool | None:
        """Whether the process that runs it (``owner``) still runs on this machine; ``None``
        where its pid cannot be looked up here (another machine's, or one before a reboot)."""
        return owner_alive(self.options.get("owner"))

    @property
    def killed(self) -> bool:
        """Marked running, but its process is gone from this machine (``killed``)."""
        return killed(self.status, self.options)

    @property
    def silence(self) -> float | None:
        """Seconds since a running run's last heartbeat, once it is past
        ``heartbeat.SILENT_AFTER`` — for a run whose process this machine cannot look up:
        its pid says more where it can be read (``killed``). Else ``None``."""
        if self.status != "running" or self.owner_alive is not None:
            return None
        return silent_for(self.status, self.heartbeat_at, self.judged_at())

    @property
    def beating(self) -> bool:
        """Running elsewhere, its process's heartbeat within ``heartbeat.SILENT_AFTER`` of
        this clock, on either side (a run recorded before heartbeats never is, nor one whose
        beat is no time at all). A beat stamped further ahead (``ahead``: a clock running
        ahead where it beat) proves nothing: it read as beating, and each caller had to ask
        ``ahead`` too (one did; another would take it for a live run)."""
        if self.status != "running" or self.owner_alive is not None or not self.heartbeat_at:
            return False
        if seconds_between(self.judged_at(), self.heartbeat_at) is None:
            return False
        return self.silence is None and ahead_by(self.heartbeat_at, self.judged_at()) is None

    @property
    def ahead(self) -> float | None:
        """Seconds a running run's heartbeat is stamped ahead of this clock, past
        ``heartbeat.SILENT_AFTER`` (``heartbeat.ahead_by``: a clock running ahead where it
        runs) — for a run whose process this machine cannot look up. Such a beat proves
        nothing (``heartbeat.beat_proves_nothing``, with a run's limit; ``run_busy``'s
        ``seen_stopped``). Else ``None``."""
        if self.status != "running" or self.owner_alive is not None:
            return None
        return ahead_by(self.heartbeat_at, self.judged_at(), limit=SILENT_AFTER)

    @property
    def state(self) -> str:
        """Its status as people read it: ``running (process gone)`` for a killed run,
        ``running (no heartbeat for 2 h)`` for a silent one, ``running (heartbeat stamped 3 h
        ahead)`` for one whose beat proves nothing (``ahead``): it read "running", as a run
        alive, though it blocks no run and can be resumed or abandoned."""
        if self.killed:
            return "running (process gone)"
        silence = self.silence
        if silence:
            return f"running (no heartbeat for {spoken(silence)})"
        ahead = self.ahead
        return f"running (heartbeat stamped {spoken(ahead)} ahead)" if ahead else self.status

    def judged_at(self) -> datetime:
        """The time its heartbeat is judged at: the database's when it was read (``read_at``)."""
        return datetime.fromisoformat(self.read_at) if self.read_at else datetime.now(UTC)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        del out["read_at"]  # when it was read, not what it is
        return out


def killed(status: str, options: Mapping[str, Any]) -> bool:
    """Whether a run still marked running was killed: the process that ran it (its ``owner``,
    recorded when it started or was resumed) is gone from this machine — ``kill -9``, the OOM
    killer. Nothing loads its global models any more (a resume fits its own); ``False`` where
    it cannot be told (another machine's run, or one started before runs had owners)."""
    return status == "running" and owner_alive(options.get("owner")) is False
