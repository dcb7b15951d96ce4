"""Training from a Parquet directory (``manymodels.datasets``): the same versions as the same
rows in one file, whether the directory is flat, hive-partitioned or behind an fsspec URL, and
bad input in one file is one error naming that file, before anything is registered."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.datasets import is_dataset
from manymodels.partition import FALLBACK_KEY
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.samples import synthetic

SPEC: dict[str, Any] = {
    "name": "parquet-dir",
    "partition_by": ["pid"],
    "target": "y",
    "time_column": "t",
    "features": ["x0", "x1", "x2"],
    "calendar": ["month", "day_of_week"],
    "lags": [1, 2],
    "min_rows": 5,
    "validation": {"strategy": "last", "size": 6},
    "candidates": [{"estimator": "sklearn.linear_model.Ridge", "params": {"alpha": [0.1, 10.0]}}],
}


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    """12 partitions × 30 dated rows (one too small to train), shuffled so that every file of
    a flat directory holds some rows of every partition."""
    df = synthetic(12, 30, n_features=3, seed=3)
    df["t"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(df["t"] * 7, unit="D")
    df = df[~((df.pid == 11) & (df.t > pd.Timestamp("2024-02-01")))]  # pid=11: 5 rows
    return df.sample(frac=1.0, random_state=0).reset_index(drop=True)


def write_flat(df: pd.DataFrame, where: Path, files: int = 3) -> Path:
    where.mkdir()
    for i, part in enumerate(np.array_split(np.arange(len(df)), files)):
        df.iloc[part].to_parquet(where / f"part-{i}.parquet", index=False)
    (where / "_SUCCESS").touch()  # left out, as Spark writes it
    return where


def production(registry: Path) -> dict[str, tuple[str, str]]:
    """Each partition's production version: its artifact sha256 and data fingerprint."""
    with Registry.open(registry) as reg:
        keys = [p.key for p in reg.list_partitions(limit=1000)]
        info = reg.store.production_info(keys)
        return {k: (v.artifact_sha256, reg.get_version(k, v.version).data_fingerprint)
                for k, v in info.items()}  # fmt: skip


@pytest.mark.slow  # four runs: ~18 s on a busy 2-core machine
def test_flat_hive_and_url_directories_train_the_versions_of_one_file(
    rows: pd.DataFrame, tmp_path: Path
) -> None:
    one = tmp_path / "one.parquet"
    rows.to_parquet(one, index=False)
    flat = write_flat(rows, tmp_path / "flat")
    hive = tmp_path / "hive"  # pid=0/…, pid=1/…: the key lives in the directory names
    ds.write_dataset(pa.Table.from_pandas(rows, preserve_index=False), hive, format="parquet",
                     partitioning=["pid"], partitioning_flavor="hive")  # fmt: skip
    import fsspec

    memory = fsspec.filesystem("memory")
    for i, part in enumerate(np.array_split(np.arange(len(rows)), 2)):
        with memory.open(f"/h3-parquet/sales/part-{i}.parquet", "wb") as f:
            rows.iloc[part].to_parquet(f, index=False)

    expected = train(SPEC, one, tmp_path / "reg-one", backend="local")
    assert expected.run.n_trained == 11 and expected.run.n_skipped == 1
    want = production(tmp_path / "reg-one")
    assert FALLBACK_KEY in want
    for name, source in [("flat", flat), ("hive", hive), ("url", "memory://h3-parquet/sales/")]:
        got = train(SPEC, source, tmp_path / f"reg-{name}", backend="local")
        assert got.run.data_fingerprint == expected.run.data_fingerprint, name
        assert (got.run.n_trained, got.run.n_skipped) == (11, 1), name
        assert production(tmp_path / f"reg-{name}") == want, name


@pytest.mark.slow  # three runs: ~10 s on a busy 2-core machine
def test_named_and_changed_only_runs_read_only_their_chunks(
    rows: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flat = write_flat(rows, tmp_path / "flat")
    shuffles = tmp_path / "tmp"
    shuffles.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(shuffles))
    train(SPEC, flat, tmp_path / "reg", backend="local")
    again = train(SPEC, flat, tmp_path / "reg", backend="local", only=["pid=3"])
    assert (again.run.n_partitions, again.run.n_trained) == (1, 1)
    assert again.versions == {"pid=3": 2}
    unchanged = train(SPEC, flat, tmp_path / "reg", backend="local", changed_only=True)
    # the driver's fingerprints are the versions' own, and pid=11 (too small, no version) was
    # skipped on these very rows: nothing is due (dec03dc; it was retrained at every run)
    assert (unchanged.run.n_partitions, unchanged.run.n_trained) == (0, 0)
    assert unchanged.run.options["unchanged"] == 12, unchanged.run.options
    assert list(shuffles.iterdir()) == []  # each run's shuffled copy is gone with it


