"""serving.batch: rows of many partitions in one request give, row by row, the bits a one-row
request to each partition gives — whichever path scored them (stacked linear models, one
``predict`` per other model, a shared or a per-model input) — in row order."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from routerkit import open_client
from sklearn.tree import DecisionTreeRegressor

from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.samples import synthetic
from serving import batch, grouping
from serving.plain import plain_text
from serving.service import ModelService
from serving.settings import Settings

FEATURES = ["x0", "x1", "x2"]
N = 40


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[int, str]]:
    """Partitions whose selected models differ: linear ones (scaled or not, of several
    classes) beside trees, so one batch takes every path."""
    root = tmp_path_factory.mktemp("mixed") / "registry"
    spec = {
        "name": "mixed",
        "partition_by": ["pid"],
        "target": "y",
        "features": FEATURES,
        "validation": {"strategy": "holdout", "size": 0.25},
        "candidates": [
            {"estimator": "sklearn.linear_model.Ridge", "params": {"alpha": [0.1]}, "scale": True},
            {"estimator": "sklearn.linear_model.LinearRegression"},
            {"estimator": "sklearn.tree.DecisionTreeRegressor", "params": {"max_depth": [3]}},
        ],
    }
    data = synthetic(N, 24, n_features=3, seed=3)
    rng = random.Random(3)
    odd = data["pid"] % 3 == 0  # a third of the partitions follow a step, which trees fit
    data.loc[odd, "y"] = [10.0 * (x > 0) + rng.gauss(0, 0.01) for x in data.loc[odd, "x0"]]
    with Registry(root) as reg:
        summary = train(spec, data, reg, backend="local")
        assert summary.run.n_trained == N
        kinds = {p: _kind(reg.load_model(f"pid={p}").model) for p in range(N)}
    assert Counter(kinds.values())["tree"] >= 2 and Counter(kinds.values())["linear"] >= 2, kinds
    return root, kinds


def _kind(model: Any) -> str:
    return "tree" if isinstance(model, DecisionTreeRegressor) else "linear"


@pytest.fixture
def client(trained: tuple[Path, dict[int, str]]) -> Iterator[Any]:
    with open_client(Settings(registry=trained[0], cache_size=100)) as c:
        yield c


@pytest.fixture
def kinds(trained: tuple[Path, dict[int, str]]) -> dict[int, str]:
    return trained[1]


def _rows(seed: int, n: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {"pid": rng.randrange(N + 3), **{f: rng.uniform(-3, 3) for f in FEATURES}} for _ in range(n)
    ]  # pid N … N+2 are unknown: the fallback answers them


def _one_row(client: Any, row: dict[str, Any]) -> dict[str, Any]:
    features = {f: row[f] for f in FEATURES}
    r = client.post(f"/v1/partitions/pid={row['pid']}/predict", json={"rows": [features]})
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("cached", [False, True], ids=["loading", "cached"])
def test_each_row_is_what_a_one_row_request_to_its_partition_answers(
    client: Any, cached: bool
) -> None:
    rows = _rows(1, 90)
    if cached:  # every model in the cache: the batch is scored on the event loop
        client.post("/v1/predict", json={"rows": rows}).raise_for_status()
    r = client.post("/v1/predict", json={"rows": rows})
    assert r.status_code == 200, r.text
    answers = r.json()["predictions"]
    assert len(answers) == len(rows)
    for row, answer in zip(rows, answers, strict=True):
        alone = _one_row(client, row)
        assert answer["prediction"] == alone["predictions"][0]  # the same bits
        assert answer["partition"] == f"pid={row['pid']}"
        assert answer["served_by"] == alone["served_by"]
        assert answer["version"] == alone["version"]
        assert answer["fallback"] is (row["pid"] >= N)
        assert answer["probabilities"] is None


def test_a_missing_value_is_scored_by_each_models_own_predict(
    client: Any, kinds: dict[int, str]
) -> None:
    tree = next(p for p, k in kinds.items() if k == "tree")
    linear = next(p for p, k in kinds.items() if k == "linear")
    rows = [r for r in _rows(2, 30) if r["pid"] < N]
    rows[4] = {**rows[4], "pid": tree, "x1": None}  # NaN: no stacked arithmetic for this input
    r = client.post("/v1/predict", json={"rows": rows})
    assert r.status_code == 200, r.text  # trees take NaN
    # each model's predict saw its rows together, as a request of those rows to its key would
    answers = r.json()["predictions"]
    for pid in {row["pid"] for row in rows}:
        mine = [i for i, row in enumerate(rows) if row["pid"] == pid]
        alone = client.post(
            f"/v1/partitions/pid={pid}/predict",
            json={"rows": [{f: rows[i][f] for f in FEATURES} for i in mine]},
        ).json()["predictions"]
        assert [answers[i]["prediction"] for i in mine] == alone

    rows[5] = {**rows[5], "pid": linear, "x1": None}  # scikit-learn's linear models refuse it
    r = client.post("/v1/predict", json={"rows": rows})
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith(f"partition 'pid={linear}' v1 could not score the rows")


def test_one_bad_cell_anywhere_is_one_422_naming_every_bad_cell_and_scores_nothing(
    client: Any,
) -> None:
    rows = _rows(3, 50)
    rows[7]["x2"] = "high"
    rows[31].pop("x0")
    r = client.post("/v1/predict", json={"rows": rows})
    assert r.status_code == 422, r.text
    where = [(e["loc"][2], e["loc"][3]) for e in r.json()["detail"]]
    assert where == [(7, "x2"), (31, "x0")]


def test_an_overflowing_prediction_is_a_422_as_in_a_validated_answer(
    client: Any, kinds: dict[int, str]
) -> None:
    """A finite input whose answer overflows is refused, naming its row, by the batch as by
    one partition's route (it used to be a ``null`` prediction in a 200)."""
    linear = [p for p, k in kinds.items() if k == "linear"][:2]
    rows = [{"pid": p, "x0": 1e308, "x1": -1e308, "x2": 1e308} for p in linear]
    overflowing = []
    for i, row in enumerate(rows):
        one = client.post(f"/v1/partitions/pid={row['pid']}/predict", json={"rows": [row]})
        assert one.status_code in (200, 422), one.text
        if one.status_code == 422:
            overflowing.append(i)
            assert "not a finite number" in one.text
    assert overflowing, "no row overflowed: the test needs one"
    r = client.post("/v1/predict", json={"rows": rows})
    assert r.status_code == 422, r.text
    assert [p["loc"] for p in r.json()["detail"]] == [["body", "rows", i] for i in overflowing]


