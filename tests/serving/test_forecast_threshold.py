"""The router's forecast route takes ``?threshold=`` as ``/v1/predict`` does: a binary
classifier's steps labelled at it (with or without a ``[decision]``), the same 422s for a
value out of 0–1, a repeated one and a model that is not a binary classifier."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from factories import DECIDED, RIDGE, SALES_SPEC, pumps_spec
from typer.testing import CliRunner

from manymodels.pipeline import train
from manymodels.samples import sensor_readings, store_sales
from serving.app import create_app
from serving.settings import Settings

with warnings.catch_warnings():  # Starlette prefers httpx2; warnings are errors here
    warnings.filterwarnings("ignore", message=".*starlette.testclient.*httpx2")
    from fastapi.testclient import TestClient

PUMPS = pumps_spec()
SALES: dict[str, Any] = {**SALES_SPEC, "name": "sales", "candidates": [{"estimator": RIDGE}]}


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    base = tmp_path_factory.mktemp("threshold")
    data = sensor_readings(n_assets=2, readings=120)
    out = {}
    for name, spec in (
        ("decided", {**PUMPS, "decision": DECIDED}),
        ("plain", PUMPS),
    ):
        out[name] = base / name
        assert train(spec, data, out[name], backend="local").run.n_trained == 2
    out["sales"] = base / "sales"
    train(SALES, store_sales(n_stores=1, weeks=40), out["sales"], backend="local")
    yield out


@pytest.fixture(scope="module")
def routers(roots: dict[str, Path]) -> Iterator[dict[str, TestClient]]:
    """A router (``TestClient``) on each of ``roots``, one per module: the tests only score
    and forecast, and built one per comparison (13 apps started) they spent ~0.3-0.5 s on
    each start."""
    with contextlib.ExitStack() as stack:
        yield {
            name: stack.enter_context(TestClient(create_app(Settings(registry=root))))
            for name, root in roots.items()
        }


def _labels(client: TestClient, query: str) -> tuple[int, Any]:
    r = client.post(f"/v1/partitions/asset=pump-001/forecast{query}", json={"horizon": 3})
    return r.status_code, r.json()


def test_a_forecast_labels_its_steps_at_the_asked_threshold(routers: dict[str, TestClient]) -> None:
    """``?threshold=`` was refused on the forecast route (422, "does not take 'threshold'"),
    where the same client's predict and score take it."""
    row = {"rows": [{"temperature": 70.0, "vibration": 0.2}]}
    for name in ("decided", "plain"):
        c = routers[name]
        for t, everyone in ((0.0, 1), (1.0, None)):
            status, body = _labels(c, f"?threshold={t}")
            assert status == 200, body
            assert body["threshold"] == t
            if everyone is not None:  # every probability is at least 0: the positive class
                assert [p["label"] for p in body["forecast"]] == [everyone] * 3
            scored = c.post(f"/v1/partitions/asset=pump-001/predict?threshold={t}", json=row)
            assert scored.json()["threshold"] == t
        status, body = _labels(c, "")
        assert status == 200
        if name == "plain":  # no rule, no threshold asked: no labels, as before
            assert body["threshold"] is None and body["forecast"][0]["label"] is None
        else:
            assert body["threshold"] not in (None, 0.0, 1.0)


def test_a_bad_threshold_on_a_forecast_is_the_422_predict_answers(
    routers: dict[str, TestClient],
) -> None:
    c = routers["decided"]
    for query in ("?threshold=2", "?threshold=-0.1", "?threshold=abc", "?threshold=nan"):
        status, body = _labels(c, query)
        assert status == 422 and body["detail"][0]["loc"] == ["query", "threshold"], body
    status, body = _labels(c, "?threshold=0.2&threshold=0.3")
    assert status == 422 and "given 2 times" in body["detail"][0]["msg"], body
    c = routers["sales"]
    key = "store=1,brand=tropicana"
    for route in ("forecast", "predict"):
        body = (
            {"horizon": 2}
            if route == "forecast"
            else {"rows": [{"price": 2.0, "deal": 0, "feat": 0}]}
        )
        r = c.post(f"/v1/partitions/{key}/{route}?threshold=0.5", json=body)
        assert r.status_code == 422 and "is not a classifier" in r.json()["detail"], r.text


