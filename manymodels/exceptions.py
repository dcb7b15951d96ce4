"""Every error manymodels raises on purpose.

Each one derives from ``ManyModelsError`` (so callers can catch ours and nothing else) and from
the built-in a caller would already expect, so ``except ValueError`` / ``except LookupError``
keep working. Each one survives pickle with its message and attributes, so an error raised in
a worker process (multiprocessing, a Ray task) reaches the caller as itself::

    ManyModelsError
    ├── SpecError(ValueError)            the spec file or object is malformed
    ├── DataError(ValueError)            the table does not fit the spec (missing column, bad key…)
    │   └── InvalidRows                  rows that do not fit a model's feature schema, by cell
    ├── RegistryError
    │   ├── NoRegistry                   no registry here: no directory, no database, an empty one
    │   │   ├── LostDatabase             …beside an artifact store that holds models
    │   │   └── StoreNotFound            a database holding one, its artifact store not found
    │   ├── ReadOnlyRegistry             a write to a registry this process can only read
    │   ├── PartitionNotFound(LookupError)
    │   ├── VersionNotFound(LookupError)
    │   ├── AliasNotFound(LookupError)
    │   ├── RunNotFound(LookupError)
    │   ├── NothingToRollBack            no earlier version to go back to
    │   ├── RunTakenOver                 another process resumed the run (or did so first)
    │   └── VersionConflict              two writers raced for the same version number
    ├── ArtifactError
    │   ├── ArtifactStoreUnavailable     the object store cannot be reached now (retry)
    │   ├── ArtifactNotFound(LookupError)
    │   ├── UntrustedArtifact            a format the registry does not trust (a pickle in a
    │   │                                skops-only one), or a skops type off the trusted list
    │   ├── ArtifactUnreadable           verified bytes that do not load (a class renamed since
    │   │                                it was pickled, a damaged or crafted skops file)
    │   └── ArtifactCorrupted            bytes on disk no longer match the sha256 in the registry
    │       └── BadSignature             a signing key is set and a version's signature is
    │           │                        missing or does not vouch for its digests
    │           └── UnsignedVersion      … missing: registered without the key
    ├── TrainingError(RuntimeError)      a run could not proceed (not: one partition failed)
    │   ├── RunFailed                    a run finished, but failed as a whole (see its summary)
    │   └── RunBusy                      another run of the spec is training on the registry
    ├── NothingToTrain                   a changed-only run found nothing changed, and was not
    │                                    recorded (``train(record_nothing=False)``: the CLI's)
    └── ScoringError(RuntimeError)       a batch-scoring task died (worker crash, lost node)

``RunInterrupted(KeyboardInterrupt)`` is Ctrl-C during a run: still a KeyboardInterrupt, and it
carries the run's id so that it can be resumed.

A partition that fails to train is *not* an exception: it becomes a ``PartitionFailure`` record
in the run, so one bad partition never sinks the others.
"""

from __future__ import annotations

from typing import Any

from manymodels.error_reading import FIRST_LINE_CHARS as FIRST_LINE_CHARS
from manymodels.error_reading import FULL_ERRNOS as FULL_ERRNOS
from manymodels.error_reading import POSTGRESQL_DISK_FULL as POSTGRESQL_DISK_FULL
from manymodels.error_reading import causes as causes
from manymodels.error_reading import database_away as database_away
from manymodels.error_reading import error_text as error_text
from manymodels.error_reading import first_line as first_line
from manymodels.error_reading import pandas_first_line as pandas_first_line
from manymodels.error_reading import problem as problem
from manymodels.error_reading import short_message as short_message
from manymodels.error_reading import storage_full as storage_full
from manymodels.row_numbers import data_row

# ``causes`` … ``storage_full`` read any error: they live in ``error_reading`` and are named
# here too, as code written before the move imports them from here.


