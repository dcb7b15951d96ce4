"""A run's partitions that produced no version (``GET /v1/failures``): failed, skipped or
lost, each with its reason, a page at a time along an index of the run's outcomes.

Apart from ``serving.routes.monitor`` (what the versions that did train do live): it reads the
run's records, not the monitor's tables.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from serving.auth import AdminView
from serving.jsonbody import FastJSONRoute
from serving.redact import local_roots, redact_text
from serving.routes import Service
from serving.routes.options import single_options
from serving.schemas import ERRORS
from serving.service import ModelService

router = APIRouter(
    tags=["monitor"], dependencies=[Depends(single_options)], route_class=FastJSONRoute
)


class FailureOut(BaseModel):
    partition: str
    status: str
    error_type: str
    message: str
    rows: int
    latest_version: int | None = Field(
        default=None,
        description="The partition's newest version from any run; null when it has none "
        "(no page of its own: the fallback, if any, answers for it).",
    )


class FailurePage(BaseModel):
    run_id: str | None
    run_kind: str | None = None
    run_started_at: str | None = None
    n_failed: int = 0
    n_skipped: int = 0
    failures: list[FailureOut]
    next_after: str | None = None


@router.get(
    "/v1/failures",
    response_model=FailurePage,
    responses=ERRORS,
    summary="A run's partitions that failed or were skipped, with the reason",
)
async def get_failures(
    service: Service,
    show_paths: AdminView,
    run: Annotated[
        str | None,
        Query(min_length=1, max_length=32, description="A run id; default: the newest run."),
    ] = None,
    status: Annotated[
        list[Literal["failed", "skipped", "lost"]] | None,
        Query(description="Which outcomes (repeat it); default: failed and skipped."),
    ] = None,
    prefix: Annotated[
        str | None,
        Query(max_length=512, description="Only keys that start with this canonical text."),
    ] = None,
    after: Annotated[
        str | None, Query(max_length=512, description="The last key of the previous page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size.")] = 100,
) -> FailurePage:
    """The partitions of one run (default: the newest) that produced no version, by key, a
    page at a time: each with its outcome (``failed``: an error in training, ``skipped``:
    e.g. fewer rows than ``min_rows``; ``lost``: its task died), the error's type and
    message, and its rows. Read along an index of the run's outcomes (O(page), never a scan
    of 100,000 partitions). Local paths in messages are shown to the admin token only."""
    statuses = tuple(status or ("failed", "skipped"))
    return await run_in_threadpool(
        _failures, service, run, statuses, prefix, after, limit, show_paths
    )


def _failures(
    service: ModelService,
    run_id: str | None,
    statuses: tuple[str, ...],
    prefix: str | None,
    after: str | None,
    limit: int,
    show_paths: bool,
) -> FailurePage:
    reg = service.registry
    if run_id is None:
        newest = reg.list_runs(limit=1)
        if not newest:
            return FailurePage(run_id=None, failures=[])
        run_id = newest[0].run_id
    run = reg.get_run(run_id)  # RunNotFound: a 404
    found = reg.run_failures(run_id, statuses=statuses, limit=limit, after=after, prefix=prefix)
    # which have a page: one batched read per page (a key skipped or failed since its first
    # run has none, and the dashboard linked it to an empty page)
    latest = reg.store.latest_versions([o.key for o in found])
    roots = local_roots(reg)

    def message(text: str) -> str:
        return text if show_paths else redact_text(text, roots)

    return FailurePage(
        run_id=run.run_id,
        run_kind=run.kind,
        run_started_at=run.started_at,
        n_failed=run.n_failed,
        n_skipped=run.n_skipped,
        failures=[
            FailureOut(
                partition=o.key,
                status=o.status,
                error_type=o.error_type,
                message=message(o.message),
                rows=o.n_rows,
                latest_version=latest.get(o.key),
            )
            for o in found
        ],
        next_after=found[-1].key if len(found) == limit else None,
    )
