"""Tests for manymodels.scoring: real registries trained from the samples, scored in process
(and once through real Ray), every prediction checked against the partition's own model."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from manymodels import samples
from manymodels.artifacts import LocalArtifactStore
from manymodels.cli import app
from manymodels.exceptions import ArtifactCorrupted, DataError
from manymodels.partition import FALLBACK_KEY
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.scoring import OUTPUT_COLUMNS, score, score_file, score_table

SALES_FEATURES = ["price", "deal", "feat"]
runner = CliRunner()


def spec_dict(samples_dir: Path, name: str, **changes: Any) -> dict[str, Any]:
    spec = tomllib.loads((samples_dir / f"{name}.toml").read_text())
    spec.update(changes)
    return spec


def only_first_candidate(samples_dir: Path, name: str, **changes: Any) -> dict[str, Any]:
    """The sample spec with its first (linear) candidate only: the tests score, not select."""
    spec = spec_dict(samples_dir, name, **changes)
    spec["candidates"] = spec["candidates"][:1]
    return spec


@pytest.fixture(scope="module")
def sales(samples_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The store_sales sample as is: 34 trained partitions, 2 short ones left to the fallback."""
    df = pd.read_csv(samples_dir / "store_sales.csv")
    root = tmp_path_factory.mktemp("scoring") / "reg"
    summary = train(samples_dir / "store_sales.toml", df, root, backend="local")
    assert (summary.run.n_trained, summary.run.n_skipped) == (34, 2)
    with Registry.open(root) as reg:
        trained = set(reg.store.alias_table("production")) - {FALLBACK_KEY}
    return {"root": root, "df": df, "trained": trained}


def expected(reg: Registry, key: str, X: Any, alias: str = "production") -> np.ndarray:
    return np.asarray(reg.load_model(key, alias=alias).model.predict(X))


def sales_key(row: Any) -> str:
    return f"store={row.store},brand={row.brand}"


# ------------------------------------------------------------------------------ predictions
def test_every_partition_scored_by_its_own_model_in_input_order(sales: dict[str, Any]) -> None:
    shuffled = sales["df"].sample(frac=1.0, random_state=7)
    result = score_table(shuffled, sales["root"], backend="local")
    out, summary = result.frame, result.summary

    assert list(out.columns) == [*shuffled.columns, *OUTPUT_COLUMNS]
    assert out.index.equals(shuffled.index)
    pd.testing.assert_frame_equal(out[list(shuffled.columns)], shuffled)
    assert (summary.rows, summary.partitions, summary.unscored_rows) == (2060, 36, 0)
    assert (summary.fallback_partitions, summary.fallback_rows) == (2, 20)
    assert summary.models == 35 and summary.chunks >= 1 and summary.seconds > 0

    keys = np.array([sales_key(r) for r in out[["store", "brand"]].itertuples()])
    with Registry.open(sales["root"]) as reg:
        for key in sorted(set(keys)):
            rows = out[keys == key]
            own = key in sales["trained"]
            model_key = key if own else FALLBACK_KEY
            version = reg.get_version(model_key).version
            assert (rows.partition == key).all()  # the row's own key, fallback or not
            assert (rows.served_by == model_key).all()
            assert (rows.model_version == version).all()
            assert (rows.fallback == (not own)).all()
            want = expected(reg, model_key, rows[SALES_FEATURES].to_numpy(dtype=np.float64))
            np.testing.assert_allclose(rows.prediction.to_numpy(), want, rtol=1e-12, atol=1e-9)


def test_unknown_keys_go_to_the_fallback(sales: dict[str, Any]) -> None:
    df = sales["df"]
    new = df.head(30).assign(store=99)  # a store the registry has never seen
    data = pd.concat([df.iloc[::7], new], ignore_index=True)
    out = score(data, sales["root"], backend="local")

    unknown = out[out.store == 99]
    assert len(unknown) == 30 and unknown.fallback.all()
    assert (unknown.served_by == FALLBACK_KEY).all()
    assert (unknown.partition == unknown.brand.map(lambda b: f"store=99,brand={b}")).all()
    with Registry.open(sales["root"]) as reg:
        want = expected(reg, FALLBACK_KEY, new[SALES_FEATURES].to_numpy(dtype=np.float64))
    np.testing.assert_allclose(unknown.prediction.to_numpy(), want, rtol=1e-12)
    assert not out[out.store != 99].served_by.eq(FALLBACK_KEY).all()