def _rebuilt(cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    """An error unpickled: its ``args`` and attributes put back without calling ``__init__``,
    whose parameters (``InvalidRows(errors)``, ``RunFailed(message, summary)``) are not its
    ``args``, so that an error raised in a worker process reaches the parent as itself."""
    error = cls.__new__(cls, *args)
    error.__dict__.update(state)
    return error


class ManyModelsError(Exception):
    """Base class of every error raised on purpose by manymodels."""

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuilt, (type(self), self.args, dict(self.__dict__))


class SpecError(ManyModelsError, ValueError):
    """The spec is malformed: says which file, which key, and what was expected."""


class DataError(ManyModelsError, ValueError):
    """The data does not fit the spec: a missing column, a wrong type, an unusable key."""

    chunk_row: int | None = None
    """A scoring worker's row the model refused, within its chunk (sorted by partition), for
    the driver to name as the table's data row (``scoring.error_rows``)."""


class AmbiguousKey(DataError):
    """A key that is no partition as written but names two or more in other spellings
    (``pid=1.0``: one spec's ``pid=1``, another's ``pid=true``): which one was meant is the
    user's to say, not the first spelling tried."""

    def __init__(self, key: str, candidates: list[str]) -> None:
        self.key = key
        self.candidates = candidates
        named = ", ".join(f"'{c}'" for c in candidates[:-1]) + f" and '{candidates[-1]}'"
        super().__init__(
            f"the key '{key}' is ambiguous: no partition is spelt so, and it names {named} "
            "in other spellings: name one of them as it is written"
        )


MAX_REPORTED = 20  # problems listed in one 422; the rest are counted


class InvalidRows(DataError):
    """Rows that do not fit the model's feature schema; ``errors`` name row and column."""

    def __init__(
        self, errors: list[dict[str, Any]], total: int | None = None, *, data_rows: bool = False
    ) -> None:
        """``data_rows``: the message names the first row as a table's (``data row 3
        (counting from 1)``, ``LoadedModel.predict``), not as a request's (``row 2``, its
        index in ``rows``, as the router's ``loc``)."""
        self.errors = errors[:MAX_REPORTED]
        self.total = len(errors) if total is None else total
        super().__init__(_summary(self.errors, self.total, data_rows))

    def as_data_rows(self) -> InvalidRows:
        """The same problems, the message counting data rows from 1."""
        return InvalidRows(self.errors, self.total, data_rows=True)

    def detail(self) -> list[dict[str, Any]]:
        out = list(self.errors)
        if self.total > len(out):
            out.append(
                {
                    "loc": ["body", "rows"],
                    "msg": f"{self.total - len(out)} more problem(s) not listed",
                    "type": "too_many_errors",
                }
            )
        return out


def _summary(errors: list[dict[str, Any]], total: int, data_rows: bool = False) -> str:
    """``row 3: feature 'price' must be a number, not text 'abc' (and 2 more problems)``;
    ``data row 4 (counting from 1): …`` with ``data_rows``."""
    if not errors:
        return "invalid rows"
    first = errors[0]
    where = [x for x in first["loc"][2:3] if isinstance(x, int)]
    more = f" (and {total - 1} more problem{'s' if total > 2 else ''})" if total > 1 else ""
    if not where:
        return first["msg"] + more
    return f"{data_row(where[0]) if data_rows else f'row {where[0]}'}: " + first["msg"] + more


class RegistryError(ManyModelsError):
    """The registry could not answer or could not be written."""


class NoRegistry(RegistryError):
    """The location holds no registry: no directory, no database file, or an empty database.

    Not a ``LookupError``: it is the place that is wrong, not a name in it. Only a write that
    means to create a registry (``Registry(..., create=True)``) may start one, and never over
    an artifact store that already holds models (their database has been lost)."""


class LostDatabase(NoRegistry):
    """No database (or an empty one) beside an artifact store that holds models: the
    registry's database was lost, and no new registry may start over its models. Told apart
    from a plain ``NoRegistry`` by what must not mistake it for a new place (``import``)."""


class StoreNotFound(NoRegistry):
    """A database named (``--registry-db``) that holds a registry, opened to read with no
    artifact store named and no registry directory holding one: the registry is there, its
    models are not found. Told apart from a plain ``NoRegistry`` ("nothing there") by what
    must not take it for a new place (an append merged none of its kept rows; the scheduler's
    catch-up looked for no missed firing), by its type rather than by opening the database
    again; ``registry.location.locate`` opens it once, on this error only."""


class ReadOnlyRegistry(RegistryError):
    """A write (train, promote, gc, a repair…) to a registry on a read-only filesystem, or
    one this user may not write: every reading command still works on it."""


class PartitionNotFound(RegistryError, LookupError):
    """No partition with that key has ever been registered."""


class VersionNotFound(RegistryError, LookupError):
    """The partition exists but has no such version."""


ROLLED_BACK = " (a rollback puts it back in production)"


def retirement(version: int, then: str = ROLLED_BACK) -> str:
    """What a refusal of a retired partition's production says (``manymodels retire`` kept
    ``version``), where it read as a partition never promoted: built here only, for the
    registry's ``AliasNotFound`` and the router's 404s alike; ``then`` says how it comes back
    (a command's own words: ``export it with --version N``)."""
    return f"it was retired from v{version}{then}"


class AliasNotFound(RegistryError, LookupError):
    """The partition exists but that alias (e.g. ``production``) points nowhere.

    ``retired_from``: the version ``retire`` moved production away from, when it did (the
    message says so); ``refusal`` is the message without that, for a command that says it
    with a hint of its own (``then``) instead of reading the registry again."""

    def __init__(
        self, refusal: str, retired_from: int | None = None, then: str = ROLLED_BACK
    ) -> None:
        self.refusal = refusal
        self.retired_from = retired_from
        was = f": {retirement(retired_from, then)}" if retired_from is not None else ""
        super().__init__(f"{refusal}{was}")

    def hinted(self, then: str, refusal: str | None = None) -> AliasNotFound:
        """The same refusal saying ``then`` of how a retired partition comes back (and
        ``refusal`` reworded, if given): no second read; itself when never retired."""
        if self.retired_from is None:
            return self
        return AliasNotFound(refusal or self.refusal, self.retired_from, then)


class RunNotFound(RegistryError, LookupError):
    """No run with that id."""


class NothingToRollBack(RegistryError):
    """The alias has never moved forward, so there is nothing to roll back to."""


class RunTakenOver(RegistryError):
    """Another process took the run: it changed between a resume's look at it and its reopen,
    or the process running it was paused while another one resumed it (its writes are then
    refused)."""


class VersionConflict(RegistryError):
    """Another writer registered the same (partition, version) first."""


class ArtifactError(ManyModelsError):
    """An artifact could not be stored or read back intact."""


class ArtifactStoreUnavailable(ArtifactError):
    """The artifact store cannot be reached now (an object store refusing connections or
    timing out): an outage to retry, not an artifact that is wrong or missing."""


class ArtifactNotFound(ArtifactError, LookupError):
    """The registry names an artifact the store does not hold: ``digest`` says which (an
    ensemble's global member is another artifact than its version's own)."""

    def __init__(self, message: str, digest: str | None = None) -> None:
        super().__init__(message)
        self.digest = digest


class UntrustedArtifact(ArtifactError):
    """An artifact in a format its registry does not trust (``manymodels trust``),
    or a skops artifact naming a type off the trusted list; refused before it is loaded."""


class ArtifactUnreadable(ArtifactError):
    """An artifact of a trusted format whose bytes do not load: a pickle naming a class this
    release (or this environment) does not have, a skops file that is damaged, crafted or
    written by another skops. ``why`` is the loader's ``Type: first line``, for callers that
    say it in their own words."""

    def __init__(self, message: str, why: str = "") -> None:
        super().__init__(message)
        self.why = why


class ArtifactCorrupted(ArtifactError):
    """The stored bytes do not hash to the sha256 the registry recorded; never unpickled."""


class BadSignature(ArtifactCorrupted):
    """A signing key is set and a version's signature is missing, another key's, or does not
    match its digests (see ``manymodels.signing``); its artifact is never unpickled."""


class UnsignedVersion(BadSignature):
    """A signing key is set and a version carries no signature at all (registered without
    the key): refused like any bad signature, but no sign that anything was tampered with,
    so a command over many partitions may skip it and go on."""


class TrainingError(ManyModelsError, RuntimeError):
    """A whole run could not proceed (e.g. Ray could not start); single partitions never raise."""


class NothingToTrain(ManyModelsError):
    """A changed-only run (``train --changed-only``, ``retrain --when``, a scheduled firing)
    whose partitions are all unchanged, asked not to record a run of nothing: no error, the
    message is the line to show. ``unchanged`` counts the partitions left as they were;
    ``notes`` are the options the run would have recorded (``not_in_data``, ``warnings``)."""

    def __init__(
        self, message: str, *, unchanged: int = 0, notes: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.unchanged = unchanged
        self.notes = dict(notes or {})

    def said(self) -> list[str]:
        """What reading the data found that a run would have said (its ``warnings``, rows
        with a stray word left out): the one line of a run that records nothing lost them,
        so a CSV written with its index, or rows dropped, went unsaid at every run that
        changed nothing — the runs a schedule makes most."""
        return data_warnings(self.notes)


def data_warnings(options: dict[str, Any]) -> list[str]:
    """The warnings a run's ``options`` (or a run of nothing's ``notes``) hold, as lines: its
    ``warnings`` and the rows with a stray word left out (``bad_rows_dropped``). One list for
    ``--json``'s ``warnings``, whether the run trained or found nothing to train."""
    said = [str(w) for w in options.get("warnings", [])]
    bad = options.get("bad_rows_dropped")
    if bad:
        why = ", ".join(f"{n:,} in '{column}'" for column, n in bad.items())
        said.append(f"rows with a stray word in a numeric column left out: {why}")
    return said


class ScoringError(ManyModelsError, RuntimeError):
    """A batch-scoring task died; no output was written."""


class RunFailed(TrainingError):
    """A run that finished but failed as a whole: no partition trained, more failed than
    ``max_failed_fraction`` allows, or the fallback model failed. Every partition that did
    train is committed; ``summary`` (a ``RunSummary``) says what happened."""

    def __init__(self, message: str, summary: Any) -> None:
        super().__init__(message)
        self.summary = summary


class RunBusy(TrainingError):
    """A run refused before it was recorded: run ``run_id`` of the same spec is training on
    the registry (``manymodels.run_busy``); two at once trained the same partitions twice."""

    def __init__(self, message: str, run_id: str) -> None:
        super().__init__(message)
        self.run_id = run_id


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run: what was committed is kept, and ``run_id`` can be resumed."""

    def __init__(self, run_id: str) -> None:
        super().__init__(run_id)
        self.run_id = run_id

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuilt, (type(self), self.args, dict(self.__dict__))
