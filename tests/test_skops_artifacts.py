"""``[artifacts] format = "skops"`` and skops-only registries (``manymodels.serialization``).

Models trained through ``manymodels train`` (in this process) are stored as skops zips, and
scored, forecast and served from a registry that refuses pickles; a pickle in such a registry
is refused by every reader before a byte of it is unpickled — proven by a tripwire whose
unpickling would create a file — and loads once the policy allows pickles again (so the
tripwire is live).
"""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from factories import Tripwire, make_run, open_client
from sklearn.linear_model import Ridge
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.exceptions import (
    ArtifactError,
    ArtifactUnreadable,
    SpecError,
    UntrustedArtifact,
)
from manymodels.registry import Registry
from manymodels.registry.client import FORMATS_TTL
from manymodels.registry.entities import NewVersion
from manymodels.samples import store_sales
from manymodels.serialization import TRUSTED_TYPES, dumps, format_of, loads
from manymodels.spec import Spec

runner = CliRunner()
KEY = "store=1,brand=tropicana"
ADMIN = "skops-test-admin-token"

SPEC = """
name = "skops-sales"
partition_by = ["store", "brand"]
target = "units"
time_column = "week"
features = ["price", "deal", "feat"]
lags = [1]
min_rows = 20

[validation]
strategy = "last"
size = 6

[[candidates]]
estimator = "sklearn.ensemble.RandomForestRegressor"
params = { n_estimators = [5], max_depth = [3] }
"""


def invoke(*args: str | Path) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def one_error_line(result: Any, *expected: str) -> str:
    assert result.exit_code != 0, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One ``manymodels train`` with ``format = "skops"``: 6 partitions + the fallback."""
    root = tmp_path_factory.mktemp("skops")
    data = root / "sales.csv"
    store_sales(n_stores=2, weeks=30).to_csv(data, index=False)
    (root / "spec.toml").write_text(SPEC + '\n[artifacts]\nformat = "skops"\n')
    (root / "pickle.toml").write_text(SPEC)
    registry = root / "registry"
    result = invoke("train", root / "spec.toml", data, "--registry", registry, "--backend", "local")
    assert result.exit_code == 0, result.output
    return {"registry": registry, "data": data, "root": root}


@pytest.fixture
def registry(trained: dict[str, Path], tmp_path: Path) -> Path:
    """A private copy, made skops-only through the CLI."""
    copy = Path(shutil.copytree(trained["registry"], tmp_path / "registry"))
    result = invoke("trust", "--registry", copy, "--trusted-formats", "skops", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["trusted_formats"] == ["skops"]
    return copy


def _rows(data: Path, key: str = KEY) -> pd.DataFrame:
    df = pd.read_csv(data)
    store, brand = (part.split("=")[1] for part in key.split(","))
    return df[(df["store"] == int(store)) & (df["brand"] == brand)].tail(4)


def _client(registry: Path, **settings: Any) -> Any:
    from serving.settings import Settings

    return open_client(Settings(registry=registry, admin_token=ADMIN, **settings))


def _plant_pickle(registry: Path, marker: Path) -> int:
    """Register a tripwire pickle as ``KEY``'s production version (a copy of its skops
    version's record otherwise): what a pickle stored before the policy, or by another
    writer, looks like to readers."""
    return _plant(registry, pickle.dumps(Tripwire(marker), protocol=5))


def _plant(registry: Path, data: bytes) -> int:
    """Register ``data`` as ``KEY``'s production artifact (its row and digest consistent)."""
    with Registry.open(registry) as reg:
        current = reg.get_version(KEY)
        sha, size = reg.artifacts.put(data)
        reg.store.create_run(make_run("planted"))
        planted = NewVersion(
            key=KEY, key_values={"store": 1, "brand": "tropicana"}, n_rows=current.n_rows,
            data_fingerprint="planted", estimator=current.estimator, params={},
            metric=current.metric, score=current.score + 1, naive_score=current.naive_score,
            candidates=[], feature_schema=current.feature_schema, artifact_sha256=sha,
            artifact_size=size, train_seconds=0.0,
        )  # fmt: skip
        numbers = reg.store.record("planted", [planted], [], libraries={}, promote=lambda v: "t")
        assert reg.get_version(KEY).version == numbers[KEY]
    return numbers[KEY]


