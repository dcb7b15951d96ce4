"""MLflow interchange: ``manymodels export --format mlflow`` and ``manymodels import``.

An export is judged by MLflow's own loader (``mlflow.pyfunc.load_model``, and ``mlflow models
serve`` in the slow test), which must give exactly what ``LoadedModel.predict`` gives for the
same rows: plain scikit-learn versions (fitted on a float64 matrix, on a DataFrame with a
categorical feature, a calibrated classifier with its probabilities) and one that is not (the
naive ``LastValueRegressor``, written as a pyfunc ``python_model``). An import is judged by
the router serving it like any version, by its registry row saying it was imported, and by its
signature when the registry signs.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from factories import SENSORS, open_client, pumps_spec, users_spec
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.interop.mlflow_io import require_mlflow
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.samples import sensor_readings, store_sales, user_activity
from manymodels.signing import Signer

runner = CliRunner()
SALES = {
    "name": "sales",
    "partition_by": ["store", "brand"],
    "target": "units",
    "time_column": "week",
    "features": ["price", "deal", "feat"],
    "candidates": [{"estimator": "sklearn.linear_model.Ridge", "scale": True}],
}
SPECS: dict[str, tuple[dict[str, Any], Any]] = {
    "ridge on a float64 matrix": (SALES, lambda: store_sales(n_stores=2, weeks=40)),
    "categorical, fitted on a frame": (
        users_spec(),
        lambda: user_activity(n_users=3, days=30),
    ),
    "calibrated classifier": (
        pumps_spec(
            features=SENSORS,
            metric="balanced_accuracy",
            calibration={"method": "sigmoid", "folds": 2},
            candidates=[{"estimator": "sklearn.linear_model.LogisticRegression", "scale": True}],
        ),
        lambda: sensor_readings(n_assets=2, readings=60),
    ),
    "naive, not plain scikit-learn": (
        {
            **SALES,
            "name": "naive",
            "candidates": [{"estimator": "manymodels.candidates.LastValueRegressor"}],
        },
        lambda: store_sales(n_stores=1, weeks=30),
    ),
}


def invoke(*args: str | Path | int, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(app, [str(a) for a in args], env=env)


def one_error_line(result: Any, *expected: str) -> str:
    assert result.exit_code != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    return str(lines[0])


@pytest.fixture(scope="module")
def mlflow() -> Any:
    return require_mlflow()  # imported once, without MLflow's own import-time warning


@pytest.fixture(scope="module")
def registries(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[str], tuple[Path, pd.DataFrame]]:
    """``get(name)``: a registry trained on ``SPECS[name]`` (once per module) and its data."""
    made: dict[str, tuple[Path, pd.DataFrame]] = {}

    def get(name: str) -> tuple[Path, pd.DataFrame]:
        if name not in made:
            spec, data = SPECS[name]
            df = data()
            root = tmp_path_factory.mktemp("mlflow") / "registry"
            with Registry(root) as reg:
                summary = train(spec, df, reg, backend="local")
                assert summary.run.n_trained >= 1, summary.failures
            made[name] = root, df
        return made[name]

    return get


@pytest.mark.parametrize("name", list(SPECS))
def test_an_export_loads_with_mlflow_and_predicts_as_manymodels_does(
    registries: Callable[[str], tuple[Path, pd.DataFrame]], name: str, mlflow: Any, tmp_path: Path
) -> None:
    root, df = registries(name)
    with Registry.open(root) as reg:
        key = next(p.key for p in reg.list_partitions() if not p.key.startswith("__"))
        loaded = reg.load_model(key)
    out = tmp_path / "model"
    result = invoke("export", key, out, "--format", "mlflow", "--registry", root, "--json")
    assert result.exit_code == 0, result.stderr
    done = json.loads(result.stdout)
    plain = "not plain" not in name
    assert (done["flavor"], done["version"]) == ("sklearn" if plain else "pyfunc", 1)
    assert done["format"] == ("pickle" if plain else "cloudpickle")
    assert done["foreign_modules"] == ([] if plain else ["manymodels.candidates"])

    meta = mlflow.models.Model.load(str(out))
    assert ("sklearn" in meta.flavors) is plain and "python_function" in meta.flavors
    features = loaded.features
    assert meta.signature.inputs.input_names() == features
    assert meta.metadata["manymodels"]["key"] == key
    example = json.loads((out / "input_example.json").read_text())
    assert example["columns"] == features and len(example["data"]) == 3

    rows = df.tail(9)  # with the key, time and target columns besides the features
    got = mlflow.pyfunc.load_model(str(out)).predict(rows[features])
    np.testing.assert_array_equal(got, loaded.predict(rows))
    if plain:  # the scikit-learn object itself, the version's estimator as its last step
        sk = mlflow.sklearn.load_model(str(out))
        last = sk.steps[-1][1] if loaded.version.feature_schema["input"] == "numpy" else sk
        assert type(last) is type(loaded.model)
        np.testing.assert_array_equal(sk.predict(rows[features]), got)
        if hasattr(loaded.model, "predict_proba"):  # a calibrated classifier's probabilities
            want = loaded.predict_proba(rows)
            np.testing.assert_array_equal(sk.predict_proba(rows[features]), want)


def test_export_chooses_versions_as_other_reads_do_and_refuses_with_one_line(
    registries: Callable[[str], tuple[Path, pd.DataFrame]], mlflow: Any, tmp_path: Path
) -> None:
    root, _ = registries("ridge on a float64 matrix")
    key = "store=1,brand=tropicana"
    ok = invoke("export", key, tmp_path / "v1", "--format", "mlflow", "--registry", root,
                "--version", 1)  # fmt: skip
    assert ok.exit_code == 0 and "exported store=1,brand=tropicana v1" in ok.stdout
    one_error_line(
        invoke("export", key, tmp_path / "a", "--format", "mlflow", "--registry", root,
               "--version", 7), "version 7")  # fmt: skip
    one_error_line(
        invoke("export", key, tmp_path / "b", "--format", "mlflow", "--registry", root,
               "--alias", "candidate"), "candidate")  # fmt: skip
    one_error_line(
        invoke("export", key, tmp_path / "v1", "--format", "mlflow", "--registry", root),
        "not an empty directory",
    )
    one_error_line(invoke("export", key, tmp_path / "c", "--format", "onnx"), "--format")
    both = invoke("export", key, tmp_path / "e", "--format", "mlflow", "--registry", root,
                  "--version", 1, "--alias", "candidate")  # fmt: skip
    one_error_line(both, "give --version or --alias, not both")  # --alias was ignored
    assert both.exit_code == 2 and not (tmp_path / "e").exists()
    one_error_line(
        invoke("export", "store=99,brand=x", tmp_path / "d", "--format", "mlflow",
               "--registry", root), "store=99")  # fmt: skip
    # a typo'd parent (no mkdir -p): MLflow made /tmp/x/typo/a/b and every parent of it
    deep = tmp_path / "typo" / "a" / "b"
    gone = invoke("export", key, deep, "--format", "mlflow", "--registry", root, "--version", 1)
    one_error_line(gone, f"{deep}: cannot write there ({deep.parent} does not exist)")
    assert gone.exit_code == 2 and not (tmp_path / "typo").exists()


def _frame_model(
    mlflow: Any, out: Path, *, signature: bool = True, format: str = "pickle"
) -> tuple[Any, pd.DataFrame]:
    """A scikit-learn pipeline fitted on a DataFrame elsewhere, saved by MLflow."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(3)
    X = pd.DataFrame({"price": rng.uniform(1, 4, 40), "deal": rng.integers(0, 2, 40),
                      "feat": rng.integers(0, 2, 40).astype(float)})  # fmt: skip
    y = 500 - 80 * X["price"] + 40 * X["deal"]
    model = make_pipeline(StandardScaler(), Ridge()).fit(X, y)
    columns = Schema([ColSpec("double", "price"), ColSpec("long", "deal"),
                      ColSpec("double", "feat")])  # fmt: skip
    mlflow.sklearn.save_model(
        model, str(out), serialization_format=format, pip_requirements=["scikit-learn"],
        signature=ModelSignature(inputs=columns) if signature else None,
    )  # fmt: skip
    return model, X