def test_many_fallback_rows_are_spread_over_chunks(sales: dict[str, Any]) -> None:
    rng = np.random.default_rng(0)
    n = 25_000
    data = pd.DataFrame(
        {
            "store": rng.integers(100, 400, n),
            "brand": rng.choice(["tropicana", "new_brand"], n),
            "price": rng.uniform(1.5, 4.0, n).round(2),
            "deal": rng.integers(0, 2, n),
            "feat": rng.integers(0, 2, n),
        }
    )
    result = score_table(data, sales["root"], backend="local")
    assert result.summary.fallback_rows == n and result.summary.chunks > 1
    with Registry.open(sales["root"]) as reg:
        want = expected(reg, FALLBACK_KEY, data[SALES_FEATURES].to_numpy(dtype=np.float64))
    np.testing.assert_allclose(result.frame.prediction.to_numpy(), want, rtol=1e-12)


def test_alias(sales: dict[str, Any], tmp_path: Path) -> None:
    root = tmp_path / "reg"
    shutil.copytree(sales["root"], root)
    key = sorted(sales["trained"])[0]
    df = sales["df"].iloc[::5]

    with pytest.raises(DataError, match="no partition in the registry has a 'nightly' model"):
        score_table(df, root, alias="nightly", backend="local")  # a typo, not all-fallback

    with Registry.open(root) as reg:
        reg.set_alias(key, "candidate", 1, reason="test")
    out = score(df, root, alias="candidate", backend="local")
    mine = out.served_by == key
    assert mine.any() and not out[mine].fallback.any()
    assert out[~mine].fallback.all()


def test_categorical_features_get_a_dataframe(samples_dir: Path, tmp_path: Path) -> None:
    df = pd.read_csv(samples_dir / "user_activity.csv")
    users = sorted(df.user_id.unique())[:6]
    df = df[df.user_id.isin(users)].reset_index(drop=True)
    train(only_first_candidate(samples_dir, "user_activity"), df, tmp_path / "reg", backend="local")

    shuffled = df.sample(frac=1.0, random_state=3)
    out = score(shuffled, tmp_path / "reg", backend="local")
    assert out.index.equals(shuffled.index) and not out.fallback.any()
    features = ["plan", "sessions", "pages", "notifications", "weekend"]
    with Registry.open(tmp_path / "reg") as reg:
        assert reg.get_version(f"user_id={users[0]}").feature_schema["input"] == "dataframe"
        for user in users:
            rows = out[out.user_id == user]
            want = expected(reg, f"user_id={user}", rows[features].reset_index(drop=True))
            np.testing.assert_allclose(rows.prediction.to_numpy(), want, rtol=1e-12)


def test_classification_predicts_class_labels(samples_dir: Path, tmp_path: Path) -> None:
    df = samples.sensor_readings(n_assets=3, readings=120)
    spec = only_first_candidate(samples_dir, "sensor_readings")
    train(spec, df, tmp_path / "reg", backend="local")

    out = score(df, tmp_path / "reg", backend="local")
    labels = set(df.failure_within_24h.unique().tolist())
    assert out.prediction.dtype == df.failure_within_24h.dtype
    assert set(out.prediction.unique().tolist()) <= labels
    with Registry.open(tmp_path / "reg") as reg:
        for asset in df.asset.unique():
            rows = out[out.asset == asset]
            X = rows[spec["features"]].to_numpy(dtype=np.float64)
            assert (rows.prediction.to_numpy() == expected(reg, f"asset={asset}", X)).all()


