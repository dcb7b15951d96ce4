"""A forecast of many partitions holds a chunk of their version records, not all of them: its
memory grows with the output only (``manymodels.forecast_select``)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from factories import DECIDED, pumps_spec

from manymodels import forecast_select
from manymodels.forecasting import forecast
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.samples import synthetic

PARTITIONS = 240
SPEC = {
    "name": "many",
    "partition_by": ["pid"],
    "target": "y",
    "time_column": "t",
    "features": [f"x{j}" for j in range(5)],
    "min_rows": 2,
    "validation": {"strategy": "last", "size": 4},
    "candidates": [{"estimator": "sklearn.linear_model.Ridge"}],
    "fallback": {"enabled": False},
}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("forecast_memory") / "registry"
    summary = train(SPEC, synthetic(PARTITIONS, 20), root, backend="local")
    assert summary.run.n_trained == PARTITIONS
    return root


def peak(reg: Registry, keys: list[str]) -> int:
    """Bytes of the highest traced memory while forecasting ``keys``, above its start."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        frame = forecast(reg, keys, horizon=2)
        top = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(frame) == 2 * len(keys)
    return top - base


def test_forecast_memory_grows_with_its_output_not_with_the_records(
    registry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every partition's version record (its schema: profile, history, interval widths) was
    held until the forecast ended: 4x the partitions took 4x the records' memory (~16 KB a
    partition; 330 MB more at 20,000). Now a chunk of them at a time: 180 more partitions add
    less than a third of what holding their records takes."""
    monkeypatch.setattr(forecast_select, "CHUNK", 20)
    with Registry.open(registry) as reg:
        keys = sorted(reg.store.alias_table("production"))
        forecast(reg, keys[:20], horizon=2)  # imports and caches warmed, outside the count
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            held = reg.store.get_versions([(k, 1) for k in keys[60:]])
            records = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert len(held) == PARTITIONS - 60
        del held
        few, many = peak(reg, keys[:60]), peak(reg, keys)
    assert many - few < records / 3, (few, many, records)


def test_a_forecast_in_chunks_is_the_forecast_in_one(
    registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks of 7 partitions (the last one short), a future table whose rows fall in several
    chunks: the same frame as one chunk of all of them."""
    future = pd.DataFrame(
        {"pid": p, "t": t, **{f"x{j}": float(p + j) for j in range(5)}}
        for p in (0, 9, 17, 30, 201)
        for t in (20, 21, 22)
    )
    whole = forecast(registry, horizon=3, future=future)
    monkeypatch.setattr(forecast_select, "CHUNK", 7)
    chunked = forecast(registry, horizon=3, future=future)
    assert len(whole) == 3 * PARTITIONS
    pd.testing.assert_frame_equal(chunked, whole)
    carried = forecast(registry, horizon=3)  # the future's rows were used
    assert not whole["prediction"].equals(carried["prediction"])


def cli_peak(registry: Path, out: Path, horizon: int, partitions: int) -> int:
    """Bytes of the highest traced memory of ``manymodels forecast --out`` of the first
    ``partitions`` partitions, above its start."""
    from typer.testing import CliRunner

    from manymodels.cli import app

    keys = [f"pid={p}" for p in range(partitions)]
    args = ["forecast", "--registry", str(registry), "--horizon", str(horizon), "--out", str(out)]
    args += [a for k in keys for a in ("--partitions", k)]
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        result = CliRunner().invoke(app, args)
        top = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.exit_code == 0, result.output
    return top - base