def _client(root: Path) -> Any:
    """A router over ``root``."""
    from serving.settings import Settings

    return open_client(Settings(registry=root))


def test_an_imported_model_is_recorded_as_imported_and_served_by_the_router(
    mlflow: Any, tmp_path: Path
) -> None:
    root = tmp_path / "registry"
    with Registry(root) as reg:
        train(SALES, store_sales(n_stores=2, weeks=40), reg, backend="local")
    model, X = _frame_model(mlflow, tmp_path / "elsewhere")
    new = "store=9,brand=tropicana"
    result = invoke("import", tmp_path / "elsewhere", "--key", new, "--registry", root)
    assert result.exit_code == 0, result.stderr
    assert f"as {new} v1 (production), run " in result.stdout  # into this registry

    with Registry.open(root) as reg:
        v = reg.get_version(new)
        run = reg.get_run(v.run_id)
        assert (run.kind, run.status, run.n_trained) == ("import", "completed", 1)
        assert (v.metric, v.score, v.n_rows, v.data_sha256) == ("none", -np.inf, 0, None)
        assert v.evaluation["imported"]["from"] == "mlflow" and v.validation == {"strategy": "none"}
        assert v.estimator == "sklearn.pipeline.Pipeline"
        schema = v.feature_schema
        assert schema["features"] == ["price", "deal", "feat"]
        assert schema["dtypes"] == {"price": "float64", "deal": "int64", "feat": "float64"}
        assert (schema["input"], schema["task"]) == ("dataframe", "regression")
        np.testing.assert_array_equal(reg.load_model(new).predict(X), model.predict(X))

    rows = X.head(4).to_dict("records")
    with _client(root) as client:
        r = client.post(f"/v1/partitions/{new}/predict", json={"rows": rows})
        assert r.status_code == 200, r.text
        assert (r.json()["version"], r.json()["fallback"]) == (1, False)
        assert r.json()["target"] is None  # an MLflow model records no target column
        np.testing.assert_allclose(r.json()["predictions"], model.predict(X.head(4)), rtol=1e-12)
        detail = client.get(f"/v1/partitions/{new}")
        assert detail.status_code == 200, detail.text  # a score of -inf is no 500
    shown = invoke("models", "list", "--registry", root, "--json")
    assert shown.exit_code == 0, shown.stderr
    mine = [p for p in json.loads(shown.stdout)["items"] if p["key"] == new]
    assert mine[0]["production"]["score"] is None  # strict JSON: no score to show

    assert invoke("models", "show", new, "--registry", root).exit_code == 0  # no score: "—"

    old = "store=1,brand=tropicana"  # a trained partition: the import waits as its candidate
    again = invoke("import", tmp_path / "elsewhere", "--key", old, "--registry", root)
    assert again.exit_code == 0 and f"as {old} v2 (candidate)" in again.stdout
    promoted = invoke("import", tmp_path / "elsewhere", "--key", old, "--registry", root,
                      "--promote")  # fmt: skip
    assert promoted.exit_code == 0 and f"as {old} v3 (production)" in promoted.stdout


