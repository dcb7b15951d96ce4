"""The retrain a job runs: check posted rows, store them, retrain one partition on them.

Before a job is accepted the rows are checked against the spec of the run that produced the
partition's production version and stored as Parquet bytes in the artifact store (content
addressed), so the retrain can be reproduced from that sha256 — the run records it as its data
source. The job calls ``manymodels.pipeline.train(spec, rows, registry, only=[key])``: the new
version is evaluated against production on the same validation rows and the spec's promotion
policy decides; when it promotes, this router serves the new version from the next request.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from manymodels.deferred import deferred
from manymodels.error_reading import storage_full
from manymodels.exceptions import (
    ArtifactError,
    ArtifactStoreUnavailable,
    BadSignature,
    DataError,
    RunFailed,
)
from manymodels.feature_schema import FeatureSchema
from manymodels.partition import FALLBACK_KEY
from manymodels.registry.client import Registry
from manymodels.registry.job_outcomes import JOB_NOTE
from manymodels.registry.job_record import warnings_in
from manymodels.spec import Spec
from serving.errors import UploadNotStored
from serving.jobs import JobFailed, RetrainResult, UploadedData
from serving.retrain_rows import RetrainTarget, refuse_lost_columns, to_parquet, training_frame
from serving.service import ModelService
from serving.settings import RetrainBackend

if TYPE_CHECKING:
    from manymodels.pipeline import RunSummary

# --------------------------------------------------------------------------------------------
# the retrain
# --------------------------------------------------------------------------------------------
RetrainMode = Literal["append", "replace"]


@deferred
def training() -> Callable[..., RunSummary]:
    """``pipeline.train``: training's modules (scikit-learn, SciPy: ~2 s of a router's start)
    are imported by the first retrain or the router's warm-up, not with this module."""
    from manymodels.pipeline import train

    return train


@dataclass(frozen=True)
class RetrainPlan:
    target: RetrainTarget
    data: UploadedData
    mode: RetrainMode = "append"
    warnings: tuple[str, ...] = ()  # what reading the upload made of some cells: the run's too


