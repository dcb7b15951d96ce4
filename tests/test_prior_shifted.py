"""A run's global classifier shifted to each partition's class rates (``manymodels.prior_shift``,
``training.shifted``): stored with the global model by reference, offered to every partition
as ``"<global> prior-shifted"`` and served where it scores strictly better."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

from manymodels.artifacts import deserialize
from manymodels.candidates import ConstantProbabilityClassifier
from manymodels.global_members import GlobalMember, linked, member_names, stored_form
from manymodels.pipeline import train
from manymodels.prior_shift import PriorShifted
from manymodels.registry.client import Registry
from manymodels.registry.entities import ModelVersion
from manymodels.training.global_fit import GlobalModel, bound

SHA = "c" * 64
SHIFTED = "LogisticRegression (global) prior-shifted"


def _global(estimator: Any) -> GlobalModel:
    """A pooled classifier over three classes (no key column: the key is not what is tested)."""
    rng = np.random.default_rng(0)
    X = rng.normal(0, 1, (60, 1))
    y = np.where(X[:, 0] > 0.5, "c", np.where(X[:, 0] < -0.5, "a", "b"))
    return GlobalModel(estimator, features=["x"]).fit(X, y)


def test_the_probabilities_are_the_members_times_the_shift_renormalised() -> None:
    glob = _global(LogisticRegression())
    member = bound(glob, {"user": "u1"}, SHA)
    shift = [2.0, 0.5, 1.0]
    model = PriorShifted(member, shift, ["a", "b", "c"])
    X = np.array([[-1.0], [0.0], [1.0]])
    raw = member.predict_proba(X) * shift
    assert np.allclose(model.predict_proba(X), raw / raw.sum(axis=1, keepdims=True))
    assert list(model.predict(X)) == list(np.array(["a", "b", "c"])[raw.argmax(axis=1)])
    assert model.fit(X, ["a", "b", "c"]) is model  # the member stays the run's fit


def test_an_uninformative_pooled_model_shifted_is_the_smoothed_constant() -> None:
    """``p(c|x) = r_c`` for every ``x``: shifted by ``q_c / r_c`` it answers ``q_c``, the
    constant a partition below ``min_rows`` is served."""
    glob = _global(DummyClassifier(strategy="prior"))
    rates = glob.predict_proba(np.zeros((1, 1)))[0]
    const = ConstantProbabilityClassifier(["a", "b", "c"], rates.tolist(), [3.0, 0.5, 2.0])
    const.fit(None, np.array(["c", "c", "b"]))
    model = PriorShifted(bound(glob, {"user": "u1"}), const.proba_ / rates, ["a", "b", "c"])
    assert np.allclose(model.predict_proba(np.array([[-2.0], [2.0]])), [const.proba_] * 2)


def test_stored_form_names_the_global_model_and_linked_restores_it() -> None:
    glob = _global(LogisticRegression())
    fitted = PriorShifted(bound(glob, {"user": "u2"}, SHA), [1.5, 1.0, 0.2], ["a", "b", "c"])
    stored, names = stored_form(fitted)
    assert names == [SHA] and isinstance(stored.member, GlobalMember)
    assert stored.member.key == {"user": "u2"} and stored.shift == [1.5, 1.0, 0.2]
    data = pickle.dumps(stored)
    assert b"GlobalModel" not in data and b"LogisticRegression" not in data  # no copy
    loaded = pickle.loads(data)
    assert member_names(loaded) == [SHA]
    again = linked(loaded, {SHA: glob}.__getitem__)
    X = np.array([[-1.0], [1.0]])
    assert np.array_equal(again.predict_proba(X), fitted.predict_proba(X))
    unnamed = PriorShifted(bound(glob, {"user": "u2"}), [1.0] * 3, ["a", "b", "c"])
    assert stored_form(unnamed) == (unnamed, [])  # no sha256: kept whole


@pytest.mark.slow  # skops' import and its type checks: ~5-12 s on a busy machine
def test_skops_stores_and_loads_it_as_a_trusted_type() -> None:
    from manymodels.serialization import dumps, loads

    glob = _global(LogisticRegression())
    stored, _ = stored_form(PriorShifted(bound(glob, {"user": "u1"}, SHA), [1.0, 2.0, 3.0], "abc"))
    again = linked(loads(dumps(stored, "skops"), {"skops"}), {SHA: glob}.__getitem__)
    assert again.shift == [1.0, 2.0, 3.0] and again.member.model is glob


def clicks(users: int = 18, n: int = 14, seed: int = 0, small: int = 3) -> pd.DataFrame:
    """Users who click more or less often (a rate of their own) where ``x`` is high (one
    slope for all): a global model learns the slope, each user's rows its rate. The last
    ``small`` users have 6 rows, below ``clicks_spec``'s ``min_rows``."""
    rng = np.random.default_rng(seed)
    frames = []
    for u in range(users + small):
        n = 6 if u >= users else n
        base, x = rng.normal(0, 1.5), rng.normal(0, 1, n)
        y = (rng.random(n) < 1 / (1 + np.exp(-(2 * x + base)))).astype(int)
        days = pd.date_range("2024-01-01", periods=n)
        frames.append(pd.DataFrame({"user": f"u{u:02d}", "day": days, "x": x, "click": y}))
    return pd.concat(frames, ignore_index=True)


