"""Retraining from new rows only (``append``): each version keeps its training rows, a retrain
merges them with the posted ones, a posted row replaces a kept one of the same time."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from factories import as_older_schema, linear_frame, spec_dict
from typer.testing import CliRunner

from manymodels import appending
from manymodels.cli import app
from manymodels.exceptions import ArtifactNotFound, DataError, RunFailed
from manymodels.gc import collect
from manymodels.partition import FALLBACK_KEY
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.registry import schema as t


def test_every_version_keeps_its_input_rows(tmp_path: Path) -> None:
    df = linear_frame(3, 30)
    df["label"] = np.where(df["t"] % 2 == 0, "even", "odd")
    df["count"] = df["t"] * 2  # an integer feature: it travels as float64, comes back as int
    spec = spec_dict(calendar=None, lags=[1], categorical=["label"])
    train(spec, df, tmp_path / "reg", backend="local")
    with Registry.open(tmp_path / "reg") as reg:
        rows = reg.training_rows("pid=1")
        expected = df[df.pid == 1].reset_index(drop=True)
        assert list(rows.columns) == ["pid", "t", "x0", "x1", "label", "count", "y"]
        pd.testing.assert_frame_equal(rows, expected[rows.columns], check_dtype=False)
        assert rows["count"].dtype == np.int64 and rows["label"].tolist()[:2] == ["even", "odd"]
        assert "y_lag1" not in rows  # derived again by training, never stored
        with pytest.raises(ArtifactNotFound, match="kept no training rows"):
            reg.training_rows(FALLBACK_KEY)


def test_a_chunks_partitions_share_one_rows_object_each_reading_its_own(tmp_path: Path) -> None:
    """One PUT of rows per training chunk, not one per partition (an object store's PUTs cost
    the client CPU each); every version references its chunk's and reads back its own rows."""
    df = linear_frame(40, 30)
    train(spec_dict(), df, tmp_path / "reg", backend="local")  # 4 chunks of 10 (one worker)
    with Registry.open(tmp_path / "reg") as reg:
        versions = [reg.get_version(f"pid={k}") for k in range(40)]
        rows_objects = {v.data_sha256 for v in versions}
        assert len(rows_objects) == 4 and None not in rows_objects
        models = {v.artifact_sha256 for v in versions}
        models.add(reg.get_version(FALLBACK_KEY).artifact_sha256)
        assert set(reg.artifacts.digests()) == models | rows_objects
        for k in (0, 9, 10, 39):  # the first and last of a chunk, the first of the next
            want = df[df.pid == k].reset_index(drop=True)
            got = reg.training_rows(f"pid={k}")
            pd.testing.assert_frame_equal(got, want[got.columns], check_dtype=False)


def test_rows_kept_one_object_per_partition_read_as_before(tmp_path: Path) -> None:
    """Objects written before chunks shared one (no row index) are a partition's rows whole."""
    import pyarrow as pa

    from manymodels.training.history import decode_rows

    rows = linear_frame(1, 5)
    sink = pa.BufferOutputStream()
    table = pa.Table.from_pandas(rows, preserve_index=False)
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    got = decode_rows(sink.getvalue().to_pybytes(), "pid=0")
    pd.testing.assert_frame_equal(got, rows.reset_index(drop=True))


def test_unchanged_partitions_store_nothing_new(tmp_path: Path) -> None:
    df = linear_frame(2, 30)
    train(spec_dict(), df, tmp_path / "reg", backend="local")
    with Registry.open(tmp_path / "reg") as reg:
        before = set(reg.artifacts.digests())
    train(spec_dict(), df, tmp_path / "reg", backend="local")
    with Registry.open(tmp_path / "reg") as reg:
        assert set(reg.artifacts.digests()) == before  # same models, same rows, same bytes
        assert reg.get_version("pid=0", 1).data_sha256 == reg.get_version("pid=0", 2).data_sha256


