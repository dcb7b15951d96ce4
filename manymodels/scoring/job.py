"""The scoring entry points: plan, run the chunks on a backend, assemble the output.

Only this module knows about backends and registries being opened and closed; the plan, the
worker's task and the output are plain functions of their inputs, so each can be read (and
tested) on its own.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from manymodels.backend_arg import require_backend
from manymodels.csvkeys import data_keys_recorded, keys_as_recorded
from manymodels.execution import Backend, backend_name, choose_scoring_backend, make_backend
from manymodels.flags import require_flags
from manymodels.intervals import parse_levels
from manymodels.labels import check_threshold
from manymodels.registry.client import Registry
from manymodels.registry.model_access import alias_name
from manymodels.scoring.error_rows import located
from manymodels.scoring.output import as_given, labels_as_classes, scored_frame
from manymodels.scoring.plan import interval_levels, make_chunks, make_plan
from manymodels.scoring.probabilities import (
    UnitProba,
    refuse_regressors,
    refuse_taken,
    unscored_columns,
)
from manymodels.scoring.spellings import as_spelled, is_csv
from manymodels.scoring.worker import score_chunk, task_error
from manymodels.signing import Signer
from manymodels.store_urls import data_path, out_path
from manymodels.table_output import STDOUT, write_stdout
from manymodels.tables import (
    DataSource,
    describe_source,
    output_format,
    plain,
    read_given,
    require_table,
    write_table,
)
from manymodels.targetunits import apply_inverses, plan_inverses


@dataclass(frozen=True)
class ScoreSummary:
    """What a scoring job did: rows, partitions, how many went to the fallback, and time."""

    rows: int
    partitions: int
    fallback_rows: int
    fallback_partitions: int
    unscored_rows: int
    models: int
    chunks: int
    alias: str
    seconds: float
    startup_seconds: float
    backend: str = "none"  # where it scored: "local" (this process), "ray", or "none" (no row)
    retired_partitions: int = 0
    """Partitions of the data taken out of production (``retire``): scored as unknown keys."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ScoreResult:
    """The scored table (input columns + ``OUTPUT_COLUMNS``, input row order) and its summary."""

    frame: pd.DataFrame
    summary: ScoreSummary


def score(
    data: DataSource,
    registry: Registry | str | Path = "./mmregistry",
    *,
    alias: str | None = "production",
    backend: Backend | str = "auto",
    ray_address: str | None = None,
    skip_unknown: bool = False,
    signer: Signer | None = None,
    levels: Sequence[float] | None = None,
    threshold: float | None = None,
    probabilities: bool = False,
) -> pd.DataFrame:
    """Score every row of ``data`` (a DataFrame, or a .csv / .parquet path) with its
    partition's model at ``alias``; ``score_table`` also returns the summary.

    Raises ``DataError`` for a missing or mistyped key or feature column, and for keys with
    neither a model nor a fallback (``skip_unknown`` leaves their prediction empty instead);
    ``ArtifactCorrupted`` when a model's bytes fail their sha256 check, ``BadSignature`` (one
    of them) when a ``signer`` is given, for a registry opened here, and a version's signature
    is missing or wrong: the driver checks every signature before any task is shipped.

    Models trained with ``[intervals]`` add ``lo-<level>`` / ``hi-<level>`` columns
    (``manymodels.intervals``): every recorded level, or ``levels`` (a level some answering
    version did not record is a ``DataError``). ``threshold`` labels every row at it
    (``decision_label``/``decision_threshold``, as the router's ``?threshold=``): every
    answering version must be a binary classifier with probabilities (a ``DataError`` names
    one that is not: a ``RidgeClassifier`` too). ``probabilities=True`` adds a classifier's
    class probabilities, a ``proba-<class>`` column per class of the table (0 for a class a
    row's partition never held; the router's ``?probabilities=true``); for a regression
    model it is a ``DataError``.

        frame = score("next_week.csv", "./mmregistry", backend="local")
        frame.loc[frame.fallback, ["store", "brand", "prediction"]]
    """
    return score_table(
        data, registry, alias=alias, backend=backend, ray_address=ray_address,
        skip_unknown=skip_unknown, signer=signer, levels=levels, threshold=threshold,
        probabilities=probabilities,
    ).frame  # fmt: skip