# ------------------------------------------------------------------------------ unknown keys
@pytest.fixture(scope="module")
def no_fallback(samples_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    df = pd.read_csv(samples_dir / "store_sales.csv")
    df = df[df.store <= 2]
    df = df[df.groupby(["store", "brand"]).week.transform("size") >= 20].reset_index(drop=True)
    spec = only_first_candidate(samples_dir, "store_sales", fallback={"enabled": False})
    root = tmp_path_factory.mktemp("nofallback") / "reg"
    train(spec, df, root, backend="local")
    return {"root": root, "df": df}


def test_unknown_keys_without_a_fallback_are_an_error(no_fallback: dict[str, Any]) -> None:
    df = no_fallback["df"]
    strangers = pd.concat([df.head(1).assign(store=100 + i) for i in range(12)])
    with pytest.raises(DataError, match="no fallback model") as e:
        score(pd.concat([df, strangers]), no_fallback["root"], backend="local")
    message = str(e.value)
    assert "'store=100,brand=" in message and "and 2 more" in message
    assert "store=111" not in message and "--skip-unknown" in message


def test_skip_unknown_leaves_predictions_empty(no_fallback: dict[str, Any]) -> None:
    df = no_fallback["df"]
    data = pd.concat([df.head(3).assign(store=77), df], ignore_index=True)
    result = score_table(data, no_fallback["root"], backend="local", skip_unknown=True)
    out = result.frame
    assert result.summary.unscored_rows == 3 and result.summary.fallback_rows == 0
    assert out.prediction.head(3).isna().all() and out.prediction.iloc[3:].notna().all()
    assert out.model_version.head(3).isna().all() and out.served_by.head(3).isna().all()
    assert out.partition.head(3).tolist() == [sales_key(r) for r in data.head(3).itertuples()]
    assert not out.fallback.any()
    with Registry.open(no_fallback["root"]) as reg:
        rows = out.iloc[3:][(out.iloc[3:].store == 1) & (out.iloc[3:].brand == "tropicana")]
        want = expected(reg, "store=1,brand=tropicana", rows[SALES_FEATURES].to_numpy(float))
    np.testing.assert_allclose(rows.prediction.to_numpy(), want, rtol=1e-12)


# ------------------------------------------------------------------------------ files and errors
@pytest.mark.parametrize("name", ["scores.parquet", "scores.csv"])
def test_writes_parquet_and_csv(sales: dict[str, Any], tmp_path: Path, name: str) -> None:
    data = sales["df"].sample(frac=0.5, random_state=1)
    path = tmp_path / "in.csv"
    data.to_csv(path, index=False)
    out = tmp_path / name
    summary = score_file(path, out, sales["root"], backend="local")

    back = pd.read_parquet(out) if name.endswith(".parquet") else pd.read_csv(out)
    assert list(back.columns) == [*data.columns, *OUTPUT_COLUMNS]
    assert len(back) == summary.rows == len(data)
    assert back.week.tolist() == data.week.tolist() and back.store.tolist() == data.store.tolist()
    direct = score(data, sales["root"], backend="local")
    np.testing.assert_allclose(back.prediction, direct.prediction, rtol=1e-12)
    assert back.fallback.tolist() == direct.fallback.tolist()
    for column in ("partition", "served_by"):
        assert back[column].astype(str).tolist() == direct[column].astype(str).tolist()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["in.csv", name])  # no temp file


@pytest.mark.parametrize("dropped", ["price", "brand"])
def test_missing_column_is_an_error_and_writes_nothing(
    sales: dict[str, Any], tmp_path: Path, dropped: str
) -> None:
    path = tmp_path / "in.csv"
    sales["df"].drop(columns=[dropped]).to_csv(path, index=False)
    out = tmp_path / "scores.parquet"
    with pytest.raises(DataError, match=f"'{dropped}'") as e:
        score_file(path, out, sales["root"], backend="local")
    assert str(path) in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_wrong_feature_type_and_taken_output_column(sales: dict[str, Any]) -> None:
    df = sales["df"]
    with pytest.raises(DataError, match="feature 'price' must be a number, not text 'cheap'"):
        score(df.assign(price="cheap"), sales["root"], backend="local")
    with pytest.raises(DataError, match="'prediction'"):
        score(df.assign(prediction=1.0), sales["root"], backend="local")
    clash = "already has column(s) 'partition', which scoring writes; drop or rename them"
    with pytest.raises(DataError, match=re.escape(clash)):
        score(df.assign(partition="x"), sales["root"], backend="local")
    # a [decision]'s columns are written only for a classifier that has one: here, kept
    kept = score(df.head(3).assign(decision_label="x"), sales["root"], backend="local")
    assert kept["decision_label"].tolist() == ["x"] * 3
    with pytest.raises(DataError, match="partition column 'store' has 1 missing"):
        score(df.astype({"store": float}).assign(store=lambda d: d.store.where(d.index > 0)),
              sales["root"], backend="local")  # fmt: skip


