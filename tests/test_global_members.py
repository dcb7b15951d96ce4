"""An ensemble's global member is stored by reference (``manymodels.global_members``): the
ensemble's artifact names the global model by its sha256 instead of holding a copy of it,
every reader links it back, and the registry counts it as referenced (gc, backup, doctor)."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from test_global_candidates import panel, spec

from manymodels.artifacts import deserialize
from manymodels.backup import export_registry
from manymodels.candidates import MeanOf
from manymodels.doctor import check
from manymodels.exceptions import ArtifactError, UntrustedArtifact
from manymodels.forecasting import forecast
from manymodels.gc import collect
from manymodels.global_members import GlobalMember, GlobalModels, linked, stored_form
from manymodels.pipeline import train
from manymodels.registry.client import Registry
from manymodels.registry.entities import ModelVersion
from manymodels.restore import import_registry
from manymodels.scoring import score
from manymodels.training.global_fit import GlobalModel, KeyBound

ROWS = np.array([[20.0], [21.0]])


def versions(reg: Registry) -> list[ModelVersion]:
    return [reg.get_version(p.key) for p in reg.list_partitions(limit=1000)]


def with_member(reg: Registry) -> ModelVersion:
    found = [v for v in versions(reg) if v.validation["chosen"] == "ensemble" and v.members]
    assert found, {v.key: v.validation["chosen"] for v in versions(reg)}
    return found[0]


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Partitions that chose the global model, and ensembles of a local and the global one."""
    root = tmp_path_factory.mktemp("members") / "reg"
    s = spec(selection={"ensemble": "top2", "naive_candidate": False})
    s["candidates"].append({"estimator": "sklearn.linear_model.Ridge", "params": {"alpha": 10.0}})
    train(s, panel(), root, backend="local")
    return root


def _mean_global(constant: float | None = None) -> dict[str, Any]:
    """A spec whose global candidate (a mean, or a far constant no partition wants) never wins
    alone: on ``panel()``, shop s11 pairs the mean with a local Ridge (top2 -0.94 against
    -1.96 for the Ridge alone), so its ensemble is the only version naming the global model."""
    params: dict[str, Any] = {"strategy": "mean"}
    if constant is not None:
        params = {"strategy": "constant", "constant": constant}
    s = spec(selection={"ensemble": "top2", "naive_candidate": False})
    s["candidates"] = [
        {"estimator": "sklearn.linear_model.LinearRegression"},
        {"estimator": "sklearn.linear_model.Ridge", "params": {"alpha": 10.0}},
        {"estimator": "sklearn.dummy.DummyRegressor", "scope": "global", "params": params},
    ]
    return s


def test_the_artifact_names_the_global_model_instead_of_holding_it(mixed: Path) -> None:
    with Registry(mixed) as reg:
        (glob,) = reg.list_runs(limit=1)[0].options["global"]
        v = with_member(reg)
        data = reg.artifacts.get(v.artifact_sha256)
        stored = deserialize(data)
    assert v.members == (glob["sha256"],)
    assert b"GlobalModel" not in data  # no copy of the global model inside
    kinds = [type(m).__name__ for m in stored.members]
    assert "GlobalMember" in kinds and "KeyBound" not in kinds
    (member,) = [m for m in stored.members if isinstance(m, GlobalMember)]
    assert member.sha256 == glob["sha256"] and member.key == {"shop": v.key.split("=")[1]}
    assert v.artifact_size < glob["size"]


def _expected(reg: Registry, v: ModelVersion) -> np.ndarray:
    """The mean of the local member and the global model bound to the key, computed here from
    the stored parts: what the ensemble served before members were stored by reference."""
    stored = deserialize(reg.artifacts.get(v.artifact_sha256))
    (local,) = [m for m in stored.members if not isinstance(m, GlobalMember)]
    (member,) = [m for m in stored.members if isinstance(m, GlobalMember)]
    glob = deserialize(reg.artifacts.get(member.sha256))
    assert isinstance(glob, GlobalModel)
    keys = [[member.key["shop"]]]
    return (np.asarray(local.predict(ROWS)) + glob.predict(ROWS, keys)) / 2


def test_every_reader_serves_the_mean_of_the_local_and_the_global_member(mixed: Path) -> None:
    from serving.served import load_served

    with Registry(mixed) as reg:
        v = with_member(reg)
        expected = _expected(reg, v)
        shop = v.key.split("=")[1]
        loaded = reg.load_model(v.key).model
        assert any(isinstance(m, KeyBound) for m in loaded.members)
        assert np.allclose(loaded.predict(ROWS), expected)
        served = load_served(reg, v.key, v.version)
        assert np.allclose(served.predict(ROWS), expected)
        scored = score(pd.DataFrame({"shop": [shop, shop], "x": ROWS[:, 0]}), reg, backend="local")
        assert np.allclose(scored["prediction"].to_numpy(), expected)
        days = pd.date_range("2024-01-11", periods=2)
        future = pd.DataFrame({"shop": [shop, shop], "day": days, "x": ROWS[:, 0]})
        out = forecast(reg, [v.key], horizon=2, future=future)
        assert np.allclose(out["prediction"].to_numpy(), expected)