def test_an_append_after_an_import_builds_on_the_newest_rows_kept(
    mlflow: Any, tmp_path: Path
) -> None:
    """An imported version keeps no training rows. ``train --append`` built on the newest
    version's rows, found none, and trained on the new rows alone; a ``gc`` then deleted the
    history for good. It builds on the newest version that kept rows, and says so."""
    root = tmp_path / "registry"
    df = store_sales(n_stores=1, weeks=40)
    key = "store=1,brand=tropicana"
    spec = {**SALES, "min_rows": 20}
    with Registry(root) as reg:
        train(spec, df[df["week"] < df["week"].max()], reg, backend="local")
        kept = len(reg.training_rows(key))
    _frame_model(mlflow, tmp_path / "elsewhere")
    assert invoke("import", tmp_path / "elsewhere", "--key", key, "--registry", root).exit_code == 0
    last = df[(df["week"] == df["week"].max()) & (df["brand"] == "tropicana")]
    with Registry(root) as reg:
        summary = train(spec, last, reg, backend="local", append=True)
        assert summary.run.n_trained == 1
        assert summary.run.options["append"]["kept_rows"] == kept
        (warning,) = [w for w in summary.run.options["warnings"] if "older version" in w]
        assert f"'{key}': v2 kept none, so v1's rows are built on" in warning
        assert len(reg.training_rows(key, 3)) == kept + 1  # v3 holds the history and the new row
    # a partition whose every version keeps no rows (its only one imported) says so too
    other = "store=9,brand=tropicana"
    assert (
        invoke("import", tmp_path / "elsewhere", "--key", other, "--registry", root).exit_code == 0
    )
    with Registry(root) as reg:
        moved = df[df["brand"] == "tropicana"].assign(store=9)
        summary = train(spec, moved, reg, backend="local", append=True)
        (alone,) = [w for w in summary.run.options["warnings"] if "new rows alone" in w]
        assert alone.startswith("1 partition(s) have versions but none that kept its training")


def test_gc_keeps_the_newest_rows_an_append_would_build_on(mlflow: Any, tmp_path: Path) -> None:
    """An import promoted over a trained version keeps no rows; ``gc --keep 1`` deleted the
    trained version, and with it the only history an append could build on."""
    from manymodels.gc import collect

    root = tmp_path / "registry"
    df = store_sales(n_stores=1, weeks=40)
    key = "store=1,brand=tropicana"
    with Registry(root) as reg:
        train(SALES, df, reg, backend="local")
    _frame_model(mlflow, tmp_path / "elsewhere")
    promoted = invoke("import", tmp_path / "elsewhere", "--key", key, "--registry", root,
                      "--promote")  # fmt: skip
    assert promoted.exit_code == 0, promoted.stderr
    with Registry(root) as reg:
        report = collect(reg, keep=1, grace_seconds=0, alias_grace_seconds=0)
        assert (key, 1) not in report.versions_deleted
        assert len(reg.training_rows(key, 1)) == 40


def test_actuals_for_an_imported_model_say_it_records_no_target(
    mlflow: Any, tmp_path: Path
) -> None:
    """An imported version has no target column: actuals were refused as "target 'None' is
    missing" (over HTTP) or "no target column 'None'" (CLI)."""
    _frame_model(mlflow, tmp_path / "m")
    root = tmp_path / "registry"
    result = invoke("import", tmp_path / "m", "--key", "shop=1", "--registry", root)
    assert result.exit_code == 0 and f"into a new registry at {root}, run " in result.stdout
    row = {"price": 2.0, "deal": 1, "feat": 0.0, "units": 3.0}
    with _client(root) as client:
        r = client.post("/v1/partitions/shop=1/actuals", json={"rows": [row]})
    assert r.status_code == 422, r.text
    assert "imported" in r.json()["detail"] and "None" not in r.json()["detail"]
    data = tmp_path / "actuals.csv"
    pd.DataFrame([{"shop": 1, **row}]).to_csv(data, index=False)
    line = one_error_line(invoke("actuals", data, "--registry", root), "imported")
    assert "None" not in line


def test_a_router_retrain_of_an_imported_partition_says_it_has_no_spec(
    mlflow: Any, tmp_path: Path
) -> None:
    """The import run records no spec: the retrain answered 422 with the spec parser's list
    of what the import's record lacks ("name: required key is missing; …")."""
    from serving.settings import Settings

    _frame_model(mlflow, tmp_path / "m")
    root = tmp_path / "registry"
    assert invoke("import", tmp_path / "m", "--key", "shop=1", "--registry", root).exit_code == 0
    row = {"price": 2.0, "deal": 1, "feat": 0.0, "units": 3.0}
    settings = Settings(registry=root, admin_token="imported-retrain-token")
    with open_client(settings) as client:
        r = client.post(
            "/v1/partitions/shop=1/retrain", json={"rows": [row] * 30},
            headers={"Authorization": "Bearer imported-retrain-token"},
        )  # fmt: skip
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert "was imported from MLflow: there is no spec to retrain it with" in detail
    assert "required key" not in detail


