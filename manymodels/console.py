"""How the CLI shows things: rich tables for people, JSON for machines, a progress bar on stderr.

Progress and messages go to stderr so that ``--json`` output on stdout can be piped as is.
"""

from __future__ import annotations

import math
import shlex
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from manymodels.jsonout import print_json as print_json
from manymodels.oneline import one_line
from manymodels.plaintable import LazyConsole, Table
from manymodels.registry.entities import (
    PartitionOutcome,
    Run,
)

if TYPE_CHECKING:  # the pipeline imports scikit-learn and pandas: `models list` must not
    from manymodels.pipeline import Progress as RunProgress
    from manymodels.pipeline import RunSummary

DEFAULT_REGISTRY = "mmregistry"  # as manymodels.cli.options, without importing the CLI

# Piped output gets a wide fixed width: 80 columns would fold partition keys and metrics.
# rich loads on the first print a pipe cannot take as plain text (manymodels.plaintable).
# Text is printed as written: no markup ("[bold]" in a key or a reason was dropped as a style
# tag), no emoji codes (":x:" became "❌"); a line of our own styles says markup=True.
LITERAL = {"highlight": False, "markup": False, "emoji": False}
out = LazyConsole(**LITERAL, width=None if sys.stdout.isatty() else 160)
err = LazyConsole(stderr=True, **LITERAL)