def test_a_forecast_or_a_scoring_chunk_reads_each_global_member_once(mixed: Path) -> None:
    """``shared`` (a forecast's, a scoring chunk's) holds each global model loaded: a second
    version on it reuses that copy rather than reading and unpickling its bytes again."""
    with Registry(mixed) as reg:
        v = with_member(reg)
        (sha,) = v.members
        reads: list[str] = []
        get = reg.artifacts.get
        members = GlobalModels(lambda d: reads.append(d) or get(d), {"pickle"}, {})
        assert members(sha) is members(sha) and reads == [sha]
        shared: dict[str, Any] = {}
        first, again = (reg.load_artifact(v, shared) for _ in range(2))
    bound = [next(m for m in x.members if isinstance(m, KeyBound)) for x in (first, again)]
    assert bound[0].model is bound[1].model is shared[sha]


def test_the_router_answers_for_an_ensemble_over_http(mixed: Path) -> None:
    """``manymodels serve``'s app under uvicorn: one partition's route and the batch route,
    an ensemble beside a partition that chose the global model alone."""
    import httpx

    from serving.local import running_server
    from serving.settings import Settings

    with Registry(mixed) as reg:
        v = with_member(reg)
        expected = _expected(reg, v)
        glob = next(u for u in versions(reg) if u.validation["chosen"] == "global")
        alone = reg.load_model(glob.key).model.predict(ROWS)
    rows = [{"x": float(x)} for x in ROWS[:, 0]]
    with running_server(Settings(registry=mixed)) as base:
        one = httpx.post(f"{base}/v1/partitions/{v.key}/predict", json={"rows": rows})
        assert one.status_code == 200, one.text
        assert np.allclose(one.json()["predictions"], expected)
        shops = [v.key.split("=")[1], glob.key.split("=")[1]]
        batch = [{"shop": shop, **row} for shop in shops for row in rows]
        both = httpx.post(f"{base}/v1/predict", json={"rows": batch})
        assert both.status_code == 200, both.text
    answers = [a["prediction"] for a in both.json()["predictions"]]
    assert np.allclose(answers, [*expected, *alone])


@pytest.mark.parametrize("ensemble_first", [False, True])
def test_the_router_shares_one_loaded_global_model_across_ensembles_and_global_versions(
    mixed: Path, ensemble_first: bool
) -> None:
    from serving import served

    served._SHARED.clear()  # what other tests loaded
    served._FORMATS.clear()
    with Registry(mixed) as reg:
        v = with_member(reg)
        glob = next(u for u in versions(reg) if u.validation["chosen"] == "global")
        order = [(v.key, v.version), (glob.key, glob.version)]
        loaded = [served.load_served(reg, *kv) for kv in order[:: 1 if ensemble_first else -1]]
        pair, alone = loaded if ensemble_first else loaded[::-1]
    (bound,) = [m for m in pair.model.members if isinstance(m, KeyBound)]
    assert bound.model is alone.model.model  # one unpickled copy
    assert bound.key == {"shop": v.key.split("=")[1]}
    assert pair.artifact_format == alone.artifact_format == "pickle"


def test_a_shared_global_model_is_refused_once_its_format_is_no_longer_trusted(
    mixed: Path,
) -> None:
    """A loaded copy is reused only while the registry trusts the format it was stored in: a
    fresh load would refuse it, so a reuse does too."""
    from serving.served import load_served

    with Registry(mixed) as reg:
        v = with_member(reg)
        glob = [u for u in versions(reg) if u.validation["chosen"] == "global"][:2]
        held = load_served(reg, v.key, v.version)  # keeps the global model loaded
        reg.set_trusted_formats(frozenset({"skops"}))
        try:
            for u in glob:
                with pytest.raises(UntrustedArtifact, match="trusts only skops"):
                    load_served(reg, u.key, u.version)
            with pytest.raises(UntrustedArtifact, match="trusts only skops"):
                load_served(reg, v.key, v.version)
        finally:
            reg.set_trusted_formats(frozenset({"pickle", "skops"}))
    assert held.model.members  # held to the end