# ------------------------------------------------------------ manymodels forecast --threshold
def _cli(*args: str | Path) -> Any:
    from typer.testing import CliRunner

    from manymodels.cli import app

    return CliRunner().invoke(app, ["forecast", *map(str, args)])


def test_the_cli_forecast_labels_its_steps_at_a_threshold_as_the_router_does(
    roots: dict[str, Path], routers: dict[str, TestClient]
) -> None:
    """`manymodels forecast` had no --threshold: a script could not label a classifier's
    steps at the cut its consumer uses, which the router's forecast route takes."""
    import json

    for name in ("decided", "plain"):
        for t in (0.0, 0.3, 1.0):
            ran = _cli("--horizon", "3", "--registry", roots[name], "--partitions",
                       "asset=pump-001", "--threshold", str(t), "--json")  # fmt: skip
            assert ran.exit_code == 0, ran.output
            steps = json.loads(ran.stdout)["forecast"]
            c = routers[name]
            status, body = _labels(c, f"?threshold={t}")
            assert status == 200, body
            assert [s["decision_threshold"] for s in steps] == [t] * 3
            assert [s["decision_label"] for s in steps] == [p["label"] for p in body["forecast"]]


def test_a_bad_cli_threshold_is_one_error_line_as_the_router_s_422(
    roots: dict[str, Path], routers: dict[str, TestClient], tmp_path: Path
) -> None:
    for value, said in (
        ("2", "--threshold: input should be less than or equal to 1 (got 2)"),
        ("-0.1", "--threshold: input should be greater than or equal to 0 (got -0.1)"),
        ("nan", "--threshold: input should be less than or equal to 1 (got nan)"),
    ):
        ran = _cli("--horizon", "2", "--registry", roots["decided"], "--threshold", value)
        assert (ran.exit_code, ran.stderr) == (2, f"error: {said}\n"), ran.output
    out = tmp_path / "sales.csv"
    ran = _cli("--horizon", "2", "--registry", roots["sales"], "--threshold", "0.5", "-o", out)
    c = routers["sales"]
    r = c.post("/v1/partitions/store=1,brand=tropicana/forecast?threshold=0.5",
               json={"horizon": 2})  # fmt: skip
    assert (ran.exit_code, ran.stderr) == (2, f"error: {r.json()['detail']}\n"), ran.output
    assert "is not a classifier: a threshold needs probabilities" in ran.stderr
    assert not out.exists()


def test_the_cli_score_labels_rows_at_a_threshold_as_the_router_s_predict(
    roots: dict[str, Path], routers: dict[str, TestClient], tmp_path: Path
) -> None:
    """`manymodels score` had no --threshold either, where /v1/predict takes ?threshold=."""
    import pandas as pd

    from manymodels.cli import app

    rows = sensor_readings(n_assets=2, readings=120).groupby("asset").tail(3)
    data = tmp_path / "rows.csv"
    rows.to_csv(data, index=False)
    for name in ("decided", "plain"):
        out = tmp_path / f"{name}.csv"
        ran = CliRunner().invoke(app, ["score", str(data), "--out", str(out), "--registry",
                                       str(roots[name]), "--threshold", "0.3"])  # fmt: skip
        assert ran.exit_code == 0, ran.output
        scored = pd.read_csv(out)
        assert (scored["decision_threshold"] == 0.3).all()
        features = ["asset", "temperature", "vibration"]
        c = routers[name]
        r = c.post("/v1/predict?threshold=0.3",
                   json={"rows": rows[features].to_dict(orient="records")})  # fmt: skip
        assert r.status_code == 200, r.text
        assert scored["decision_label"].tolist() == [p["label"] for p in r.json()["predictions"]]
    out = tmp_path / "sales.csv"
    sales = tmp_path / "sales_rows.csv"
    store_sales(n_stores=1, weeks=40).tail(2).to_csv(sales, index=False)
    ran = CliRunner().invoke(app, ["score", str(sales), "--out", str(out), "--registry",
                                   str(roots["sales"]), "--threshold", "0.5"])  # fmt: skip
    assert ran.exit_code == 2 and not out.exists(), ran.output
    assert ran.stderr.startswith(
        "error: partition 'store=1,brand=tropicana' v1 is not a "
        "classifier: a threshold needs probabilities"
    ), ran.stderr
    bad = CliRunner().invoke(app, ["score", str(sales), "--out", str(out), "--threshold", "7"])
    assert bad.stderr == "error: --threshold: input should be less than or equal to 1 (got 7)\n"
