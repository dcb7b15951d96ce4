"""Bad input gets one clear error and loses nothing: specs, tables, CLI arguments, HTTP bodies.

Every test goes through the real entry point (a TOML file and the CLI, a CSV / Parquet file, a
TestClient over the router) and checks both the message and that nothing was half-written.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from factories import job_ended, linear_frame, open_client
from typer.testing import CliRunner

from manymodels import console
from manymodels.artifact_digests import sha256
from manymodels.artifacts import LocalArtifactStore
from manymodels.candidates import resolve
from manymodels.cli import app
from manymodels.data import prepare, resolve_columns
from manymodels.exceptions import ArtifactError, DataError, InvalidRows
from manymodels.partition import group_rows, split
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.scoring import score_table
from manymodels.spec import Spec
from manymodels.timecolumn import parse_time
from serving.settings import Settings

runner = CliRunner()
TOKEN = "bad-input-token"
RIDGE = "sklearn.linear_model.Ridge"


# ------------------------------------------------------------------------------------ helpers
def one_error_line(result: Any, *expected: str) -> str:
    """A failed command prints exactly one line, ``error: …``, and no traceback."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    for text in expected:
        assert text in lines[0], lines[0]
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return lines[0]


def toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return str(value)


def write_spec(path: Path, **overrides: Any) -> Path:
    spec: dict[str, Any] = {
        "name": "bad-input",
        "partition_by": ["pid"],
        "target": "y",
        "time_column": "t",
        "min_rows": 5,
        "candidates": [{"estimator": RIDGE}],
    }
    spec.update(overrides)
    tables = {k: v for k, v in spec.items() if k == "candidates"}
    lines = [f"{k} = {toml_value(v)}" for k, v in spec.items() if k not in tables]
    for cand in spec["candidates"]:
        lines += ["", "[[candidates]]"] + [f"{k} = {toml_value(v)}" for k, v in cand.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def cli_train(tmp_path: Path, data: Path | None = None, **overrides: Any) -> Any:
    spec = write_spec(tmp_path / "spec.toml", **overrides)
    if data is None:
        data = tmp_path / "data.csv"
        linear_frame(3, 20).to_csv(data, index=False)
    args = ["train", spec, data, "--registry", tmp_path / "registry", "--backend", "local"]
    return runner.invoke(app, [str(a) for a in args])


def nothing_registered(root: Path) -> bool:
    if not (root / "registry.db").exists():
        return True
    with Registry.open(root) as reg:
        return reg.list_runs() == [] and reg.count_partitions() == 0


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three partitions ``pid`` over features x0, x1 (time ``t``), plus the fallback."""
    root = tmp_path_factory.mktemp("bad-input") / "registry"
    spec = Spec.from_dict(
        {
            "name": "bad-input",
            "partition_by": ["pid"],
            "target": "y",
            "time_column": "t",
            "features": ["x0", "x1"],
            "min_rows": 5,
            "candidates": [{"estimator": RIDGE}],
        }
    )
    with Registry(root) as reg:
        assert train(spec, linear_frame(3, 20), reg, backend="local").run.n_failed == 0
    return root


@pytest.fixture
def router(trained: Path, tmp_path: Path) -> Any:
    """A router on a copy of ``trained`` of the test's own: for a test that writes to it."""
    copy = Path(shutil.copytree(trained, tmp_path / "copy"))
    settings = Settings(registry=copy, admin_token=TOKEN, retrain_backend="local")
    with open_client(settings) as client:
        yield client, copy


@pytest.fixture(scope="module")
def reader(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``router``, one for the module, for the tests whose every request is refused or only
    read (~0.9 s of copy and start each, 20 tests): what one of them checks was not written
    (no version, alias, run, job nor actual) it checks on this shared registry, where any
    test's stray write would show."""
    copy = Path(shutil.copytree(trained, tmp_path_factory.mktemp("reader") / "copy"))
    settings = Settings(registry=copy, admin_token=TOKEN, retrain_backend="local")
    with open_client(settings) as client:
        yield client, copy


def snapshot(root: Path) -> tuple[Any, ...]:
    with Registry.open(root) as reg:
        parts = [(p.key, p.latest_version, p.aliases) for p in reg.list_partitions(limit=100)]
        return tuple(parts), len(reg.list_runs())


# -------------------------------------------------------- 1. spec problems known at spec time
@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"seed": -1}, ["seed", "greater than or equal to 0"]),
        ({"seed": 2**32}, ["seed", "less than 4294967296"]),
        (
            {"candidates": [{"estimator": RIDGE, "params": {"alpha": "abc"}}]},
            ["candidates[0]", "params", "alpha = 'abc'", "Ridge"],
        ),
        (
            {"candidates": [{"estimator": RIDGE, "params": {"alpha": [1.0, -3.0]}}]},
            ["candidates[0]", "alpha = -3.0"],
        ),
        ({"metric": "roc_auc"}, ["metric 'roc_auc'", "regression"]),
        ({"metric": "neg_log_loss"}, ["metric 'neg_log_loss'", "regression"]),
        (
            {"validation": {"strategy": "kfold", "folds": 3, "global_refit": 0}},
            ["validation.global_refit", "true, false or a number of folds ≥ 1 (got 0)"],
        ),
        (
            {"validation": {"strategy": "last", "size": 3, "global_refit": False}},
            ["validation.global_refit needs strategy 'kfold'"],
        ),
        (
            {"validation": {"strategy": "kfold", "folds": 3, "global_refit_last": 1}},
            ["validation.global_refit_last = 1", "every fold is refitted already"],
        ),
    ],
)
def test_spec_errors_that_used_to_fail_every_partition(
    tmp_path: Path, overrides: dict[str, Any], expected: list[str]
) -> None:
    result = cli_train(tmp_path, **overrides)
    one_error_line(result, "spec.toml", *expected)
    assert nothing_registered(tmp_path / "registry")