def test_values_that_compare_equal_are_still_their_own_keys(client: Any) -> None:
    """1, 1.0 and True are one dict key in Python; as partition keys 1 and 1.0 are pid=1 and
    True is pid=true — no partition here, so a 422 naming its first row (a boolean key value
    of no partition is a mistake, not the fallback's: test_batch_key_values.py) — whatever
    came first."""
    features = {f: 0.5 for f in FEATURES}
    rows = [{"pid": v, **features} for v in (1, True, 1.0, True, 1)]
    for order in (rows, rows[::-1]):
        r = client.post("/v1/predict", json={"rows": order})
        assert r.status_code == 422, r.text
        assert [p["loc"] for p in r.json()["detail"]] == [["body", "rows", 1, "pid"]]
        numbers = [row for row in order if row["pid"] is not True]
        r = client.post("/v1/predict", json={"rows": numbers})
        assert r.status_code == 200, r.text
        got = [(a["partition"], a["fallback"]) for a in r.json()["predictions"]]
        assert got == [("pid=1", False)] * 3


def test_the_plain_path_writes_the_text_the_careful_path_writes(
    trained: tuple[Path, dict[int, str]],
) -> None:
    """``plain_text`` (every key in production, every model in memory) answers with the
    bytes ``plan`` → ``score`` → ``encode`` answer with: linear models stacked beside trees,
    one partition alone, a row per partition (no lookup per row, no gather), linear models
    held as coefficients only; anything else it declines."""
    root, kinds = trained
    rows = [r for r in _rows(5, 90) if r["pid"] < N]
    linear = [r for r in rows if kinds[r["pid"]] == "linear"]
    alone = [r for r in rows if r["pid"] == rows[0]["pid"]]
    each = list({r["pid"]: r for r in rows}.values())  # a row per partition
    each_linear = [r for r in each if kinds[r["pid"]] == "linear"]
    assert len(each_linear) > 1 and len(each) > len(each_linear)

    def careful(service: ModelService, subset: list[dict[str, Any]]) -> str | None:
        return batch.encode(batch.score(service, batch.plan(service, subset), subset))

    with Registry.open(root) as reg:
        service = ModelService(reg, cache_size=100)
        service.start()
        assert plain_text(service, rows, batch.grouped(service, rows)) is None  # not loaded
        careful(service, rows)  # loads every model
        for subset in (rows, linear, alone, each, each_linear):
            text = plain_text(service, subset, batch.grouped(service, subset))
            assert text is not None and text == careful(service, subset)
        nan = [{**rows[0], "x1": float("nan")}, *rows[1:]]
        unknown = [*rows, {**rows[0], "pid": N + 1}]
        for declined in (nan, unknown):
            assert plain_text(service, declined, batch.grouped(service, declined)) is None

        slim = ModelService(reg, cache_size=1, coefficient_cache_size=N)  # coefficients answer
        slim.start()
        careful(slim, linear)
        assert len(slim.coefficients) >= 2
        text = plain_text(slim, linear, batch.grouped(slim, linear))
        assert text is not None and text == careful(service, linear)
        assert plain_text(slim, rows, batch.grouped(slim, rows)) is None  # evicted trees
    # a row per partition was grouped into the shared one-row lists: no path changed them
    assert all(idx == [i] for i, idx in enumerate(grouping._ONE_ROW))