def test_an_import_is_signed_when_the_registry_signs(mlflow: Any, tmp_path: Path) -> None:
    from manymodels.exceptions import BadSignature

    key = "a" * 32
    _frame_model(mlflow, tmp_path / "m")
    root = tmp_path / "registry"  # created by the import
    result = invoke("import", tmp_path / "m", "--key", "shop=1", "--registry", root,
                    env={"MANYMODELS_SIGNING_KEY": key})  # fmt: skip
    assert result.exit_code == 0, result.stderr
    with Registry.open(root, signer=Signer(key.encode())) as reg:
        assert reg.get_version("shop=1").signature is not None
        assert reg.signed_by is not None
        reg.load_model("shop=1")  # verifies
    with (
        Registry.open(root, signer=Signer(b"another key of 16+ bytes")) as reg,
        pytest.raises(BadSignature),
    ):
        reg.load_model("shop=1")
    # without the key, the next import goes in unsigned: said, as `train` says it
    unsigned = invoke("import", tmp_path / "m", "--key", "shop=2", "--registry", root, "--promote",
                      env={"MANYMODELS_SIGNING_KEY": ""})  # fmt: skip
    assert unsigned.exit_code == 0, unsigned.stderr
    assert "holds signed versions" in unsigned.stderr and "NOT checked" in unsigned.stderr


def test_an_import_into_a_registry_that_refuses_pickles_is_stored_with_skops(
    mlflow: Any, tmp_path: Path
) -> None:
    from manymodels.serialization import format_of

    model, X = _frame_model(mlflow, tmp_path / "m", format="skops")
    root = tmp_path / "registry"
    with Registry(root) as reg:
        reg.set_trusted_formats(frozenset({"skops"}))
    result = invoke("import", tmp_path / "m", "--key", "shop=1", "--registry", root)
    assert result.exit_code == 0, result.stderr
    with Registry.open(root) as reg:
        v = reg.get_version("shop=1")
        assert format_of(reg.artifacts.get(v.artifact_sha256)) == "skops"
        assert "skops" in v.libraries
        np.testing.assert_array_equal(reg.load_model("shop=1").predict(X), model.predict(X))


def test_an_import_of_a_damaged_skops_model_is_one_error_line(mlflow: Any, tmp_path: Path) -> None:
    """A model.skops cut short (a copy or download interrupted) into a registry that refuses
    pickles: a BadZipFile traceback, where a damaged pickle said "cannot load its scikit-learn
    model (…)". Now it says the same, and nothing is registered."""
    _frame_model(mlflow, tmp_path / "m", format="skops")
    file = tmp_path / "m" / "model.skops"
    file.write_bytes(file.read_bytes()[:200])
    root = tmp_path / "registry"
    with Registry(root) as reg:
        reg.set_trusted_formats(frozenset({"skops"}))
    result = invoke("import", tmp_path / "m", "--key", "shop=1", "--registry", root)
    one_error_line(result, "cannot load its scikit-learn model (BadZipFile")
    with Registry.open(root) as reg:
        assert reg.list_partitions() == []


@pytest.mark.parametrize("kind", ["KeyBound", "MeanOf"])
def test_a_skops_only_registry_s_export_of_a_global_model_or_ensemble_predicts(
    mlflow: Any, tmp_path: Path, kind: str
) -> None:
    """A skops-only registry exports every model with the sklearn flavour behind the float64
    step, in a Pipeline. A version on a global model (``KeyBound``, the model bound to its
    key) was refused by that Pipeline's predict ("… is not an estimator instance"), and a
    ``top2`` ensemble (``MeanOf``) taken for unfitted ("This Pipeline instance is not fitted
    yet"): the export was written and every prediction from it failed. Both now answer as
    manymodels does."""
    root = tmp_path / "registry"
    with Registry(root) as reg:
        reg.set_trusted_formats(frozenset({"skops"}))
    df = store_sales(n_stores=1, weeks=40)
    candidates: list[dict[str, Any]] = [
        {
            "estimator": "sklearn.ensemble.HistGradientBoostingRegressor",
            "params": {"max_iter": [20]},
            "scope": "global",
        }
    ]
    selection: dict[str, Any] = {"naive_candidate": False}
    if kind == "MeanOf":
        candidates.append({"estimator": "sklearn.linear_model.Ridge", "scale": True})
        selection["ensemble"] = "top2"
    spec = {**SALES, "artifacts": {"format": "skops"}, "selection": selection}
    key = "store=1,brand=tropicana"
    with Registry(root) as reg:
        train({**spec, "candidates": candidates}, df, reg, backend="local")
        loaded = reg.load_model(key)
    assert type(loaded.model).__name__ == kind
    out = tmp_path / "model"
    assert invoke("export", key, out, "--format", "mlflow", "--registry", root).exit_code == 0
    rows = df[df["brand"] == "tropicana"].tail(5)
    got = mlflow.pyfunc.load_model(str(out)).predict(rows[loaded.features])
    np.testing.assert_array_equal(got, loaded.predict(rows))