def test_seed_bounds_and_classification_metrics_still_accepted() -> None:
    base = {"name": "s", "partition_by": ["k"], "target": "y", "candidates": [{"estimator": RIDGE}]}
    assert Spec.from_dict({**base, "seed": 2**32 - 1}).seed == 2**32 - 1
    logistic = {"estimator": "sklearn.linear_model.LogisticRegression", "params": {"C": [0.5]}}
    spec = {**base, "task": "classification", "metric": "roc_auc", "candidates": [logistic]}
    assert Spec.from_dict(spec).metric_name == "roc_auc"


# ----------------------------------------- 1b. a classification metric its labels cannot take
LOGISTIC = {"estimator": "sklearn.linear_model.LogisticRegression", "params": {"C": [1.0]}}


def labelled(tmp_path: Path, labels: list[Any]) -> Path:
    """``linear_frame`` with a target of ``labels``, every partition holding each of them
    throughout (so its validation rows do too, and the spec's metric decides)."""
    df = linear_frame(3, 20)
    df["y"] = [labels[i % len(labels)] for i in range(len(df))]
    data = tmp_path / "labels.csv"
    df.to_csv(data, index=False)
    return data


@pytest.mark.parametrize(
    ("labels", "metric", "expected"),
    [
        (
            ["yes", "no"],
            "neg_mean_absolute_error",
            ["2 text labels: 'no', 'yes'", "could not convert", "'neg_log_loss'", "'roc_auc'"],
        ),
        ([0, 1, 2], "roc_auc", ["3 classes: 0, 1, 2", "multi_class", "'roc_auc_ovr'"]),
        (["yes", "no"], "f1", ["labels 'no', 'yes' hold no 1", "[decision] positive = 'no'"]),
    ],
)
def test_a_metric_the_labels_cannot_take_is_refused_before_training(
    tmp_path: Path, labels: list[Any], metric: str, expected: list[str]
) -> None:
    """Each partition whose validation rows held every class failed, then the fallback: the
    run left the registry half-written. The table's classes are known before training."""
    data = labelled(tmp_path, labels)
    result = cli_train(tmp_path, data, task="classification", metric=metric, candidates=[LOGISTIC])
    one_error_line(result, f"metric '{metric}'", *expected)
    assert nothing_registered(tmp_path / "registry")


@pytest.mark.parametrize(
    ("labels", "overrides"),
    [
        (["yes", "no"], {"metric": "roc_auc"}),
        (["a", "b", "c"], {"metric": "roc_auc_ovr", "selection": {"fallback_metric": "brier"}}),
    ],
)
def test_a_metric_the_labels_can_take_still_trains(
    tmp_path: Path, labels: list[Any], overrides: dict[str, Any]
) -> None:
    data = labelled(tmp_path, labels)
    result = cli_train(tmp_path, data, task="classification", candidates=[LOGISTIC], **overrides)
    assert result.exit_code == 0, result.output
    with Registry.open(tmp_path / "registry") as reg:
        run = reg.list_runs()[0]
        assert (run.n_trained, run.n_failed) == (3, 0)


def test_a_metric_only_a_table_s_union_of_classes_defeats_still_trains(tmp_path: Path) -> None:
    """Three classes, each partition holding two of them, and no fallback: ``roc_auc`` scores
    every partition, and trained before the check; no model of the run meets three classes.
    With the fallback on, its pooled rows do, and the run is refused as before."""
    df = linear_frame(3, 20)
    pairs = {0: ["a", "b"], 1: ["b", "c"], 2: ["a", "c"]}
    df["y"] = [pairs[p][i % 2] for i, p in enumerate(df["pid"])]
    data = tmp_path / "pairs.csv"
    df.to_csv(data, index=False)
    off = {"enabled": False}
    result = cli_train(tmp_path, data, task="classification", metric="roc_auc",
                       candidates=[LOGISTIC], fallback=off)  # fmt: skip
    assert result.exit_code == 0, result.output
    with Registry.open(tmp_path / "registry") as reg:
        assert (reg.list_runs()[0].n_trained, reg.list_runs()[0].n_failed) == (3, 0)
    shutil.rmtree(tmp_path / "registry")
    refused = cli_train(tmp_path, data, task="classification", metric="roc_auc",
                        candidates=[LOGISTIC])  # fmt: skip
    one_error_line(refused, "metric 'roc_auc' cannot score this table's labels")


# ----------------------------------------------------------- 2. tracebacks instead of a line
@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"candidates": [{"estimator": "sklearn.ensemble.VotingRegressor"}]},
            ["candidates[0].estimator", "VotingRegressor()", "factory"],
        ),
        ({"features": ["x0", "x0"]}, ["features", "'x0' more than once"]),
        ({"features": ["t", "x0"]}, ["time_column 't'", "feature"]),
        ({"features": ["x0", "x1"], "categorical": ["x0", "x0"]}, ["categorical", "'x0'"]),
    ],
)
def test_spec_errors_that_used_to_be_tracebacks(
    tmp_path: Path, overrides: dict[str, Any], expected: list[str]
) -> None:
    result = cli_train(tmp_path, **overrides)
    one_error_line(result, "spec.toml", *expected)
    assert nothing_registered(tmp_path / "registry")


