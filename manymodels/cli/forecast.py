"""``manymodels forecast``: the next periods of each partition, written to a file a chunk of
partitions at a time (``manymodels.forecasting.forecast_chunks``) or shown whole."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from manymodels.cli.lines import echo
from manymodels.cli.options import (
    DEFAULT_REGISTRY,
    MAX_INT,
    ArtifactsOpt,
    JsonOpt,
    LevelsOpt,
    ProbabilitiesOpt,
    RegistryDbOpt,
    RegistryOpt,
    ThresholdOpt,
    open_checked,
)
from manymodels.key_lists import listed
from manymodels.oneline import one_line

if TYPE_CHECKING:
    from manymodels.forecast_ends import Ends


def forecast(
    horizon: Annotated[int, typer.Option(help="Periods to forecast per partition (1-1000).")],
    registry: RegistryOpt = DEFAULT_REGISTRY,
    partitions: Annotated[
        list[str] | None,
        typer.Option("--partitions", help="Forecast only these keys (repeat the option)."),
    ] = None,
    future: Annotated[  # text: a Path made file://localhost/x the relative file:/localhost/x
        str | None,
        typer.Option(
            help="Exogenous features of future periods (.csv or .parquet) with the key and time "
            "columns. Partitions without rows in it carry their last known values forward; "
            "a row between a partition's steps that is not one (a Sunday among Mondays) is "
            "an error."
        ),
    ] = None,
    given_out: Annotated[  # text: a Path made file:///x the relative file:/x
        str | None,
        typer.Option(
            "--out",
            "-o",
            help="Write the forecast to this .parquet or .csv file; '-' writes CSV to "
            "standard output (notes and the summary line to standard error).",
        ),
    ] = None,
    alias: Annotated[
        str | None,
        typer.Option(
            help="Which version of each partition forecasts (default: production; e.g. candidate).",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=MAX_INT,
            help="Forecast this version of each partition named by --partitions (a "
            "challenger, or an old version), as the router's ?version=.",
        ),
    ] = None,
    levels: LevelsOpt = None,
    threshold: ThresholdOpt = None,
    probabilities: ProbabilitiesOpt = False,
    json_out: JsonOpt = False,
    registry_db: RegistryDbOpt = None,
    artifacts: ArtifactsOpt = None,
) -> None:
    """Forecast the next HORIZON periods of each partition.

    Each partition's model at ALIAS forecasts it (production by default; 'candidate' is the
    latest version that was not promoted), or its VERSION (with --partitions).

    Only models trained from a spec with a time_column can be forecast; the fallback is not
    (a forecast of every partition leaves the others, an MLflow import, out, in a note: line;
    another note: line counts the partitions with no version at ALIAS, left out too, and
    names the first few: --json's without_alias, without_alias_keys).
    Steps continue each partition's last training time at the data's frequency. Exogenous
    features come from --future when given, else each partition's last known values are carried
    forward (a note: line names them, and counts the partitions --future has no rows of;
    --json: carried, held_partitions, held_keys; rows of --future of partitions not forecast
    are counted and named in another: future_unused, future_unused_rows, future_unused_keys);
    with target lags in the spec, each step's prediction feeds the next step's lags.
    Models trained with [intervals] add lo-<level>/hi-<level> columns (--levels to choose).
    A binary classifier trained with [decision] (or asked --threshold) labels each step.
    --probabilities adds a classifier's proba-<class> columns.
    """
    from manymodels import console
    from manymodels.forecast_ends import Ends, note
    from manymodels.forecast_steps import shown_time
    from manymodels.forecasting import forecast_chunks
    from manymodels.intervals import parse_levels
    from manymodels.labels import check_threshold
    from manymodels.registry.model_access import one_version_choice

    wanted = parse_levels(levels, "--levels")
    check_threshold(threshold, "--threshold")  # before the registry is opened
    one_version_choice(version, alias)  # as export (and the router's 422)
    if version is not None and not partitions:
        from manymodels.exceptions import DataError

        raise DataError(
            f"--version {version} is a version of a partition: name the partitions to "
            "forecast with --partitions, or forecast every partition at an --alias"
        )
    alias = alias or "production"
    if future is not None:  # file:///x.csv is /x.csv, as --artifacts reads it
        from manymodels.tables import require_table

        future = str(require_table(future, "--future"))
    out = None
    to_stdout = given_out == "-"  # CSV on stdout, as most commands read `-o -`
    if to_stdout and json_out:
        from manymodels.exceptions import DataError

        raise DataError(
            "-o - writes the forecast to standard output, where --json would write too: "
            "drop -o - (--json holds the forecast), or give -o a file"
        )
    if given_out is not None and not to_stdout:  # file:///x.csv is /x.csv, as --future is
        from manymodels.store_urls import out_path
        from manymodels.tables import output_format, write_tables

        out = out_path(given_out)
        output_format(out, reads=future)  # a bad extension or directory fails before any work
    with open_checked(registry, registry_db, artifacts, models=True) as reg:
        left_out: list[list[str]] = []
        without: list[tuple[int, list[str]]] = []  # count and the first few keys, once
        unused: list[dict[str, Any]] = []  # --future's rows no partition forecast read, once
        carried: list[str] = []
        held = Held()
        ends = Ends()
        chunks = _noting_left_out(
            out,
            forecast_chunks(
                reg,
                partitions,
                horizon=horizon,
                future=future,
                levels=wanted,
                alias=alias,
                threshold=threshold,
                probabilities=probabilities,
                version=version,
            ),
            left_out,
            without,
            unused,
            carried,
            held,
            ends,
        )
        if out is not None:  # written a chunk of partitions at a time
            rows = write_tables(chunks, out)
        elif to_stdout:  # so too, as CSV: a pipe holds no whole table
            from manymodels.table_output import write_stdout

            rows = write_stdout(chunks)
        else:
            import pandas as pd

            parts = list(chunks)
            frame = pd.concat(parts, ignore_index=True)
            dates = bool(parts) and bool(parts[0].attrs.get("dates_only"))
            rows = len(frame)
    n = rows // horizon  # every partition has HORIZON rows
    left = left_out[0] if left_out else []
    missing, missing_keys = without[0] if without else (0, [])
    if left and not json_out:
        echo(f"note: {_left_out(left)}", err=True)
    if missing and not json_out:  # a candidate only some partitions have: say of the others
        echo(
            f"note: left out {missing:,} partition(s) with no '{alias}' version: "
            f"{listed(missing_keys, missing)}",
            err=True,
        )
    not_read = unused[0] if unused else {"partitions": 0, "rows": 0, "keys": []}
    if not_read["partitions"] and not json_out:
        echo(f"note: {_unused(not_read, alias)}", err=True)
    if carried and not json_out and future is None:  # a flat forecast of a price-driven
        # model: say why (--json: its "carried" member, as "left_out" is theirs)
        echo(
            f"note: no --future table: each partition's last known {', '.join(carried)} "
            f"carried forward to all {horizon} step(s) (give their future values with "
            "--future FILE)",
            err=True,
        )
    elif carried and not json_out:  # a --future that covers only some partitions
        echo(
            f"note: --future has no rows of {held.count:,} partition(s) "
            f"({held.shown()}): their last known {', '.join(carried)} carried forward to all "
            f"{horizon} step(s) (give them rows in --future)",
            err=True,
        )
    behind = note(ends)
    if behind and not json_out:
        echo(f"note: {behind}", err=True)
    n_behind, behind_keys, _, _ = ends.behind()
    summary = {"carried": carried, "held_partitions": held.count, "held_keys": held.keys,
               "behind": n_behind, "behind_keys": behind_keys,
               "without_alias_keys": missing_keys, "future_unused": not_read["partitions"],
               "future_unused_rows": not_read["rows"],
               "future_unused_keys": not_read["keys"]}  # fmt: skip
    if to_stdout:
        at = "" if alias == "production" else f" at '{alias}'"
        at = at if version is None else f" at v{version}"
        echo(f"forecast {horizon} period(s) of {n:,} partition(s){at} → standard output", err=True)
        return
    if out is not None:
        if json_out:
            console.print_json({"horizon": horizon, "partitions": n, "rows": rows,
                                "out": str(out), "left_out": left,
                                "without_alias": missing, **summary})  # fmt: skip
        else:
            at = "" if alias == "production" else f" at '{alias}'"  # others may lack it
            at = at if version is None else f" at v{version}"
            echo(f"forecast {horizon} period(s) of {n:,} partition(s){at} → {out}")
        return
    if json_out:
        rows = frame.to_dict(orient="records")
        time_column = frame.columns[frame.columns.get_loc("prediction") - 1]
        for row in rows:
            row[time_column] = shown_time(row[time_column], dates)  # as the CSV writes it
        console.print_json({"horizon": horizon, "partitions": n, "left_out": left,
                            "without_alias": missing, **summary,
                            "forecast": rows})  # fmt: skip
    else:
        console.out.print(_literal(frame).to_string(index=False), soft_wrap=True)


def _noting_left_out(
    out: Path | None,
    chunks: Iterator[Any],
    left_out: list[list[str]],
    without: list[tuple[int, list[str]]],
    unused: list[dict[str, Any]],
    carried: list[str],
    held: Held,
    ends: Ends,
) -> Iterator[Any]:
    """``chunks`` as they come, the partitions the forecast left out (the first frame says)
    put in ``left_out``, how many have no version at its alias (and the first few keys) in
    ``without``, the rows of ``--future`` no partition forecast reads in ``unused``, and the
    exogenous features held at their last values (no future table, or one without rows of
    some partitions) in ``carried``, those of every chunk (each says those its versions read:
    a chunk of naive baselines reads none), and the partitions held so counted in ``held``;
    each partition's last time in ``ends`` (``forecast_ends``). A
    Parquet ``out`` whose key column would hold numbers for some partitions and text for
    others (two specs' partitions) is refused before anything is written, saying so:
    pyarrow's "Could not convert '005' … to int64" did not."""
    for frame in chunks:
        if not left_out:
            left_out.append(list(frame.attrs.get("left_out", [])))
            without.append(
                (
                    int(frame.attrs.get("without_alias", 0)),
                    list(frame.attrs.get("without_keys", [])),
                )
            )
            if frame.attrs.get("future_unused"):
                unused.append(frame.attrs["future_unused"])
            mixed = frame.attrs.get("mixed_keys")
            # by the writer's own reading of the name: x.csv.gz is a CSV too
            if mixed and out is not None and not out.name.lower().endswith((".csv", ".csv.gz")):
                from manymodels.exceptions import DataError

                raise DataError(
                    f"{out}: the forecast's {mixed}, and a Parquet column holds one type: "
                    "forecast them apart (--partitions) or write a .csv"
                )
        carried.extend(f for f in frame.attrs.get("carried", []) if f not in carried)
        held.add(frame.attrs.get("held", []))
        ends.add(frame.attrs.get("ends", []))
        yield frame


SHOWN_KEYS = 3  # keys a note (and --json's held_keys) names of the partitions held


class Held:
    """How many partitions a forecast held at their last feature values, and the first few:
    counted over every chunk, which the CLI reads one at a time."""

    def __init__(self) -> None:
        self.count = 0
        self.keys: list[str] = []

    def add(self, keys: list[str]) -> None:
        self.count += len(keys)
        self.keys.extend(keys[: SHOWN_KEYS - len(self.keys)])

    def shown(self) -> str:
        return listed(self.keys, self.count)


def _left_out(keys: list[str]) -> str:
    return (
        f"left out {len(keys):,} partition(s) trained without a time_column (an MLflow "
        f"import, or another spec's): {listed(keys)}"
    )


def _unused(rows: dict[str, Any], alias: str) -> str:
    """The note on ``--future``'s rows of partitions not forecast (``future_rows.unused_rows``),
    in the shape of the others: a count, the first keys, how many more past them."""
    count, without = rows["partitions"], rows["without_model"]
    if without == count:
        why = f"no '{alias}' version"
    elif not without:
        why = "not among the partitions forecast"
    else:
        why = f"{without:,} with no '{alias}' version, the others not among those forecast"
    return (
        f"--future's {rows['rows']:,} row(s) of {count:,} partition(s) not forecast were not "
        f"used ({why}): {listed(rows['keys'], count)}"
    )


def _literal(frame: Any) -> Any:
    """``frame`` with a newline, a tab or an escape sequence in its text (a key's, a column's
    name) escaped, as ``one_line`` does: each step stays on its row of the table."""
    frame = frame.rename(columns=lambda c: one_line(c) if isinstance(c, str) else c)
    for column in frame.select_dtypes(include=["object", "string"]).columns:
        frame[column] = frame[column].map(lambda v: one_line(v) if isinstance(v, str) else v)
    return frame
