"""Runs and their progress: ``GET /v1/runs`` (newest first, a page at a time) and
``GET /v1/runs/{run_id}`` (one run: planned partitions, done by status, share done, elapsed,
rate and, while it runs, an ETA) — what the dashboard's Runs panel polls.

Progress is ``manymodels.registry.progress``'s: *done* is the settled outcomes (trained,
skipped, failed); ``lost`` partitions wait for a resume and are not done, so the figure never
steps back when a run is resumed. The list reads the counts each run's row keeps (O(page));
one run reads its outcomes grouped by status along ``ix_run_partitions_outcome``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from manymodels.registry.progress import RunProgress
from serving.auth import AdminView
from serving.query import QueryCheckedRoute
from serving.redact import local_roots, redact_source, redact_text
from serving.routes import Service
from serving.routes.options import single_options
from serving.schemas import ErrorOut
from serving.service import ModelService

router = APIRouter(
    tags=["runs"], dependencies=[Depends(single_options)], route_class=QueryCheckedRoute
)

MAX_RUN_ID = 32  # the registry's run_id column
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No run with that id."}
}


class RunItem(BaseModel):
    run_id: str
    kind: str = Field(description="train or retrain.")
    status: str = Field(description="running, completed, failed or interrupted.")
    spec_name: str
    started_at: str
    ended_at: str | None
    planned: int = Field(description="Partitions the run set out to train (not the fallback).")
    done: int = Field(description="Planned partitions with a settled outcome: trained, skipped "
                      "or failed (never lost ones, which wait for a resume).")  # fmt: skip
    share_done: float = Field(description="done / planned (1 for a run with nothing planned).")
    counts: dict[str, int] = Field(
        description="Outcomes by status: trained, skipped, failed, lost."
    )
    unchanged: int = Field(description="Partitions a changed-only run left as they were "
                           "(not planned).")  # fmt: skip
    elapsed_seconds: float = Field(description="From start to end, or to now while running.")
    rate_per_second: float | None = Field(
        description="Settled partitions per second since the run (re)started."
    )
    eta_seconds: float | None = Field(
        description="What is left at that rate; only while the run is running."
    )
    process_gone: bool = Field(
        description="Marked running, but the process running it is gone from the router's "
        "machine (killed): it will move no more until it is resumed (--resume RUN_ID)."
    )
    heartbeat_at: str | None = Field(
        default=None,
        description="When the process running it last wrote that it is alive (every 30 s); "
        "none for runs recorded before heartbeats.",
    )
    silent_seconds: float | None = Field(
        default=None,
        description="Marked running, with no heartbeat for this long (past 120 s): its process "
        "died on another machine or hangs. It can be resumed (--resume RUN_ID).",
    )
    state: str = Field(
        default="",
        description="The status as people read it: 'running (process gone)', 'running (no "
        "heartbeat for 2 h)', 'running (heartbeat stamped 3 h ahead)' (a clock running ahead "
        "where it runs: that beat proves nothing), or the status.",
    )

    @classmethod
    def of(cls, p: RunProgress) -> RunItem:
        r = p.run
        return cls(
            run_id=r.run_id, kind=r.kind, status=r.status, spec_name=r.spec_name,
            started_at=r.started_at, ended_at=r.ended_at, planned=p.planned, done=p.done,
            share_done=p.share_done, counts=p.by_status, unchanged=p.unchanged,
            elapsed_seconds=p.elapsed_seconds, rate_per_second=p.rate_per_second,
            eta_seconds=p.eta_seconds, process_gone=r.killed, heartbeat_at=r.heartbeat_at,
            silent_seconds=r.silence, state=r.state,
        )  # fmt: skip


class RunPage(BaseModel):
    total: int = Field(description="Runs in the registry, every page's (`runs list --json`'s "
                       "total): how many pages there are without asking past the end.")  # fmt: skip
    runs: list[RunItem] = Field(description="Newest first.")
    next_after: str | None = Field(description="Pass as `after` for the next page.")


class RunDetail(RunItem):
    fallback: str | None = Field(
        description="The pooled fallback model's outcome in this run (trained, failed…), if "
        "the run trained one."
    )
    resumed_at: str | None = Field(description="When the run was last resumed, if it was.")
    data_source: str = Field(description="What it trained on (a file's name; the admin token "
                             "sees its path).")  # fmt: skip
    spec_hash: str
    error: str | None


@router.get("/v1/runs", response_model=RunPage, responses=NOT_FOUND, summary="Recent runs")
async def list_runs(
    service: Service,
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size.")] = 50,
    after: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=MAX_RUN_ID,
            description="The last run id of the previous page (a 404 when it is not a run).",
        ),
    ] = None,
) -> RunPage:
    """Runs newest first, each with its planned partitions, outcomes by status, share done,
    elapsed time, rate and (running) ETA — a page at a time (keyset on start and id: O(page)),
    as the router's other listings page (`next_after`), with the `total` of runs.
    A run that is running is the one to poll with `GET /v1/runs/{run_id}`."""
    page, total = await run_in_threadpool(_page_and_total, service, limit, after)
    return RunPage(
        total=total,
        runs=[RunItem.of(p) for p in page],
        next_after=page[-1].run.run_id if len(page) == limit else None,
    )


def _page_and_total(
    service: ModelService, limit: int, after: str | None
) -> tuple[list[RunProgress], int]:
    """A page of runs and how many runs there are: the page first, so an unknown ``after``
    is the 404 it was. The count is one row a run (not a partition), as ``runs list``'s."""
    page = service.registry.runs_page(limit=limit, after=after)
    return page, service.registry.count_runs()


@router.get(
    "/v1/runs/{run_id}",
    response_model=RunDetail,
    responses=NOT_FOUND,
    summary="One run and its progress",
)
async def get_run(
    service: Service,
    show_paths: AdminView,
    run_id: Annotated[str, Path(min_length=1, max_length=MAX_RUN_ID)],
) -> RunDetail:
    """One run's progress from its recorded outcomes, counted by status in one grouped read
    (O(statuses) rows back, however many partitions): planned, done, the share done, elapsed
    time, settled partitions per second since it (re)started and, while it is running, the
    time left at that rate. It moves chunk by chunk, as the pipeline commits them."""
    p = await run_in_threadpool(service.registry.get_run_progress, run_id)
    r = p.run
    resumed = r.options.get("resumed_at")
    return RunDetail(
        **RunItem.of(p).model_dump(),
        fallback=p.fallback,
        resumed_at=resumed if isinstance(resumed, str) else None,
        data_source=r.data_source if show_paths else redact_source(r.data_source),
        spec_hash=r.spec_hash,
        error=r.error
        if show_paths or r.error is None
        else redact_text(r.error, local_roots(service.registry)),
    )