@pytest.mark.slow  # Ray
def test_a_directory_trains_on_ray_as_in_memory(
    ray_session: Any, rows: pd.DataFrame, tmp_path: Path
) -> None:
    one = tmp_path / "one.parquet"
    rows.to_parquet(one, index=False)
    flat = write_flat(rows, tmp_path / "flat")
    train(SPEC, one, tmp_path / "reg-one", backend="ray")
    summary = train(SPEC, flat, tmp_path / "reg-flat", backend="ray")
    assert summary.run.n_trained == 11
    assert production(tmp_path / "reg-flat") == production(tmp_path / "reg-one")


def train_command(data: Path, tmp_path: Path, extra: str = "") -> Any:
    """``manymodels train`` of a small Ridge spec (and ``extra`` lines) over ``data``, into
    ``tmp_path / "reg"``."""
    spec = tmp_path / "spec.toml"
    spec.write_text(
        'name = "p"\npartition_by = ["pid"]\ntarget = "y"\ntime_column = "t"\n'
        f'features = ["x0", "x1", "x2"]\n{extra}[[candidates]]\n'
        'estimator = "sklearn.linear_model.Ridge"\n'
    )
    return CliRunner().invoke(app, ["train", str(spec), str(data), "--registry",
                                    str(tmp_path / "reg"), "--backend", "local"])  # fmt: skip


def one_error_line(result: Any) -> str:
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return str(lines[0])


@pytest.mark.parametrize(
    ("spoil", "expected"),
    [
        (lambda df: df.assign(y=df["y"].map("{:.3f}".format)), "column 'y' holds text here"),
        (
            lambda df: df.assign(pid=df["pid"].where(df.index != df.index[0])),
            "partition column 'pid' has 1 missing value(s)",
        ),
        (lambda df: df.drop(columns="x1"), "missing column 'x1'"),
    ],
    ids=["text-target", "missing-key", "missing-column"],
)
def test_bad_input_in_one_file_is_one_error_naming_it(
    rows: pd.DataFrame, tmp_path: Path, spoil: Any, expected: str
) -> None:
    flat = write_flat(rows, tmp_path / "flat")
    bad = flat / "part-1.parquet"
    spoil(pd.read_parquet(bad)).to_parquet(bad, index=False)
    result = train_command(flat, tmp_path)
    line = one_error_line(result)
    assert str(bad) in line and expected in line, line
    assert not (tmp_path / "reg").exists()  # nothing registered, not even a run


def test_what_counts_as_a_dataset(tmp_path: Path) -> None:
    (tmp_path / "a.parquet").touch()
    assert is_dataset(tmp_path) and is_dataset(str(tmp_path))
    assert is_dataset("s3://bucket/sales/") and is_dataset("gs://b/sales.parquet")
    assert not is_dataset(tmp_path / "a.parquet") and not is_dataset("s3://bucket/sales.csv")
    assert not is_dataset(pd.DataFrame({"a": [1]}))


def test_a_file_that_is_not_parquet_is_one_error_naming_it(
    rows: pd.DataFrame, tmp_path: Path
) -> None:
    flat = write_flat(rows, tmp_path / "flat")
    (flat / "part-7.parquet").write_bytes(b"PAR1garbage")
    result = train_command(flat, tmp_path)
    line = one_error_line(result)
    assert str(flat / "part-7.parquet") in line and "not a readable Parquet file" in line, line
    assert not (tmp_path / "reg").exists()


def test_files_that_differ_only_as_writers_differ_train_as_one_table(
    rows: pd.DataFrame, tmp_path: Path
) -> None:
    """Timestamps in ms in one file and ns in the others, and a pandas category key in a
    third: the same rows, written differently, train the versions of one file."""
    import pyarrow.parquet as pq

    flat = write_flat(rows, tmp_path / "flat")
    table = pa.Table.from_pandas(pd.read_parquet(flat / "part-0.parquet"), preserve_index=False)
    column = table.schema.get_field_index("t")
    pq.write_table(table.set_column(column, "t", table["t"].cast(pa.timestamp("ms"))),
                   flat / "part-0.parquet")  # fmt: skip
    third = pd.read_parquet(flat / "part-2.parquet")
    third.assign(pid=third["pid"].astype("category")).to_parquet(
        flat / "part-2.parquet", index=False
    )
    one = tmp_path / "one.parquet"
    rows.to_parquet(one, index=False)
    train(SPEC, one, tmp_path / "reg-one", backend="local")
    summary = train(SPEC, str(flat), tmp_path / "reg", backend="local")
    assert summary.run.n_trained == 11
    assert production(tmp_path / "reg") == production(tmp_path / "reg-one")