def test_score_and_predict_word_a_stray_word_alike(sales: dict[str, Any]) -> None:
    """Before, one cell "cheap" among a partition's prices: ``score`` said "feature 'price'
    must be numeric, as the model was trained on (found dtype object: 'cheap' in data row 3
    (counting from 1), 1 such value(s))" and ``LoadedModel.predict`` "row 2: feature 'price'
    must be a number, not text 'cheap'" (counting from 0). Now both say the same, from 1."""
    key, rows = _first_partition_rows(sales)
    rows = rows.astype({"price": object})
    rows.loc[2, "price"] = "cheap"
    said = "data row 3 (counting from 1): feature 'price' must be a number, not text 'cheap'"
    with pytest.raises(DataError) as scored:
        score(rows, sales["root"], backend="local")
    assert str(scored.value) == f"<DataFrame>: {said}"
    with Registry.open(sales["root"]) as reg, pytest.raises(DataError) as predicted:
        reg.load_model(key).predict(rows)
    assert str(predicted.value) == said


def _one_cell(cell: Any) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """The rows with ``cell`` as the third price, in an object column of numbers."""

    def put(rows: pd.DataFrame) -> pd.DataFrame:
        rows = rows.astype({"price": object})
        rows.loc[2, "price"] = cell
        return rows

    return put


def _as_text(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows with every price as text: pandas' ``str`` dtype (``astype(str)``, JSON
    strings)."""
    return rows.astype({"price": "str"})


@pytest.mark.parametrize(
    ("given", "said", "more"),
    [
        pytest.param(_one_cell("1.5"), "data row 3 (counting from 1): feature 'price' must be "
                     "a number, not text '1.5'", "", id="text-cell"),
        pytest.param(_one_cell(1 + 2j), "data row 3 (counting from 1): feature 'price' must "
                     "be a number, not complex (1+2j)", "", id="complex-cell"),
        pytest.param(_one_cell(b"12"), "data row 3 (counting from 1): feature 'price' must be "
                     "a number, not bytes b'12'", "", id="bytes-cell"),
        pytest.param(_as_text, "data row 1 (counting from 1): feature 'price' must be a "
                     "number, not text {first!r}", " (and 4 more such value(s))",
                     id="text-column"),
    ],
)  # fmt: skip
def test_score_names_a_number_features_first_cell_that_is_not_one_as_predict_does(
    sales: dict[str, Any], given: Callable[[pd.DataFrame], pd.DataFrame], said: str, more: str
) -> None:
    """Before, ``predict`` named the row and the cell where ``score`` said only "feature
    'price' must be numeric, as the model was trained on (found dtype …)": for the text
    "1.5", a complex cell or bytes among a partition's prices (which parsed as numbers when
    ``score`` looked for the stray cell, a complex one with numpy's ComplexWarning: ``dtype
    object``), and for a column of numbers given whole as text (``dtype str``)."""
    key, rows = _first_partition_rows(sales)
    rows = given(rows)
    said = said.format(first=rows.loc[0, "price"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's ComplexWarning is not the message
        with pytest.raises(DataError) as scored:
            score(rows, sales["root"], backend="local")
    assert str(scored.value) == f"<DataFrame>: {said}{more}"
    with Registry.open(sales["root"]) as reg, pytest.raises(DataError) as predicted:
        reg.load_model(key).predict(rows)
    assert str(predicted.value).startswith(said)


def test_score_of_durations_in_a_number_feature_says_how_train_does(
    sales: dict[str, Any],
) -> None:
    """Before: "feature 'price' must be numeric, as the model was trained on (found dtype
    timedelta64[ns])", where train names durations and says how to give them."""
    rows = sales["df"].head(5).copy()
    rows["price"] = pd.to_timedelta(rows["price"], unit="s")
    with pytest.raises(DataError) as scored:
        score(rows, sales["root"], backend="local")
    assert str(scored.value) == (
        "<DataFrame>: feature 'price' holds durations (dtype timedelta64[ns]): a model reads "
        "numbers or text; give them as numbers, such as seconds "
        "(df['price'].dt.total_seconds())"
    )