def test_append_trains_on_kept_rows_plus_the_new_ones(tmp_path: Path) -> None:
    """A consumer posts only the new weeks: 8 rows is less than min_rows, and used to be a
    422. Exactly ``size`` new rows are the validation rows, all newer than the champion's
    training data, so the champion as served is judged on them (no 0.0 % tie)."""
    full = linear_frame(2, 48)
    old, new = full[full.t < 40], full[(full.t >= 40) & (full.pid == 1)]
    spec = spec_dict(validation={"strategy": "last", "size": 8})
    train(spec, old, tmp_path / "reg", backend="local")
    summary = train(spec, new, tmp_path / "reg", backend="local", append=True)
    assert summary.run.n_partitions == 1  # only the partition in the new rows
    assert summary.run.options["append"] == {"partitions": 1, "with_history": 1, "kept_rows": 40}
    assert summary.versions == {"pid=1": 2}  # neither pid=0 nor the fallback
    with Registry.open(tmp_path / "reg") as reg:
        v2 = reg.get_version("pid=1", 2)
        assert v2.n_rows == 48
        ev = v2.evaluation
        assert (ev["basis"], ev["compared_rows"]) == ("unseen", 8)
        # the challenger's validation fit saw exactly the champion's rows: a tie, which
        # promotes the model that also knows the new weeks
        assert ev["promote"] and ev["improvement"] == 0.0 and "needs ≥ 0.0%" in ev["reason"]
        rows = reg.training_rows("pid=1", 2)
        assert rows["t"].tolist() == list(range(48))


def test_a_posted_row_replaces_the_kept_row_of_the_same_time(tmp_path: Path) -> None:
    df = linear_frame(1, 30)
    train(spec_dict(), df, tmp_path / "reg", backend="local")
    fix = df[df.t == 7].assign(y=1000.0)
    train(spec_dict(), fix, tmp_path / "reg", backend="local", append=True)
    with Registry.open(tmp_path / "reg") as reg:
        rows = reg.training_rows("pid=0", 2)
        assert len(rows) == 30 and rows.loc[rows.t == 7, "y"].tolist() == [1000.0]
        assert reg.get_version("pid=0", 2).n_rows == 30


def test_a_posted_row_without_a_target_keeps_the_kept_rows_value(tmp_path: Path) -> None:
    """An empty target cell (a CSV's, a Parquet NaN) is left out of training: it used to
    replace the kept row of its time first, and the period's real value was lost for every
    later retrain."""
    df = linear_frame(1, 30)
    train(spec_dict(), df, tmp_path / "reg", backend="local")
    blank = pd.concat([df[df.t == 7].assign(y=np.nan), df[df.t == 8].assign(y=500.0)])
    train(spec_dict(), blank, tmp_path / "reg", backend="local", append=True)
    with Registry.open(tmp_path / "reg") as reg:
        rows = reg.training_rows("pid=0", 2)
        # the posted row corrects nothing: the kept row is the period's only one
        assert rows.loc[rows.t == 7, "y"].tolist() == df.loc[df.t == 7, "y"].tolist()
        assert rows.loc[rows.t == 8, "y"].tolist() == [500.0]  # a correction still replaces
        v2 = reg.get_version("pid=0", 2)
        assert v2.n_rows == 30 and "dropped" not in v2.validation


def test_append_to_a_new_partition_trains_it_from_the_posted_rows(tmp_path: Path) -> None:
    train(spec_dict(), linear_frame(1, 30), tmp_path / "reg", backend="local")
    other = linear_frame(1, 30, seed=5).assign(pid=7)
    summary = train(spec_dict(), other, tmp_path / "reg", backend="local", append=True)
    assert summary.run.options["append"]["with_history"] == 0
    assert summary.versions == {"pid=7": 1}


def test_append_without_key_columns_is_a_data_error(tmp_path: Path) -> None:
    train(spec_dict(), linear_frame(1, 30), tmp_path / "reg", backend="local")
    with pytest.raises(DataError, match="missing column\\(s\\) 'pid'"):
        train(spec_dict(), linear_frame(1, 5).drop(columns="pid"), tmp_path / "reg",
              backend="local", append=True)  # fmt: skip
    with Registry.open(tmp_path / "reg") as reg:
        assert len(reg.list_runs()) == 1  # nothing half-written


