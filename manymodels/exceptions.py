"""Every error manymodels raises on purpose.

Each one derives from ``ManyModelsError`` (so callers can catch ours and nothing else) and from
the built-in a caller would already expect, so ``except ValueError`` / ``except LookupError``
keep working::

    ManyModelsError
    ├── SpecError(ValueError)            the spec file or object is malformed
    ├── DataError(ValueError)            the table does not fit the spec (missing column, bad key…)
    ├── RegistryError
    │   ├── PartitionNotFound(LookupError)
    │   ├── VersionNotFound(LookupError)
    │   ├── AliasNotFound(LookupError)
    │   ├── RunNotFound(LookupError)
    │   ├── NothingToRollBack            no earlier version to go back to
    │   └── VersionConflict              two writers raced for the same version number
    ├── ArtifactError
    │   ├── ArtifactNotFound(LookupError)
    │   └── ArtifactCorrupted            bytes on disk no longer match the sha256 in the registry
    ├── TrainingError(RuntimeError)      a run could not proceed (not: one partition failed)
    └── ScoringError(RuntimeError)       a batch-scoring task died (worker crash, lost node)

A partition that fails to train is *not* an exception: it becomes a ``PartitionFailure`` record
in the run, so one bad partition never sinks the others.
"""

from __future__ import annotations


def first_line(error: BaseException) -> str:
    """The first line of an error's message, or its type's name when it has none: libraries
    append multi-line hints to their errors, and a user is shown one line."""
    text = str(error).strip()
    return text.splitlines()[0].strip() if text else type(error).__name__


class ManyModelsError(Exception):
    """Base class of every error raised on purpose by manymodels."""


class SpecError(ManyModelsError, ValueError):
    """The spec is malformed: says which file, which key, and what was expected."""


class DataError(ManyModelsError, ValueError):
    """The data does not fit the spec: a missing column, a wrong type, an unusable key."""


class RegistryError(ManyModelsError):
    """The registry could not answer or could not be written."""


class PartitionNotFound(RegistryError, LookupError):
    """No partition with that key has ever been registered."""


class VersionNotFound(RegistryError, LookupError):
    """The partition exists but has no such version."""


class AliasNotFound(RegistryError, LookupError):
    """The partition exists but that alias (e.g. ``production``) points nowhere."""


class RunNotFound(RegistryError, LookupError):
    """No run with that id."""


class NothingToRollBack(RegistryError):
    """The alias has never moved forward, so there is nothing to roll back to."""


class VersionConflict(RegistryError):
    """Another writer registered the same (partition, version) first."""


class ArtifactError(ManyModelsError):
    """An artifact could not be stored or read back intact."""


class ArtifactNotFound(ArtifactError, LookupError):
    """The registry names an artifact the store does not hold."""


class ArtifactCorrupted(ArtifactError):
    """The stored bytes do not hash to the sha256 the registry recorded; never unpickled."""


class TrainingError(ManyModelsError, RuntimeError):
    """A whole run could not proceed (e.g. Ray could not start); single partitions never raise."""


class ScoringError(ManyModelsError, RuntimeError):
    """A batch-scoring task died; no output was written."""