def fmt(x: float | None, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    return f"{x:.{digits}g}"


def pct(x: float | None) -> str:
    return "—" if x is None else f"{x:+.0%}"


def counted(n: int, noun: str) -> str:
    """``1 partition``, ``2,060 rows``: a count and its noun, singular for one."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


@contextmanager
def progress_bar(label: str, *, enabled: bool = True) -> Iterator[Any]:
    """Yields a callback for ``train(progress=…)``: partitions done / failed / rate."""
    if not enabled:
        yield None
        return
    from rich.progress import (  # ~10 ms that only training needs
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    bar = Progress(
        TextColumn("{task.description}", markup=False),  # a spec's name, as written
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("partitions · [red]{task.fields[failed]} failed[/] · {task.fields[rate]}/s"),
        TimeElapsedColumn(),
        console=err.rich,
        transient=False,
    )
    task = bar.add_task(one_line(label), total=None, failed=0, rate="—")
    import time

    t0 = time.perf_counter()

    def update(p: RunProgress) -> None:
        elapsed = max(time.perf_counter() - t0, 1e-9)
        rate = f"{p.done / elapsed:,.0f}" if p.done else "—"
        bar.update(task, total=p.total, completed=p.done, failed=p.failed, rate=rate)

    with bar:
        yield update


def _after_startup(summary: RunSummary) -> str:
    """ " after 6.1s start-up" when this run started a backend (Ray), else nothing: a run in
    this process, or on a backend its caller started (the demo's), printed "after 0.0s
    start-up", a start-up that never happened."""
    startup = summary.startup_seconds
    return f" after {startup:.1f}s start-up" if startup >= 0.05 else ""


def _too_few_rows_line(few: int, run: Run) -> str:
    """What the partitions below ``min_rows`` serve. The line said "with a global classifier:
    that model shifted to those rates" of every run, while only a spec that asks for it
    (``[selection] prior_shifted = true``, off by default) and keeps ``too_few_rows = "auto"``
    is served so: a default run with a global candidate served the bare constant."""
    selection = (run.spec or {}).get("selection") or {}
    pooled = [g for g in run.options.get("global", []) if not g.get("error")]
    if selection.get("prior_shifted") and selection.get("too_few_rows") != "constant" and pooled:
        return (
            f"{few} too few rows → global model shifted: partitions below min_rows serve the "
            "global classifier shifted to their own rates smoothed toward the table's "
            "(validation.too_few_rows.served says so; where it could not be loaded, those "
            'rates alone; [selection] too_few_rows = "constant" keeps the constant)'
        )
    return (
        f"{few} too few rows → constant: partitions below min_rows serve their own rates "
        'smoothed toward the table\'s ([selection] too_few_rows = "fallback" skips them)'
    )


def run_summary(
    summary: RunSummary, flags: Sequence[str], location: str, *, command: str = "manymodels"
) -> None:
    """Failures first: a run whose partitions failed must not read like a success. The last
    line is the one a person reads first (``verdict_line``). Its ``warning:`` lines go to
    stderr, as a run of nothing says them (``cli.run_report.nothing``) and as Unix tools do: the
    summary on stdout is what a pipe keeps; ``--json`` has them as ``warnings``."""
    run = summary.run
    n_failed = run.n_failed - summary.lost  # the row counts lost partitions as failed
    failed = f"[bold red]{n_failed} failed[/]" if n_failed else "0 failed"
    if summary.lost:
        failed = f"[bold red]{summary.lost} lost[/], {failed}"
    out.print(
        f"run [bold]{run.run_id}[/] {run.status}: {failed}, {run.n_trained} trained, "
        f"{run.n_skipped} skipped of {counted(run.n_partitions, 'partition')} "
        f"in {summary.seconds:.1f}s ({summary.rate:,.0f} partitions/s{_after_startup(summary)})",
        markup=True,
    )
    if summary.backend and summary.backend != "none":
        where = {"local": "in this process", "ray": "on Ray"}.get(summary.backend, summary.backend)
        out.print(f"trained {where}: {summary.backend_reason}", soft_wrap=True)
    if run.error:
        from rich.markup import escape  # a path or "[fallback]" in it is text

        out.print(f"[bold red]run failed:[/] {escape(one_line(run.error))}", markup=True)
    now = summary.trained_now
    trained = "trained partitions" if now == run.n_trained else "partitions trained now"
    naive = summary.chosen.get("naive", 0)
    if naive:
        out.print(
            f"{naive} of {now} {trained} serve the naive baseline: no "
            "candidate beat it on their validation rows"
        )
    single = summary.chosen.get("single_class", 0)
    if single:
        out.print(
            f"{single} single-class: partitions whose training rows hold one class serve "
            "constant probabilities (smoothed toward the table's class rates)"
        )
    few = summary.chosen.get("too_few_rows", 0)
    if few:
        out.print(_too_few_rows_line(few, run), markup=False)  # "[selection]" is text
    for model in run.options.get("global", []):  # [[candidates]] scope = "global"
        label = model.get("label", "?")
        if model.get("error"):
            why = one_line(f"warning: global model {label} failed: {model['error']}")
            err.print(why, markup=False, soft_wrap=True, style="yellow")
    # the command to copy names this registry, as the verdict's "next:" does
    named = "".join(f" {shlex.quote(word)}" for word in flags)
    for label, fault in sorted(summary.candidate_failures.items()):  # local candidates'
        err.print(
            one_line(
                f"warning: candidate {label} failed on {counted(fault.partitions, 'partition')}"
                f" (chosen among the other options there; the first, {fault.key}: "
                f"{fault.error}); "
                f"manymodels models show {shlex.quote(fault.key)}{named} lists each "
                "candidate's error"
            ),
            markup=False, soft_wrap=True, style="yellow",
        )  # fmt: skip
    for label, fault in sorted(summary.global_unjudged.items()):
        err.print(
            one_line(
                f"warning: global model {label} was not judged on "
                f"{counted(fault.partitions, 'partition')} (they chose among the local "
                f"candidates; the first, {fault.key}: {fault.error}); "
                f"manymodels models show {fault.key} lists each candidate's error"
            ),
            markup=False, soft_wrap=True, style="yellow",
        )  # fmt: skip
    if run.options.get("global") and now:  # "0 of 0 … serve a global model" says nothing
        n = summary.chosen.get("global", 0)
        pairs = summary.global_members
        out.print(
            f"{n} of {now} {trained} serve a global model (one model over every partition's "
            "rows, chosen on their validation rows)"
            + (f", {pairs} more a top2 ensemble with it" if pairs else "")
        )
    for warning in run.options.get("warnings", []):
        # a warning's text may hold "[intervals]" or a column's name: text, never Rich tags
        err.print(one_line(f"warning: {warning}"), soft_wrap=True, style="yellow")
    pool = run.options.get("interval_pool")  # [intervals] pool_partitions
    pooling = bool((run.spec.get("intervals") or {}).get("pool_partitions"))
    if isinstance(pool, dict):
        source = "" if pool.get("run_id") == run.run_id else f" of run {pool.get('run_id')}"
        out.print(
            f"intervals: each band its partition's mean error times a quantile of "
            f"{pool.get('rows', 0):,} scale-free errors from {pool.get('partitions', 0):,} "
            f"partitions{source}",
            markup=False, soft_wrap=True,
        )  # fmt: skip
    for level, short in sorted(summary.short_intervals.items()):
        err.print(
            f"warning: {short.partitions} partition(s) have {level:g}% intervals from fewer "
            f"than {short.needed} validation errors (as few as {short.fewest}): such a band is "
            f"the largest error and covers less than {level:g}%; more folds or validation rows "
            "fix it" + ("" if pooling else ", or [intervals] pool_partitions = true"),
            markup=False, soft_wrap=True, style="yellow",
        )  # fmt: skip
    if run.options.get("bad_rows_dropped"):
        bad = run.options["bad_rows_dropped"]
        why = ", ".join(f"{n:,} in '{column}'" for column, n in bad.items())
        err.print(
            one_line(f"warning: rows with a stray word in a numeric column left out: {why}"),
            soft_wrap=True, style="yellow",
        )  # fmt: skip
    if summary.rows_dropped:
        why = ", ".join(
            f"{n:,} {reason.replace('_', ' ')}" for reason, n in summary.rows_dropped.items()
        )
        out.print(f"rows left out of training: {why}")
    if summary.fallback and summary.fallback != "trained":
        from rich.markup import escape

        out.print(f"[bold red]fallback {escape(one_line(summary.fallback))}[/]", markup=True)
    d = summary.decisions
    if d.get("promoted") or d.get("kept") or d.get("overruled") or d.get("returned"):
        back = f", {d['returned']} back from retirement" if d.get("returned") else ""
        out.print(
            f"retrained: {d.get('promoted', 0)} promoted to production, {d.get('kept', 0)} kept "
            f"the champion (new version is the 'candidate'), "
            f"{counted(d.get('first', 0), 'new partition')}{back}"
        )
    if d.get("overruled"):
        out.print(
            f"not promoted: {counted(d['overruled'], 'partition')} whose production moved "
            "during the run (another run, a promotion or a rollback); each new version is the "
            "'candidate' (manymodels models show KEY)"
        )
    if run.options.get("changed_only") and run.options.get("unchanged"):  # "skipped 0 …" said
        unchanged = counted(run.options["unchanged"], "partition")  # nothing (--json keeps 0)
        out.print(f"skipped {unchanged} whose data is unchanged")
    if summary.failures:
        what = "lost or failed" if summary.lost else "failed"
        outcomes_table(summary.failures[:10], title=f"{what} partitions (first 10)")
    verdict = verdict_line(summary, flags, location, command=command)
    out.print(one_line(verdict), soft_wrap=True)  # one line


def verdict_line(
    summary: RunSummary, flags: Sequence[str], location: str, *, command: str = "manymodels"
) -> str:
    """One line: what trained, how it fares against naive, where it is (``location``: its
    directory or database), what to run next (with ``flags``, the options that name it:
    ``cli.options.repeated_flags``), as ``command`` (the demo's ``.venv/bin/manymodels`` where
    a bare ``manymodels`` is not found)."""
    run = summary.run
    parts = [f"{run.n_trained} trained", f"{run.n_skipped} skipped"]
    parts += [f"{run.n_failed - summary.lost} failed"]
    parts += [f"{summary.lost} lost"] if summary.lost else []
    if summary.trained_now != run.n_trained:  # a resume: the rest were trained before it
        parts[0] += f" ({summary.trained_now} now)"
    skill = summary.skill
    if skill is not None:
        share = skill.beat_naive / skill.compared
        now = "" if summary.trained_now == run.n_trained else " trained now"
        parts.append(
            f"{skill.beat_naive} of {skill.compared}{now} ({share:.0%}) beat naive, "
            f"median skill {pct(skill.median)}"
            + (
                f" ({skill.zero_naive:,} more not compared: naive's validation error was 0)"
                if skill.zero_naive
                else ""
            )
        )
    parts.append(f"registry: {location}")
    where = "".join(f" {shlex.quote(word)}" for word in flags)
    if run.status == "completed":
        parts.append(f"next: {command} serve{where}")
    else:
        parts.append(f"next: {command} runs show {run.run_id}{where}")
    return " · ".join(parts)


def outcomes_table(outcomes: Sequence[PartitionOutcome], *, title: str) -> None:
    table = Table(title=title, title_justify="left")
    for col in ("partition", "status", "rows", "error"):
        table.add_column(col)
    for o in outcomes:
        table.add_row(o.key, o.status, str(o.n_rows), f"{o.error_type}: {o.message}")
    out.print(table)