@pytest.mark.parametrize("name", ["forecast.parquet", "forecast.csv", "forecast.csv.gz"])
def test_a_forecast_file_is_written_a_chunk_at_a_time(
    registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """``manymodels forecast --out`` writes each chunk of partitions as it is forecast: the
    file is the whole forecast, and 4x the partitions add less than a third of their output's
    memory (the whole output was built, joined and converted before the file was written:
    ~325 bytes a row, ~0.9 GB at 100,000 partitions and 28 steps)."""
    monkeypatch.setattr(forecast_select, "CHUNK", 20)
    horizon = 150
    out = tmp_path / name
    cli_peak(registry, out, horizon, 20)  # imports and caches warmed, outside the count
    few = cli_peak(registry, out, horizon, 60)
    many = cli_peak(registry, out, horizon, PARTITIONS)
    whole = forecast(registry, [f"pid={p}" for p in range(PARTITIONS)], horizon=horizon)
    written = pd.read_parquet(out) if name.endswith(".parquet") else pd.read_csv(out)
    pd.testing.assert_frame_equal(written, whole, check_dtype=name.endswith(".parquet"))
    extra = whole.iloc[60 * horizon :].memory_usage(deep=True).sum()
    assert many - few < extra / 3, (few, many, extra)


def test_a_forecast_file_holds_every_chunk_in_the_type_of_the_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Partitions whose models answer in float32 (XGBoost's do), one chunk of them before a
    chunk of Ridge's float64: the Parquet file took the first chunk's float32 for the whole
    column and rounded every later prediction to it (1e-7 of each lost, silently); the whole
    frame, joined, was float64. Now a regression's predictions are float64 in every chunk."""
    from typer.testing import CliRunner

    from manymodels.cli import app

    monkeypatch.setattr(forecast_select, "CHUNK", 20)
    data = synthetic(40, 20)
    first = sorted(f"pid={p}" for p in range(40))[:20]  # the first chunk, in key order
    in_first = data["pid"].map(lambda p: f"pid={p}" in first)
    root = tmp_path / "registry"
    f32 = {**SPEC, "candidates": [{"estimator": "factories.Float32Ridge"}]}
    assert train(f32, data[in_first], root, backend="local").run.n_trained == 20
    assert train(SPEC, data[~in_first], root, backend="local").run.n_trained == 20

    out = tmp_path / "forecast.parquet"
    args = ["forecast", "--registry", str(root), "--horizon", "3", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    whole = forecast(root, horizon=3)
    written = pd.read_parquet(out)
    assert written["prediction"].dtype == whole["prediction"].dtype == "float64"
    pd.testing.assert_frame_equal(written, whole, check_exact=True)


def forecast_csv_a_chunk_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, freqs: tuple[str, ...], *, dates: bool = False
) -> tuple[Path, Path]:
    """A registry of partitions ``a``, ``b`` … (one per frequency in ``freqs``: 30 times
    each) and the CSV ``manymodels forecast --horizon 3`` wrote of them a partition a chunk.
    ``dates``: each partition trained from a CSV file of its times as dates (``2024-01-01``)."""
    from typer.testing import CliRunner

    from manymodels.cli import app

    spec = {**SPEC, "features": ["x"], "validation": {"strategy": "last", "size": 4}}
    root = tmp_path / "registry"
    for pid, freq in zip("ab", freqs, strict=False):
        t = pd.date_range("2024-01-01", periods=30, freq=freq)
        x = [float(i % 5) for i in range(30)]
        y = [2 * v + 0.1 * i for i, v in enumerate(x)]
        frame = pd.DataFrame(
            {"pid": pid, "t": t.strftime("%Y-%m-%d") if dates else t, "x": x, "y": y}
        )
        data: pd.DataFrame | Path = frame
        if dates:
            data = tmp_path / f"{pid}.csv"
            frame.to_csv(data, index=False)
        assert train(spec, data, root, backend="local").run.n_trained == 1
    monkeypatch.setattr(forecast_select, "CHUNK", 1)
    out = tmp_path / "forecast.csv"
    args = ["forecast", "--registry", str(root), "--horizon", "3", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return root, out


def test_a_forecast_csv_writes_every_chunks_times_in_one_format(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A daily partition and an hourly one, trained into one registry, forecast a chunk (of
    one partition) at a time into a CSV: the daily chunk's times were written as dates alone
    ("2024-01-31"), the hourly one's with their hour, and ``read_csv`` left the column as
    text. Now every time is written in full, and the file reads back as the forecast."""
    root, out = forecast_csv_a_chunk_at_a_time(tmp_path, monkeypatch, ("D", "h"))
    times = pd.read_csv(out)["t"].tolist()
    assert times[0] == "2024-01-31 00:00:00" and times[3] == "2024-01-02 06:00:00", times
    written = pd.read_csv(out, parse_dates=["t"])
    whole = forecast(root, horizon=3)
    pd.testing.assert_frame_equal(written, whole, check_dtype=False)


def test_a_forecast_csv_writes_dates_as_dates_in_every_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A daily partition and a weekly one trained from dates (``2024-01-01``), forecast a
    chunk at a time into a CSV: every time was written ``2024-01-31 00:00:00``, though the
    table had dates and pandas writes a frame of midnights as dates. Now dates alone, in every
    chunk, and the file reads back as the forecast; a Parquet file keeps its datetime type."""
    from typer.testing import CliRunner

    from manymodels.cli import app

    root, out = forecast_csv_a_chunk_at_a_time(tmp_path, monkeypatch, ("D", "7D"), dates=True)
    times = pd.read_csv(out)["t"].tolist()
    daily, weekly = ["2024-01-31", "2024-02-01", "2024-02-02"], ["2024-07-29", "2024-08-05"]
    assert times == [*daily, *weekly, "2024-08-12"], times
    whole = forecast(root, horizon=3)
    pd.testing.assert_frame_equal(pd.read_csv(out, parse_dates=["t"]), whole, check_dtype=False)
    parquet = tmp_path / "forecast.parquet"
    args = ["forecast", "--registry", str(root), "--horizon", "3", "--out", str(parquet)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert pd.read_parquet(parquet)["t"].dtype.kind == "M"


def test_a_forecast_parquet_takes_labels_after_a_chunk_without_any(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One pump's production version from a spec without a ``[decision]``, the other's from
    one with it (the decision added later, one partition retrained): written a chunk at a
    time, the first chunk's ``decision_label`` was ``None`` alone, which Arrow typed as null,
    and the Parquet file refused the next chunk's labels ("cannot write the table
    (ArrowInvalid: … decision_label …)"). Now every chunk's labels have the classes' type;
    the file reads back as the forecast, and ``--json`` says null for a missing label."""
    import json

    from typer.testing import CliRunner

    from manymodels.cli import app
    from manymodels.samples import sensor_readings

    spec = pumps_spec()
    root = tmp_path / "registry"
    data = sensor_readings(n_assets=2, readings=120)
    first, second = sorted(data["asset"].unique())
    assert train(spec, data[data.asset == first], root, backend="local").run.n_trained == 1
    decided = {**spec, "decision": DECIDED}
    assert train(decided, data[data.asset == second], root, backend="local").run.n_trained == 1
    monkeypatch.setattr(forecast_select, "CHUNK", 1)
    out = tmp_path / "forecast.parquet"
    args = ["forecast", "--registry", str(root), "--horizon", "3"]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    written = pd.read_parquet(out)
    whole = forecast(root, horizon=3)
    assert whole["decision_label"].isna().tolist() == [True] * 3 + [False] * 3
    pd.testing.assert_frame_equal(written, whole, check_dtype=False)
    listed = json.loads(CliRunner().invoke(app, [*args, "--json"]).stdout)["forecast"]
    assert [r["decision_label"] for r in listed[:3]] == [None] * 3
    assert [r["decision_label"] for r in listed[3:]] == whole["decision_label"][3:].tolist()


@pytest.mark.parametrize("freqs", [("s", "500ms"), ("ns",)])
def test_a_forecast_csv_writes_sub_second_times_alike_and_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, freqs: tuple[str, ...]
) -> None:
    """A partition of whole seconds, then one of half seconds, forecast a chunk at a time
    into a CSV: the first chunk's times were written without a fraction, the second's with
    one, and ``read_csv(parse_dates=…)`` left the column as text; a partition of nanoseconds
    had its three steps written as one time (microseconds only). Now every chunk's times have
    the digits the whole forecast needs, and the file reads back as the forecast."""
    root, out = forecast_csv_a_chunk_at_a_time(tmp_path, monkeypatch, freqs)
    written = pd.read_csv(out, parse_dates=["t"])
    assert written["t"].dtype.kind == "M", written["t"].tolist()
    whole = forecast(root, horizon=3)
    assert whole["t"].is_unique
    pd.testing.assert_frame_equal(written, whole, check_dtype=False)


def test_a_forecast_of_versions_with_labels_of_two_types(tmp_path: Path) -> None:
    """One pump's classes are 0/1, the other's 'no'/'yes' (two specs' versions in one
    registry): the labels' type of the first deciding version could not hold the other's
    labels; the forecast still has them all, as written."""
    from manymodels.samples import sensor_readings

    spec = pumps_spec(decision=DECIDED)
    root = tmp_path / "registry"
    data = sensor_readings(n_assets=2, readings=120)
    first, second = sorted(data["asset"].unique())
    assert train(spec, data[data.asset == first], root, backend="local").run.n_trained == 1
    words = data[data.asset == second].assign(
        failure_within_24h=lambda d: d["failure_within_24h"].map({0: "no", 1: "yes"})
    )
    worded = {**spec, "decision": {**DECIDED, "positive": "yes"}}
    assert train(worded, words, root, backend="local").run.n_trained == 1
    labels = forecast(root, horizon=3)["decision_label"].tolist()
    assert set(labels[:3]) <= {0, 1} and set(labels[3:]) <= {"no", "yes"}, labels


def test_a_forecast_keeps_numeric_labels_after_text_ones(tmp_path: Path) -> None:
    """As above with the text-labelled pump first in key order: the labels' type ("string")
    came from it, and pandas turned the other pump's 0/1 into '0'/'1' without a word (the
    test above covers only the order in which the cast fails). Now both are as written."""
    from manymodels.samples import sensor_readings

    spec = pumps_spec(decision=DECIDED)
    root = tmp_path / "registry"
    data = sensor_readings(n_assets=2, readings=120)
    first, second = sorted(data["asset"].unique())
    words = data[data.asset == first].assign(
        failure_within_24h=lambda d: d["failure_within_24h"].map({0: "no", 1: "yes"})
    )
    worded = {**spec, "decision": {**DECIDED, "positive": "yes"}}
    assert train(worded, words, root, backend="local").run.n_trained == 1
    assert train(spec, data[data.asset == second], root, backend="local").run.n_trained == 1
    labels = forecast(root, horizon=3)["decision_label"].tolist()
    assert set(labels[:3]) <= {"no", "yes"} and set(labels[3:]) <= {0, 1}, labels


def test_a_forecast_of_one_chunk_reads_each_record_once(
    registry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``select`` reads every record to check it; a forecast of at most ``CHUNK`` partitions
    read them all a second time to forecast them (~0.3 ms a record, the one spec's forecast on
    us_employment twice 147). Now one read when they are one chunk — the same frame — and,
    over several chunks, a chunk at a time as before."""
    with Registry.open(registry) as reg:
        keys = sorted(reg.store.alias_table("production"))[:30]
        read: list[int] = []
        get_versions = reg.store.get_versions

        def counted(pairs: list[tuple[str, int]]) -> list[Any]:
            read.append(len(pairs))
            return get_versions(pairs)

        monkeypatch.setattr(reg.store, "get_versions", counted)
        once = forecast(reg, keys, horizon=3)
        assert sum(read) == 30, read
        read.clear()
        monkeypatch.setattr(forecast_select, "CHUNK", 7)
        chunked = forecast(reg, keys, horizon=3)
        assert sum(read) == 60, read  # checked, then forecast, 7 at a time
    pd.testing.assert_frame_equal(once, chunked)
