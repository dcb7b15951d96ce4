"""The monitoring commands: ``monitor`` (partitions worst first), ``actuals`` (observed values
in, live accuracy out) and ``retrain --when`` (retrain only what the monitor flags).

The numbers come from ``manymodels.monitoring``: drift is the largest PSI over features (less
its sampling noise) between a version's training rows and the rows routers sampled from its
traffic; live error is the spec's metric on posted actuals, beside the validation error and the
naive answer's error on the same rows.
"""

from __future__ import annotations

import math
import shlex
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import typer

from manymodels.cli.options import (
    DEFAULT_REGISTRY,
    ArtifactsOpt,
    Backend,
    JsonOpt,
    RegistryDbOpt,
    RegistryOpt,
    open_checked,
    open_registry,
    repeated_flags,
)

Trigger = Literal["drifted", "stale", "degraded", "changed"]
SortBy = Literal["drift", "error", "naive", "age", "key"]

DriftOpt = Annotated[
    float,
    typer.Option(min=0.0, help="Drifted: the worst feature's PSI less its noise is at least this."),
]
ErrorRatioOpt = Annotated[
    float, typer.Option(min=0.0, help="Degraded: live error over validation error ≥ this …")
]
NaiveRatioOpt = Annotated[
    float, typer.Option(min=0.0, help="… or live error over the naive answer's > this.")
]
MinActualsOpt = Annotated[
    int, typer.Option(min=1, help="Degraded needs at least this many rows of actuals.")
]
MaxAgeOpt = Annotated[float, typer.Option(min=0.0, help="Stale: model older than this (days).")]
MaxDataAgeOpt = Annotated[
    float | None,
    typer.Option(min=0.0, help="Stale: newest training row older than this (days; dates only)."),
]


def _thresholds(**values: Any) -> Any:
    from manymodels.monitoring.report import Thresholds

    return Thresholds(**values)


def monitor(
    registry: RegistryOpt = DEFAULT_REGISTRY,
    sort: Annotated[
        SortBy,
        typer.Option(help="drift (PSI), error (live/validation), naive (live/naive), age, key."),
    ] = "drift",
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 20,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    json_out: JsonOpt = False,
    registry_db: RegistryDbOpt = None,
    artifacts: ArtifactsOpt = None,
) -> None:
    """List partitions in production, worst first.

    Each with its drift, live error against validation and naive, model and data age, and
    the retrain triggers it meets (default thresholds)."""
    from manymodels import browse_tables, console
    from manymodels.monitoring import report

    with open_registry(registry, registry_db, artifacts) as reg:
        engine = reg.store.engine
        rows = report.ranked(report.health(engine), sort)
        page = report.with_data_age(engine, rows[offset : offset + limit])
    limits = report.Thresholds()
    if json_out:
        console.print_json(
            {
                "total": len(rows),
                "sort": sort,
                "partitions": [{**r.to_dict(), "flags": r.flags(limits)} for r in page],
            }
        )
        return
    from rich.table import Table

    table = Table(
        title=f"{browse_tables.page_head(offset, len(page), len(rows))}, worst {sort} first",
        title_justify="left",
    )
    table.add_column("partition", overflow="fold", no_wrap=True)
    for col in ("v", "drift", "feature", "live rows", "live/val", "live/naive", "age d", "flags"):
        table.add_column(col, justify="left" if col in ("feature", "flags") else "right")
    for r in page:
        table.add_row(
            r.key, str(r.version), console.fmt(r.drift, 3), r.drift_feature or "—",
            str(r.live_rows), _ratio(r.error_ratio), _ratio(r.naive_ratio),
            f"{r.model_age_days:.1f}", ",".join(r.flags(limits)) or "—",
        )  # fmt: skip
    console.out.print(table)


def _ratio(x: float | None) -> str:
    """A ratio's cell: ``∞`` for a live error against a zero one (a perfect validation, a
    naive answer that was exact), which is what flags it degraded; ``—`` when undefined."""
    from manymodels import console

    return "∞" if x == math.inf else console.fmt(x, 3)