def test_an_integer_past_int64_is_scored_as_the_router_scores_it(
    sales: dict[str, Any], tmp_path: Path
) -> None:
    """A CSV cell of 30 digits in a numeric feature (pandas keeps the column as Python ints,
    objects) was "error: …: feature 'price' must be numeric (found dtype object)", naming no
    value, where /v1/predict scores the row (the integer as a float) and ``train`` trains on
    such a file. Now read as a float; one past float64 is refused naming value and row."""
    big = 123456789012345678901234567890
    rows = sales["df"].head(3).assign(price=[2, big, 3])  # integers only: no float read
    path = tmp_path / "in.csv"
    rows.to_csv(path, index=False)
    out = tmp_path / "out.csv"
    ran = runner.invoke(app, ["score", str(path), "--out", str(out), "--registry",
                              str(sales["root"])])  # fmt: skip
    assert ran.exit_code == 0, ran.output
    first = rows.iloc[1]
    with Registry.open(sales["root"]) as reg:
        X = np.array([[float(big), first.deal, first.feat]])
        want = expected(reg, sales_key(first), X)[0]
    assert pd.read_csv(out)["prediction"][1] == pytest.approx(want, rel=1e-12)
    rows["price"] = [2, 10**400, 3]  # (with a decimal in the column, pandas reads inf)
    rows.to_csv(path, index=False)
    ran = runner.invoke(app, ["score", str(path), "--out", str(out), "--registry",
                              str(sales["root"])])  # fmt: skip
    assert ran.exit_code == 2, ran.output
    assert ran.stderr == (
        f"error: {path}: feature 'price' is too large a number (10000000000000000000000000000"
        "00000000...) in data row 2 (counting from 1): it does not fit a float\n"
    )


def test_tampered_artifact_is_refused_and_writes_nothing(
    sales: dict[str, Any], tmp_path: Path
) -> None:
    root = tmp_path / "reg"
    shutil.copytree(sales["root"], root)
    key = sorted(sales["trained"])[3]
    with Registry.open(root) as reg:
        assert isinstance(reg.artifacts, LocalArtifactStore)
        path = reg.artifacts.path(reg.get_version(key).artifact_sha256)
    path.write_bytes(path.read_bytes()[:-1] + b"\x00")
    out = tmp_path / "scores.csv"
    with pytest.raises(ArtifactCorrupted, match=f"'{key}'.*tampered"):
        score_file(sales["df"], out, root, backend="local")
    assert not out.exists()

    data = tmp_path / "in.csv"
    sales["df"].to_csv(data, index=False)
    result = runner.invoke(
        app, ["score", str(data), "--out", str(out), "--registry", str(root), "--backend", "local"]
    )
    assert result.exit_code == 1 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "tampered" in lines[0]
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "reg"]


# ------------------------------------------------------------------------------ Ray and CLI
def test_through_ray_matches_in_process(sales: dict[str, Any], ray_session: Any) -> None:
    data = pd.concat([sales["df"], sales["df"].head(10).assign(store=55)]).sample(
        frac=1.0, random_state=2
    )
    local = score(data, sales["root"], backend="local")
    on_ray = score_table(data, sales["root"], backend="ray")
    assert on_ray.summary.chunks > 1 and on_ray.summary.backend == "ray"
    pd.testing.assert_frame_equal(on_ray.frame, local, check_exact=False, rtol=1e-12)
    assert ray_session.is_initialized()  # the shared session was used, not shut down