def test_append_from_the_cli(tmp_path: Path, samples_dir: Path) -> None:
    data = pd.read_csv(samples_dir / "store_sales.csv")
    last = data["week"].max()
    data[data.week < last].to_csv(tmp_path / "old.csv", index=False)
    key = (data.store == 2) & (data.brand == "tropicana")
    data[key & (data.week == last)].to_csv(tmp_path / "new.csv", index=False)
    spec = samples_dir / "store_sales.toml"
    runner = CliRunner()
    reg = tmp_path / "reg"
    first = runner.invoke(app, ["train", str(spec), str(tmp_path / "old.csv"),
                                "--registry", str(reg), "--backend", "local"])  # fmt: skip
    assert first.exit_code == 0, first.output
    res = runner.invoke(app, ["train", str(spec), str(tmp_path / "new.csv"), "--append",
                              "--registry", str(reg), "--backend", "local"])  # fmt: skip
    assert res.exit_code == 0, res.output
    with Registry.open(reg) as r:
        v = r.get_version("store=2,brand=tropicana", 2)
        assert v.n_rows == int(key.sum())
        assert r.training_rows("store=2,brand=tropicana", 2)["week"].max() == pd.Timestamp(last)


def test_gc_keeps_training_rows_while_a_version_references_them(tmp_path: Path) -> None:
    df = linear_frame(1, 30)
    for i in range(3):
        train(spec_dict(), df.assign(y=df.y + i), tmp_path / "reg", backend="local")
    with Registry.open(tmp_path / "reg") as reg:
        kept = {v.data_sha256 for v in reg.list_versions("pid=0")}
        report = collect(reg, keep=1, grace_seconds=0, alias_grace_seconds=0)
        assert report.versions_deleted  # older versions went, their rows with them
        (v,) = [v for v in reg.list_versions("pid=0") if "production" in v.aliases]
        assert reg.artifacts.exists(v.data_sha256)
        gone = kept - {x.data_sha256 for x in reg.list_versions("pid=0")}
        assert gone and not any(reg.artifacts.exists(d) for d in gone)


def test_a_schema_1_registry_is_upgraded_in_place(tmp_path: Path) -> None:
    """A registry written before training rows were kept: opened, it gains the column, keeps
    every row, and appending to its partitions trains from the posted rows alone."""
    df = linear_frame(2, 30)
    train(spec_dict(), df, tmp_path / "reg", backend="local")
    db = tmp_path / "reg" / "registry.db"
    with sqlite3.connect(db) as conn:  # what manymodels 0.1 wrote
        conn.execute("ALTER TABLE model_versions DROP COLUMN data_sha256")
        conn.execute("ALTER TABLE model_versions DROP COLUMN signature")
        as_older_schema(conn.execute, "1")
    with Registry.open(tmp_path / "reg") as reg:
        assert reg.get_version("pid=0").data_sha256 is None
        assert reg.store.get_meta("schema_version") == t.SCHEMA_VERSION
        assert reg.count_partitions() == 3
    summary = train(spec_dict(), df[df.pid == 0], tmp_path / "reg", backend="local", append=True)
    assert summary.run.options["append"]["with_history"] == 0
    with Registry.open(tmp_path / "reg") as reg:
        assert reg.get_version("pid=0", 2).data_sha256 is not None


def test_append_builds_on_the_newest_version_promoted_or_not(tmp_path: Path) -> None:
    """Under a manual policy (or a kept champion) rows posted earlier live in the newest
    version only: building on production's rows lost them."""
    full = linear_frame(1, 40)
    spec = spec_dict(promotion={"policy": "manual"})
    train(spec, full[full.t < 30], tmp_path / "reg", backend="local")
    train(spec, full[(full.t >= 30) & (full.t < 35)], tmp_path / "reg", backend="local",
          append=True)  # fmt: skip
    train(spec, full[full.t >= 35], tmp_path / "reg", backend="local", append=True)
    with Registry.open(tmp_path / "reg") as reg:
        assert reg.get_version("pid=0").version == 1  # nothing promoted
        assert reg.training_rows("pid=0", 3)["t"].tolist() == list(range(40))