@pytest.mark.parametrize("kind", ["KeyBoundClassifier", "MeanOf"])
def test_a_global_or_ensemble_classifier_s_export_imports_back_as_a_classifier(
    mlflow: Any, tmp_path: Path, kind: str
) -> None:
    """The export of a version on a global classifier from a skops-only registry holds the
    model bound to its key, which has no scikit-learn tags: its import was an AttributeError
    traceback. A ``top2`` ensemble of classifiers has no ClassifierMixin: it was imported as
    a regression, its probabilities never offered. Both import as classifiers now, with the
    labels and probabilities of the version they came from."""
    root, dest = tmp_path / "registry", tmp_path / "other"
    for where in (root, dest):
        with Registry(where) as reg:
            reg.set_trusted_formats(frozenset({"skops"}))
    spec, data = SPECS["calibrated classifier"]
    candidates: list[dict[str, Any]] = [
        {
            "estimator": "sklearn.ensemble.HistGradientBoostingClassifier",
            "params": {"max_iter": [10]},
            "scope": "global",
        }
    ]
    selection: dict[str, Any] = {"naive_candidate": False}
    spec = {k: v for k, v in spec.items() if k != "calibration"}
    df = data()
    if kind == "MeanOf":  # the mean of probabilities wins on log loss in one of these assets
        candidates.append(spec["candidates"][0])
        selection["ensemble"] = "top2"
        spec["metric"], df = "neg_log_loss", sensor_readings(n_assets=6, readings=100)
    spec = {**spec, "artifacts": {"format": "skops"}, "selection": selection}
    with Registry(root) as reg:
        train({**spec, "candidates": candidates}, df, reg, backend="local")
        models = {p.key: reg.load_model(p.key) for p in reg.list_partitions()}
    key = next(k for k, m in models.items() if type(m.model).__name__ == kind)
    source = models[key]
    out = tmp_path / "model"
    assert invoke("export", key, out, "--format", "mlflow", "--registry", root).exit_code == 0
    result = invoke("import", out, "--key", key, "--registry", dest)
    assert result.exit_code == 0, result.stderr
    with Registry.open(dest) as reg:
        imported = reg.load_model(key)
    assert imported.version.schema.task == "classification"
    rows = df.tail(8)
    np.testing.assert_array_equal(imported.predict(rows), source.predict(rows))
    np.testing.assert_array_equal(imported.predict_proba(rows), source.predict_proba(rows))


def test_a_skops_only_registry_s_export_imports_back_into_one(mlflow: Any, tmp_path: Path) -> None:
    """The export puts a float64 step (``numpy.ascontiguousarray``) in front of a model fitted
    on a matrix; the import, reading with manymodels' trusted types, refused the very file
    the export had written."""
    root, dest = tmp_path / "registry", tmp_path / "other"
    for where in (root, dest):
        with Registry(where) as reg:
            reg.set_trusted_formats(frozenset({"skops"}))
    df = store_sales(n_stores=1, weeks=40)
    skops_sales = {**SALES, "artifacts": {"format": "skops"}}
    with Registry(root) as reg:
        train(skops_sales, df, reg, backend="local")
    key = "store=1,brand=tropicana"
    out = tmp_path / "model"
    assert invoke("export", key, out, "--format", "mlflow", "--registry", root).exit_code == 0
    result = invoke("import", out, "--key", key, "--registry", dest)
    assert result.exit_code == 0, result.stderr
    with Registry.open(root) as a, Registry.open(dest) as b:
        rows = df[df["brand"] == "tropicana"].head(5)
        np.testing.assert_array_equal(
            b.load_model(key).predict(rows), a.load_model(key).predict(rows)
        )


def test_a_registry_that_refuses_pickles_never_unpickles_an_import(
    mlflow: Any, tmp_path: Path
) -> None:
    """An MLflow pickle was unpickled (running whatever it names) before the registry's
    policy was looked at."""
    _frame_model(mlflow, tmp_path / "m")
    marker = tmp_path / "ran"
    (tmp_path / "m" / "model.pkl").write_bytes(
        b"cos\nsystem\n(V" + f"touch {marker}".encode() + b"\ntR."
    )
    root = tmp_path / "registry"
    with Registry(root) as reg:
        reg.set_trusted_formats(frozenset({"skops"}))
    result = invoke("import", tmp_path / "m", "--key", "shop=1", "--registry", root)
    one_error_line(result, "stored its model as pickle", "refusing to unpickle")
    assert not marker.exists()
    # the same registry with its database lost: its models are there, so it is not a new
    # place to import into (nor is it read as one: the policy went with the database)
    with Registry(root) as reg:
        spec, data = SPECS["ridge on a float64 matrix"]
        train({**spec, "artifacts": {"format": "skops"}}, data(), reg, backend="local")
    (root / "registry.db").unlink()
    for where in (["--registry", root], ["--registry-db", f"sqlite:///{root}/registry.db",
                                         "--artifacts", root / "artifacts"]):  # fmt: skip
        result = invoke("import", tmp_path / "m", "--key", "shop=1", *where)
        one_error_line(result, "holds models: refusing to start a new registry over them")
        assert not marker.exists() and not (root / "registry.db").exists()
    gone = tmp_path / "gone"  # the registry's directory itself gone, its models elsewhere
    result = invoke("import", tmp_path / "m", "--key", "shop=1", "--registry", gone,
                    "--artifacts", root / "artifacts")  # fmt: skip
    one_error_line(result, "holds models: refusing to start a new registry over them")
    assert not marker.exists() and not gone.exists()


@pytest.mark.parametrize("name", ["ridge on a float64 matrix", "naive, not plain scikit-learn"])
def test_a_registry_that_refuses_pickles_exports_with_skops(
    name: str, mlflow: Any, tmp_path: Path
) -> None:
    spec, data = SPECS[name]
    df = data()
    root = tmp_path / "registry"
    with Registry(root) as reg:
        reg.set_trusted_formats(frozenset({"skops"}))
        train({**spec, "artifacts": {"format": "skops"}}, df, reg, backend="local")
        key = "store=1,brand=tropicana"
        loaded = reg.load_model(key)
    out = tmp_path / "model"
    result = invoke("export", key, out, "--format", "mlflow", "--registry", root, "--json")
    assert result.exit_code == 0, result.stderr
    assert (json.loads(result.stdout)["flavor"], json.loads(result.stdout)["format"]) == (
        "sklearn",
        "skops",
    )
    assert not list(out.glob("*.pkl"))  # no pickle anywhere in the export
    sk = mlflow.models.Model.load(str(out)).flavors["sklearn"]
    assert sk["serialization_format"] == "skops"
    assert "numpy.ascontiguousarray" in sk["skops_trusted_types"]
    rows = df.tail(6)
    got = mlflow.pyfunc.load_model(str(out)).predict(rows[loaded.features])
    np.testing.assert_array_equal(got, loaded.predict(rows))


