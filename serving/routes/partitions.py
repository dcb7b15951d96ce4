"""Browsing: pages of partitions, and one partition's versions, metrics and lineage."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool

from manymodels.explain import Explanation, explain
from manymodels.registry.entities import ModelVersion, PartitionSummary, Run
from serving.auth import AdminView
from serving.keys import path_key
from serving.query import QueryCheckedRoute
from serving.redact import local_roots, redact_source, redact_text
from serving.resolution import Target
from serving.routes import Service
from serving.routes.options import single_options
from serving.schemas import (
    ERRORS,
    MAX_VERSION,
    AliasMoveOut,
    PartitionDetail,
    PartitionItem,
    PartitionPage,
    ProductionOut,
    RunOut,
    ServingOut,
    VersionOut,
)
from serving.service import ModelService

router = APIRouter(
    tags=["partitions"], dependencies=[Depends(single_options)], route_class=QueryCheckedRoute
)


@router.get(
    "/v1/partitions",
    response_model=PartitionPage,
    # with a sort other than key, `after` must name a partition with a production version: a 404
    # says whether it never existed or lost its version (start again)
    responses={404: ERRORS[404]},
    summary="List partitions",
)
async def list_partitions(
    service: Service,
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size.")] = 100,
    after: Annotated[
        str | None, Query(max_length=512, description="The last key of the previous page.")
    ] = None,
    prefix: Annotated[
        str | None,
        Query(
            max_length=512,
            description="Only keys that start with this canonical text, e.g. `store=2,`.",
        ),
    ] = None,
    sort: Annotated[
        Literal["key", "skill", "score", "age"],
        Query(
            description="key; or the whole registry's production versions worst first: skill "
            "vs naive, validation score, model age (oldest first).",
        ),
    ] = "key",
) -> PartitionPage:
    """Partitions ordered by key, a page at a time (keyset pagination: O(page) per call);
    `prefix` is a range of the key's index, so a search costs one page too. With `sort`
    other than key, the order is over every partition in production (those without one are
    left out), along an index of the versions: still O(page), and `after` is still the last
    key of the previous page — a 404 when that partition has no production version any more
    (the order moved under the listing: start again without `after`), or never existed."""
    if sort == "key":
        items = await run_in_threadpool(
            service.registry.list_partitions, limit=limit, after=after, prefix=prefix
        )
    else:
        items = await run_in_threadpool(
            service.registry.ranked_partitions, sort, limit=limit, after=after,
            prefix=prefix,
        )  # fmt: skip
    return PartitionPage(
        partitions=[_item(p) for p in items],
        next_after=items[-1].key if len(items) == limit else None,
    )


@router.get(
    "/v1/partitions/{key:path}/explain",
    response_model=Explanation,
    responses={404: ERRORS[404]},
    summary="Why this model: candidate and naive scores, coefficients or importances",
)
async def explain_partition(
    request: Request,
    key: str,
    service: Service,
    version: Annotated[
        int | None,
        Query(ge=1, le=MAX_VERSION, description="A version; default: the one in production."),
    ] = None,
) -> Explanation:
    """The version this router serves for the key (or `version`): its validation score, the
    naive baseline's, every candidate tried, and what the estimator weighs — coefficients per
    unit of each feature as sent for linear models, importances for trees (`kind`, `units`).
    A key without a model of its own is a 404, never the fallback's explanation."""
    target = service.resolve(path_key(request, key), version=version, fallback=False, asked=False)
    return await run_in_threadpool(_explain, service, target)


def _explain(service: ModelService, target: Target) -> Explanation:
    target, served = service.load(target, fallback=False, asked=False)  # as resolved
    return explain(service.registry.get_version(target.key, target.version), served.model)


@router.get(
    "/v1/partitions/{key:path}",
    response_model=PartitionDetail,
    responses={404: ERRORS[404]},
    summary="One partition: versions, aliases, metrics, lineage",
)
async def get_partition(
    request: Request, key: str, service: Service, show_paths: AdminView
) -> PartitionDetail:
    """Local file paths — a run's `data_source` when it trained on a file — are shown to
    requests carrying the admin token; others see the file's name only (`sales.csv`)."""
    text = path_key(request, key)
    _refuse_post_actions(text)
    return await run_in_threadpool(_detail, service, text, show_paths)


POST_ACTIONS = frozenset(
    {"predict", "forecast", "retrain", "promote", "rollback", "retire", "actuals"}
)


def _refuse_post_actions(text: str) -> None:
    """A GET of ``…/{key}/predict`` (a browser, curl without ``-X POST``) matched this route
    and answered "no partition '…%2Fpredict'", as if the partition did not exist. A value's
    own ``/`` is ``%2F`` in the raw key, so a literal one ends the key: what follows is an
    action, which takes POST."""
    action = text.rpartition("/")[2] if "/" in text else None  # ``…/predict/``: KeyPaths
    if action in POST_ACTIONS:
        raise HTTPException(405, f"/{action} takes POST, not GET", headers={"Allow": "POST"})


def _item(p: PartitionSummary) -> PartitionItem:
    v = p.production
    return PartitionItem(
        partition=p.key,
        key_values=p.key_values,
        latest_version=p.latest_version,
        aliases=p.aliases,
        production=ProductionOut(
            version=v.version,
            estimator=v.estimator,
            metric=v.metric,
            score=v.score,
            naive_score=v.naive_score,
            skill=v.skill,
            created_at=v.created_at,
        )
        if v is not None
        else None,
    )


def _detail(service: ModelService, text: str, show_paths: bool) -> PartitionDetail:
    key = service.named(text)  # a retired partition's bare value too
    if key is None:
        raise service.missing(text, None, "in the registry")
    reg = service.registry
    summary = reg.get_partition(key)
    versions = reg.list_versions(key)
    runs = [reg.get_run(r) for r in dict.fromkeys(v.run_id for v in versions)]
    cached = sorted(v for k, v in service.cache.entries() if k == key)
    roots = local_roots(reg)
    return PartitionDetail(
        partition=key,
        key_values=summary.key_values,
        latest_version=summary.latest_version,
        aliases=summary.aliases,
        serving=ServingOut(version=service.aliases.get(key), cached_versions=cached),
        versions=[_version(v, show_paths, roots) for v in versions],
        runs=[_run(r, show_paths) for r in runs],
        alias_history=[AliasMoveOut.of(m) for m in reg.alias_history(key)],
    )


def _version(version: ModelVersion, show_paths: bool, roots: list[str]) -> VersionOut:
    """Training warnings may quote a path (a library's message about a file)."""
    out = VersionOut.of(version)
    if show_paths:
        return out
    return out.model_copy(update={"warnings": [redact_text(w, roots) for w in out.warnings]})


def _run(run: Run, show_paths: bool) -> RunOut:
    """A run trained on a file records the file's path as its data source."""
    out = RunOut.of(run)
    if show_paths:
        return out
    return out.model_copy(update={"data_source": redact_source(out.data_source)})