def test_appended_keys_are_matched_in_the_kept_rows_types(tmp_path: Path) -> None:
    """Keys trained as text ("7") and appended from a table read as numbers (7)."""
    df = linear_frame(1, 30).assign(pid="7")
    train(spec_dict(), df, tmp_path / "reg", backend="local")
    fix = df[df.t == 4].assign(pid=7, y=500.0)
    train(spec_dict(), fix, tmp_path / "reg", backend="local", append=True)
    with Registry.open(tmp_path / "reg") as reg:
        rows = reg.training_rows("pid=7", 2)
        assert len(rows) == 30 and rows.loc[rows.t == 4, "y"].tolist() == [500.0]


def test_a_posted_row_without_a_target_beside_a_kept_one_trains_with_lags(tmp_path: Path) -> None:
    """With lags, two rows of one period are refused: a posted row without a target at a
    time the kept rows hold is dropped (it corrects nothing), so the append trains — and
    kept rows that hold both from an older append are read as one period too."""
    spec = spec_dict(lags=[1])
    df = linear_frame(2, 30)
    train(spec, df, tmp_path / "reg", backend="local")
    new = df[(df.pid == 1) & (df.t == 29)].assign(y=np.nan)
    later = df[(df.pid == 1) & (df.t == 29)].assign(t=30, y=1.0)
    posted = pd.concat([new, later, later.assign(t=31, y=2.0)])
    summary = train(spec, posted, tmp_path / "reg", backend="local", append=True)
    assert summary.run.n_trained == 1 and not summary.failures
    assert summary.run.options["append"]["rows_without_target_ignored"] == 1
    with Registry.open(tmp_path / "reg") as reg:
        rows = reg.training_rows("pid=1", 2)
    assert rows["t"].tolist() == list(range(32))
    original = df.loc[(df.pid == 1) & (df.t == 29), "y"].tolist()
    assert rows.loc[rows.t == 29, "y"].tolist() == original
    doubled = pd.concat([rows, rows[rows.t == 3].assign(y=np.nan)], ignore_index=True)
    has = doubled["y"].notna().to_numpy()
    assert appending.one_row_per_period(doubled, ["pid", "t"], has)["t"].tolist() == list(range(32))
    both_missing = pd.DataFrame({"pid": [0, 0, 0], "t": [1, 1, 2], "y": [np.nan, np.nan, 5.0]})
    has = both_missing["y"].notna().to_numpy()
    kept = appending.one_row_per_period(both_missing, ["pid", "t"], has)
    assert kept.index.tolist() == [0, 2]  # one row of period 1 stays: lags count rows


def test_missing_target_error_still_fails_the_partition_of_an_empty_posted_target(
    tmp_path: Path,
) -> None:
    """``missing_target = "error"``: the posted row without a target is not quietly dropped
    beside the kept one; its partition fails, as any row without a target does."""
    spec = spec_dict(missing_target="error")
    df = linear_frame(2, 30)
    train(spec, df, tmp_path / "reg", backend="local")
    blank = df[(df.pid == 1) & (df.t == 7)].assign(y=np.nan)
    with pytest.raises(RunFailed) as failed:
        train(spec, blank, tmp_path / "reg", backend="local", append=True)
    (only,) = failed.value.summary.failures
    assert only.key == "pid=1" and "missing value" in only.message


def test_a_posted_word_in_the_target_does_not_replace_a_kept_value(tmp_path: Path) -> None:
    """``bad_rows = "drop"`` drops a row whose target cell holds a word: it must not replace
    the kept row of its period first, or the period's real value is gone for good."""
    spec = spec_dict(bad_rows="drop")
    df = linear_frame(1, 30)
    train(spec, df, tmp_path / "reg", backend="local")
    posted = tmp_path / "posted.csv"
    df[df.t == 7].assign(y="ERR").to_csv(posted, index=False)
    train(spec, posted, tmp_path / "reg", backend="local", append=True)
    with Registry.open(tmp_path / "reg") as reg:
        rows = reg.training_rows("pid=0", 2)
    assert rows.loc[rows.t == 7, "y"].astype(float).tolist() == df.loc[df.t == 7, "y"].tolist()


