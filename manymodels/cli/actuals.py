"""``manymodels actuals``: observed values in, live accuracy out. A file's rows are matched
to the partitions and versions that answered them, scored again, and their errors (and the
naive answer's) added to each partition's window of the day (``manymodels.monitoring``);
``monitor`` (``cli.monitor``) reads what it recorded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from manymodels.cli.lines import echo
from manymodels.cli.options import (
    DEFAULT_REGISTRY,
    ArtifactsOpt,
    JsonOpt,
    RegistryDbOpt,
    RegistryOpt,
    open_checked,
)


def actuals(
    observed: Annotated[  # text: a Path made file://localhost/x the relative file:/localhost/x
        str,
        typer.Argument(
            metavar="DATA",
            help="Observed values (.csv or .parquet): key columns, features, target.",
            show_default=False,
        ),
    ],
    registry: RegistryOpt = DEFAULT_REGISTRY,
    json_out: JsonOpt = False,
    registry_db: RegistryDbOpt = None,
    artifacts: ArtifactsOpt = None,
) -> None:
    """Record observed values, for live accuracy.

    The rows are those the models scored, with the value that was observed.

    Each partition's rows are scored again by its production version (or the version named
    in a 'version' column: the one that answered; else in score's 'model_version' column,
    for the rows the fallback did not answer) and the errors of the model and of the
    naive answer are added to the partition's window of the day. Rows a run before counted
    (the same file again, or again with rows appended) are skipped and said so. Keys not in
    the registry, and versions that cannot score actuals (imported from MLflow; unsigned
    while a signing key is set), are skipped with a warning ('skipped' in --json); a version whose
    signature is wrong, or a file without the target column, is an error.
    """
    import pandas as pd

    from manymodels import console
    from manymodels.csvkeys import (
        data_keys_recorded,
        keys_as_recorded,
        literal_labels,
        padded_codes,
    )
    from manymodels.exceptions import DataError, InvalidRows, PartitionNotFound, UnsignedVersion
    from manymodels.features import feature_kinds
    from manymodels.monitoring.actuals import Measured, measure, save_all, target_of
    from manymodels.monitoring.counted import VERSION_COLUMNS
    from manymodels.monitoring.feed import CHUNK, FeedReads
    from manymodels.row_numbers import counted_row
    from manymodels.tables import read_table, require_table
    from manymodels.trained_keys import trained_spellings

    source = require_table(observed)  # file:///x.csv is /x.csv, as --artifacts reads it
    # read as text: a Path of s3://b/x.csv is s3:/b/x.csv, "data file not found" (no URL said)
    df = read_table(source).reset_index(drop=True)  # row labels: the file's rows, from 0
    data = Path(str(source))
    named = "version" in df.columns
    if named:
        df["version"] = _versions(df["version"], data)
    elif "model_version" in df.columns:  # `score`'s output: the version that answered
        df["version"] = _answered(df, data)
    measured: list[Measured] = []
    unknown: list[str] = []
    unscorable: list[str] = []  # why each such partition's version cannot score its rows
    without = 0  # rows of known partitions without a target, left out
    labelled: dict[str, str | None] = {}  # classes' target column → its warning (read once)
    with open_checked(registry, registry_db, artifacts) as reg:
        columns = reg.partition_by
        if not columns:
            raise DataError(f"registry {reg.location} has no partitions yet")
        df = keys_as_recorded(data, df, data_keys_recorded(reg, data, df))  # 007 stays text
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise DataError(f"{data}: no key column(s) {', '.join(map(repr, missing))}")
        for col in columns:  # as score and train say it (a key's NaN named no file, no row)
            empty = df[col].isna().to_numpy().nonzero()[0]
            if len(empty):
                raise DataError(
                    f"{data}: partition column '{col}' has {len(empty)} missing value(s), "
                    f"the first in {counted_row(int(empty[0]) + 1)}"
                )
        by = [*columns, "version"] if "version" in df.columns else columns
        groups = []  # (key, version named or None, the group's rows), in the file's order
        for values, group in df.groupby(by, sort=False, dropna=False):
            values = values if isinstance(values, tuple) else (values,)
            key = reg.key(dict(zip(columns, values[: len(columns)], strict=True)), as_trained=False)
            version: Any = values[-1] if "version" in df.columns else pd.NA
            groups.append((key, None if pd.isna(version) else int(version), group))
        # as training wrote each (two batched reads whatever the file's partitions)
        spelt, _ = trained_spellings((k for k, *_ in groups), reg.store.key_values_of, plain=False)
        groups = [(spelt[key] or key, v, g) for key, v, g in groups]
        reads = FeedReads(reg, production=not named)
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
                padded_codes(data, df, [target], source=str(data), labels=True)  # 01 and 1
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
                        metric=loaded.version.metric, schema=schema, predict=loaded.predict,
                        rows=rows, positions=given.index.tolist(), label=_labels(loaded),
                        previous=reads.previous_actual(key, loaded.version.version),
                        key_columns=[*columns, *VERSION_COLUMNS],
                    )
                )  # fmt: skip
            except InvalidRows as e:  # a file's row, named as train names it (from 1), not
                # as a request's ("row 5", the router's), for the same cell of the same file
                raise DataError(f"{data}: partition '{key}': {e.as_data_rows()}") from None
        if unscorable and not measured:  # nothing in the file could be scored: say why
            raise DataError(_first_of(unscorable))
        # written only once every partition's rows were checked and scored, in one
        # transaction: a bad row, a failed write or a kill writes nothing, so the file can be
        # recorded again without doubling
        done = [r.to_dict() for r in save_all(reg.store.engine, measured)]
        where = reg.location
    for warning in filter(None, labelled.values()):
        echo(f"warning: {warning}", err=True)
    if unknown:
        shown = ", ".join(unknown[:5]) + (" …" if len(unknown) > 5 else "")
        echo(
            f"warning: {len(unknown)} key(s) without a model of their own, skipped: {shown}",
            err=True,
        )
    if unscorable:
        echo(f"warning: {len(unscorable)} partition(s) skipped: {_first_of(unscorable)}", err=True)
    again = sum(r["already_counted"] for r in done)
    if json_out:
        console.print_json({"recorded": done, "unknown": unknown, "skipped": unscorable,
                            "without_target": without, "already_counted": again})  # fmt: skip
    else:
        n = sum(r["rows"] for r in done)
        left = f"; {without:,} row(s) without a target left out" if without else ""
        echo(
            f"recorded {n:,} actual(s) of {sum(1 for r in done if r['rows']):,} partition(s) "
            f"in {where}{left}{_again(done)}"
        )


def _again(done: list[dict[str, Any]]) -> str:
    """What the line says of rows a run before counted: skipped, so that a file run twice
    (a retried cron job) counts each row once."""
    repeated = [r for r in done if r["already_counted"]]
    if not repeated:
        return ""
    n = sum(r["already_counted"] for r in repeated)
    whose = repeated[0]["key"] if len(repeated) == 1 else f"{len(repeated):,} partitions"
    return f"; {n:,} row(s) of {whose} were already counted (posted before), skipped"


def _labels(loaded: Any) -> Any:
    """The labels the router answers of rows at a binary classifier's ``[decision]``
    threshold (what a consumer acts on), counted apart as ``/v1/partitions/{key}/actuals``
    counts them; ``None`` for any other model."""
    decision = loaded.version.schema.decision
    if not decision or len(loaded.classes or ()) != 2:
        return None
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


def _answered(df: Any, data: Path) -> Any:
    """The versions ``manymodels score`` wrote as ``model_version``, the rows' own (it names
    them as the router's answers do; a file of its output with the target added was scored
    again by production, crediting a version promoted since with the rows another answered).
    A row the fallback answered, or none did (blank), is production's, as before: the
    fallback's version is not its partition's."""
    import pandas as pd

    own = df["model_version"].notna()
    if "fallback" in df.columns:
        own &= df["fallback"].astype(str).str.strip().str.lower().isin(["false", "0"])
    versions = pd.Series(pd.NA, index=df.index, dtype="Int64")
    if own.any():
        versions[own] = _versions(df["model_version"].where(own), data, blank=~own).astype("Int64")[
            own
        ]
    return versions


def _versions(column: Any, data: Path, blank: Any = None) -> Any:
    """A ``version`` column as integers; ``DataError`` naming the first row that is not a
    version (blank, text, out of range) before anything is read or written. ``blank``: rows
    left to production, not checked."""
    import numpy as np
    import pandas as pd

    from manymodels.exceptions import DataError
    from manymodels.row_numbers import counted_row

    flags = column.map(lambda v: isinstance(v, bool | np.bool_)).to_numpy(dtype=bool)
    numbers = pd.to_numeric(column.where(~flags), errors="coerce")  # true is no version 1
    bad = ~(numbers.notna() & (numbers >= 1) & (numbers <= 2**31 - 1) & (numbers % 1 == 0))
    if blank is not None:
        bad &= ~blank
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])  # counted from 1 below, as train counts
        value = column.iloc[row]
        said = (
            "is blank" if pd.isna(value)
            else f"{getattr(value, 'item', lambda: value)()!r} is not a version number"
        )  # fmt: skip
        raise DataError(
            f"{data}: {counted_row(row + 1)}: version {said} (an integer from 1: the version that "
            "answered; leave the column out for production's)"
        )
    return numbers if blank is not None else numbers.astype("int64")