def test_an_export_imports_back_with_the_same_predictions(
    registries: Callable[[str], tuple[Path, pd.DataFrame]], mlflow: Any, tmp_path: Path
) -> None:
    root, df = registries("categorical, fitted on a frame")
    key = "user_id=u0001"
    out = tmp_path / "model"
    assert invoke("export", key, out, "--format", "mlflow", "--registry", root).exit_code == 0
    dest = tmp_path / "other"
    result = invoke("import", out, "--key", key, "--registry", dest)
    assert result.exit_code == 0, result.stderr
    with Registry.open(root) as a, Registry.open(dest) as b:
        want, got = a.load_model(key), b.load_model(key)
        assert got.version.evaluation["imported"]["exported_from"]["key"] == key
        assert got.features == want.features
        rows = df.head(6)
        np.testing.assert_array_equal(got.predict(rows), want.predict(rows))


def test_import_refuses_a_store_url_without_the_registrys_models(
    registries: Callable[[str], tuple[Path, pd.DataFrame]], mlflow: Any, tmp_path: Path
) -> None:
    """`import --promote --artifacts <a misspelt store>` made the import production with its
    model in that store alone (every router on the right store: 409 "missing") and marked
    the store as the registry's, so serve started over it; now one line, nothing written."""
    trained, _ = registries("categorical, fitted on a frame")
    root = Path(shutil.copytree(trained, tmp_path / "registry"))
    key = "user_id=u0001"
    out = tmp_path / "model"
    assert invoke("export", key, out, "--format", "mlflow", "--registry", root).exit_code == 0
    wrong = tmp_path / "typo"
    said = invoke(
        "import", out, "--key", key, "--promote", "--registry", root, "--artifacts", wrong
    )
    one_error_line(said, f"the artifact store {wrong} holds none of this registry's models")
    assert not wrong.exists()
    with Registry.open(root) as reg:
        assert [v.version for v in reg.list_versions(key)] == [1]


def test_import_refuses_what_it_cannot_register_with_one_line(
    registries: Callable[[str], tuple[Path, pd.DataFrame]], mlflow: Any, tmp_path: Path
) -> None:
    root, _ = registries("naive, not plain scikit-learn")
    key = "store=1,brand=tropicana"
    unsigned = tmp_path / "unsigned"
    _frame_model(mlflow, unsigned, signature=False)
    one_error_line(
        invoke("import", unsigned, "--key", key, "--registry", root), "no column signature"
    )
    pyfunc = tmp_path / "pyfunc"
    assert invoke("export", key, pyfunc, "--format", "mlflow", "--registry", root).exit_code == 0
    one_error_line(
        invoke("import", pyfunc, "--key", key, "--registry", root),
        "not a scikit-learn MLflow model (flavours: python_function)",
    )
    one_error_line(invoke("import", tmp_path, "--key", key, "--registry", root), "no MLmodel")
    nowhere = tmp_path / "new-registry"
    one_error_line(invoke("import", tmp_path, "--key", key, "--registry", nowhere), "no MLmodel")
    assert not nowhere.exists()  # checked before a registry is created
    signed = tmp_path / "signed"
    _frame_model(mlflow, signed)
    one_error_line(
        invoke("import", signed, "--key", "shop=1", "--registry", root),
        "key columns are store, brand",
    )
    for bad in ("garbage", "=x", "a=1,a=2"):  # refused before a new registry is made
        said = invoke("import", signed, "--key", bad, "--registry", nowhere)
        one_error_line(said, "is not a partition key of the form col=value")
        assert not nowhere.exists()
    with Registry.open(root) as reg:
        assert [v.version for v in reg.list_versions(key)] == [1]  # nothing was registered