def clicks_spec(**overrides: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": "clicks", "task": "classification", "partition_by": ["user"],
        "target": "click", "time_column": "day", "features": ["x"],
        "metric": "neg_log_loss", "validation": {"strategy": "last", "size": 4},
        "fallback": {"enabled": False}, "min_rows": 8,
        "selection": {"prior_shifted": True},
        "candidates": [
            {"estimator": "sklearn.linear_model.LogisticRegression"},
            {"estimator": "sklearn.linear_model.LogisticRegression", "scope": "global"},
        ],
    }  # fmt: skip
    out.update(overrides)
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shifted") / "reg"
    train(clicks_spec(), clicks(), root, backend="local")
    return root


def versions(reg: Registry) -> list[ModelVersion]:
    return [reg.get_version(p.key) for p in reg.list_partitions(limit=1000)]


def test_every_partition_scores_the_shifted_global_model_and_it_wins_only_strictly(
    trained: Path,
) -> None:
    with Registry(trained) as reg:  # those below min_rows have no validation rows
        found = [v for v in versions(reg) if v.validation["chosen"] != "too_few_rows"]
    picked = [v for v in found if v.validation["chosen"] == "prior_shifted"]
    assert picked and len(picked) < len(found), [v.validation["chosen"] for v in found]
    for v in found:
        scores = {c["label"]: c["score"] for c in v.candidates}
        assert scores[SHIFTED] is not None, v.candidates
        others = [s for k, s in scores.items() if k != SHIFTED and s is not None]
        if v.naive_score is not None:
            others.append(v.naive_score)
        if v.validation["chosen"] == "prior_shifted":
            assert v.score == scores[SHIFTED] > max(others)
        else:
            assert scores[SHIFTED] <= v.score


def _shifted_by_hand(v: ModelVersion, data: pd.DataFrame, pooled: GlobalModel) -> np.ndarray:
    """The shift of ``v``'s user recomputed here: its smoothed constant (with the strength and
    rates its version records) over the global model's own rates for the user — its mean
    prediction of the user's rows (it holds the key: the table's rates counted the user's
    rate twice)."""
    doc = v.feature_schema["class_prior"]
    user = v.key.split("=")[1]
    rows = data[data["user"] == user]
    q = ConstantProbabilityClassifier([0, 1], doc["rates"], doc.get("strength", 2.0))
    r = pooled.predict_proba(rows[["x"]], [[user] * len(rows)]).mean(axis=0)
    return np.asarray(q.fit(None, rows["click"].to_numpy()).proba_ / r)


def test_a_version_on_it_names_the_global_model_and_serves_its_shifted_rates(
    trained: Path,
) -> None:
    data = clicks()
    with Registry(trained) as reg:
        (glob,) = reg.list_runs(limit=1)[0].options["global"]
        v = next(v for v in versions(reg) if v.validation["chosen"] == "prior_shifted")
        stored = reg.artifacts.get(v.artifact_sha256)
        pooled = deserialize(reg.artifacts.get(glob["sha256"]))
        served = reg.load_model(v.key)
    assert v.members == (glob["sha256"],) and v.artifact_size < glob["size"]
    assert b"GlobalModel" not in stored
    assert v.estimator == "manymodels.prior_shift.PriorShifted"
    assert v.params["member"] == "LogisticRegression (global)"
    shift = _shifted_by_hand(v, data, pooled)
    assert np.allclose(v.params["shift"], shift)
    X = pd.DataFrame({"x": [-1.5, 0.0, 1.5]})
    raw = pooled.predict_proba(X, [[v.key.split("=")[1]]]) * shift
    assert np.allclose(served.predict_proba(X), raw / raw.sum(axis=1, keepdims=True))


@pytest.mark.slow  # a uvicorn server and three routes' first loads: ~4 s on a busy machine
def test_the_router_serves_it_over_http_and_loads_the_global_model_once(trained: Path) -> None:
    import httpx

    from serving import served
    from serving.local import running_server
    from serving.settings import Settings

    with Registry(trained) as reg:
        found = versions(reg)
        shifted = [v for v in found if v.validation["chosen"] == "prior_shifted"][:2]
        alone = next(v for v in found if v.validation["chosen"] == "global")
        expected = {v.key: reg.load_model(v.key).predict_proba(pd.DataFrame({"x": [1.0]}))[0]
                    for v in [*shifted, alone]}  # fmt: skip
    served._SHARED.clear()  # what other tests loaded
    served._FORMATS.clear()
    with running_server(Settings(registry=trained)) as base:
        for key, want in expected.items():
            url = f"{base}/v1/partitions/{key}/predict?probabilities=true"
            got = httpx.post(url, json={"rows": [{"x": 1.0}]})
            assert got.status_code == 200, got.text
            (answer,) = got.json()["probabilities"]
            assert np.allclose([answer["0"], answer["1"]], want), (key, answer, want)
        assert list(served._SHARED) == [alone.artifact_sha256]  # one global model, loaded once


