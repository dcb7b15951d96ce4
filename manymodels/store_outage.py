"""A run stops at the first task that found its artifact store unreachable; one whose
registry database went away says how to finish it too (``database_stopped``).

Each task that met the outage went on training, and each of its puts waited out the client's
retries again (a deferred batch re-sent every pending object each time): with the S3 server
stopped 5 s into a run of 2,000 partitions, ``train`` crawled for most of an hour to end
with every partition lost. A task now stops at the first ``ArtifactStoreUnavailable``
(``training.chunk``), its partitions are recorded ``lost`` as any dead task's, and the driver
cancels the rest and fails the run with one line naming the store: ``--resume`` trains the lost
partitions and those never started once the store answers again.
"""

from __future__ import annotations

from typing import Any

from manymodels.exceptions import (
    ArtifactStoreUnavailable,
    RegistryError,
    causes,
    database_away,
    first_line,
)


def stop_if_down(result: object, backend: Any, run_id: str, lost: int) -> None:
    """Cancel ``backend``'s work and raise ``ArtifactStoreUnavailable`` when ``result`` is a
    task's death by an unreachable artifact store (raised here, or wrapped by Ray)."""
    down = next(  # Ray's error is one too, but its text is the task's traceback
        (e for e in (getattr(result, "cause", None), result)
         if isinstance(e, ArtifactStoreUnavailable)),
        None,
    )  # fmt: skip
    if down is None:
        return
    backend.cancel()
    left = (
        f"{lost} partition(s) lost with the task that met it, the rest not trained"
        if lost
        else "no partition trained"
    )
    raise ArtifactStoreUnavailable(
        f"{first_line(down)}; run {run_id} stopped: {left} (once the store answers, finish "
        f"the run with --resume {run_id})"
    ) from down


def database_stopped(error: BaseException, run_id: str) -> RegistryError | None:
    """The line a run ends with when ``error`` (or what it was raised from) says the
    registry's database went away mid-run, or ``None``. It said only "registry database
    unavailable: …", naming no run: the committed partitions stand and the run stays
    resumable, but its id was left for ``doctor`` to tell once the database was back."""
    away = database_away(loaded=True)
    if not any(isinstance(e, away) for e in causes(error)):
        return None
    said = first_line(error)
    if not said.startswith("registry database unavailable"):
        said = f"registry database unavailable: {said}"
    return RegistryError(
        f"{said}; run {run_id} stopped: the partitions it committed are kept (once the "
        f"database answers, finish the run with --resume {run_id})"
    )