def score_table(
    data: DataSource,
    registry: Registry | str | Path = "./mmregistry",
    *,
    alias: str | None = "production",
    backend: Backend | str = "auto",
    ray_address: str | None = None,
    skip_unknown: bool = False,
    signer: Signer | None = None,
    levels: Sequence[float] | None = None,
    threshold: float | None = None,
    probabilities: bool = False,
) -> ScoreResult:
    """``score``, returning the scored frame together with its ``ScoreSummary``."""
    started = time.perf_counter()
    alias = alias_name(alias)  # None: production, as the router's route without ?alias=
    require_backend(backend)
    require_flags(skip_unknown=skip_unknown, probabilities=probabilities)
    check_threshold(threshold)
    levels = parse_levels(levels)  # levels=80 or "80,95" from Python, as the CLI's --levels
    source = describe_source(data)
    data = require_table(data)  # file:///x.csv is /x.csv: the key checks below read it too
    given = read_given(data)
    df = plain(given)  # category columns as their values: the models were trained on those
    reg = registry if isinstance(registry, Registry) else Registry.open(registry, signer=signer)
    if reg is registry and signer is not None and signer != reg.signer:
        raise ValueError("pass the signer to Registry.open: this registry checks with its own")
    try:
        df = keys_as_recorded(data, df, data_keys_recorded(reg, data, df))  # 007 kept as text
        plan = make_plan(
            df, reg, source=source, alias=alias, skip_unknown=skip_unknown, threshold=threshold
        )
        classes: list[str] = []
        decides = threshold is not None or any(u.decision for u in plan.units)
        if not plan.units:  # nothing scored: the columns of a table that was, still
            classes, decided, levels = unscored_columns(
                reg, alias, source=source, probabilities=probabilities, threshold=threshold,
                levels=levels,
            )  # fmt: skip
            decides = decided or threshold is not None
    finally:
        if reg is not registry:
            reg.close()
    if not isinstance(data, pd.DataFrame):  # a file's blanks made its int labels floats
        df = labels_as_classes(df, plan)
    levels = interval_levels(df, plan, levels, source=source)
    if probabilities:
        refuse_regressors(plan, source=source)
        refuse_taken(df, plan, source=source)  # before the models load, not after
    inverses = plan_inverses(df, plan, source=source)  # target transforms: back to its units

    startup = 0.0
    where = "none"
    done: list[tuple[int, list[np.ndarray]]] = []
    labelled: list[tuple[int, list[np.ndarray], dict[int, tuple[np.ndarray, float]]]] = []
    proba: list[tuple[int, list[np.ndarray], dict[int, UnitProba]]] = []
    chunks: list[Any] = []
    if plan.n_scored:
        setup = time.perf_counter()
        if isinstance(backend, str):
            name = choose_scoring_backend(
                backend, partitions=plan.n_partitions, address=ray_address
            )
            runner = make_backend(name, address=ray_address)
        else:
            runner = backend
        where = backend_name(runner)
        startup = time.perf_counter() - setup
        try:
            chunks, starts = make_chunks(
                plan, runner.workers, probabilities=probabilities, threshold=threshold
            )
            for i, result in runner.map_unordered(score_chunk, chunks, reg.artifacts):
                chunks[i] = None  # let the chunk's rows go as soon as it is done
                if isinstance(result, BaseException):
                    runner.cancel()
                    raise located(task_error(result), plan, starts[i], source)
                done.append((starts[i], result.predictions))
                if result.labels:
                    labelled.append((starts[i], result.predictions, result.labels))
                if probabilities:
                    proba.append((starts[i], result.predictions, result.probabilities))
        except KeyboardInterrupt:
            runner.cancel()
            raise
        finally:
            if runner is not backend:
                runner.close()

    summary = ScoreSummary(
        rows=len(df),
        partitions=plan.n_partitions,
        fallback_rows=plan.fallback_rows,
        fallback_partitions=plan.fallback_partitions,
        unscored_rows=len(df) - plan.n_scored,
        retired_partitions=plan.retired_partitions,
        models=len({(u.key, u.version) for u in plan.units}),
        chunks=len(chunks),
        alias=alias,
        seconds=time.perf_counter() - started,
        startup_seconds=startup,
        backend=where,
    )
    apply_inverses(inverses, plan.offsets, done)
    frame = scored_frame(
        df, plan, done, levels, labelled, proba if probabilities else None,
        classes=classes, decides=decides, source=source,
    )  # fmt: skip
    return ScoreResult(as_given(frame, given), summary)


def score_file(
    data: DataSource,
    out: str | Path,
    registry: Registry | str | Path = "./mmregistry",
    *,
    alias: str | None = "production",
    backend: Backend | str = "auto",
    ray_address: str | None = None,
    skip_unknown: bool = False,
    signer: Signer | None = None,
    levels: Sequence[float] | None = None,
    threshold: float | None = None,
    probabilities: bool = False,
) -> ScoreSummary:
    """Score ``data`` into ``out`` (Parquet or CSV, by its extension; ``"-"``: CSV on
    standard output). The file appears only when everything succeeded: it is written under a
    temporary name, then renamed."""
    source = data_path(data) if isinstance(data, str | Path) else data
    kind = "csv"
    if str(out) != STDOUT:
        out = out_path(out)  # file:///x.csv is /x.csv, as the data's path is read
        # a bad extension or directory fails before any work; file:///x.csv is /x.csv
        kind = output_format(out, reads=source)
    result = score_table(
        data, registry, alias=alias, backend=backend, ray_address=ray_address,
        skip_unknown=skip_unknown, signer=signer, levels=levels, threshold=threshold,
        probabilities=probabilities,
    )  # fmt: skip
    frame = result.frame
    if kind == "csv" and isinstance(source, str | Path) and is_csv(source):
        frame = as_spelled(frame, Path(source).expanduser())  # true stays true, not True
    if str(out) == STDOUT:
        write_stdout([frame], times_in_full=False)  # one frame: pandas' own times, as a file's
    else:
        write_table(frame, Path(out))
    return result.summary