@pytest.mark.parametrize("missing_target", ["drop", "error"])
@pytest.mark.parametrize("column", ["x0", "y"])
def test_a_posted_stray_word_with_lags_keeps_the_kept_row_of_its_period(
    tmp_path: Path, column: str, missing_target: str
) -> None:
    """A posted row of period 7 with a stray word in a feature replaced the kept row of that
    period, and bad_rows = "drop" then left it without a target: period 7's real values were
    gone from version 2's rows, and from every version after it (27 rows trained of 29).
    Under missing_target = "error", the kept row and the stray one (kept in place for the
    lags) were two rows of one period, and the append failed ("hold two or more rows at one
    time"), for a stray word in the target too. Now the stray row is dropped, as the spec
    says, and the kept row stays."""
    spec = spec_dict(bad_rows="drop", lags=[1], missing_target=missing_target)
    df = linear_frame(1, 30)
    train(spec, df, tmp_path / "reg", backend="local")
    posted = tmp_path / "posted.csv"
    df[df.t == 7].assign(**{column: "ERR"}).to_csv(posted, index=False)
    summary = train(spec, posted, tmp_path / "reg", backend="local", append=True)
    assert summary.run.options["append"]["rows_without_target_ignored"] == 1
    with Registry.open(tmp_path / "reg") as reg:
        rows = reg.training_rows("pid=0", 2)
        assert reg.get_version("pid=0", 2).n_rows == 29  # all but the first (no lag 1)
    pd.testing.assert_frame_equal(
        rows.sort_values("t").reset_index(drop=True)[list(df.columns)].astype(float),
        df.astype(float), check_dtype=False,
    )  # fmt: skip


def test_a_fractional_time_is_refused_not_cut_to_a_kept_whole_one(tmp_path: Path) -> None:
    """Kept times 0…29 are integers: a posted 5.5 was cast to 5 and replaced that period's
    real value."""
    df = linear_frame(1, 30)
    train(spec_dict(), df, tmp_path / "reg", backend="local")
    posted = df[df.t == 5].assign(t=5.5, y=999.0)
    with pytest.raises(DataError, match=r"'t' holds 5\.5, not a whole number"):
        train(spec_dict(), posted, tmp_path / "reg", backend="local", append=True)
    with Registry.open(tmp_path / "reg") as reg:
        assert [v.version for v in reg.list_versions("pid=0")] == [1]


def test_new_rows_without_a_kept_column_are_refused_when_every_column_is_a_feature(
    tmp_path: Path,
) -> None:
    """A spec without ``features`` trains on every other column: a batch lacking ``x1`` made
    the next version train on ``x0`` alone, and ``x1`` vanished from the kept rows."""
    spec = spec_dict()
    assert "features" not in spec
    df = linear_frame(1, 30)
    train(spec, df, tmp_path / "reg", backend="local")
    posted = df[df.t >= 28].assign(t=lambda d: d["t"] + 2).drop(columns=["x1"])
    with pytest.raises(DataError, match="lack column\\(s\\) 'x1' that the kept rows hold"):
        train(spec, posted, tmp_path / "reg", backend="local", append=True)


def test_a_word_in_the_target_is_refused_under_bad_rows_error(tmp_path: Path) -> None:
    """With the default ``bad_rows = "error"`` a word in a posted target is an error, as in any
    table: it is not read as "no target" and dropped beside the kept row."""
    df = linear_frame(1, 30)
    train(spec_dict(), df, tmp_path / "reg", backend="local")
    posted = tmp_path / "posted.csv"
    df[df.t == 7].assign(y="ERR").to_csv(posted, index=False)
    with pytest.raises(DataError, match="'y'"):
        train(spec_dict(), posted, tmp_path / "reg", backend="local", append=True)