def test_import_refuses_an_ensemble_naming_a_global_model_by_sha256(
    registries: Callable[[str], tuple[Path, pd.DataFrame]], mlflow: Any, tmp_path: Path
) -> None:
    """A manymodels ensemble as its artifact stores it names its global member by sha256: no
    version of the target registry would list it, so gc could delete what it loads."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    from manymodels.candidates import MeanOf
    from manymodels.global_members import GlobalMember

    root, _ = registries("naive, not plain scikit-learn")
    key = "store=1,brand=tropicana"
    model, _ = _frame_model(mlflow, tmp_path / "plain")
    columns = Schema([ColSpec("double", "price"), ColSpec("long", "deal"),
                      ColSpec("double", "feat")])  # fmt: skip
    pair = MeanOf([model, GlobalMember("d" * 64, {"store": 1, "brand": "tropicana"})])
    mlflow.sklearn.save_model(
        pair, str(tmp_path / "pair"), serialization_format="pickle",
        pip_requirements=["scikit-learn"], signature=ModelSignature(inputs=columns),
    )  # fmt: skip
    one_error_line(
        invoke("import", tmp_path / "pair", "--key", key, "--registry", root),
        "names global models by sha256",
    )
    with Registry.open(root) as reg:
        assert [v.version for v in reg.list_versions(key)] == [1]  # nothing was registered


def test_without_mlflow_both_commands_say_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if not installed: import fails
    one_error_line(
        invoke("export", "k=1", tmp_path / "m", "--format", "mlflow", "--registry", tmp_path),
        "pip install 'manymodels[mlflow]'",
    )
    one_error_line(
        invoke("import", tmp_path, "--key", "k=1", "--registry", tmp_path / "r"),
        "pip install 'manymodels[mlflow]'",
    )
    assert not (tmp_path / "r").exists()  # no registry created for nothing


def test_the_core_does_not_import_mlflow() -> None:
    code = (
        "import sys, manymodels, manymodels.cli, manymodels.registry\n"
        "import manymodels.interop.mlflow_io, manymodels.interop.mlflow_import  # lazy themselves\n"
        "assert 'mlflow' not in sys.modules, 'mlflow imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_mlflow_models_serve_answers_invocations_as_manymodels_predicts(
    registries: Callable[[str], tuple[Path, pd.DataFrame]], mlflow: Any, tmp_path: Path
) -> None:
    """``mlflow models serve --env-manager local`` (MLflow's own server, started as a user
    would, ~20 s on a busy machine) scores an export as ``LoadedModel.predict`` does."""
    root, df = registries("ridge on a float64 matrix")
    key = "store=2,brand=tropicana"
    out = tmp_path / "model"
    assert invoke("export", key, out, "--format", "mlflow", "--registry", root).exit_code == 0
    port = _free_port()
    bin_dir = str(Path(sys.executable).parent)  # it starts `uvicorn` from PATH
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    server = subprocess.Popen(
        [f"{bin_dir}/mlflow", "models", "serve", "-m", str(out), "--env-manager", "local",
         "--host", "127.0.0.1", "-p", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    base, err = f"http://127.0.0.1:{port}", server.stderr
    assert err is not None
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, err.read().decode()[-2000:]
            try:
                with urllib.request.urlopen(f"{base}/ping", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "mlflow models serve did not answer in 120 s"
            time.sleep(0.5)
        with Registry.open(root) as reg:
            loaded = reg.load_model(key)
        rows = df.tail(5)[loaded.features]
        body = json.dumps({"dataframe_records": rows.to_dict("records")}).encode()
        request = urllib.request.Request(
            f"{base}/invocations", body, {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as r:
            got = json.loads(r.read())["predictions"]
        np.testing.assert_array_equal(got, loaded.predict(rows))  # JSON floats round-trip
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server and its uvicorn worker
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)
        err.close()


def test_a_model_only_cloudpickle_can_store_is_one_line_and_makes_no_registry(
    mlflow: Any, tmp_path: Path
) -> None:
    """A lambda in a pipeline: MLflow saves it with cloudpickle, pickle cannot store it. It
    was a PicklingError traceback, after a new, empty registry had been made."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    X = pd.DataFrame({"price": np.linspace(1, 4, 20)})
    model = make_pipeline(FunctionTransformer(lambda a: a * 2), Ridge()).fit(X, 3 * X["price"])
    out = tmp_path / "lambda"
    mlflow.sklearn.save_model(
        model, str(out), serialization_format="cloudpickle", pip_requirements=["scikit-learn"],
        signature=ModelSignature(inputs=Schema([ColSpec("double", "price")])),
    )  # fmt: skip
    nowhere = tmp_path / "new-registry"
    result = invoke("import", out, "--key", "shop=1", "--registry", nowhere)
    one_error_line(result, "its model cannot be stored as pickle")
    assert not nowhere.exists()


def test_a_float32_feature_takes_a_frame_of_ordinary_floats(mlflow: Any, tmp_path: Path) -> None:
    """A feature trained from a float32 column (a Parquet file of float32, say) was declared
    "float": MLflow then refused a frame of float64 values, which manymodels scores ("Can not
    safely convert float64 to float32"). Declared "double", both widths are taken and give
    what manymodels gives."""
    df = store_sales(n_stores=1, weeks=40).astype({"price": "float32"})
    root, out, key = tmp_path / "registry", tmp_path / "model", "store=1,brand=tropicana"
    with Registry(root) as reg:
        train(SALES, df, reg, backend="local")
        loaded = reg.load_model(key)
    assert invoke("export", key, out, "--format", "mlflow", "--registry", root).exit_code == 0
    model = mlflow.pyfunc.load_model(str(out))
    assert model.metadata.signature.inputs.to_dict()[0] == {
        "type": "double",
        "name": "price",
        "required": True,
    }
    rows = df[df["brand"] == "tropicana"].tail(4)[loaded.features]
    for frame in (rows, rows.astype({"price": "float64"})):
        np.testing.assert_array_equal(model.predict(frame), loaded.predict(frame))