def test_an_ensemble_names_only_global_models_stored_in_its_own_format(mixed: Path) -> None:
    """A skops ensemble never depends on a pickle (a registry trusting only skops would refuse
    it): a global model stored in another format is copied in, as before."""
    from manymodels.training.global_fit import GlobalLoader

    with Registry(mixed) as reg:
        (sha,) = with_member(reg).members
        key = {"shop": "s01"}
        assert GlobalLoader(reg.artifacts, "pickle")(sha, key).sha256 == sha
        other = GlobalLoader(reg.artifacts, "skops")(sha, key)
    assert other.sha256 is None
    pair = MeanOf([other, other])
    assert stored_form(pair) == (pair, [])  # kept whole


def test_a_retrain_scores_its_ensemble_champion(tmp_path: Path) -> None:
    """The champion a retrain compares against is linked too: an ensemble champion is scored,
    not recorded as failing ("global member … was not linked")."""
    root = tmp_path / "reg"
    train(_mean_global(), panel(), root, backend="local")
    with Registry(root) as reg:
        v = with_member(reg)
    train(_mean_global(), panel(seed=0, n_noisy=12), root, backend="local", only=[v.key])
    with Registry(root) as reg:
        new = max(reg.list_versions(v.key), key=lambda m: m.version)
    assert new.version == v.version + 1
    assert new.evaluation["champion_version"] == v.version
    assert new.evaluation["champion_score"] is not None, new.evaluation
    assert new.evaluation["basis"] == "unseen" and new.evaluation["compared_rows"] > 0


def test_gc_keeps_a_global_model_only_an_ensemble_names(tmp_path: Path) -> None:
    """Once a newer full run supersedes the run that fitted it, the ensemble is what keeps
    the global model; without that version, gc collects it."""
    root = tmp_path / "reg"
    train(_mean_global(), panel(), root, backend="local")
    with Registry(root) as reg:
        v = with_member(reg)
        assert [u.key for u in versions(reg) if u.members] == [v.key]
        assert {u.validation["chosen"] for u in versions(reg)} == {"candidate", "ensemble"}
        (sha,) = v.members
        before = reg.load_model(v.key, v.version).model.predict(ROWS)
    train(_mean_global(constant=1e6), panel(seed=0, n_noisy=11), root, backend="local")
    with Registry(root) as reg:
        assert reg.list_runs(limit=1)[0].options["global"][0]["sha256"] != sha
        keys = [p.key for p in reg.list_partitions()]
        every = [(u.key, u.version) for k in keys for u in reg.list_versions(k)]
        others = [pair for pair in every if pair != (v.key, v.version)]
        assert sha in reg.store.referenced_digests(exclude=others, global_models=False)
        collect(reg, grace_seconds=0)
        assert reg.artifacts.get(sha)
        assert np.array_equal(reg.load_model(v.key, v.version).model.predict(ROWS), before)
        assert sha not in reg.store.referenced_digests(exclude=every)


def test_backup_carries_the_member_and_doctor_names_it_missing(tmp_path: Path) -> None:
    root = tmp_path / "reg"
    train(_mean_global(), panel(), root, backend="local")
    with Registry(root) as reg:
        v = with_member(reg)
        (sha,) = v.members
        expected = reg.load_model(v.key).model.predict(ROWS)
        export_registry(reg, tmp_path / "b.tar")
        assert check(reg).ok
        reg.artifacts.delete(sha)
        report = check(reg)
        with pytest.raises(ArtifactError, match=sha[:12]):
            reg.load_model(v.key)
    (problem,) = [p for p in report.problems if p.kind == "member_missing"]
    assert (problem.key, problem.version, problem.sha256) == (v.key, v.version, sha)
    assert "ensemble member" in problem.message
    import_registry(tmp_path / "b.tar", tmp_path / "restored")
    with Registry(tmp_path / "restored") as reg:
        assert np.array_equal(reg.load_model(v.key).model.predict(ROWS), expected)


def test_stored_form_names_bound_members_and_linked_restores_them() -> None:
    from sklearn.linear_model import LinearRegression, Ridge

    from manymodels.training.global_fit import bound

    X, y = np.arange(12.0).reshape(-1, 1), np.arange(12.0) * 2
    shops = [[1, 2] * 6]
    glob = GlobalModel(Ridge(), features=["x"], keys=["shop"]).fit(X, y, shops)
    local = LinearRegression().fit(X, y)
    fitted = MeanOf([local, bound(glob, {"shop": 2}, "c" * 64)])
    stored, names = stored_form(fitted)
    assert names == ["c" * 64]
    assert isinstance(fitted.members[1], KeyBound)  # the fitted model is left as it was
    assert [type(m).__name__ for m in stored.members] == ["LinearRegression", "GlobalMember"]
    with pytest.raises(ArtifactError, match="not linked"):
        stored.predict(ROWS)
    again = linked(pickle.loads(pickle.dumps(stored)), {"c" * 64: glob}.__getitem__)
    assert np.array_equal(again.predict(ROWS), fitted.predict(ROWS))
    assert stored_form(local) == (local, [])
    assert linked(local, GlobalModels(bytes.fromhex, {"pickle"})) is local
    unbound = MeanOf([local, bound(glob, {"shop": 2})])  # no sha256: kept whole
    assert stored_form(unbound) == (unbound, [])