def test_a_word_among_numbers_names_the_appended_file_and_its_own_row(tmp_path: Path) -> None:
    """Checked on the merged table, the error named ``<DataFrame>`` and row 61 of a file of
    two rows (the kept rows counted first)."""
    df = linear_frame(1, 30)
    train(spec_dict(), df, tmp_path / "reg", backend="local")
    posted = tmp_path / "posted.csv"
    new = df[df.t >= 28].assign(t=lambda d: d.t + 2)
    new["x1"] = new["x1"].astype(object)
    new.iloc[1, new.columns.get_loc("x1")] = "abc"
    new.to_csv(posted, index=False)
    with pytest.raises(DataError) as caught:
        train(spec_dict(), posted, tmp_path / "reg", backend="local", append=True)
    assert str(caught.value).startswith(
        f"{posted}: feature 'x1' holds numbers in the kept rows, and 1 new value(s) are not, "
        "the first 'abc' in data row 2 (counting from 1)"
    )


def test_keys_as_text_numbers_match_kept_integers_and_a_repeated_index_is_fine(
    tmp_path: Path,
) -> None:
    """A key read as text ``"0"`` is the kept integer 0 (not "a fractional value"), and rows
    whose index repeats labels (a ``pd.concat`` written to Parquet) are read by position."""
    spec = spec_dict(lags=[1])
    df = linear_frame(1, 30)
    train(spec, df, tmp_path / "reg", backend="local")
    new = df[df.t >= 28].assign(t=lambda d: d["t"] + 2, pid="0")
    blank = df[df.t == 29].assign(y=np.nan, pid="0")
    posted = pd.concat([new, blank])  # index labels 28, 29, 29
    assert posted.index.duplicated().any()
    summary = train(spec, posted, tmp_path / "reg", backend="local", append=True)
    assert summary.run.n_trained == 1
    assert summary.run.options["append"]["rows_without_target_ignored"] == 1


def test_one_row_per_period_reads_rows_by_position() -> None:
    """The router hands it the posted rows as read: a Parquet file written from a
    ``pd.concat`` repeats index labels (``reindex`` raised, a 500)."""
    frame = pd.DataFrame(
        {"pid": [0, 0, 0, 0], "t": [1, 2, 1, 3], "y": [1.0, 2.0, np.nan, 3.0]}, index=[0, 1, 0, 1]
    )
    kept = appending.one_row_per_period(frame, ["pid", "t"], frame["y"].notna().to_numpy())
    assert kept["t"].tolist() == [1, 2, 3] and kept["y"].notna().all()


def test_appended_times_of_another_kind_than_the_kept_rows_are_refused(tmp_path: Path) -> None:
    """Cast to the kept rows' dates, the number 20250224 became an instant of 1970 and
    trained; dates on period numbers, or an offset on naive times, failed in the middle."""
    df = linear_frame(1, 30)
    dated = df.assign(t=pd.date_range("2025-01-06", periods=30, freq="W-MON"))
    train(spec_dict(), dated, tmp_path / "dated", backend="local")
    train(spec_dict(), df, tmp_path / "periods", backend="local")
    new = dated.tail(2)
    cases = [
        ("dated", new.assign(t=20250224), r"holds 20250224, a number, in data row 1 \(counting"),
        ("dated", new.assign(t="2025-08-04T00:00:00+05:00"), "holds times with a UTC offset"),
        (
            "periods",
            new,
            r"holds dates \(2025-07-21 00:00:00\) in data row 1 \(counting from 1\), where",
        ),
        ("periods", df.tail(1).assign(t=True), "holds True, a boolean"),  # was period 1
        ("periods", df.tail(1).assign(t=31.5), "holds 31.5, not a whole number"),
    ]
    for registry, rows, says in cases:
        with pytest.raises(DataError, match=says):
            train(spec_dict(), rows, tmp_path / registry, backend="local", append=True)
    with Registry.open(tmp_path / "dated") as reg:
        assert reg.get_partition("pid=0").latest_version == 1  # nothing trained