def test_a_scaled_target_is_exported_answering_in_its_units(mlflow: Any, tmp_path: Path) -> None:
    """A ``scale`` model predicts the scaled target: its export is our pyfunc model, which
    turns the answers back with the partition's numbers, as ``LoadedModel.predict`` does (a
    plain scikit-learn export answered the scaled target)."""
    root = tmp_path / "reg"
    df = store_sales(n_stores=1, weeks=40)
    train({**SALES, "target_transform": "scale", "lags": [1]}, df, root, backend="local")
    with Registry.open(root) as reg:
        key = next(p.key for p in reg.list_partitions() if not p.key.startswith("__"))
        loaded = reg.load_model(key)
    out = tmp_path / "out"
    result = invoke("export", key, out, "--format", "mlflow", "--registry", root, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["flavor"] == "pyfunc"
    own = df[(df["store"] == 1) & (df["brand"] == key.split("brand=")[1])].sort_values("week")
    rows = own.assign(units_lag1=own["units"].shift(1)).tail(6)  # the lag, as a table has it
    got = mlflow.pyfunc.load_model(str(out)).predict(rows[loaded.features])
    np.testing.assert_allclose(got, loaded.predict(rows), rtol=1e-12)
    scaled = loaded.model.predict(rows[loaded.features].to_numpy(dtype=float))
    assert np.abs(got).mean() > 10 * np.abs(scaled).mean()  # not the scaled answers


@pytest.mark.parametrize("kind", ["difference", "scale, no pickles"])
def test_a_target_transform_an_export_cannot_turn_back_is_refused(
    mlflow: Any, tmp_path: Path, kind: str
) -> None:
    """A ``difference`` model predicts each period's change (MLflow would have served 0.0 on
    flat weeks); a ``scale`` one from a registry that refuses pickles cannot be our pyfunc
    model. Both are refused naming why, and nothing is written."""
    root = tmp_path / "reg"
    with Registry(root) as reg:
        if kind != "difference":
            reg.set_trusted_formats(frozenset({"skops"}))
        spec = {**SALES, "target_transform": kind.split(",")[0], "lags": [1]}
        if kind != "difference":
            spec["artifacts"] = {"format": "skops"}
        train(spec, store_sales(n_stores=1, weeks=40), reg, backend="local")
        key = next(p.key for p in reg.list_partitions() if not p.key.startswith("__"))
    result = invoke("export", key, tmp_path / "out", "--format", "mlflow", "--registry", root)
    said = "previous period's target" if kind == "difference" else "trusted formats refuse"
    one_error_line(result, said)
    assert not (tmp_path / "out").exists()


KILLED_EXPORT = """
import os, signal, sys
import mlflow.models

def save(self, path):  # the model's files written, its MLmodel not yet: the writer dies
    os.kill(os.getpid(), signal.SIGKILL)

mlflow.models.Model.save = save
from manymodels.cli import main
sys.argv[0] = "manymodels"
main()
"""


def test_an_export_killed_mid_write_leaves_no_model_and_the_next_one_writes_it(
    registries: Callable[[str], tuple[Path, pd.DataFrame]], mlflow: Any, tmp_path: Path
) -> None:
    """`export --format mlflow` killed (or failing) mid-way left the directory half-written
    under its name: model files without an MLmodel, which the next export refused as "not
    an empty directory" and a deployment could pick up. Now it is written beside its name
    and renamed into place whole; the next export removes the dead writer's leftover."""
    root, _ = registries("ridge on a float64 matrix")
    key, out = "store=1,brand=tropicana", tmp_path / "model"
    args = ["export", key, str(out), "--format", "mlflow", "--registry", str(root)]
    killed = subprocess.run([sys.executable, "-c", KILLED_EXPORT, *args], capture_output=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not out.exists(), sorted(p.name for p in out.iterdir())  # nothing half-written
    assert len(list(tmp_path.iterdir())) == 1  # the killed writer's leftover, hidden
    done = invoke(*args)
    assert done.exit_code == 0, done.output
    assert (out / "MLmodel").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    assert mlflow.pyfunc.load_model(str(out)) is not None


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="names fds through /proc")
def test_an_export_is_on_disk_before_its_name_and_its_name_after(
    registries: Callable[[str], tuple[Path, pd.DataFrame]],
    mlflow: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The model directory was renamed into place with none of its files fsynced: a power loss
    after `export` returned could leave a directory of empty files under the name (ext4's
    delayed allocation). Now every file, then each directory, then the rename's directory."""
    seen: list[str] = []
    real = os.fsync

    def record(fd: int) -> None:
        seen.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    root, _ = registries("ridge on a float64 matrix")
    out = tmp_path / "model"
    monkeypatch.setattr(os, "fsync", record)
    done = invoke("export", "store=1,brand=tropicana", out, "--format", "mlflow",
                  "--registry", root)  # fmt: skip
    assert done.exit_code == 0, done.output
    assert seen and seen[-1] == str(tmp_path), seen
    staged = Path(seen[0]).relative_to(tmp_path).parts[0]  # the hidden name it was written as
    synced = {Path(p).relative_to(tmp_path / staged) for p in seen[:-1]}
    written = {p.relative_to(out) for p in out.rglob("*")} | {Path(".")}
    assert written <= synced, written - synced


def test_import_refuses_a_key_with_spaces_or_other_columns_as_other_commands_do(
    registries: Callable[[str], tuple[Path, pd.DataFrame]], mlflow: Any, tmp_path: Path
) -> None:
    """``--key 'store = 1,brand=tropicana'`` was refused as "'store%20=%201,…' is not a key
    of this registry" (its spaces unsaid), ``'store=1,brand=x '`` made a partition
    ``brand=x%20``, and into a new registry ``'store = 1'`` made its key column ``'store '``.
    Now spaces are refused as ``models show`` refuses them, and other columns are named with
    the registry's key columns; an escaped space (``%20``) is a value's own."""
    root, _ = registries("ridge on a float64 matrix")
    model = tmp_path / "m"
    _frame_model(mlflow, model)
    form = "this registry's key columns are store, brand: a key reads 'store=…,brand=…'"
    for bad in ("store = 1,brand=tropicana", "store=1,brand=x ", " store=1,brand=x"):
        one_error_line(
            invoke("import", model, "--key", bad, "--registry", root),
            f"key '{bad}' has spaces around a column or value: write it without spaces",
        )
    one_error_line(
        invoke("import", model, "--key", "Store=1,brand=x", "--registry", root),
        f"it names 'Store', 'brand'; {form}",
    )
    nowhere = tmp_path / "new-registry"
    one_error_line(invoke("import", model, "--key", "store = 1", "--registry", nowhere), "spaces")
    assert not nowhere.exists()
    done = invoke("import", model, "--key", "brand=x%20,store=1", "--registry", root)
    assert done.exit_code == 0, done.output
    assert "as store=1,brand=x%20 v1" in done.stdout
    with Registry.open(root) as reg:
        assert not reg.store.has_partition("store=1,brand=x")