def test_a_member_that_is_not_a_global_model_is_refused() -> None:
    blobs = {"a" * 64: pickle.dumps([1, 2])}
    with pytest.raises(ArtifactError, match="not a global model"):
        GlobalModels(blobs.__getitem__, {"pickle"})("a" * 64)


def test_the_router_names_which_artifact_is_missing(tmp_path: Path) -> None:
    """A 500 that says which artifact went missing: the global model an ensemble names, the
    global model a version serves, or the version's own artifact — only the last comes back
    with a retrain of the partition."""
    import httpx

    from serving.local import running_server
    from serving.settings import Settings

    root = tmp_path / "reg"
    data = panel().assign(region="r1")
    s = spec(selection={"ensemble": "top2", "naive_candidate": False})  # as ``mixed``
    s["candidates"].append({"estimator": "sklearn.linear_model.Ridge", "params": {"alpha": 10.0}})
    train({**s, "partition_by": ["shop", "region"]}, data, root, backend="local")
    with Registry(root) as reg:
        served = [reg.store.resolve_alias(p.key, "production") for p in reg.list_partitions()]
        v = next(u for u in served if u.members)
        (sha,) = v.members
        glob = next(u for u in served if u.validation["chosen"] == "global")
        own = next(u for u in served if u.validation["chosen"] == "candidate")
        reg.artifacts.delete(sha)
        reg.artifacts.delete(own.artifact_sha256)
    rows = {"rows": [{"x": 1.0}]}
    with running_server(Settings(registry=root)) as base:
        answers = {
            u.key: httpx.post(f"{base}/v1/partitions/{u.key}/predict", json=rows)
            for u in (v, glob, own)
        }
    assert {a.status_code for a in answers.values()} == {500}, answers
    assert answers[v.key].json()["detail"] == (
        f"the global model {sha[:12]} that partition '{v.key}' version {v.version} averages "
        "with its own (a top2 ensemble member) is missing from the artifact store; model not "
        "served"
    )
    assert answers[glob.key].json()["detail"] == (
        f"the global model {sha[:12]} that partition '{glob.key}' version {glob.version} "
        "serves (one model over every partition's rows) is missing from the artifact store; "
        "model not served"
    )
    assert answers[own.key].json()["detail"] == (
        f"the artifact of partition '{own.key}' version {own.version} is missing from the "
        "artifact store; model not served"
    )


def test_a_resumed_runs_summary_counts_what_it_trained_and_the_ensembles(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """After a resume, the lines about choices count the partitions trained now (the rest
    were trained before it), and ensembles holding the global model are counted too."""
    from test_pipeline import StopAfterFirstChunk

    from manymodels import console

    s = spec(selection={"ensemble": "top2", "naive_candidate": False})
    s["candidates"].append({"estimator": "sklearn.linear_model.Ridge", "params": {"alpha": 10.0}})
    root = tmp_path / "reg"
    with pytest.raises(KeyboardInterrupt):
        # partitions ending together (time_groups: one global fit per fold), whose choices
        # pair a local model with the global one
        train(s, panel(n_noisy=12), root, backend="local", progress=StopAfterFirstChunk())
    with Registry(root) as reg:
        run_id = reg.list_runs(limit=1)[0].run_id
        before = len(reg.store.recorded_keys(run_id))
    summary = train(s, panel(n_noisy=12), root, backend="local", resume=run_id)
    now = summary.trained_now
    assert 0 < now < summary.run.n_trained == 24 and now == 24 - before
    with Registry(root) as reg:
        made = [v for v in versions(reg) if v.run_id == run_id and v.key in summary.versions]
    assert summary.global_members == sum(bool(v.members) for v in made)
    console.run_summary(summary, ["--registry", str(root)], str(root))
    text = " ".join(capsys.readouterr().out.split())
    glob = summary.chosen.get("global", 0)
    assert f"{glob} of {now} partitions trained now serve a global model" in text
    assert summary.global_members > 0  # this panel pairs a local model with the global one
    assert f"{summary.global_members} more a top2 ensemble with it" in text
    assert f"24 trained ({now} now) · 0 skipped" in text