def test_appended_times_of_the_kept_rows_kind_in_another_unit_or_zone_are_taken(
    tmp_path: Path,
) -> None:
    """What the check must never refuse: zoned times in another zone (the same instants),
    other datetime units, period numbers as other integer or float types."""
    df = linear_frame(1, 30)
    zoned = df.assign(t=pd.date_range("2025-01-06", periods=30, freq="W-MON", tz="UTC"))
    train(spec_dict(), zoned, tmp_path / "zoned", backend="local")
    later = zoned.tail(2).assign(t=zoned.t.tail(2).dt.tz_convert("Asia/Kolkata"))
    train(spec_dict(), later.assign(y=later.y + 1), tmp_path / "zoned", backend="local",
          append=True)  # fmt: skip
    train(spec_dict(), df, tmp_path / "periods", backend="local")
    for kind in ("int32", "float64", "uint16"):
        new = df.tail(2).astype({"t": kind})
        train(spec_dict(), new, tmp_path / "periods", backend="local", append=True)
    with Registry.open(tmp_path / "zoned") as reg:
        assert reg.get_partition("pid=0").latest_version == 2
    with Registry.open(tmp_path / "periods") as reg:
        assert reg.get_partition("pid=0").latest_version == 4


def test_a_categorical_column_kept_as_numbers_refuses_words_saying_so(tmp_path: Path) -> None:
    """A column declared categorical and coded 1, 2, 3 in the kept rows, posted as a word: the
    partition failed in the encoder ("uniformly strings or numbers"); refused first now,
    saying the two ways it is written."""
    df = linear_frame(1, 30).assign(kind=lambda d: d.t % 3 + 1)
    spec = spec_dict(features=["x0", "x1", "kind"], categorical=["kind"])
    train(spec, df, tmp_path / "reg", backend="local")
    posted = tmp_path / "posted.csv"
    df[df.t >= 28].assign(t=lambda d: d.t + 2, kind="new_shop_type").to_csv(posted, index=False)
    with pytest.raises(DataError) as caught:
        train(spec, posted, tmp_path / "reg", backend="local", append=True)
    assert str(caught.value).startswith(
        f"{posted}: categorical 'kind' is written as numbers in the kept rows, and as words in "
        "2 new row(s), the first 'new_shop_type' in data row 1 (counting from 1)"
    )


def _labelled(tmp_path: Path, *, above: str, below: str) -> tuple[dict[str, Any], Path]:
    """A registry of two partitions classifying their rows as ``above`` or ``below`` their
    median target, and its spec."""
    df = linear_frame(2, 30)
    df["label"] = np.where(df["y"] > df.groupby("pid")["y"].transform("median"), above, below)
    spec = spec_dict(
        target="label", task="classification", metric="neg_log_loss",
        candidates=[{"estimator": "sklearn.linear_model.LogisticRegression"}],
    )  # fmt: skip
    root = tmp_path / "registry"
    train(spec, df.drop(columns=["y"]), root, backend="local")
    return spec, root


def test_an_appended_label_no_kept_version_knows_is_refused(tmp_path: Path) -> None:
    """One mistyped label ("Yes" beside "yes") appended made that partition a model of a
    third class, trained on one row, beside partitions answering two: refused, naming the
    file's row, before anything is written. A label the versions know appends as before."""
    spec, root = _labelled(tmp_path, above="yes", below="no")
    new = pd.DataFrame({"pid": [1, 1], "t": [30, 31], "x0": [0.1, 0.2], "x1": [0.3, -0.1],
                        "label": ["no", "Yes"]})  # fmt: skip
    new.to_csv(tmp_path / "new.csv", index=False)
    with pytest.raises(
        DataError,
        match=r"new.csv: target 'label' is 'Yes' in data row 2 \(counting from 1\), not one of "
        r"the classes the kept versions know \('no', 'yes'\)",
    ):
        train(spec, tmp_path / "new.csv", root, backend="local", append=True)
    with Registry(root) as reg:
        assert [v.version for v in reg.list_versions("pid=1")] == [1]
    new.assign(label=["no", "yes"]).to_csv(tmp_path / "fixed.csv", index=False)
    train(spec, tmp_path / "fixed.csv", root, backend="local", append=True)
    with Registry(root) as reg:
        assert max(v.version for v in reg.list_versions("pid=1")) == 2