def test_an_estimator_module_that_raises_on_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "broken_estimators.py").write_text("raise RuntimeError('no licence server')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match="no licence server"):
        resolve("broken_estimators.Model")
    result = cli_train(tmp_path, candidates=[{"estimator": "broken_estimators:make"}])
    one_error_line(result, "candidates[0].estimator", "RuntimeError: no licence server")


@pytest.mark.parametrize("command", [["promote", "pid=1"], ["gc", "--keep"]])
def test_huge_cli_integers_are_usage_errors_not_tracebacks(
    trained: Path, tmp_path: Path, command: list[str]
) -> None:
    copy = shutil.copytree(trained, tmp_path / "copy")
    before = snapshot(copy)
    args = [*command, "99999999999999999999999", "--registry", str(copy)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()  # the CLI's one-line usage error, not click's box
    assert len(lines) == 1 and lines[0].startswith("error: ") and "2147483647" in lines[0]
    assert snapshot(copy) == before


# ------------------------------------------------------------ 3. artifacts readable by others
def test_artifacts_get_the_umask_mode_not_0600(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "artifacts", fsync=False)
    old = os.umask(0o022)
    try:
        digest, _ = store.put(b"model bytes")
    finally:
        os.umask(old)
    assert stat.S_IMODE(store.path(digest).stat().st_mode) == 0o644


def test_unreadable_artifact_is_an_artifact_error(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "artifacts", fsync=False)
    digest = sha256(b"never written")
    store.path(digest).mkdir(parents=True)  # something unreadable in its place (root ignores modes)
    with pytest.raises(ArtifactError, match=f"cannot read artifact {digest}"):
        store.get(digest)


# --------------------------------------------------------------- 4. huge JSON integers over HTTP
def test_predict_with_a_huge_integer_is_422_naming_the_column(reader: Any) -> None:
    client, _ = reader
    body = '{"rows": [{"x0": 1.0, "x1": ' + "1" + "0" * 400 + "}]}"
    r = client.post(
        "/v1/partitions/pid=1/predict", content=body, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 422, r.text
    assert "x1" in json.dumps(r.json()["detail"]) and "too large" in r.text
    ok = client.post("/v1/partitions/pid=1/predict", json={"rows": [{"x0": 1, "x1": 10**30}]})
    assert ok.status_code == 200, ok.text  # large but finite: a float64 like any other


@pytest.mark.parametrize("number", ["1e400", "1" + "0" * 400 + ".5", "-1e999"])
def test_predict_with_a_decimal_past_float_is_422_naming_the_cell(reader: Any, number: str) -> None:
    """JSON's 1e400 (or a 400-digit decimal) reads as inf: the answer was scikit-learn's
    "Input X contains infinity" naming no cell, where 10**400 was named. Now the same words,
    with the cell's row and column, from one key, a batch, and ``LoadedModel.predict``."""
    client, root = reader
    expected = "feature 'x1' is too large a number (" + ("-" if "-" in number else "") + "inf)"
    for path, row in [
        ("/v1/partitions/pid=1/predict", {}),
        ("/v1/predict", {"pid": 1}),
    ]:
        body = '{"rows": [{"x0": 1.0, "x1": 2.0}, {"x0": 1.0, "x1": ' + number + "}]}"
        if row:
            body = body.replace('{"x0"', '{"pid": 1, "x0"')
        r = client.post(path, content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 422, r.text
        (detail,) = r.json()["detail"]
        assert detail["loc"] == ["body", "rows", 1, "x1"], r.text
        assert detail["msg"] == expected + ": it does not fit a float", r.text
    with Registry.open(root) as reg:
        loaded = reg.load_model("pid=1")
    with pytest.raises(InvalidRows, match=re.escape(expected)):
        loaded.predict(pd.DataFrame({"x0": [1.0, 1.0], "x1": [2.0, float(number)]}))


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/partitions/pid=1/predict", '{"rows": NaN}'),
        ("/v1/partitions/pid=1/predict", '{"rows": [Infinity]}'),
        ("/v1/predict", "[1e999]"),
        ("/v1/partitions/pid=1/forecast", '{"horizon": NaN}'),
        ("/v1/partitions/pid=1/actuals", '{"rows": [], "version": -Infinity}'),
    ],
)
def test_a_422_echoing_a_non_finite_number_is_a_422(reader: Any, path: str, body: str) -> None:
    """FastAPI's 422 repeats the bad input, and JSON has no NaN: its handler failed on these
    and the client got a 500."""
    client, _ = reader
    r = client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert isinstance(r.json()["detail"], list) and r.json()["detail"][0]["loc"][0] == "body"


def test_a_prediction_that_overflows_is_a_422_naming_the_row(reader: Any) -> None:
    """``1e308`` is a finite float64, but a linear model's arithmetic overflows on it: the
    answer was a 200 with a ``null`` prediction (scored from coefficients) where
    ``LoadedModel.predict`` refuses the row."""
    client, _ = reader
    rows = [{"x0": 1.0, "x1": 2.0}, {"x0": 1.0, "x1": -1e308}]  # pid=1: x1's weight is -3.1
    for path, body in [
        ("/v1/partitions/pid=1/predict", {"rows": rows}),
        ("/v1/predict", {"rows": [{"pid": 1, **r} for r in rows]}),
    ]:
        r = client.post(path, json=body)
        assert r.status_code == 422, r.text
        (problem,) = r.json()["detail"]
        assert problem["loc"] == ["body", "rows", 1] and "not a finite number" in problem["msg"]
    v2 = {
        "inputs": [
            {"name": "x0", "datatype": "FP64", "shape": [2], "data": [1.0, 1.0]},
            {"name": "x1", "datatype": "FP64", "shape": [2], "data": [2.0, -1e308]},
        ]
    }
    r = client.post("/v2/models/pid=1/infer", json=v2)
    assert r.status_code == 400 and "not a finite number" in r.json()["error"], r.text


@pytest.mark.parametrize("bad", [{"x1": -1e308}, {"y": 1e200}])
def test_actuals_whose_error_overflows_are_a_422_and_write_nothing(router: Any, bad: Any) -> None:
    """A target of 1e200 squares to infinity: the day's sums became infinite and hid every
    later error (the partition lost its 'degraded' flag). A null prediction was a 409 that
    blamed another writer."""
    client, _ = router
    good = {"t": 20, "x0": 1.0, "x1": 2.0, "y": 3.0}
    rows = [{**good, "t": 21, **bad}, good]  # the bad row comes second in time
    r = client.post("/v1/partitions/pid=1/actuals", json={"rows": rows})
    assert r.status_code == 422, r.text
    (problem,) = r.json()["detail"]
    assert problem["loc"] == ["body", "rows", 0], problem  # its place in the request
    (health,) = client.get("/v1/monitor", params={"key": "pid=1"}).json()["partitions"]
    assert health["live_rows"] == 0, health
    r = client.post("/v1/partitions/pid=1/actuals", json={"rows": [good]})
    assert r.status_code == 200, r.text
    (health,) = client.get("/v1/monitor", params={"key": "pid=1"}).json()["partitions"]
    assert health["live_rows"] == 1 and health["live_error"] is not None, health


def test_an_actual_past_a_floats_range_is_a_422(reader: Any) -> None:
    """A target of 10**400 (JSON reads it as an integer, past any float) made the actuals
    route's finiteness check raise OverflowError: a 500; now a 422 in ``/v1/predict``'s words
    (it said "must be finite", as of 1e400)."""
    client, _ = reader
    row = {"t": 20, "x0": 1.0, "x1": 2.0}
    for y in (10**400, -(10**400)):
        body = json.dumps({"rows": [{**row, "y": y}]})
        r = client.post(
            "/v1/partitions/pid=1/actuals",
            content=body,
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 422, r.text
        (problem,) = r.json()["detail"]
        assert problem["msg"].startswith("target 'y' is too large a number ("), problem
        assert problem["msg"].endswith("): it does not fit a float"), problem  # row: loc


@pytest.mark.parametrize("value", ["1", True, 1.0])
def test_a_version_or_horizon_that_is_not_a_json_integer_is_a_422(router: Any, value: Any) -> None:
    """``{"version": true}`` promoted v1 and ``{"horizon": true}`` forecast one step: the
    OpenAPI document says integer, and a string or a boolean is a client's mistake."""
    client, root = router
    before = snapshot(root)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    row = {"t": 20, "x0": 1.0, "x1": 2.0, "y": 3.0}
    calls = [
        ("/v1/partitions/pid=1/forecast", "horizon", {"future": [{"x0": 1.0, "x1": 2.0}]}, {}),
        ("/v1/partitions/pid=1/actuals", "version", {"rows": [row]}, {}),
        ("/v1/partitions/pid=1/promote", "version", {}, auth),
    ]
    for path, name, body, headers in calls:
        r = client.post(path, json={**body, name: value}, headers=headers)
        assert r.status_code == 422, (path, r.text)
        assert r.json()["detail"][0]["loc"] == ["body", name], r.text
    assert snapshot(root) == before
    for path, name, body, headers in calls:  # the same with the integer 1
        r = client.post(path, json={**body, name: 1}, headers=headers)
        assert r.status_code == 200, (path, r.text)


@pytest.mark.parametrize("time", [{"a": [1, 2]}, True, [20]])
def test_actuals_whose_time_is_not_a_time_are_a_422(reader: Any, time: Any) -> None:
    """An object, a boolean or a list as the time was stored as sent, shown on the dashboard
    and used to order the naive answers."""
    client, _ = reader
    row = {"x0": 1.0, "x1": 2.0, "y": 3.0}
    r = client.post(
        "/v1/partitions/pid=1/actuals", json={"rows": [{**row, "t": 20}, {**row, "t": time}]}
    )
    assert r.status_code == 422, r.text
    (problem,) = r.json()["detail"]
    assert problem["loc"] == ["body", "rows", 1, "t"] and "must be a time" in problem["msg"]
    (health,) = client.get("/v1/monitor", params={"key": "pid=1"}).json()["partitions"]
    assert health["live_rows"] == 0


def retrain_rows() -> list[dict[str, Any]]:
    frame = linear_frame(3, 20).query("pid == 1").drop(columns=["pid"])
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict("records")]


def test_retrain_with_an_integer_past_float_is_422_naming_it(reader: Any) -> None:
    """10**400 in a feature: a 422 naming the feature and row in /v1/predict's words (it was
    read as inf at the upload, the 422 of 1e400: "is inf … too large"). (10**30,
    once refused here too, is read as a float, as predict, actuals and ``train`` read it:
    tests/serving/test_router_retrain.py.)"""
    client, root = reader
    before = snapshot(root)
    rows = retrain_rows()
    rows[2]["x0"] = 10**400
    r = client.post(
        "/v1/partitions/pid=1/retrain",
        content=json.dumps({"rows": rows}),
        headers={"Authorization": f"Bearer {TOKEN}", "content-type": "application/json"},
    )
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith("feature 'x0' is too large a number (1000"), r.text
    assert r.json()["detail"].endswith(") in row 2: it does not fit a float"), r.text
    assert client.get("/v1/jobs", headers={"Authorization": f"Bearer {TOKEN}"}).json()["jobs"] == []
    assert snapshot(root) == before


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("x0", "cheap", "feature 'x0' must be a number, not text 'cheap'"),
        ("x1", 1e300, "feature 'x1' is 1e+300 in row 2: too large to train on"),
        ("y", 1e200, "target 'y' is 1e+200 in row 2: too large to train on"),
    ],
)
def test_retrain_rows_the_job_could_only_fail_on_are_a_422(
    reader: Any, column: str, value: Any, expected: str
) -> None:
    """They were accepted (202), and the job failed later ('neg_mean_absolute_error is not
    finite', or naming row 62 of the merged rows when one row was posted)."""
    client, root = reader
    before = snapshot(root)
    rows = retrain_rows()
    rows[2][column] = value
    auth = {"Authorization": f"Bearer {TOKEN}"}
    r = client.post("/v1/partitions/pid=1/retrain", json={"rows": rows}, headers=auth)
    assert r.status_code == 422 and expected in r.json()["detail"], r.text
    assert client.get("/v1/jobs", headers=auth).json()["jobs"] == []
    assert snapshot(root) == before