class Retrainer:
    """Checks and stores posted rows, then retrains one partition on them.

    ``backend="ray"`` starts an embedded Ray instance on the first retrain (unless this process
    already runs one) and keeps it for the next ones; ``close`` stops it if it started it.
    ``"auto"`` lets the pipeline choose per job: one partition is one task, so it runs here.
    """

    def __init__(self, service: ModelService, *, backend: RetrainBackend = "auto") -> None:
        self.service = service
        self.backend = backend
        self._ray: Any = None  # the RayBackend that started Ray, if we did
        self._ray_lock = threading.Lock()

    def target(self, text: str) -> RetrainTarget:
        """The partition named by ``text``: it must exist and have a production version."""
        key = self.service.canonical(text)
        self.service.registry.require_writable("a retrain writes a new version into it")
        if key == FALLBACK_KEY:
            raise DataError(
                "the fallback model is trained on every partition's rows: retrain it with a "
                "full training run, not through this endpoint"
            )
        if key is None:
            raise self.service.missing(text, None, "in the registry")
        reg = self.service.registry
        summary = reg.get_partition(key)
        production = reg.get_version(key)
        run = reg.get_run(production.run_id)
        if run.kind == "import" or "imported" in run.spec:  # no spec to train it with
            raise DataError(
                f"partition '{key}' v{production.version} was imported from MLflow: there is "
                "no spec to retrain it with; train it once with `manymodels train` and a spec, "
                "then retrain it here"
            )
        spec = Spec.from_dict(run.spec, source=f"run {run.run_id}'s spec", stored=True)
        factories = [c.estimator for c in spec.candidates if c.is_factory]
        if reg.signer is not None and factories:
            # A spec read back from the database is not signed: whoever can write the database
            # could name any function ('os:system') as a factory. Classes must still be
            # estimators (fit, get_params), and their parameters are JSON values.
            raise BadSignature(
                f"the spec of run {run.run_id} names the factory '{factories[0]}': with a "
                "signing key the router does not call factories named by a spec read from the "
                "database, which is not signed; retrain this partition with `manymodels train` "
                "and the spec file"
            )
        return RetrainTarget(key, summary.key_values, spec, production)

    def prepare(
        self,
        target: RetrainTarget,
        frame: pd.DataFrame,
        *,
        fmt: str,
        filename: str | None = None,
        mode: RetrainMode = "append",
        warnings: tuple[str, ...] = (),
        before_store: Callable[[], None] | None = None,
    ) -> RetrainPlan:
        """Check the rows (a ``DataError`` names what is wrong) and store them; blocking.
        ``before_store``: called once the rows are checked, before they are stored (the
        router's 409 for a busy partition, which follows the 4xx of the request's rows).

        Appending to a partition whose versions kept their training rows needs no minimum of
        posted rows: the kept ones count toward ``min_rows``. Any version's: an append builds
        on the newest that kept some (``latest_data``), production or not — judged by
        production's alone, one imported (none kept) had an append refused that trains."""
        kept = mode == "append" and (
            target.production.data_sha256 is not None
            or target.key in self.service.registry.store.latest_data([target.key])
        )  # one indexed read, and only where production kept none
        if kept:
            refuse_lost_columns(frame, target)
        table = training_frame(frame, target, self.service.aliases.__contains__, kept=kept)
        data = to_parquet(table)
        if before_store is not None:
            before_store()
        try:
            sha, size = self.service.registry.artifacts.put(data)
        except ArtifactError as e:  # an outage (503) and a full disk (507) keep their status
            if isinstance(e, ArtifactStoreUnavailable) or storage_full(e):
                raise
            raise UploadNotStored(f"the uploaded rows could not be stored: {e}") from e
        uploaded = UploadedData(sha, size, len(table), fmt, filename)
        return RetrainPlan(target, uploaded, mode, warnings)

    def run(self, plan: RetrainPlan, *, job_id: str | None = None) -> RetrainResult:
        """Retrain on exactly the stored bytes (verified by sha256); the body of job
        ``job_id``, which its run names (``JOB_NOTE``: its end can be read from the run)."""
        reg = self.service.registry
        key, data = plan.target.key, plan.data
        frame = pd.read_parquet(io.BytesIO(reg.artifacts.get(data.sha256)))
        tag = {JOB_NOTE: job_id} if job_id is not None else {}
        notes = {"uploaded_data_sha256": data.sha256, "uploaded_data_rows": data.rows, **tag}
        notes |= {"warnings": list(plan.warnings)} if plan.warnings else {}
        try:
            summary = training()(
                plan.target.spec, frame, reg, backend=self._backend(), only=[key],
                source=f"artifact:{data.sha256}", append=plan.mode == "append", notes=notes,
                learnt_schema=FeatureSchema.parse(plan.target.production.feature_schema),
            )  # fmt: skip
        except RunFailed as e:  # the one partition failed: the job says why, from its outcome
            summary = e.summary
        run_id = summary.run.run_id
        warned = warnings_in(summary.run.options)  # the run as it ended: kept with the job
        number = summary.versions.get(key)
        if number is None:
            production = self.service.follow(key)
            raise JobFailed(
                _why_not(summary, reg, key), RetrainResult(run_id, None, production, warned)
            )
        version = reg.get_version(key, number)
        production = self.service.follow(key)  # serves the new version now if it was promoted
        return RetrainResult(run_id, version, production, warned)

    def close(self) -> None:
        with self._ray_lock:
            if self._ray is not None:
                self._ray.close()  # shuts Ray down only if it started it
                self._ray = None

    def _backend(self) -> str:
        if self.backend == "ray":
            with self._ray_lock:
                if self._ray is None:
                    from manymodels.execution import RayBackend

                    self._ray = RayBackend()  # started once, reused by every later retrain
        return self.backend


def _why_not(summary: RunSummary, reg: Registry, key: str) -> str:
    """Why the run produced no version of ``key``: its failure, or why it was skipped."""
    outcomes = [o for o in summary.failures if o.key == key]
    outcomes += reg.store.run_outcomes(summary.run.run_id, status="skipped")
    for o in outcomes:
        if o.key == key:
            return f"partition '{key}' {o.status}: {o.error_type}: {o.message}"
    return f"the run produced no version of partition '{key}'"