def actuals(
    data: Annotated[
        Path,
        typer.Argument(help="Observed values (.csv or .parquet): key columns, features, target."),
    ],
    registry: RegistryOpt = DEFAULT_REGISTRY,
    json_out: JsonOpt = False,
    registry_db: RegistryDbOpt = None,
    artifacts: ArtifactsOpt = None,
) -> None:
    """Record observed values, for live accuracy.

    The rows are those the models scored, with the value that was observed.

    Each partition's rows are scored again by its production version (or the version named
    in a 'version' column: the one that answered) and the errors of the model and of the
    naive answer are added to the partition's window of the day. Keys not in the registry,
    and versions that cannot score actuals (imported from MLflow; unsigned while a signing
    key is set), are skipped with a warning ('skipped' in --json); a version whose
    signature is wrong, or a file without the target column, is an error.
    """
    from manymodels import console
    from manymodels.csvkeys import literal_labels
    from manymodels.exceptions import DataError, InvalidRows, PartitionNotFound, UnsignedVersion
    from manymodels.features import feature_kinds
    from manymodels.monitoring.actuals import Measured, measure, save_all, target_of
    from manymodels.monitoring.feed import CHUNK, FeedReads
    from manymodels.tables import read_table

    df = read_table(data).reset_index(drop=True)  # row labels: the file's rows, from 0
    if "version" in df.columns:
        df["version"] = _versions(df["version"], data)
    measured: list[Measured] = []
    unknown: list[str] = []
    unscorable: list[str] = []  # why each such partition's version cannot score its rows
    without = 0  # rows of known partitions without a target, left out
    labelled: dict[str, str | None] = {}  # classes' target column → its warning (read once)
    with open_checked(registry, registry_db, artifacts) as reg:
        columns = reg.partition_by
        if not columns:
            raise DataError(f"registry {reg.location} has no partitions yet")
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise DataError(f"{data}: no key column(s) {', '.join(map(repr, missing))}")
        by = [*columns, "version"] if "version" in df.columns else columns
        groups = []  # (key, version named or None, the group's rows), in the file's order
        for values, group in df.groupby(by, sort=False, dropna=False):
            values = values if isinstance(values, tuple) else (values,)
            key = reg.key(dict(zip(columns, values[: len(columns)], strict=True)))
            groups.append((key, int(values[-1]) if "version" in df.columns else None, group))
        reads = FeedReads(reg, production="version" not in df.columns)
        records = df.to_dict("records")  # each row once (a group's own to_dict: ~2 ms)
        for n, (key, version, group) in enumerate(groups):
            if n % CHUNK == 0:  # the registry read in batches, a chunk at a time
                reads.fetch([(k, v) for k, v, _ in groups[n : n + CHUNK]])
            try:
                loaded = reads.load(key, version)
                target = target_of(loaded.version.schema, key, loaded.version.version)
            except PartitionNotFound:
                unknown.append(key)
                continue
            except (UnsignedVersion, DataError) as e:  # unsigned under a key, or imported
                unscorable.append(str(e))  # (a wrong signature is an error: tampering)
                continue
            if target not in df.columns:
                raise DataError(f"{data}: no target column '{target}'")
            schema = loaded.version.schema
            if schema.classifies and target not in labelled:  # 'NA' as a label, as train
                df, labelled[target] = literal_labels(data, df, target, source=str(data))
                if labelled[target]:
                    records = df.to_dict("records")
            if labelled.get(target):
                group = df.loc[group.index]
            given = group[group[target].notna()]
            without += len(group) - len(given)  # no actual yet: nothing to measure
            if given.empty:
                continue
            numbers = [name for name, numeric in feature_kinds(schema) if numeric]
            numbers += [] if schema.classifies else [target]
            # one word in a column made every number in it text (in every partition): read
            # those as numbers, so that the check names the word's own row
            texts = [c for c in numbers if c in given and given[c].dtype.kind not in "biufc"]
            if texts:
                given = given.assign(
                    **{c: given[c].astype(object).map(_number_or_text) for c in texts}
                )
                rows = given.to_dict("records")
            else:
                rows = [records[i] for i in given.index]
            try:
                measured.append(
                    measure(
                        reg.store.engine, key=key, version=loaded.version.version,
                        metric=loaded.version.metric, schema=schema, predict=_answers(loaded),
                        rows=rows, positions=(given.index + 1).tolist(),
                        previous=reads.previous_actual(key, loaded.version.version),
                    )
                )  # fmt: skip
            except InvalidRows as e:  # rows numbered as train numbers a file's: from 1
                raise DataError(f"{data}: partition '{key}': {e}") from None
        if unscorable and not measured:  # nothing in the file could be scored: say why
            raise DataError(_first_of(unscorable))
        # written only once every partition's rows were checked and scored, in one
        # transaction: a bad row, a failed write or a kill writes nothing, so the file can be
        # recorded again without doubling
        done = [r.to_dict() for r in save_all(reg.store.engine, measured)]
        where = reg.location
    for warning in filter(None, labelled.values()):
        typer.echo(f"warning: {warning}", err=True)
    if unknown:
        shown = ", ".join(unknown[:5]) + (" …" if len(unknown) > 5 else "")
        typer.echo(
            f"warning: {len(unknown)} key(s) without a model of their own, skipped: {shown}",
            err=True,
        )
    if unscorable:
        typer.echo(
            f"warning: {len(unscorable)} partition(s) skipped: {_first_of(unscorable)}", err=True
        )
    if json_out:
        console.print_json({"recorded": done, "unknown": unknown, "skipped": unscorable,
                            "without_target": without})  # fmt: skip
    else:
        n = sum(r["rows"] for r in done)
        left = f"; {without:,} row(s) without a target left out" if without else ""
        typer.echo(f"recorded {n:,} actual(s) of {len(done):,} partition(s) in {where}{left}")