def test_an_empty_directory_is_one_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = train_command(tmp_path / "empty", tmp_path)
    assert "no Parquet files in it" in one_error_line(result)
    assert not (tmp_path / "reg").exists()


def test_hive_files_that_also_hold_the_key_column_train_as_one_file(
    rows: pd.DataFrame, tmp_path: Path
) -> None:
    """Files written whole and filed under ``pid=3/`` hold the key column too; Arrow types the
    directory's key (int32) apart from the files' (int64) and refused to merge them."""
    one = tmp_path / "one.parquet"
    rows.to_parquet(one, index=False)
    hive = tmp_path / "hive"
    for pid, part in rows.groupby("pid"):
        (hive / f"pid={pid}").mkdir(parents=True)
        part.to_parquet(hive / f"pid={pid}" / "part-0.parquet", index=False)  # pid kept inside
    expected = train(SPEC, one, tmp_path / "reg-one", backend="local")
    got = train(SPEC, hive, tmp_path / "reg-hive", backend="local")
    assert got.run.data_fingerprint == expected.run.data_fingerprint
    assert production(tmp_path / "reg-hive") == production(tmp_path / "reg-one")


def test_the_shuffled_copy_lives_under_a_given_url_and_goes_with_the_run(
    rows: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``shuffle_dir`` (``--shuffle-dir``): the bucketed copy is written and read under any
    fsspec URL — where every node of a cluster reads it — and nothing is left there, nor in
    the local temporary directory."""
    import fsspec

    flat = write_flat(rows, tmp_path / "flat")
    local = tmp_path / "tmp"
    local.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(local))
    expected = train(SPEC, flat, tmp_path / "reg-local", backend="local")
    got = train(SPEC, flat, tmp_path / "reg-url", backend="local", shuffle_dir="memory://tmp/mm")
    assert got.run.data_fingerprint == expected.run.data_fingerprint
    assert production(tmp_path / "reg-url") == production(tmp_path / "reg-local")
    memory = fsspec.filesystem("memory")
    assert memory.exists("/tmp/mm") and memory.ls("/tmp/mm") == []  # written there, then removed
    assert list(local.iterdir()) == []


def clicks(users: int = 12, days: int = 20) -> pd.DataFrame:
    """``users`` × ``days`` of two features and a click: user 0 never clicks, user 1 always
    does, the last user has 4 days (below ``min_rows``: a smoothed constant of the prior)."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, users, days))
    y = rng.random((users, days)) < 1 / (1 + np.exp(-(2.0 * x[0] - x[1])))
    y[:, :2] = [True, False]
    y[0], y[1] = False, True
    df = pd.DataFrame({
        "user": np.repeat(np.arange(users), days), "day": np.tile(np.arange(days), users),
        "x1": x[0].ravel(), "x2": x[1].ravel(), "clicked": y.ravel().astype(np.int64),
    })  # fmt: skip
    return df[(df.user != users - 1) | (df.day < 4)].reset_index(drop=True)


CLICKS: dict[str, Any] = {
    "name": "clicks-dir",
    "task": "classification",
    "partition_by": ["user"],
    "target": "clicked",
    "time_column": "day",
    "features": ["x1", "x2"],
    "metric": "neg_log_loss",
    "min_rows": 8,
    "validation": {"strategy": "last", "size": 5},
    "candidates": [{"estimator": "sklearn.linear_model.LogisticRegression", "scale": True}],
}


def test_classification_streams_with_the_whole_tables_class_prior(tmp_path: Path) -> None:
    """A classification spec reads a directory batch by batch too, and its versions are those
    of the same rows in one file: every chunk and the fallback train with the whole table's
    class prior (classes, rates, smoothing strength), counted per partition as batches pass —
    a chunk's own prior would give single-class and small partitions other probabilities."""
    from manymodels.datasets import streams
    from manymodels.spec import Spec

    assert streams(Spec.from_dict(CLICKS))
    df = clicks()
    one = tmp_path / "one.parquet"
    df.to_parquet(one, index=False)
    flat = write_flat(df.sample(frac=1.0, random_state=1).reset_index(drop=True), tmp_path / "flat")
    expected = train(CLICKS, one, tmp_path / "reg-one", backend="local")
    got = train(CLICKS, flat, tmp_path / "reg-flat", backend="local")
    assert expected.run.n_failed == 0 and expected.chosen.get("single_class") == 2, expected.chosen
    assert got.run.data_fingerprint == expected.run.data_fingerprint
    assert got.chosen == expected.chosen
    assert production(tmp_path / "reg-flat") == production(tmp_path / "reg-one")
    with Registry.open(tmp_path / "reg-flat") as reg:  # more than one chunk: the prior mattered
        assert len({reg.get_version(f"user={u}").data_sha256 for u in range(12)}) > 1


def test_a_file_whose_target_is_all_missing_is_that_partitions_problem(
    rows: pd.DataFrame, tmp_path: Path
) -> None:
    """A file holding only one partition, whose target is NaN in every row, fails that
    partition alone, as in memory: not the whole dataset (JSON nulls, with no dtype at all,
    are refused whole — tests/serving/test_router_retrain.py)."""
    where = tmp_path / "files"
    where.mkdir()
    rows[rows.pid != 3].to_parquet(where / "a.parquet", index=False)
    rows[rows.pid == 3].assign(y=np.nan).to_parquet(where / "b.parquet", index=False)
    result = train_command(where, tmp_path)
    assert result.exit_code == 0, result.stderr
    with Registry.open(tmp_path / "reg") as reg:
        (run,) = reg.list_runs()
        outcomes = {o.key: o for o in reg.store.run_outcomes(run.run_id)}
    assert outcomes["pid=3"].status in ("failed", "skipped"), outcomes["pid=3"]
    assert outcomes["pid=0"].status == "trained" and len(outcomes) == 13  # 12 and the fallback


def test_two_rows_of_one_period_fail_their_bucket_as_data_not_as_a_lost_task(
    rows: pd.DataFrame, tmp_path: Path
) -> None:
    """A directory is checked a bucket at a time, in the tasks: the partitions of the bucket
    holding two rows of one period (the spec has lags) fail with that reason — not as a task
    lost to infrastructure, which a resume would retry for ever."""
    doubled = pd.concat([rows, rows[rows.pid == 1].iloc[[0]]], ignore_index=True)
    result = train_command(write_flat(doubled, tmp_path / "files"), tmp_path, "lags = [1]\n")
    with Registry.open(tmp_path / "reg") as reg:
        (run,) = reg.list_runs()
        outcomes = {o.key: o for o in reg.store.run_outcomes(run.run_id)}
    assert not [o for o in outcomes.values() if o.status == "lost"], outcomes
    failed = outcomes["pid=1"]
    assert (failed.status, failed.error_type) == ("failed", "DataError")
    assert failed.message.startswith(
        "rows of this bucket: 1 partition(s) hold two or more rows at one time, e.g. 'pid=1' at "
    ), failed.message
    assert result.exit_code == 1  # the fallback's sample holds the two rows too
    assert result.stderr.startswith(
        "error: the fallback model failed: DataError: the fallback's sample of every bucket: "
        "1 partition(s) hold two or more rows at one time"
    ), result.stderr
    # a resume trains nothing again, and the run stays failed for its fallback
    again = CliRunner().invoke(app, ["train", str(tmp_path / "spec.toml"), str(tmp_path / "files"),
                                     "--registry", str(tmp_path / "reg"), "--backend", "local",
                                     "--resume", run.run_id])  # fmt: skip
    assert again.exit_code == 1, again.output
    assert again.stderr.startswith("error: the fallback model failed: DataError:"), again.stderr
    with Registry.open(tmp_path / "reg") as reg:
        assert reg.get_run(run.run_id).status == "failed"


def test_whole_partitions_take_about_the_share_and_never_none() -> None:
    """The streamed fallback's sample of whole partitions: about ``share`` of a bucket's
    rows, at most one partition over it, and one partition even when each is larger than
    the share (a bucket of few large partitions is not left out)."""
    from manymodels.shuffle import whole_partitions

    frame = pd.DataFrame({"k": np.repeat(np.arange(50), 20), "v": np.arange(1000)})
    rng = np.random.default_rng(0)
    taken = whole_partitions(frame, ["k"], 0.3, rng)
    assert 300 - 20 < len(taken) <= 300
    assert (taken.groupby("k").size() == 20).all()  # whole partitions only
    big = pd.DataFrame({"k": np.repeat(np.arange(3), 1000), "v": 0})
    one = whole_partitions(big, ["k"], 0.01, rng)
    assert len(one) == 1000 and one["k"].nunique() == 1