def test_a_small_table_is_scored_in_process_by_default(
    sales: dict[str, Any], tmp_path: Path
) -> None:
    """``score`` without a backend (``auto``): 36 partitions are scored in this process, with
    no Ray started — it defaulted to Ray, whose start-up took 6 s for a 5-row table."""
    data = tmp_path / "in.csv"
    sales["df"].head(5).to_csv(data, index=False)
    script = (
        "import sys; from manymodels.scoring import score; "
        f"out = score({str(data)!r}, {str(sales['root'])!r}); "
        "ray = sys.modules.get('ray'); "
        "print(len(out), ray is not None and ray.is_initialized())"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["5", "False"]


def test_cli_json_and_human_output(sales: dict[str, Any], tmp_path: Path) -> None:
    data = tmp_path / "in.parquet"
    sales["df"].to_parquet(data, index=False)
    out = tmp_path / "scores.csv"
    args = ["score", str(data), "--out", str(out), "--registry", str(sales["root"])]
    result = runner.invoke(app, [*args, "--backend", "local", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["rows"] == 2060 and payload["partitions"] == 36
    assert payload["fallback_rows"] == 20 and payload["out"] == str(out)
    assert payload["backend"] == "local"
    assert len(pd.read_csv(out)) == 2060

    result = runner.invoke(app, args)  # auto: 36 partitions score in this process
    assert result.exit_code == 0, result.output
    line = result.stdout.strip()
    assert "\n" not in line and line.startswith("scored 2,060 rows of 36 partitions")
    assert "20 by the fallback" in line and "at 'production'" in line and str(out) in line
    assert "s in this process → " in line


def test_scores_are_never_written_over_their_input(sales: dict[str, Any], tmp_path: Path) -> None:
    """``score mine.csv --out mine.csv`` replaced the input table with the scored one (and a
    second run then refused it): one error line, and the input as it was."""
    data = tmp_path / "mine.csv"
    sales["df"].to_csv(data, index=False)
    before = data.read_bytes()
    for out in (data, tmp_path / "." / "mine.csv"):
        result = runner.invoke(app, ["score", str(data), "--out", str(out),
                                     "--registry", str(sales["root"])])  # fmt: skip
        assert result.exit_code == 2 and "is the input table" in result.stderr, result.output
        assert len(result.stderr.strip().splitlines()) == 1
    assert data.read_bytes() == before


@pytest.mark.parametrize(
    ("data_name", "out_name", "expected_text"),
    [
        ("in.csv", "scores.parquet", "'deal'"),
        ("in.csv", "scores.xlsx", "unknown output format"),
        ("in.csv", "no/dir/scores.csv", "does not exist"),
        ("nope.csv", "scores.csv", "data file not found"),
    ],
)
def test_cli_bad_input_is_one_line(
    sales: dict[str, Any], tmp_path: Path, data_name: str, out_name: str, expected_text: str
) -> None:
    sales["df"].drop(columns=["deal"]).to_csv(tmp_path / "in.csv", index=False)
    result = runner.invoke(
        app,
        ["score", str(tmp_path / data_name), "--out", str(tmp_path / out_name),
         "--registry", str(sales["root"]), "--backend", "local"],
    )  # fmt: skip
    assert result.exit_code == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected_text in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_cli_an_unknown_backend_is_a_usage_error(sales: dict[str, Any], tmp_path: Path) -> None:
    """As ``train --backend gpu``: a bad name on the command line exits 2, before any read."""
    sales["df"].to_csv(tmp_path / "in.csv", index=False)
    result = runner.invoke(
        app,
        ["score", str(tmp_path / "in.csv"), "--out", str(tmp_path / "scores.csv"),
         "--registry", str(sales["root"]), "--backend", "foo"],
    )  # fmt: skip
    assert result.exit_code == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --backend: ") and "'foo'" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


# ------------------------------------------------------------------------------ the package
def test_the_package_keeps_the_names_the_module_had() -> None:
    """manymodels.scoring is a package (plan, worker, output, job) that was one module: what
    callers imported from the module still imports from the package, as the same objects."""
    import manymodels.scoring as scoring
    from manymodels import data, key_lists
    from manymodels.scoring import job, plan, worker

    for name in ("score", "score_table", "score_file", "ScoreResult", "ScoreSummary"):
        assert getattr(scoring, name) is getattr(job, name)
    for name in ("OUTPUT_COLUMNS", "ModelRef", "ScoreChunk"):
        assert getattr(scoring, name) is getattr(plan, name)
    assert scoring.MAX_LISTED_KEYS == key_lists.MAX_LISTED_KEYS  # one for every message
    assert scoring.score_chunk is worker.score_chunk
    assert scoring.output_format is data.output_format
    assert scoring.write_table is data.write_table
    assert all(hasattr(scoring, name) for name in scoring.__all__)


def test_the_table_a_calendar_spec_trained_on_scores_as_it_is(tmp_path: Path) -> None:
    """Calendar parts are the time's own: ``score`` computes them from the table's time
    column as training did, for partitions and the fallback alike. It refused the very CSV
    the models were trained on ("missing feature column(s) 't_day_of_week'")."""
    from factories import linear_frame, spec_dict

    df = linear_frame(3, 40)
    df["t"] = list(pd.date_range("2024-01-01", periods=40, freq="D")) * 3
    train(spec_dict(calendar=["day_of_week", "month"]), df, tmp_path / "reg", backend="local")
    path = tmp_path / "new.csv"
    new = pd.DataFrame({"pid": [1, 7], "t": ["2024-04-11", "2024-07-01"], "x0": [0.5, 0.1],
                        "x1": [-1.0, 0.3], "y": [1.0, 2.0]})  # fmt: skip
    new.to_csv(path, index=False)
    scored = score(path, tmp_path / "reg", backend="local")
    with Registry.open(tmp_path / "reg") as reg:
        own = reg.load_model("pid=1").predict(
            [{"x0": 0.5, "x1": -1.0, "t_day_of_week": 3, "t_month": 4}]
        )
        fallback = reg.load_model(FALLBACK_KEY).predict(
            [{"x0": 0.1, "x1": 0.3, "t_day_of_week": 0, "t_month": 7}]
        )
    assert scored["prediction"].tolist() == [own[0], fallback[0]]
    assert list(scored.columns[: len(new.columns)]) == list(new.columns)  # none added
    assert scored["served_by"].tolist() == ["pid=1", FALLBACK_KEY]
    # the table the models were trained on, as it is
    assert len(score(df, tmp_path / "reg", backend="local")) == len(df)
    with pytest.raises(DataError, match=r"'t_day_of_week', 't_month'.*time column gives"):
        score(new.drop(columns="t"), tmp_path / "reg", backend="local")
    with pytest.raises(DataError, match="not ISO8601"):
        score(new.assign(t=["11/04/2024", "07/01/2024"]), tmp_path / "reg", backend="local")


def test_calendar_parts_of_a_time_in_another_offset_are_the_series_zones(tmp_path: Path) -> None:
    """A spec trained on Europe/Berlin times, scored from a CSV written in UTC: 23:30 on
    Wednesday in UTC is Thursday in Berlin, the day training and the router (which converts a
    row's time to the series' zone) give it. ``score`` read it on the text's offset and
    answered with Wednesday's calendar part."""
    from factories import linear_frame, spec_dict

    df = linear_frame(3, 40)
    df["t"] = list(pd.date_range("2024-01-01", periods=40, freq="D", tz="Europe/Berlin")) * 3
    df["y"] += 10.0 * (df["t"].dt.day_of_week == 3)  # Thursdays weigh: the parts differ
    df.to_parquet(tmp_path / "train.parquet")
    train(spec_dict(calendar=["day_of_week"]), tmp_path / "train.parquet", tmp_path / "reg",
          backend="local")  # fmt: skip
    path = tmp_path / "new.csv"
    pd.DataFrame(
        {"pid": [1], "t": ["2024-04-10T23:30:00+00:00"], "x0": [0.5], "x1": [-1.0]}
    ).to_csv(path, index=False)
    scored = score(path, tmp_path / "reg", backend="local")
    with Registry.open(tmp_path / "reg") as reg:
        model = reg.load_model("pid=1")
        thursday, wednesday = (
            model.predict([{"x0": 0.5, "x1": -1.0, "t_day_of_week": day}])[0] for day in (3, 2)
        )
        routed = model.predict([{"x0": 0.5, "x1": -1.0, "t": "2024-04-10T23:30:00+00:00"}])[0]
    assert thursday != pytest.approx(wednesday)
    assert scored["prediction"].iloc[0] == pytest.approx(thursday) == routed


def _first_partition_rows(sales: dict[str, Any]) -> tuple[str, pd.DataFrame]:
    """The first trained partition's key and 5 of its rows, indexed from 0: what a test of
    how ``score`` and ``predict`` name a bad cell alters."""
    key = sorted(sales["trained"])[0]
    store, brand = (part.split("=")[1] for part in key.split(","))
    df = sales["df"]
    rows = df[(df["store"].astype(str) == store) & (df["brand"] == brand)].head(5)
    return key, rows.reset_index(drop=True)