def _answers(loaded: Any) -> Any:
    """What the router answers of rows: a classifier with a ``[decision]``, the label at its
    threshold (what a consumer acts on), as ``/v1/partitions/{key}/actuals`` counts them."""
    decision = loaded.version.schema.decision
    if not decision or len(loaded.classes or ()) != 2:
        return loaded.predict
    from manymodels.labels import from_probabilities

    return lambda rows: from_probabilities(loaded.predict_proba(rows), loaded.classes, decision)[0]


def _first_of(reasons: list[str]) -> str:
    """The first reason, and how many more there are."""
    more = f" (and {len(reasons) - 1} more)" if len(reasons) > 1 else ""
    return f"{reasons[0]}{more}"


def _number_or_text(value: Any) -> Any:
    """A cell of a numeric target or feature read as text (a word elsewhere in its column):
    its number when it holds one, else the text, which the check names in its own row."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _versions(column: Any, data: Path) -> Any:
    """A ``version`` column as integers; ``DataError`` naming the first row that is not a
    version (blank, text, out of range) before anything is read or written."""
    import numpy as np
    import pandas as pd

    from manymodels.exceptions import DataError

    flags = column.map(lambda v: isinstance(v, bool | np.bool_)).to_numpy(dtype=bool)
    numbers = pd.to_numeric(column.where(~flags), errors="coerce")  # true is no version 1
    bad = ~(numbers.notna() & (numbers >= 1) & (numbers <= 2**31 - 1) & (numbers % 1 == 0))
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])  # counted from 1 below, as train counts
        value = column.iloc[row]
        said = (
            "is blank" if pd.isna(value)
            else f"{getattr(value, 'item', lambda: value)()!r} is not a version number"
        )  # fmt: skip
        raise DataError(
            f"{data}: row {row + 1}: version {said} (an integer from 1: the version that "
            "answered; leave the column out for production's)"
        )
    return numbers.astype("int64")


def retrain(
    spec: Annotated[Path, typer.Argument(help="Spec file (TOML).")],
    data: Annotated[Path, typer.Argument(help="Data file: .csv or .parquet.")],
    when: Annotated[
        list[str],
        typer.Option(
            help="drifted | stale | degraded | changed (repeat: any of them). 'changed' "
            "(data fingerprint differs) stands alone.",
        ),
    ],
    registry: RegistryOpt = DEFAULT_REGISTRY,
    drift_threshold: DriftOpt = 0.25,
    error_ratio: ErrorRatioOpt = 1.5,
    naive_ratio: NaiveRatioOpt = 1.0,
    min_actuals: MinActualsOpt = 20,
    max_age_days: MaxAgeOpt = 30.0,
    max_data_age_days: MaxDataAgeOpt = None,
    append: Annotated[
        bool, typer.Option(help="DATA holds new rows only (as train --append).")
    ] = False,
    backend: Annotated[Backend, typer.Option(help="auto | ray | local (as train).")] = "auto",
    dry_run: Annotated[
        bool,
        typer.Option(
            help="List the flagged partitions; train nothing (DATA is not read: partitions "
            "it lacks are listed too, and left out by the run)."
        ),
    ] = False,
    json_out: JsonOpt = False,
    registry_db: RegistryDbOpt = None,
    artifacts: ArtifactsOpt = None,
    resume: Annotated[
        str | None,
        typer.Option(
            help="Finish this run, killed or interrupted: the partitions flagged "
            "now and those it finished must be those it started with."
        ),
    ] = None,
) -> None:
    """Retrain only the partitions the monitor flags.

    Through the usual lifecycle: each new version is a challenger to production under the
    spec's promotion policy, recorded as a run with its history. A flagged partition whose
    data is unchanged since its newest version is left out (the same rows would give the
    same model again), and counted."""
    from manymodels.exceptions import DataError, RunInterrupted

    kinds = get_args(Trigger)
    bad = [w for w in when if w not in kinds]
    if bad:  # as click words a bad choice, one value at a time (it printed a Python list)
        choices = ", ".join(repr(k) for k in kinds)
        raise DataError(f"--when: {bad[0]!r} is not one of {choices}")
    triggers = set(when)
    if "changed" in triggers and len(triggers) > 1:
        raise DataError("--when changed stands alone (run once per kind)")
    only: list[str] | None = None
    if triggers != {"changed"}:
        only = flagged_keys(registry, registry_db, artifacts, triggers, _thresholds(
            drift=drift_threshold, error_ratio=error_ratio, naive_ratio=naive_ratio,
            min_actuals=min_actuals, max_age_days=max_age_days,
            max_data_age_days=max_data_age_days,
        ))  # fmt: skip
        if resume is not None and not dry_run:  # what it set out to train: flagged, or done
            with open_checked(registry, registry_db, artifacts) as reg:
                only = sorted(set(only) | reg.store.recorded_keys(resume))
        if not only or dry_run:
            _nothing(only or [], triggers, json_out=json_out)
            return
    elif dry_run:
        raise DataError(
            "--dry-run needs drifted, stale or degraded (changed is decided by training)"
        )
    from manymodels.cli.train import _report
    from manymodels.pipeline import train as run_train
    from manymodels.spec import Spec

    # opened, not created: only `train` starts a registry, so a mistyped path is an error.
    # changed_only with the flagged keys too: a flagged partition whose rows are those its
    # newest version was trained on would be trained into the same model again, a new
    # version at every retrain while it stays flagged; it is left out and counted instead,
    # unless the spec was edited since (spec_edits): then it is not the same model.
    # The flags that flag the same partitions again, which `doctor` and an interrupted run
    # name to finish it: the run records the keys' digest, not the keys.
    flags = [w for trigger in sorted(triggers) for w in ("--when", trigger)]
    for flag, value, default in [
        ("--drift-threshold", drift_threshold, 0.25), ("--error-ratio", error_ratio, 1.5),
        ("--naive-ratio", naive_ratio, 1.0), ("--min-actuals", min_actuals, 20),
        ("--max-age-days", max_age_days, 30.0), ("--max-data-age-days", max_data_age_days, None),
    ]:  # fmt: skip
        flags += [flag, f"{value:g}"] if value != default and value is not None else []
    flags += ["--append"] if append else []
    words = ["manymodels", "retrain", str(spec), str(data)]
    words += [*repeated_flags(registry, registry_db, artifacts), *flags]
    try:
        with open_checked(registry, registry_db, artifacts) as reg:
            summary = run_train(
                Spec.from_toml(spec), data, reg, backend=backend, only=only,
                changed_only=True, spec_edits=only is not None, append=append,
                signer=reg.signer, skip_absent=True, resume=resume,
                notes={"retrain": shlex.join(flags)},
            )  # fmt: skip
    except RunInterrupted as e:
        typer.echo(
            f"interrupted: run {e.run_id} keeps what it committed; finish it with: "
            f"{shlex.join([*words, '--resume', e.run_id])}",
            err=True,
        )
        raise typer.Exit(130) from None
    warn_not_in_data(summary.run.options, data)
    _report(summary, registry, json_out=json_out, db_url=registry_db, artifacts=artifacts)


def warn_not_in_data(options: dict[str, Any], data: Path) -> None:
    """One ``warning:`` line for the flagged partitions ``data`` holds no row of: they were
    left out (a store that closed stays flagged; it no longer stops the others' retrain)."""
    absent = options.get("not_in_data")
    if absent:
        shown = ", ".join(absent["first"]) + (
            " …" if absent["count"] > len(absent["first"]) else ""
        )
        typer.echo(
            f"warning: {absent['count']} flagged partition(s) have no rows in {data}, "
            f"not retrained: {shown}",
            err=True,
        )


def flagged_keys(
    registry: Path, db_url: str | None, artifacts: str | None, triggers: set[str], limits: Any
) -> list[str]:
    """The partitions the monitor flags for ``triggers`` (``retrain --when``, the scheduler)."""
    from manymodels.monitoring import report

    with open_registry(registry, db_url, artifacts) as reg:
        return report.flagged(reg, triggers, limits)


def _nothing(keys: list[str], triggers: set[str], *, json_out: bool) -> None:
    from manymodels import console

    if json_out:
        console.print_json({"selected": keys, "when": sorted(triggers), "trained": False})
    elif keys:
        typer.echo("\n".join(keys))
    else:
        typer.echo(f"nothing to retrain: no partition is {' or '.join(sorted(triggers))}")
