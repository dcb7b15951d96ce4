"""``manymodels score DATA -o OUT``: every row of a table scored by its partition's model.

Apart from ``train`` (``manymodels.cli.train``) as the command that reads a registry rather than
writing one; ``forecast`` is in ``manymodels.cli.forecast``. Heavy imports stay inside the
command so ``--help`` is instant.
"""

from __future__ import annotations

from typing import Annotated

import typer

from manymodels.cli.lines import echo
from manymodels.cli.options import (
    DEFAULT_REGISTRY,
    ArtifactsOpt,
    Backend,
    JsonOpt,
    LevelsOpt,
    ProbabilitiesOpt,
    RegistryDbOpt,
    RegistryOpt,
    ThresholdOpt,
    open_checked,
    signer,
)

WHERE = {"local": " in this process", "ray": " on Ray"}
"""What ``score``'s summary line says of where it ran (``auto`` chooses)."""


def score(
    data: Annotated[  # text: a Path made file://localhost/x the relative file:/localhost/x
        str, typer.Argument(help="Table to score (.csv or .parquet) with key and feature columns.")
    ],
    out: Annotated[  # text: a Path made file:///x the relative file:/x
        str,
        typer.Option(
            "--out",
            "-o",
            help="Scores file, .parquet or .csv (written on success); '-' writes CSV to "
            "standard output (the summary line to standard error).",
        ),
    ],
    registry: RegistryOpt = DEFAULT_REGISTRY,
    alias: Annotated[
        str, typer.Option(help="Which version of each partition scores its rows.")
    ] = "production",
    backend: Annotated[
        Backend,
        typer.Option(
            help="'auto' (default): in this process, on Ray from 20,000 partitions or with "
            "--ray-address; 'ray' or 'local' to choose."
        ),
    ] = "auto",
    ray_address: Annotated[
        str | None,
        typer.Option(envvar="RAY_ADDRESS", help="Existing Ray cluster (default: embedded Ray)."),
    ] = None,
    skip_unknown: Annotated[
        bool,
        typer.Option(help="Leave rows with no model and no fallback unscored instead of failing."),
    ] = False,
    levels: LevelsOpt = None,
    threshold: ThresholdOpt = None,
    probabilities: ProbabilitiesOpt = False,
    json_out: JsonOpt = False,
    registry_db: RegistryDbOpt = None,
    artifacts: ArtifactsOpt = None,
) -> None:
    """Score every row of DATA with its partition's model.

    The model at ALIAS scores each row, into OUT.

    Keys with no such model (unknown, too small to train, or without the alias) are scored by
    the fallback model. OUT holds DATA's columns, in its row order, plus prediction,
    model_version, partition (the key), served_by (whose model answered) and fallback; models
    trained with [intervals] add lo-<level>/hi-<level> columns (--levels to choose), and
    --probabilities a classifier's proba-<class> columns.
    """
    from manymodels import console
    from manymodels.intervals import parse_levels
    from manymodels.labels import check_threshold
    from manymodels.scoring import score_file
    from manymodels.store_urls import out_path

    to_stdout = out == "-"  # CSV on stdout, as most commands read `-o -`
    if to_stdout and json_out:
        from manymodels.exceptions import DataError

        raise DataError(
            "-o - writes the scores to standard output, where --json would write too: give "
            "--json a file to write the scores to (-o scores.csv), or drop --json"
        )
    out = out if to_stdout else str(out_path(out))  # file:///x.csv is /x.csv, as named below
    wanted = parse_levels(levels, "--levels")
    check_threshold(threshold, "--threshold")  # before the data or the registry is read
    if registry_db is None and artifacts is None:
        summary = score_file(
            data, out, registry,
            alias=alias, backend=backend, ray_address=ray_address, skip_unknown=skip_unknown,
            signer=signer(registry), levels=wanted, threshold=threshold,
            probabilities=probabilities,
        )  # fmt: skip
    else:
        with open_checked(registry, registry_db, artifacts, models=True) as reg:
            summary = score_file(
                data, out, reg, alias=alias, backend=backend, ray_address=ray_address,
                skip_unknown=skip_unknown, levels=wanted, threshold=threshold,
                probabilities=probabilities,
            )  # fmt: skip
    if json_out:
        console.print_json({**summary.to_dict(), "out": str(out), "registry": str(registry)})
        return
    unscored = f", {summary.unscored_rows:,} unscored" if summary.unscored_rows else ""
    if summary.retired_partitions:
        unscored += f"; {summary.retired_partitions:,} retired partition(s) among them"
    echo(
        f"scored {console.counted(summary.rows, 'row')} of "
        f"{console.counted(summary.partitions, 'partition')} "
        f"({summary.fallback_rows:,} by the fallback{unscored}) at '{alias}' "
        f"in {summary.seconds:.1f}s{WHERE.get(summary.backend, '')} → "
        f"{'standard output' if to_stdout else out}",
        err=to_stdout,  # stdout holds the CSV alone
    )