def test_a_partition_below_min_rows_is_served_the_global_model_shifted_to_its_rates(
    trained: Path,
) -> None:
    """Before, it was served its smoothed constant: the same answer whatever ``x``, though
    the global model knows that a high ``x`` clicks."""
    data = clicks()
    with Registry(trained) as reg:
        (glob,) = reg.list_runs(limit=1)[0].options["global"]
        small = [v for v in versions(reg) if v.validation["chosen"] == "too_few_rows"]
        pooled = deserialize(reg.artifacts.get(glob["sha256"]))
        served = [reg.load_model(v.key) for v in small]
    assert len(small) == 3
    X = pd.DataFrame({"x": [-2.0, 0.0, 2.0]})
    for v, model in zip(small, served, strict=True):
        record = v.validation["too_few_rows"]
        assert record["rows"] == 6 and record["served"] == "prior_shifted", record
        assert record["member"] == v.params["member"] == "LogisticRegression (global)"
        assert v.estimator == "manymodels.prior_shift.PriorShifted"
        assert v.members == (glob["sha256"],)
        shift = _shifted_by_hand(v, data, pooled)
        assert np.allclose(v.params["shift"], shift)
        raw = pooled.predict_proba(X, [[v.key.split("=")[1]]]) * shift
        proba = model.predict_proba(X)
        assert np.allclose(proba, raw / raw.sum(axis=1, keepdims=True))
        assert proba[0, 1] < proba[2, 1]  # it uses x, which a constant cannot


def test_too_few_rows_constant_keeps_the_bare_constant(tmp_path: Path) -> None:
    s = clicks_spec(selection={"too_few_rows": "constant", "prior_shifted": True})
    train(s, clicks(users=6), tmp_path / "reg", backend="local")
    with Registry(tmp_path / "reg") as reg:
        small = [v for v in versions(reg) if v.validation["chosen"] == "too_few_rows"]
        proba = reg.load_model(small[0].key).predict_proba(pd.DataFrame({"x": [-2.0, 2.0]}))
    assert len(small) == 3 and not small[0].members
    assert "served" not in small[0].validation["too_few_rows"]
    assert small[0].estimator.endswith("ConstantProbabilityClassifier")
    assert np.allclose(proba[0], proba[1])


@pytest.mark.parametrize("selection", [{"prior_shifted": False}, {}])
def test_prior_shifted_false_offers_no_shift_and_keeps_the_constant(
    tmp_path: Path, selection: dict[str, Any]
) -> None:
    """For a global model that holds the key (its own rate for each user), the spec turns
    both uses of the shift off: no option on the board, the bare constant below min_rows —
    and so does a spec that does not ask for the shift (off by default)."""
    s = clicks_spec(selection=selection)
    train(s, clicks(users=6), tmp_path / "reg", backend="local")
    with Registry(tmp_path / "reg") as reg:
        found = versions(reg)
    labels = {c["label"] for v in found for c in v.candidates}
    assert "LogisticRegression (global)" in labels and SHIFTED not in labels
    small = [v for v in found if v.validation["chosen"] == "too_few_rows"]
    assert len(small) == 3 and all(not v.members for v in small)
    assert all(v.estimator.endswith("ConstantProbabilityClassifier") for v in small)


@pytest.mark.slow  # two full runs: ~5 s
def test_a_shifted_champion_is_judged_by_the_runs_global_model_not_in_sample(
    tmp_path: Path,
) -> None:
    """A full run on the same rows again. A ``PriorShifted`` champion was refitted as a local
    one (its ``fit`` keeps it as it is): its member, fitted on these validation rows too,
    scored better than the same shifted model judged out of fold (u06: -0.246 against
    -0.490) and kept every champion for ever. Now it is judged as a global champion: the run's
    global model it names, each fold shifted by the fold's training rows, so choosing it again
    ties, the same method."""
    root = tmp_path / "reg"
    train(clicks_spec(), clicks(), root, backend="local")
    train(clicks_spec(), clicks(), root, backend="local")
    with Registry(root) as reg:
        firsts = [reg.get_version(p.key, 1) for p in reg.list_partitions(limit=1000)]
        on_shift = [v.key for v in firsts if v.validation["chosen"] == "prior_shifted"]
        seconds = {k: reg.get_version(k, 2) for k in on_shift}
    again = [k for k, v in seconds.items() if v.validation["chosen"] == "prior_shifted"]
    assert again, {k: v.validation["chosen"] for k, v in seconds.items()}
    for key in again:
        ev = seconds[key].evaluation
        assert ev["basis"] == "refit" and ev["champion_score"] is not None, ev
        assert ev["champion_score"] == ev["challenger_score"], (key, ev)
        assert ev["reason"] == "identical to champion v1 (same bytes); kept", ev