def test_rows_appended_to_a_frames_category_column_keep_it_categorical(tmp_path: Path) -> None:
    """Trained from a frame whose numbers were a ``category`` column (one-hot), the appended
    rows (plain numbers, or JSON) trained them as a number: the champion could not be
    evaluated on the challenger's columns, and the new version was never promoted."""
    df = linear_frame(2, 40)
    df["band"] = (df["t"] % 3).astype("category")
    spec = spec_dict(features=["x0", "band"])
    root = tmp_path / "registry"
    train(spec, df, root, backend="local")
    new = linear_frame(2, 44).query("t >= 40").assign(band=lambda d: d["t"] % 3)
    train(spec, new, root, backend="local", append=True)
    with Registry(root) as reg:
        v1, v2 = sorted(reg.list_versions("pid=1"), key=lambda v: v.version)
    assert v1.feature_schema["categorical"] == v2.feature_schema["categorical"] == ["band"]
    assert v2.evaluation["champion_score"] is not None, v2.evaluation


def test_an_appended_label_two_classes_match_is_refused(tmp_path: Path) -> None:
    """``1`` appended to a table whose classes are the texts ``"01"`` and ``"1"`` is both by
    value: it was appended as a number among texts; refused now, as a retrain over HTTP
    refuses it."""
    spec, root = _labelled(tmp_path, above="1", below="01")
    new = pd.DataFrame({"pid": [1, 1], "t": [30, 31], "x0": [0.1, 0.2], "x1": [0.3, -0.1],
                        "label": ["01", 1]})  # fmt: skip
    with pytest.raises(
        DataError,
        match=r"target 'label' is 1 in data row 2 \(counting from 1\), more than one of the "
        r"classes the kept versions know \('01', '1'\)",
    ):
        train(spec, new, root, backend="local", append=True)
    with Registry(root) as reg:
        assert [v.version for v in reg.list_versions("pid=1")] == [1]


def test_appended_csv_rows_of_text_codes_join_their_partitions(tmp_path: Path) -> None:
    """Trained from Parquet keyed by codes '007' and '012': rows appended from a CSV were read
    as 7 and 12, joined no kept rows ("with_history": 0) and were partitions of their own
    ('pid=7', skipped for 2 rows): 007's new weeks never reached its model. They are now read
    as the registry's keys hold them."""
    df = linear_frame(2, 30)
    df["pid"] = df["pid"].map({0: "007", 1: "012"})
    df.to_parquet(tmp_path / "rows.parquet", index=False)
    spec = spec_dict(features=["x0", "x1"])
    train(spec, tmp_path / "rows.parquet", tmp_path / "reg", backend="local")
    df[df.t >= 28].assign(t=lambda d: d["t"] + 2).to_csv(tmp_path / "new.csv", index=False)
    summary = train(spec, tmp_path / "new.csv", tmp_path / "reg", backend="local", append=True)
    assert summary.run.options["append"]["with_history"] == 2
    assert summary.run.n_trained == 2
    with Registry.open(tmp_path / "reg") as reg:
        assert reg.get_version("pid=007", 2).n_rows == 32  # 30 kept + 2 appended
        assert [p.key for p in reg.list_partitions(limit=10)][1:] == ["pid=007", "pid=012"]


@pytest.mark.parametrize("given", ["url", "empty_directory", "no_key_column"])
def test_an_unreadable_table_to_append_makes_no_registry(tmp_path: Path, given: str) -> None:
    """An append opened the registry (to read its kept rows) before it read the new rows: a
    URL (a table read whole is local), an empty directory or a table without the key columns
    made ``nd/reg``, an empty registry, then said what was wrong. They are read first now."""
    (tmp_path / "rows").mkdir()
    linear_frame(1, 5).drop(columns="pid").to_csv(tmp_path / "rows.csv", index=False)
    data, said = {
        "url": ("s3://bucket/rows.csv", "a table read whole comes from a path"),
        "empty_directory": (str(tmp_path / "rows"), "the table has no rows to append"),
        "no_key_column": (str(tmp_path / "rows.csv"), r"missing column\(s\) 'pid'"),
    }[given]
    with pytest.raises(DataError, match=f"^{re.escape(data)}: {said}"):
        train(spec_dict(), data, tmp_path / "nd" / "reg", backend="local", append=True)
    assert not (tmp_path / "nd").exists()
