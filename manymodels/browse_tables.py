"""The tables ``models list``, ``models show``, ``runs list`` and ``runs show`` print for people
(``manymodels.cli.views`` chooses them or JSON): what the registry holds, its metrics read as
people read them, its partitions, versions, candidates, alias history and runs. Apart from
``manymodels.console``, which keeps what ``train`` shows, so that neither grows past one job.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from manymodels.console import fmt, out, pct
from manymodels.oneline import one_line
from manymodels.plaintable import Table
from manymodels.registry.entities import (
    RETIRED,
    AliasMove,
    ModelVersion,
    PartitionSummary,
    Run,
)

if TYPE_CHECKING:
    from manymodels.explain import Explanation


def metric_view(metric: str) -> tuple[str, float]:
    """Scorers are "greater is better" (``neg_mean_absolute_error``); people read errors as
    positive numbers, so ``neg_`` metrics are shown negated under their plain name."""
    if metric.startswith("neg_"):
        return metric.removeprefix("neg_"), -1.0
    return metric, 1.0


def page_head(
    offset: int, shown: int, total: int, *, fallback: bool = False, rows: str = "partitions"
) -> str:
    """``partitions 101–150 of 3000``; a page past the end is said so (it read "101–100").

    ``fallback``: one of the ``total`` rows is the global fallback model (``__fallback__``),
    which is no partition: ``1–35 of 35: 34 partitions + the fallback`` (it read "partitions
    1–35 of 35" beside a run's "36 partitions, 34 trained, 2 skipped"). ``rows`` names what
    is listed: ``runs 1–20 of 57``."""
    if fallback:
        of = f"of {total}: {total - 1} partitions + the fallback"
        return f"{offset + 1}–{offset + shown} {of}" if shown else f"nothing past {offset} {of}"
    if not shown:
        return f"no {rows} past {offset} of {total}" if total else f"no {rows}"
    return f"{rows} {offset + 1}–{offset + shown} of {total}"


def empty_page(
    offset: int, total: int, *, fallback: bool = False, rows: str = "partitions"
) -> bool:
    """Says a page without a row in one line (``page_head``'s), and whether it was one: the
    table's frame under it, headers over no row, read as a listing that went wrong."""
    if total and offset < total:
        return False
    out.print(page_head(offset, 0, total, fallback=fallback, rows=rows), soft_wrap=True)
    return True


def partitions_table(
    items: Sequence[PartitionSummary], *, total: int, offset: int, fallback: bool = False
) -> None:
    """One row a partition, and one for the fallback model when the registry has one
    (``fallback``: the head counts it apart). Versions of several metrics on a page (an MLflow
    import's, or a classifier's fallback metric beside the spec's) each show their own, named
    in a column: one sign for the page turned every error but one negative."""
    if not items and empty_page(offset, total, fallback=fallback):
        return
    metrics = {p.production.metric for p in items if p.production}
    mixed = len(metrics) > 1
    name = "" if mixed else f"{metric_view(metrics.pop())[0]} " if metrics else "score "
    table = Table(
        title=f"{page_head(offset, len(items), total, fallback=fallback)} ({name}on validation)",
        title_justify="left",
    )
    table.add_column("partition", overflow="fold", no_wrap=True)
    columns = ("version", "estimator", *(("metric",) if mixed else ()), "model", "naive")
    for col in (*columns, "skill", "rows"):
        table.add_column(col, justify="left" if col in ("estimator", "metric") else "right")
    for p in items:
        v = p.production
        if v is None:  # retired (``manymodels retire``) says so: else read as never promoted
            was = p.aliases.get(RETIRED)
            table.add_row(
                p.key, "—" if was is None else f"retired v{was}", *["—"] * (len(columns) + 1)
            )
            continue
        metric, sign = metric_view(v.metric)
        naive = None if v.naive_score is None else sign * v.naive_score
        table.add_row(
            p.key, str(v.version), estimator_name(v), *((metric,) if mixed else ()),
            fmt(sign * v.score), fmt(naive), pct(v.skill), str(v.n_rows),
        )  # fmt: skip
    out.print(table)


def versions_table(key: str, versions: Sequence[ModelVersion]) -> None:
    """One row a version, each score in its own metric's sign. Versions of one partition can
    be scored on different metrics (a constant below ``min_rows`` on the fallback metric
    beside versions on the spec's, a spec whose metric changed): the title named the first
    version's metric for all, and turned a ``log_loss`` of 0.64 into "-0.6365" under
    accuracy. Mixed, a ``metric`` column names each row's, as ``models list`` does."""
    metrics = {v.metric for v in versions}
    mixed = len(metrics) > 1
    name = "" if mixed else metric_view(metrics.pop())[0] if metrics else "score"
    table = Table(title=f"versions of {key} ({scored_on(name, versions)})", title_justify="left")
    for col in ("version", "aliases", "estimator", "params", *(("metric",) if mixed else ()),
                "model", "naive", "skill", "rows", "run", "created"):  # fmt: skip
        table.add_column(col)
    for v in versions:
        metric, sign = metric_view(v.metric)
        naive = None if v.naive_score is None else sign * v.naive_score
        table.add_row(
            str(v.version), ", ".join(v.aliases) or "", estimator_name(v),
            shown_params(v.params), *((metric,) if mixed else ()), fmt(sign * v.score),
            fmt(naive), pct(v.skill), str(v.n_rows), v.run_id, v.created_at[:19],
        )  # fmt: skip
    out.print(table)


def scored_on(name: str, versions: Sequence[ModelVersion]) -> str:
    """What the versions' scores were measured on: a classifier's version of a partition below
    ``min_rows`` (``chosen = "too_few_rows"``) has no rows held out, so its score is on its own
    training rows; "log_loss on validation" read as if it had been validated. ``name`` is
    ``""`` when the versions' metrics differ (the table names each row's)."""
    own = [v for v in versions if v.validation.get("chosen") == "too_few_rows"]
    named = f"{name} " if name else ""
    if not own:
        return f"{named}on validation"
    why = "on its own rows, in-sample: below min_rows, none held out"
    if len(own) == len(versions):
        return f"{named}{why}"
    return f"{named}on validation; {', '.join(f'v{v.version}' for v in own)} {why}"


def shown_params(params: Mapping[str, Any]) -> str:
    """``params`` as JSON, its floats to ``fmt``'s 4 significant digits as the table's other
    numbers are: a learned ``prior_rows`` read ``3.3333333333333335``. Each stays a JSON
    number (``0.1``, ``1e-05``, ``3.333``); ``--json`` keeps them whole."""
    return json.dumps(_short(params))


def _short(value: Any) -> Any:
    if isinstance(value, float) and math.isfinite(value):
        return float(fmt(value))
    if isinstance(value, Mapping):
        return {k: _short(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_short(v) for v in value]
    return value


def estimator_name(v: ModelVersion) -> str:
    """The estimator's short name; a global model chosen says so (one model, every key), in
    ``models list`` as in ``models show``: the list said ``Ridge`` where show said
    ``Ridge (global)``."""
    chosen = v.selection.chosen
    return short(v.estimator) + (
        f" ({chosen})" if chosen in ("global", "ensemble", "prior_shifted") else ""
    )


def candidates_table(version: ModelVersion) -> None:
    name, sign = metric_view(version.metric)
    small = version.validation.get("chosen") == "too_few_rows"  # none fitted, none validated
    where = "none fitted: below min_rows" if small else f"{name} on validation"
    table = Table(title=f"candidates tried for version {version.version} ({where})",
                  title_justify="left")  # fmt: skip
    for col in ("candidate", "params", name, "error"):
        table.add_column(col)
    for c in version.candidates:
        score = None if c["score"] is None else sign * c["score"]
        table.add_row(c["label"], shown_params(c["params"]), fmt(score), c.get("error") or "")
    out.print(table)
    tried = version.selection.transforms
    if tried:  # target_transform listed several: the candidates above are the chosen one's
        kind = version.schema.transform_kind
        scores = ", ".join(
            f"{k} {'failed' if v is None else fmt(sign * v)}" for k, v in tried.items()
        )
        out.print(f"target transform: {kind}, the best of {scores} ({name})", highlight=False)
    bands = interval_line(version.schema.intervals)
    if bands:
        out.print(bands, highlight=False, soft_wrap=True)


def interval_line(rec: Mapping[str, Any] | None) -> str | None:
    """What a version's prediction intervals are (``manymodels.intervals``), said in a line:
    each level's half-width, and whose errors it was cut from."""
    if not rec:
        return None

    def widths(quantiles: Sequence[float]) -> str:
        pairs = zip(rec["levels"], quantiles, strict=False)  # an older record: what it has
        return ", ".join(f"{lv:g}% ± {fmt(q)}" for lv, q in pairs)

    pool = rec.get("pool")
    if not isinstance(pool, Mapping):
        return f"intervals: {widths(rec['quantiles'])}, from its {rec.get('rows', 0)} errors"
    return (
        f"intervals: {widths(rec['quantiles'])}: its mean validation error "
        f"{fmt(rec.get('mean_error'))} × the pool of run {pool['run_id']} ({pool['rows']:,} "
        f"scale-free errors of {pool['partitions']:,} partitions); from its own "
        f"{rec.get('rows', 0)} errors alone: {widths(rec.get('partition_quantiles', []))}"
    )


def explanation_table(why: Explanation) -> None:
    """What the production version weighs (``manymodels.explain``), largest first."""
    name, sign = metric_view(why.metric)
    naive = "—" if why.naive_score is None else fmt(sign * why.naive_score)
    title = (f"why version {why.version}: {why.estimator.rsplit('.', 1)[-1]}, {name} "
             f"{fmt(sign * why.score)} vs naive {naive}")  # fmt: skip
    out.print(title, highlight=False)  # a table's title wraps to its width: "RandomForestRegresso"
    table = Table()
    per_class = any(t.cls is not None for t in why.terms)
    for col in ("feature", "class", "value") if per_class else ("feature", "value"):
        table.add_column(col)
    for b in why.intercept:
        table.add_row("(intercept)", *([""] if per_class else []), fmt(b))
    for t in why.terms:
        table.add_row(t.feature, *([t.cls or ""] if per_class else []), fmt(t.value))
    if why.n_terms > len(why.terms):
        table.add_row(f"… {why.n_terms - len(why.terms)} more", *([""] if per_class else []), "")
    out.print(table)
    out.print(f"{why.kind}: {why.units}", highlight=False)


def history_table(moves: Sequence[AliasMove]) -> None:
    table = Table(title="alias history", title_justify="left")
    for col in ("at", "alias", "action", "from", "to", "reason", "run"):
        table.add_column(col)
    for m in moves:  # the action: a retirement's "to" is "—", as a never-set alias's "from"
        table.add_row(
            m.at[:19], m.alias, m.action, str(m.from_version or "—"),
            str(m.to_version or "—"), m.reason, m.run_id or "",
        )  # fmt: skip
    out.print(table)


def runs_table(runs: Sequence[Run], lost: Mapping[str, int], *, total: int, offset: int) -> None:
    """``lost`` counts each run's lost partitions (its row counts them as failed). The title
    says which of ``total`` runs these are: it read "runs (newest first)" over 20 of 1,500."""
    if not runs and empty_page(offset, total, rows="runs"):
        return
    head = page_head(offset, len(runs), total, rows="runs")
    table = Table(title=f"{head} (newest first)", title_justify="left")
    for col in ("run", "kind", "status", "spec", "partitions", "trained", "skipped", "failed",
                "lost", "started", "ended"):  # fmt: skip
        table.add_column(col)
    for r in runs:
        n_lost = lost.get(r.run_id, 0)
        table.add_row(
            r.run_id, r.kind, r.state, r.spec_name, str(r.n_partitions), str(r.n_trained),
            str(r.n_skipped), str(r.n_failed - n_lost), str(n_lost), r.started_at[:19],
            (r.ended_at or "")[:19],
        )  # fmt: skip
    out.print(table)


def run_detail(run: Run, lost: int) -> None:
    out.print(f"[bold]run {run.run_id}[/] ({run.kind}) — {run.state}", markup=True)
    for label, value in [
        ("spec", f"{run.spec_name} (sha256 {run.spec_hash[:12]}…)"),
        ("data", f"{run.data_source} (fingerprint {run.data_fingerprint[:12]}…)"),
        ("started", run.started_at),
        ("ended", run.ended_at or "—"),
        ("partitions", f"{run.n_partitions}: {run.n_trained} trained, {run.n_skipped} skipped, "
                       f"{run.n_failed - lost} failed" + (f", {lost} lost" if lost else "")),
    ] + _run_by(run) + ([("error", run.error)] if run.error else []) + _abandoned(run):  # fmt: skip
        out.print(one_line(f"  {label:<11} {value}"), soft_wrap=True)  # a path, a reason


def _run_by(run: Run) -> list[tuple[str, str]]:
    """Which process runs a run still running, and on which host, as ``RunBusy`` words it
    (``run_busy.whereabouts``): only ``--json``'s options had them, so which machine to stop
    it on was not said. A killed run's process is named as gone."""
    if run.status != "running":
        return []
    from manymodels.run_busy import whereabouts
    from manymodels.tempnames import owner_pid

    if run.killed:
        return [("run by", f"process {owner_pid(run.options.get('owner'))} on this machine, gone")]
    return [("run by", whereabouts(run))]


def _abandoned(run: Run) -> list[tuple[str, str]]:
    """When and why a run was given up (``runs abandon``): a failed run keeps the error it
    failed with, and a completed one with lost partitions its status, so only this says it."""
    gave_up = run.options.get("abandoned")
    if not isinstance(gave_up, dict):
        return []
    return [("abandoned", f"{gave_up.get('at', '?')}: {gave_up.get('reason', '?')}")]


def short(path: str) -> str:
    return path.replace(":", ".").rsplit(".", 1)[-1]