# ------------------------------------------------------------------------------ skops round trip
@pytest.mark.slow  # trains the module's registry when it runs first (~15 s on a busy machine)
def test_trained_models_are_skops_and_serve_from_a_skops_only_registry(
    trained: dict[str, Path], registry: Path, tmp_path: Path
) -> None:
    with Registry.open(registry) as reg:
        versions = [reg.get_version(p.key) for p in reg.list_partitions()]
        assert reg.trusted_formats == {"skops"}
        for v in versions:
            assert v.artifact_format == "skops" and "skops" in v.libraries
            assert format_of(reg.artifacts.get(v.artifact_sha256)) == "skops"
        kinds = {type(reg.load_artifact(v)).__name__ for v in versions}
        assert "RandomForestRegressor" in kinds, kinds  # trees: a type skops does not trust
        loaded = reg.load_model(KEY)
        rows = _rows(trained["data"])
        features = loaded.version.feature_schema["features"]
        frame = rows.assign(units_lag1=rows["units"].shift(1).fillna(rows["units"].mean()))
        expected = loaded.predict(frame[features])

    scored = tmp_path / "scored.csv"
    frame.to_csv(tmp_path / "rows.csv", index=False)
    result = invoke(
        "score", tmp_path / "rows.csv", "--out", scored, "--registry", registry, "--backend",
        "local",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(pd.read_csv(scored)["prediction"], expected)

    result = invoke(
        "forecast", "--registry", registry, "--horizon", "2", "--out", tmp_path / "fc.csv"
    )
    assert result.exit_code == 0, result.output
    partitions = [v for v in versions if not v.key.startswith("__")]  # not the fallback
    assert len(pd.read_csv(tmp_path / "fc.csv")) == 2 * len(partitions)

    body = {"rows": frame[features].to_dict(orient="records")}
    with _client(registry) as client:
        answer = client.post(f"/v1/partitions/{KEY}/predict", json=body)
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(answer.json()["predictions"], expected)


# ------------------------------------------------------------------------------ pickle refused
@pytest.mark.slow  # the CLI's score and forecast, and a router
def test_a_pickle_in_a_skops_only_registry_is_never_unpickled(
    trained: dict[str, Path], registry: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "unpickled"
    version = _plant_pickle(registry, marker)
    named = f"'{KEY}' v{version}"

    with Registry.open(registry) as reg, pytest.raises(UntrustedArtifact, match="pickle"):
        reg.load_model(KEY)
    assert not marker.exists()

    rows = tmp_path / "rows.csv"
    _rows(trained["data"]).assign(units_lag1=1.0).to_csv(rows, index=False)
    result = invoke(
        "score", rows, "--out", tmp_path / "o.csv", "--registry", registry, "--backend", "local"
    )
    one_error_line(result, named, "pickle", "skops")
    result = invoke(
        "forecast", "--registry", registry, "--horizon", "1", "--out", tmp_path / "f.csv",
        "--partitions", KEY,
    )  # fmt: skip
    one_error_line(result, named, "pickle")
    assert not marker.exists()

    with _client(registry) as client:
        answer = client.post(
            f"/v1/partitions/{KEY}/predict",
            json={"rows": [{"price": 2.0, "deal": 0, "feat": 0, "units_lag1": 10.0}]},
        )
    assert answer.status_code == 500, answer.text
    assert "pickle" in answer.json()["detail"] and KEY in answer.json()["detail"]
    assert not marker.exists()

    # the control: the same registry trusting pickles again does unpickle it
    assert (
        invoke("trust", "--registry", registry, "--trusted-formats", "pickle,skops").exit_code == 0
    )
    with Registry.open(registry) as reg:
        reg.load_model(KEY)
    assert marker.exists()


@pytest.mark.slow  # waits out the policy's cache
def test_a_running_router_follows_a_policy_set_after_it_started(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    registry = Path(shutil.copytree(trained["registry"], tmp_path / "registry"))
    marker = tmp_path / "unpickled"
    row = {"price": 2.0, "deal": 0, "feat": 0, "units_lag1": 10.0}
    with _client(registry, refresh_seconds=0.1) as client:
        assert client.post(f"/v1/partitions/{KEY}/predict", json={"rows": [row]}).is_success
        assert invoke("trust", "--registry", registry, "--trusted-formats", "skops").exit_code == 0
        version = _plant_pickle(registry, marker)
        time.sleep(FORMATS_TTL + 0.3)  # the policy's cache, and the router's alias refresh
        answer = client.post(f"/v1/partitions/{KEY}/predict", json={"rows": [row]})
    assert answer.status_code == 500, answer.text
    assert f"v{version}" in answer.json()["detail"]
    assert not marker.exists()


@pytest.mark.slow  # trains a partition again
def test_retraining_with_skops_replaces_a_pickled_champion_without_unpickling_it(
    trained: dict[str, Path], registry: Path, tmp_path: Path
) -> None:
    """The way out of pickles: the champion cannot be compared (it is never read), and no
    reader would serve it, so ``if_better`` does not keep it."""
    marker = tmp_path / "unpickled"
    planted = _plant_pickle(registry, marker)
    result = invoke(
        "train", trained["root"] / "spec.toml", trained["data"], "--registry", registry,
        "--backend", "local", "--partitions", KEY,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert not marker.exists()
    with Registry.open(registry) as reg:
        production = reg.get_version(KEY)
        assert production.version == planted + 1 and production.artifact_format == "skops"
        assert "no longer loads" in production.evaluation["reason"]
        reg.load_model(KEY)


def test_a_skops_only_registry_refuses_to_train_pickles(
    trained: dict[str, Path], registry: Path
) -> None:
    with Registry.open(registry) as reg:
        runs = reg.count_runs()
    result = invoke(
        "train", trained["root"] / "pickle.toml", trained["data"], "--registry", registry,
        "--backend", "local",
    )  # fmt: skip
    one_error_line(result, "trusts only skops", "format = 'skops'")
    with Registry.open(registry) as reg:
        assert reg.count_runs() == runs


def test_uploads_stay_data(registry: Path, tmp_path: Path) -> None:
    """The one route that takes a file reads it as CSV or Parquet, never as a pickle."""
    marker = tmp_path / "unpickled"
    with _client(registry) as client:
        answer = client.post(
            f"/v1/partitions/{KEY}/retrain",
            files={"file": ("rows.pkl", pickle.dumps(Tripwire(marker)))},
            headers={"Authorization": f"Bearer {ADMIN}"},
        )
    assert answer.status_code == 422, answer.text
    assert not marker.exists()


# ------------------------------------------------------------------------------ the trusted list
class _Custom(Ridge):
    """A user's estimator class: not on the trusted list."""


def test_a_type_off_the_trusted_list_is_refused_when_stored_and_when_loaded() -> None:
    X = np.arange(12.0).reshape(6, 2)
    with pytest.raises(UntrustedArtifact, match=r"_Custom.*format = 'pickle'"):
        dumps(_Custom().fit(X, X.sum(axis=1)), "skops")
    import skops.io

    crafted = skops.io.dumps(_Custom().fit(X, X.sum(axis=1)))  # e.g. written by another tool
    with pytest.raises(UntrustedArtifact, match="_Custom"):
        loads(crafted, what="partition 'k=1' v1")
    assert type(loads(dumps(Ridge().fit(X, X[:, 0]), "skops"), {"skops"})) is Ridge
    assert "sklearn.tree._tree.Tree" in TRUSTED_TYPES


@pytest.mark.slow  # may train the module's registry
def test_verified_bytes_that_do_not_load_are_one_error_line_for_every_reader(
    registry: Path, tmp_path: Path
) -> None:
    """A skops file cut short (or damaged, or crafted) whose digest its row records: batch
    scoring and the router said "does not load (…)", but `export`, `forecast` and
    `Registry.load_model` raised BadZipFile (a traceback from the CLI). Now every reader
    raises ``ArtifactUnreadable`` (an ``ArtifactError``) naming the partition and why; the
    same for a pickle naming a class this release does not have."""
    with Registry.open(registry) as reg:
        whole = reg.artifacts.get(reg.get_version(KEY).artifact_sha256)
    version = _plant(registry, whole[: len(whole) // 2])
    with Registry.open(registry) as reg, pytest.raises(ArtifactUnreadable) as caught:
        reg.load_model(KEY)
    assert isinstance(caught.value, ArtifactError)
    assert f"partition '{KEY}' v{version}: its artifact does not load (BadZipFile" in str(
        caught.value
    )
    one_error_line(
        invoke("forecast", "--registry", registry, "--horizon", "2", "--partitions", KEY),
        "does not load (BadZipFile",
    )
    export = ("export", KEY, "--format", "mlflow", tmp_path / "model", "--registry", registry)
    one_error_line(invoke(*export), "does not load (BadZipFile")
    renamed = b"cmanymodels.candidates\nRenamedSince\n."  # a class renamed since pickled
    with pytest.raises(ArtifactUnreadable, match=r"k=1' v1: .*\(AttributeError: .*RenamedSince"):
        loads(renamed, what="partition 'k=1' v1")


@pytest.mark.parametrize(
    ("estimator", "held", "readme"),
    [
        ("sklearn.neighbors.KNeighborsRegressor", "sklearn.neighbors._kd_tree.KDTree",
         "nearest-neighbour"),
        ("sklearn.neural_network.MLPRegressor", "AdamOptimizer", "MLPRegressor"),
        ("sklearn.linear_model.TweedieRegressor", "sklearn._loss.loss.HalfTweedieLoss",
         "TweedieRegressor"),
    ],
)  # fmt: skip
def test_scikit_learn_estimators_skops_does_not_trust_are_refused_saying_so(
    estimator: str, held: str, readme: str
) -> None:
    """The README lists the scikit-learn estimators whose fitted parts skops does not trust;
    the refusal said manymodels "trusts scikit-learn's estimators", of a scikit-learn one."""
    import importlib
    import warnings

    module, name = estimator.rsplit(".", 1)
    X = np.random.default_rng(0).normal(size=(60, 3))  # enough rows for a KD tree
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLP's convergence warning
        model = getattr(importlib.import_module(module), name)().fit(X, X.sum(axis=1) + 1)
    with pytest.raises(UntrustedArtifact) as caught:
        dumps(model, "skops")
    message = str(caught.value)
    assert f"cannot store a {name}" in message and held in message
    assert "not every fitted part of them" in message and "format = 'pickle'" in message
    assert readme in (Path(__file__).parents[1] / "README.md").read_text()


def test_trust_command_rejects_unknown_formats(registry: Path) -> None:
    one_error_line(
        invoke("trust", "--registry", registry, "--trusted-formats", "joblib"), "joblib", "skops"
    )
    result = invoke("trust", "--registry", registry)
    assert result.stdout.strip().endswith("loads skops artifacts")


def test_trust_says_that_models_stored_so_are_refused_from_now_on(tmp_path: Path) -> None:
    """It said only "loads skops artifacts"; the registry's pickles were refused by every
    reader from then on, and nothing said so."""
    root = tmp_path / "reg"
    Registry(root).close()
    result = invoke("trust", "--registry", root, "--trusted-formats", "skops")
    assert result.exit_code == 0, result.output
    last = result.stdout.strip().splitlines()[-1]
    assert last == (
        f"models already stored as pickle are refused from now on: manymodels doctor "
        f"--registry {root} counts them"
    )
    again = invoke("trust", "--registry", root, "--trusted-formats", "pickle,skops")
    assert len(again.stdout.strip().splitlines()) == 1  # trusting more refuses nothing


# ------------------------------------------------------------------------------ skops not installed
def test_without_skops_a_skops_spec_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    zipped = dumps(Ridge().fit(np.eye(3), [1.0, 2.0, 3.0]), "skops")
    for name in [m for m in sys.modules if m == "skops" or m.startswith("skops.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "skops", None)  # what an environment without it sees
    with pytest.raises(SpecError, match=r"pip install 'manymodels\[skops\]'"):
        Spec.from_dict(
            {"name": "s", "partition_by": ["k"], "target": "y", "artifacts": {"format": "skops"},
             "candidates": [{"estimator": "sklearn.linear_model.Ridge"}]}
        )  # fmt: skip
    with pytest.raises(ArtifactError, match=r"manymodels\[skops\]"):
        loads(zipped)


@pytest.mark.slow  # a fresh interpreter importing the CLI and the router
def test_the_package_imports_without_skops() -> None:
    code = (
        "import sys; sys.modules['skops'] = None\n"
        "import manymodels.pipeline, manymodels.cli, manymodels.scoring, serving.app\n"
        "assert sys.modules['skops'] is None"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
