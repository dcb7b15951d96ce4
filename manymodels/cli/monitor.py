"""The monitoring command ``monitor`` (partitions worst first); ``actuals`` (observed values
in, live accuracy out) is ``cli.actuals``, and ``retrain --when``, which trains what they
flag, is ``cli.retrain``.

The numbers come from ``manymodels.monitoring``: drift is the largest PSI over features (less
its sampling noise) between a version's training rows and the rows routers sampled from its
traffic; live error is the spec's metric on posted actuals, beside the validation error and the
naive answer's error on the same rows.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import typer

from manymodels.cli.lines import echo
from manymodels.cli.options import (
    DEFAULT_REGISTRY,
    MAX_INT,
    ArtifactsOpt,
    JsonOpt,
    RegistryDbOpt,
    RegistryOpt,
    finite,
    open_registry,
)

SortBy = Literal["drift", "error", "naive", "age", "key"]

DriftOpt = Annotated[
    float,
    typer.Option(
        min=0.0,
        callback=finite,
        help="Drifted: the worst feature's PSI less its noise is at least this.",
    ),
]
ErrorRatioOpt = Annotated[
    float,
    typer.Option(
        min=0.0, callback=finite, help="Degraded: live error over validation error ≥ this …"
    ),
]
NaiveRatioOpt = Annotated[
    float,
    typer.Option(min=0.0, callback=finite, help="… or live error over the naive answer's > this."),
]
MinActualsOpt = Annotated[
    int, typer.Option(min=1, help="Degraded needs at least this many rows of actuals.")
]
ConfidenceOpt = Annotated[
    float,
    typer.Option(
        min=0.5,
        max=0.9999,
        help="Degraded: how sure (one-sided) that the live error is above those, not the "
        "noise of few rows; 0.5 compares the ratios alone.",
    ),
]
MaxAgeOpt = Annotated[
    float,
    typer.Option(min=0.0, callback=finite, help="Stale: model older than this (days)."),
]
MaxDataAgeOpt = Annotated[
    float | None,
    typer.Option(
        min=0.0,
        callback=finite,
        help="Stale: newest training row older than this (days; dates only).",
    ),
]

UnseenOpt = Annotated[
    float,
    typer.Option(
        min=0.0,
        max=1.0,
        callback=finite,
        help="Unseen: at least this share of sampled rows carry a text value no training row "
        "had (a new category; not a retrain trigger).",
    ),
]


def thresholds(**values: Any) -> Any:
    from manymodels.monitoring.report import Thresholds

    return Thresholds(**values)


def monitor(
    registry: RegistryOpt = DEFAULT_REGISTRY,
    sort: Annotated[
        SortBy,
        typer.Option(help="drift (PSI), error (live/validation), naive (live/naive), age, key."),
    ] = "drift",
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 20,
    # bounded as `list --offset`: pushed down to SQL's OFFSET, past 2**63 - 1 a traceback
    offset: Annotated[int, typer.Option(min=0, max=MAX_INT, help="Rows to skip.")] = 0,
    confidence: ConfidenceOpt = 0.95,
    unseen: UnseenOpt = 0.05,
    json_out: JsonOpt = False,
    registry_db: RegistryDbOpt = None,
    artifacts: ArtifactsOpt = None,
) -> None:
    """List partitions in production, worst first.

    Each with its drift, live error against validation and naive, model and data age, and
    the retrain triggers it meets (default thresholds; --confidence as retrain's, so the
    partitions flagged degraded here are those `retrain --when degraded` trains); flagged
    unseen, with a line each, when sampled requests carry text values its training rows
    never had."""
    from manymodels import browse_tables, console
    from manymodels.monitoring import pages, report
    from manymodels.monitoring.drift import MIN_DRIFT_ROWS
    from manymodels.registry import pg_silence

    # the error and naive orders read whole tables, silent until answered: as long as the
    # server says it is at work
    limits = report.Thresholds(confidence=confidence, unseen=unseen)
    with open_registry(registry, registry_db, artifacts) as reg, pg_silence.long_statements():
        page, total = pages.monitor_page(reg.store.engine, sort, limit, offset, limits)
    if json_out:
        console.print_json(
            {
                "total": total,
                "sort": sort,
                "partitions": [
                    {**r.to_dict(), "flags": r.flags(limits), "note": r.note(limits)} for r in page
                ],
            }
        )
        return
    if not page and browse_tables.empty_page(offset, total):
        return
    from rich.table import Table

    table = Table(
        title=f"{browse_tables.page_head(offset, len(page), total)}, "
        + ("by key" if sort == "key" else f"worst {sort} first"),  # a key is no worse than one
        title_justify="left",
    )
    table.add_column("partition", overflow="fold", no_wrap=True)
    columns = ("v", "drift", "feature", "unseen", "live rows", "live/val", "live/naive", "age d")
    for col in (*columns, "flags"):
        table.add_column(col, justify="left" if col in ("feature", "flags") else "right")
    for r in page:
        table.add_row(
            r.key, str(r.version), _drift(r.drift, r.sampled_rows), r.drift_feature or "—",
            _unseen(r.unseen_share, r.unseen_feature), str(r.live_rows), _ratio(r.error_ratio),
            _ratio(r.naive_ratio), f"{r.model_age_days:.1f}", ",".join(r.flags(limits)) or "—",
        )  # fmt: skip
    console.out.print(table)
    if any(r.drift is None and 0 < r.sampled_rows < MIN_DRIFT_ROWS for r in page):
        echo(
            f"note: drift is scored from {MIN_DRIFT_ROWS} sampled rows of traffic on; "
            f"'— (n/{MIN_DRIFT_ROWS} rows)' is a partition whose routers have sampled fewer"
        )
    new = [r for r in page if "unseen" in r.flags(limits)]
    for r in new[:5]:
        echo(f"unseen: {r.key}: {r.unseen_reason()}")
    if len(new) > 5:
        echo(f"unseen: and {len(new) - 5} more partition(s) on this page; --json gives each")
    unjudged = [r for r in page if r.note(limits)]
    for why, keys in (
        (
            "classifiers chosen by another metric than accuracy, trained before their "
            "validation error rate was recorded (retrain them to record one)",
            [r.key for r in unjudged if r.validation_rows != 0],
        ),
        (
            "constant-probability models of partitions below min_rows, which had no rows to "
            "validate on",
            [r.key for r in unjudged if r.validation_rows == 0],
        ),
    ):
        if keys:
            more = f" and {len(keys) - 5} more" if len(keys) > 5 else ""
            echo(
                f"note: {len(keys)} partition(s) on this page cannot be flagged degraded "
                f"({', '.join(keys[:5]) + more}): {why}; --json says so in each row's 'note'"
            )


def _drift(score: float | None, sampled: float) -> str:
    """A drift cell: ``— (30/50 rows)`` for a partition sampled too little to be scored, where
    a bare ``—`` read as if its traffic had not been looked at (or nothing were wrong)."""
    from manymodels import console
    from manymodels.monitoring.drift import MIN_DRIFT_ROWS

    if score is None and 0 < sampled < MIN_DRIFT_ROWS:
        return f"— ({sampled:g}/{MIN_DRIFT_ROWS} rows)"
    return console.fmt(score, 3)


def _unseen(share: float | None, feature: str | None) -> str:
    """An unseen cell: ``12 % promo``, the worst text feature's share of sampled rows with a
    value training never had; ``—`` when none is judged (no text feature whose training
    values the profile lists in full — a capped list, a version trained before the list was
    kept — or fewer sampled rows than drift's minimum)."""
    if share is None or feature is None:
        return "—"
    return f"{share * 100:.0f} % {feature}" if share == 0 or share >= 0.01 else f"<1 % {feature}"


def _ratio(x: float | None) -> str:
    """A ratio's cell: ``∞`` for a live error against a zero one (a perfect validation, a
    naive answer that was exact), which is what flags it degraded; ``—`` when undefined."""
    from manymodels import console

    return "∞" if x == math.inf else console.fmt(x, 3)