def test_retrain_with_a_decimal_past_float_is_422_in_the_shared_words(reader: Any) -> None:
    """JSON's 1e400 in a retrain's rows: "feature 'x1' is inf in row 2: too large to train
    on (|x| > 1e+150)", where 10**400 is "too large a number … it does not fit a float"."""
    client, root = reader
    before = snapshot(root)
    rows = retrain_rows()
    rows[2]["x1"] = 123.0
    body = json.dumps({"rows": rows}).replace("123.0", "1e400")
    auth = {"Authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
    r = client.post("/v1/partitions/pid=1/retrain", content=body, headers=auth)
    assert r.status_code == 422, r.text
    expected = "feature 'x1' is too large a number (inf) in row 2: it does not fit a float"
    assert r.json()["detail"] == expected, r.text
    assert snapshot(root) == before


# ------------------------------------------------------------- 11. a target the rows cannot train
@pytest.fixture(scope="module")
def trained_strict(tmp_path_factory: pytest.TempPathFactory, trained: Path) -> Path:
    """The same registry, its runs made by a spec that says ``missing_target = "error"``."""
    root = tmp_path_factory.mktemp("bad-input-strict") / "registry"
    with Registry.open(trained) as reg:
        spec = {**reg.list_runs()[0].spec, "missing_target": "error"}
    with Registry(root) as reg:
        assert train(spec, linear_frame(3, 20), reg, backend="local").run.n_failed == 0
    return root


@pytest.mark.parametrize("missing", [[3], "all"])
def test_retrain_rows_without_target_values_are_422_when_the_spec_says_error(
    trained_strict: Path, tmp_path: Path, missing: Any
) -> None:
    copy = Path(shutil.copytree(trained_strict, tmp_path / "copy"))
    settings = Settings(registry=copy, admin_token=TOKEN, retrain_backend="local")
    with open_client(settings) as client:
        before = snapshot(copy)
        rows = retrain_rows()
        for i in range(len(rows)) if missing == "all" else missing:
            rows[i]["y"] = None
        auth = {"Authorization": f"Bearer {TOKEN}"}
        r = client.post("/v1/partitions/pid=1/retrain", json={"rows": rows}, headers=auth)
        assert r.status_code == 422, r.text
        n = len(rows) if missing == "all" else 1
        assert f"target 'y' is missing in {n} of {len(rows)} row(s)" in r.json()["detail"]
        assert 'missing_target = "error"' in r.json()["detail"]
        assert client.get("/v1/jobs", headers=auth).json()["jobs"] == []
        assert snapshot(copy) == before


def test_retrain_rows_without_target_values_are_dropped_and_counted_by_default(
    router: Any,
) -> None:
    client, root = router
    rows = [{**row, "t": row["t"] + 20} for row in retrain_rows()]  # periods not kept yet
    rows[3]["y"] = None
    auth = {"Authorization": f"Bearer {TOKEN}"}
    r = client.post("/v1/partitions/pid=1/retrain", json={"rows": rows}, headers=auth)
    assert r.status_code == 202, r.text
    job = job_ended(client, r.headers["Location"], auth)
    assert job["status"] == "succeeded", job
    with Registry.open(root) as reg:
        assert reg.get_version("pid=1", job["version"]).validation["dropped"] == {
            "missing_target": 1
        }


# ----------------------------------------------------- 5. keys that differ only by their type
def test_mixed_type_key_values_with_one_canonical_key_are_refused(tmp_path: Path) -> None:
    df = linear_frame(2, 10)
    df["pid"] = df["pid"].astype(object)
    df.loc[df.index[:5], "pid"] = "0"  # partition 0 spelt both as 0 and as "0"
    with pytest.raises(DataError, match=r"same key 'pid=0'.*0 \(int\).*'0' \(str\)"):
        group_rows(df, ["pid"])
    root = tmp_path / "registry"
    with Registry(root) as reg, pytest.raises(DataError, match="same key 'pid=0'"):
        train(write_spec(tmp_path / "spec.toml"), df, reg, backend="local")
    assert nothing_registered(root)


# --------------------------------------------------- 6. a numeric column with one stray word
def test_one_stray_word_in_a_numeric_feature_names_it(tmp_path: Path) -> None:
    df = linear_frame(3, 20)
    df["x1"] = df["x1"].astype(object)
    df.loc[17, "x1"] = "abc"
    data = tmp_path / "data.csv"
    df.to_csv(data, index=False)
    result = cli_train(tmp_path, data, features=["x0", "x1"])
    one_error_line(result, "data.csv", "feature 'x1'", "'abc'", "row 18")
    assert nothing_registered(tmp_path / "registry")


def test_text_columns_are_still_categorical(tmp_path: Path) -> None:
    spec = Spec.from_dict(
        {"name": "s", "partition_by": ["pid"], "target": "y", "candidates": [{"estimator": RIDGE}]}
    )
    df = linear_frame(1, 20).assign(colour=["red", "blue"] * 10)
    assert resolve_columns(df, spec, source="x").categorical == ["colour"]
    codes = df.assign(code=[str(i) for i in range(19)] + ["A7"])
    with pytest.raises(DataError, match=r"feature 'code'.*'A7'.*row 20"):
        resolve_columns(codes, spec, source="x")
    declared = spec.model_copy(update={"categorical": ["colour", "code"]})  # said to be text
    assert resolve_columns(codes, declared, source="x").categorical == ["colour", "code"]


# -------------------------------------------------- 7. fingerprints ignore the storage dtype
def fingerprints(df: pd.DataFrame) -> list[str]:
    return split(df, partition_by=["pid"], target="y", features=["x0", "x1", "n"]).fingerprints


def test_fingerprints_do_not_depend_on_dtype_or_file_format(tmp_path: Path) -> None:
    df = linear_frame(3, 10).assign(n=np.arange(30) % 7)
    base = fingerprints(df)
    assert fingerprints(df.astype({"n": "float64", "pid": "int32"})) == base
    assert fingerprints(df.astype({"n": "Int64"})) == base
    df.to_csv(tmp_path / "d.csv", index=False)
    df.astype({"n": "int32", "pid": "int16"}).to_parquet(tmp_path / "d.parquet", index=False)
    assert fingerprints(pd.read_csv(tmp_path / "d.csv")) == base
    assert fingerprints(pd.read_parquet(tmp_path / "d.parquet")) == base

    # one NaN elsewhere makes the column float64: the other partitions keep their fingerprint
    holes = df.astype({"n": "float64"})
    holes.loc[25, "n"] = math.nan
    got = fingerprints(holes)
    assert got[:2] == base[:2] and got[2] != base[2]
    assert fingerprints(holes.astype({"n": "Float64"})) == got  # pd.NA is the same hole

    edited = df.copy()
    edited.loc[3, "n"] = 99
    assert fingerprints(edited) == [fingerprints(edited)[0], *base[1:]]
    assert fingerprints(edited)[0] != base[0]


def test_time_column_fingerprint_ignores_the_datetime_unit() -> None:
    df = linear_frame(2, 10).assign(n=1)
    df["t"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(df["t"], unit="D")

    def prints(frame: pd.DataFrame) -> list[str]:
        return split(
            frame, partition_by=["pid"], target="y", features=["x0", "n"], time_column="t"
        ).fingerprints

    assert prints(df.astype({"t": "datetime64[us]"})) == prints(df.astype({"t": "datetime64[ns]"}))


# -------------------------------------------------------------- 8. one line for a bad date
def test_a_bad_date_is_one_line(tmp_path: Path) -> None:
    df = pd.DataFrame({"t": ["2024-01-01", "2024-01-08", "next week"]})
    with pytest.raises(DataError) as e:
        parse_time(df, "t", source="d.csv")
    assert "\n" not in str(e.value) and "time column 't'" in str(e.value)
    assert not str(e.value).endswith(":)")
    frame = linear_frame(3, 20).assign(t=lambda d: d["t"].astype(str))
    frame.loc[4, "t"] = "not a date"
    data = tmp_path / "data.csv"
    frame.to_csv(data, index=False)
    one_error_line(cli_train(tmp_path, data), "time column 't'", "not dates or numbers")
    assert nothing_registered(tmp_path / "registry")


# ------------------------------------------------------------- 9. an alias nobody has
def test_scoring_at_an_alias_no_partition_has_is_an_error(trained: Path, tmp_path: Path) -> None:
    data = tmp_path / "in.csv"
    linear_frame(3, 5).to_csv(data, index=False)
    out = tmp_path / "scores.csv"
    args = ["score", str(data), "--out", str(out), "--registry", str(trained), "--backend", "local"]
    one_error_line(runner.invoke(app, [*args, "--alias", "nope"]), "'nope'", "alias")
    assert not out.exists()
    copy = Path(shutil.copytree(trained, tmp_path / "copy"))
    with Registry.open(copy) as reg:  # the fallback alone at that alias does not count
        reg.set_alias("__fallback__", "nope", 1, reason="test")
    with pytest.raises(DataError, match="no partition in the registry has a 'nope' model"):
        score_table(linear_frame(3, 5), copy, alias="nope", backend="local")
    with Registry.open(copy) as reg:
        reg.set_alias("pid=1", "nope", 1, reason="test")
    result = score_table(linear_frame(3, 5), copy, alias="nope", backend="local")
    assert result.summary.fallback_rows == 10  # pid 0 and 2 by the fallback, as documented


# -------------------------------------------------------------- 10. strict JSON output
def test_json_output_has_no_infinity_or_nan(capsys: pytest.CaptureFixture[str]) -> None:
    console.print_json(
        {
            "improvement": math.inf,
            "worse": -math.inf,
            "nan": [math.nan, np.float64("nan")],
            "n": np.int64(3),
            "ok": 1.5,
        }
    )
    text = capsys.readouterr().out
    assert "Infinity" not in text and "NaN" not in text
    assert json.loads(text) == {
        "improvement": None, "worse": None, "nan": [None, None], "n": 3, "ok": 1.5
    }  # fmt: skip


def test_prepare_still_accepts_good_data() -> None:
    spec = write_spec_dict()
    table, _ = prepare(spec, linear_frame(2, 10))
    assert len(table) == 2


def write_spec_dict() -> Spec:
    return Spec.from_dict(
        {
            "name": "s",
            "partition_by": ["pid"],
            "target": "y",
            "time_column": "t",
            "candidates": [{"estimator": RIDGE}],
        }
    )


# -------------------------------------------------- 8. whole-table checks: warn, or drop
def test_a_mostly_numeric_text_feature_is_encoded_with_a_warning_naming_it(
    tmp_path: Path,
) -> None:
    """20 % text in a numeric column used to be one-hot encoded for every partition, silently."""
    df = linear_frame(3, 20)
    df["x1"] = df["x1"].round(2).astype(object)
    df.loc[df.index % 5 == 0, "x1"] = "missing"
    data = tmp_path / "data.csv"
    df.to_csv(data, index=False)
    result = cli_train(tmp_path, data, features=["x0", "x1"])
    assert result.exit_code == 0, result.output
    warning = "warning: feature 'x1' holds numbers in 80% of its rows and text in the rest"
    assert warning in result.stderr and warning not in result.stdout  # as Unix tools warn
    with Registry.open(tmp_path / "registry") as reg:
        (run,) = reg.list_runs()
        assert run.options["warnings"][0].startswith("feature 'x1' holds numbers in 80%")


def test_bad_rows_drop_leaves_out_stray_words_and_counts_them(tmp_path: Path) -> None:
    df = linear_frame(3, 20)
    df["x1"] = df["x1"].astype(object)
    df.loc[[3, 17], "x1"] = "n/a"
    df["y"] = df["y"].astype(object)
    df.loc[25, "y"] = "??"
    spec = {"name": "s", "partition_by": ["pid"], "target": "y", "time_column": "t",
            "candidates": [{"estimator": RIDGE}], "min_rows": 5}  # fmt: skip
    with pytest.raises(DataError, match='bad_rows = "drop" in the spec leaves them out'):
        train(spec, df, tmp_path / "r1", backend="local")
    summary = train({**spec, "bad_rows": "drop"}, df, tmp_path / "r2", backend="local")
    assert summary.run.options["bad_rows_dropped"] == {"x1": 2, "y": 1}
    assert summary.run.n_trained == 3
    with Registry.open(tmp_path / "r2") as reg:
        assert reg.get_version("pid=0").n_rows == 18  # rows 3 and 17 left out
        assert reg.get_version("pid=1").n_rows == 19  # row 25
        assert reg.get_version("pid=0").feature_schema["dtypes"]["x1"] == "float64"


def test_bad_rows_drop_keeps_the_periods_that_lags_and_changes_count(tmp_path: Path) -> None:
    """A row left out for a stray word took its period with it: the row after it read the
    target two periods back as its lag 1 (and its price change spanned two periods), though
    an empty cell in its place gives a missing lag. The row now stays, without a target: left
    out of training, as an empty target cell is, and the lags and changes reading it missing;
    every other row's lags are the targets its periods back, as pandas' ``shift`` has them."""
    n = 20
    df = pd.DataFrame({"pid": 0, "t": pd.date_range("2024-01-01", periods=n),
                       "x": np.arange(n) ** 2 * 1.0, "y": np.arange(n) * 10.0 + 3})  # fmt: skip
    words = df.astype({"x": object, "y": object})
    words.loc[10, "y"], words.loc[14, "x"] = "n/a", "oops"
    spec = Spec.model_validate({
        "name": "s", "partition_by": ["pid"], "target": "y", "time_column": "t",
        "features": ["x"], "lags": [1, 2], "changes": ["x"], "bad_rows": "drop", "min_rows": 5,
        "candidates": [{"estimator": RIDGE}],
    })  # fmt: skip
    table, _ = prepare(spec, words)
    got = pd.DataFrame(table.X, columns=table.features)
    blank = df.assign(y=df["y"].where(~df.index.isin([10, 14])), x=df["x"].where(df.index != 14))
    expected = pd.DataFrame({
        "y_lag1": blank["y"].shift(1), "y_lag2": blank["y"].shift(2), "x_change": blank["x"].diff()
    })  # fmt: skip
    expected.loc[[10, 14]] = np.nan  # the kept rows' own: left out whatever missing_target says
    pd.testing.assert_frame_equal(got[list(expected)], expected, check_dtype=False)
    assert table.extra["bad_rows_dropped"] == {"x": 1, "y": 1}
    summary = train(spec, words, tmp_path / "reg", backend="local")
    with Registry.open(tmp_path / "reg") as reg:
        # rows 0-1 (no lags), 10 and 14 (stray words), 11-12 and 15-16 (lags or change reach them)
        assert reg.get_version("pid=0").n_rows == n - 8
    assert summary.run.options["bad_rows_dropped"] == {"x": 1, "y": 1}


def test_bad_rows_drop_with_lags_drops_under_missing_target_error(tmp_path: Path) -> None:
    """With lags, a stray-word row stays in its place without a target (469cfc8); under
    ``missing_target = "error"`` that dropped target failed the partition ("target 'y' has 1
    missing value(s)"), where ``bad_rows = "drop"`` asked for the row to be left out — as it
    was before. It is left out again; a genuinely empty target still fails its partition."""
    n = 20
    days = pd.date_range("2024-01-01", periods=n)
    df = pd.DataFrame({"pid": np.repeat([0, 1], n), "t": np.tile(days, 2),
                       "x": np.tile(np.arange(n) * 1.0, 2),
                       "y": np.tile(np.arange(n) * 10.0 + 3, 2)})  # fmt: skip
    words = df.astype({"y": object})
    words.loc[10, "y"] = "n/a"  # pid 0: a stray word
    words.loc[n + 10, "y"] = None  # pid 1: an empty cell
    spec = Spec.model_validate({
        "name": "s", "partition_by": ["pid"], "target": "y", "time_column": "t",
        "features": ["x"], "lags": [1], "bad_rows": "drop", "missing_target": "error",
        "min_rows": 5, "candidates": [{"estimator": RIDGE}],
    })  # fmt: skip
    summary = train(spec, words, tmp_path / "reg", backend="local")
    assert [f.key for f in summary.failures] == ["pid=1"]  # the empty cell's partition only
    with Registry.open(tmp_path / "reg") as reg:
        assert reg.get_version("pid=0").n_rows == n - 3  # row 0 (no lag), 10 and 11


def test_a_long_key_value_of_another_partition_is_named_cut_short(tmp_path: Path) -> None:
    """Rows posted to a retrain naming another partition in a key column of a 5 MB value were
    answered with a 422 quoting the whole value (5 MB of detail); now cut to 40 characters,
    as a predict's bad cell is shown."""
    from factories import spec_dict

    from serving.retrain_rows import RetrainTarget, training_frame

    spec = spec_dict()
    train(spec, linear_frame(2, 40), tmp_path / "reg", backend="local")
    new = pd.DataFrame({"pid": ["x" * 5_000_000], "t": [40], "x0": [0.1], "x1": [0.2], "y": [1.0]})
    with Registry.open(tmp_path / "reg") as reg:
        target = RetrainTarget("pid=1", {"pid": 1}, Spec.from_dict(spec), reg.get_version("pid=1"))
        with pytest.raises(DataError) as info:
            training_frame(new, target, frozenset[str]().__contains__)
    said = str(info.value)
    assert said.startswith("rows of another partition: key column 'pid' holds 'xxxx"), said
    assert len(said) < 400, len(said)


def test_actuals_of_a_file_with_a_missing_key_name_the_file_and_row(
    trained: Path, tmp_path: Path
) -> None:
    """``manymodels actuals`` on a file whose key column has an empty cell said only "error: a
    partition key value is missing (NaN)": no file, no column, no row. Now as ``score`` and
    ``train`` say it, with the first such row."""
    path = tmp_path / "seen.csv"
    path.write_text("pid,t,x0,x1,y\n1,20,1.0,2.0,3.0\n,21,1.0,2.0,3.0\n")
    result = CliRunner().invoke(app, ["actuals", str(path), "--registry", str(trained)])
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"error: {path}: partition column 'pid' has 1 missing value(s), the first in data row 2 "
        "(counting from 1)\n"
    )


def test_a_placeholder_date_far_past_2262_is_one_error_line(tmp_path: Path) -> None:
    """A warehouse's 9999-12-31 ("no end") in the time column: pandas parses it (in
    microseconds), and ``train`` then ended in an OutOfBoundsDatetime traceback where it
    counts times in nanoseconds. Now exit 2 and one line naming the value and its row."""
    df = linear_frame(3, 20)
    df["t"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(df["t"], unit="D")
    df["t"] = df["t"].dt.strftime("%Y-%m-%d").astype(object)
    df.loc[45, "t"] = "9999-12-31"
    data = tmp_path / "data.csv"
    df.to_csv(data, index=False)
    result = cli_train(tmp_path, data)
    assert result.exit_code == 2, result.output
    assert result.output == (
        f"error: {data}: time column 't' holds 9999-12-31 00:00:00, in data row 46 (counting "
        "from 1): dates must fall between 1677-09-22 and 2262-04-11 (a placeholder date "
        "such as 9999-12-31?)\n"
    )


@pytest.mark.parametrize(
    ("column", "role", "overrides"),
    [
        ("n", "feature", {}),
        ("y", "target", {}),
        ("n", "feature", {"bad_rows": "drop"}),
    ],
    ids=["feature", "target", "bad_rows drop"],
)
def test_a_400_digit_number_in_a_csv_is_one_error_line_from_train(
    tmp_path: Path, column: str, role: str, overrides: dict[str, Any]
) -> None:
    """pandas keeps a 400-digit integer of a CSV as a Python int in an object column, and
    ``pd.to_numeric(errors="coerce")`` raises OverflowError for it rather than coercing:
    ``train`` ended in that traceback (exit 1), where predict, score, a retrain and actuals
    say "too large a number". Now ``train`` says it too, naming the row. (Among decimals
    pandas' CSV reader makes it inf, which training refuses as ever.)"""
    df = linear_frame(3, 20)
    df["n"] = np.arange(len(df)) % 5  # a column of integers, as the target too
    df = df.assign(y=df["y"].round().astype(int)).astype({column: object})
    df.loc[33, column] = 10**400
    data = tmp_path / "data.csv"
    df.to_csv(data, index=False)
    result = cli_train(tmp_path, data, **overrides)
    assert result.exit_code == 2, result.output
    assert result.output == (
        f"error: {data}: {role} '{column}' is too large a number (1000000000000000000000000000"
        "000000000...) in data row 34 (counting from 1): it does not fit a float\n"
    )


def test_actuals_of_a_key_the_fallback_answers_say_why_they_are_refused(reader: Any) -> None:
    """``pid=9`` has no model of its own and the fallback answers its predictions, so its
    actuals' 404 said only "no partition 'pid=9' in production", which read as a broken router;
    now it says why (actuals are kept per partition model) and what to do."""
    client, _ = reader
    row = {"t": 20, "x0": 1.0, "x1": 2.0, "y": 3.0}
    assert client.post("/v1/partitions/pid=9/predict", json={"rows": [row]}).status_code == 200
    r = client.post("/v1/partitions/pid=9/actuals", json={"rows": [row]})
    assert r.status_code == 404, r.text
    detail = r.json()["detail"]
    assert detail.startswith("no partition 'pid=9' in production"), detail
    assert "with no version served): the fallback model answers its predictions" in detail
    assert "actuals are kept per partition model: train the partition" in detail