def test_intervals_are_absent_unless_asked(client: Any) -> None:
    """No ``"intervals": null`` in any scoring answer without ``?levels=``: per key, a plain
    batch, and a batch the careful path answers (an unknown key: the fallback)."""
    features = {f: 0.5 for f in FEATURES}
    r = client.post("/v1/partitions/pid=1/predict", json={"rows": [features]})
    assert r.status_code == 200 and "intervals" not in r.json(), r.text
    for pids in ([1, 2], [1, N + 1]):
        r = client.post("/v1/predict", json={"rows": [{"pid": p, **features} for p in pids]})
        assert r.status_code == 200, r.text
        assert all("intervals" not in a for a in r.json()["predictions"]), r.text


def test_a_job_id_longer_than_any_job_is_a_422(trained: tuple[Path, dict[int, str]]) -> None:
    with open_client(Settings(registry=trained[0], admin_token="t0ken")) as c:
        auth = {"Authorization": "Bearer t0ken"}
        r = c.get(f"/v1/jobs/{'a' * 65}", headers=auth)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["path", "job_id"]
        assert c.get(f"/v1/jobs/{'a' * 64}", headers=auth).status_code == 404


def test_unknown_keys_refused_by_a_batch_read_nothing_from_the_registry(
    trained: tuple[Path, dict[int, str]],
) -> None:
    """``plan`` resolves in memory: a ``?fallback=false`` batch of keys without a model is one
    404 naming them, built from the alias table. ``resolve``'s lookup of a refused key's
    ``retired`` row (for a single key's 404) cost the batch one registry read per unknown key,
    its wording thrown away: 200 reads for 200 unknown keys."""
    from sqlalchemy import event

    from manymodels.exceptions import PartitionNotFound

    root, _ = trained
    rows = [{"pid": N + i, **dict.fromkeys(FEATURES, 0.0)} for i in range(200)]
    with Registry.open(root) as reg:
        service = ModelService(reg, cache_size=1)
        service.start()
        groups = batch.grouped(service, rows)
        seen: list[str] = []

        def record(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
            seen.append(sql)

        event.listen(reg.store.engine, "before_cursor_execute", record)
        try:
            with pytest.raises(PartitionNotFound, match=r"'pid=40', 'pid=41'.* and 190 more"):
                batch.plan(service, rows, fallback=False, groups=groups)
        finally:
            event.remove(reg.store.engine, "before_cursor_execute", record)
    assert seen == []
