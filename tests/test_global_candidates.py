"""Global candidates (#12): one model over every partition's rows, chosen per partition.

The panel is built so the choice must differ: most shops are short and noisy around one shared
slope (a local fit on 7 rows extrapolates badly; the global model borrows the slope from every
shop), while a few shops follow the same line exactly (a local fit is perfect there, so no
model fitted on everyone's noise beats it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from factories import open_client

from manymodels.exceptions import RunFailed, SpecError, TrainingError
from manymodels.forecasting import forecast
from manymodels.gc import collect
from manymodels.pipeline import train
from manymodels.registry.client import Registry
from manymodels.scoring import score
from manymodels.spec import Spec
from manymodels.training.global_fit import GlobalModel, KeyBound

EXACT = {f"shop=s{k:02d}" for k in range(18, 24)}


def panel(seed: int = 0, n_noisy: int = 10, n_exact: int = 12) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(24):
        exact = f"shop=s{k:02d}" in EXACT
        n = n_exact if exact else n_noisy
        x = np.arange(n) + rng.uniform(0, 1, n)
        y = 2.0 * x + 3.0 * (k % 5) + (0.0 if exact else rng.normal(0, 2.0, n))
        days = pd.date_range("2024-01-01", periods=n)
        frames.append(pd.DataFrame({"shop": f"s{k:02d}", "day": days, "x": x, "y": y}))
    return pd.concat(frames, ignore_index=True)


def spec(**overrides: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": "shops",
        "partition_by": ["shop"],
        "target": "y",
        "time_column": "day",
        "features": ["x"],
        "validation": {"strategy": "last", "size": 3},
        "fallback": {"enabled": False},
        "candidates": [
            {"estimator": "sklearn.linear_model.LinearRegression"},
            {
                "estimator": "sklearn.linear_model.Ridge",
                "scope": "global",
                "params": {"alpha": 0.1},
            },
        ],
    }
    out.update(overrides)
    return out


def chosen(reg: Registry) -> dict[str, str]:
    return {
        p.key: str(reg.get_version(p.key).validation.get("chosen"))
        for p in reg.list_partitions(limit=1000)
    }


def scored_global(s: dict[str, Any], data: pd.DataFrame, root: Path, label: str) -> Any:
    """Train ``s`` on ``data``: its one global model fitted without an error, and scored on
    shop s00's validation rows beside the local candidates; shop s00's version."""
    summary = train(s, data, root, backend="local")
    (glob,) = summary.run.options["global"]
    assert "error" not in glob, glob
    with Registry(root) as reg:
        v = reg.get_version("shop=s00")
    (scored,) = [c for c in v.candidates if c["label"] == label]
    assert scored["score"] is not None, scored
    return v


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("global") / "reg"
    train(spec(), panel(), root, backend="local")
    return root


def test_global_wins_for_some_partitions_and_local_for_others(trained: Path) -> None:
    with Registry(trained) as reg:
        picks = chosen(reg)
        run = reg.list_runs(limit=1)[0]
    assert {picks[k] for k in EXACT} == {"candidate"}
    noisy = [v for k, v in picks.items() if k not in EXACT]
    assert noisy.count("global") >= len(noisy) // 2, picks
    (glob,) = run.options["global"]
    assert glob["estimator"] == "sklearn.linear_model.Ridge" and glob["sha256"]


def test_one_artifact_referenced_by_every_version_that_chose_it(trained: Path) -> None:
    with Registry(trained) as reg:
        sha = reg.list_runs(limit=1)[0].options["global"][0]["sha256"]
        versions = [reg.get_version(p.key) for p in reg.list_partitions(limit=1000)]
        model = reg.artifacts.get(sha)
    globals_ = [v for v in versions if v.validation.get("chosen") == "global"]
    assert len(globals_) >= 5
    assert {v.artifact_sha256 for v in globals_} == {sha}
    for v in globals_:  # which global model, as `models show` prints the validation record
        assert v.validation["scope"] == "global"
        assert v.validation["global"]["sha256"] == sha
        assert v.feature_schema["global"]["key"] == {"shop": v.key.split("=")[1]}
        assert any(c["label"] == "Ridge (global)" and c["score"] is not None for c in v.candidates)
    assert model  # stored once, verified on read


def test_gc_keeps_the_shared_global_artifact(trained: Path) -> None:
    with Registry(trained) as reg:
        sha = reg.list_runs(limit=1)[0].options["global"][0]["sha256"]
        collect(reg, dry_run=False)
        assert reg.artifacts.get(sha)


def test_load_score_and_forecast_a_partition_that_chose_global(trained: Path) -> None:
    with Registry(trained) as reg:
        key = next(k for k, v in chosen(reg).items() if v == "global")
        loaded = reg.load_model(key)
        assert isinstance(loaded.model, KeyBound)
        shop = key.split("=")[1]
        rows = pd.DataFrame({"x": [20.0, 21.0]})
        pred = np.asarray(loaded.predict(rows))
        inner = loaded.model.model
        assert isinstance(inner, GlobalModel)
        other = np.asarray(inner.predict(rows.to_numpy(), [["s18"]]))
        assert pred.shape == (2,) and not np.allclose(pred, other)  # the key is a feature
        unseen = np.asarray(inner.predict(rows.to_numpy(), [["never-seen"]]))
        assert np.isfinite(unseen).all()  # an unknown key is a missing category, not an error
        scored = score(
            pd.DataFrame({"shop": [shop, shop], "x": [20.0, 21.0]}), reg, backend="local"
        )
        assert np.allclose(scored["prediction"].to_numpy(), pred)
        future = pd.DataFrame(
            {"shop": [shop, shop], "day": pd.date_range("2024-01-11", periods=2), "x": [20.0, 21.0]}
        )
        out = forecast(reg, [key], horizon=2, future=future)
        assert np.allclose(out["prediction"].to_numpy(), pred)


def test_router_predicts_for_a_partition_that_chose_global(trained: Path) -> None:
    from serving.settings import Settings

    with Registry(trained) as reg:
        key, key2 = [k for k, v in chosen(reg).items() if v == "global"][:2]
        expected = np.asarray(reg.load_model(key).predict(pd.DataFrame({"x": [20.0]})))
        expected2 = np.asarray(reg.load_model(key2).predict(pd.DataFrame({"x": [20.0]})))
    with open_client(Settings(registry=trained)) as client:
        r = client.post(f"/v1/partitions/{key}/predict", json={"rows": [{"x": 20.0}]})
        assert r.status_code == 200, r.text
        assert np.allclose(r.json()["predictions"], expected)
        shop = key.split("=")[1]  # the batch route: the key from the row's key field
        shop2 = key2.split("=")[1]  # a second partition on the same global model
        rows = [{"shop": shop, "x": 20.0}, {"shop": "s18", "x": 20.0}, {"shop": shop2, "x": 20.0}]
        for _ in range(2):  # loading, then from the cache
            r = client.post("/v1/predict", json={"rows": rows})
            assert r.status_code == 200, r.text
            answers = r.json()["predictions"]
            assert np.isclose(answers[0]["prediction"], expected[0])
            assert answers[1]["partition"] == "shop=s18"
            assert np.isclose(answers[2]["prediction"], expected2[0])
            assert not np.isclose(expected[0], expected2[0])


def test_retraining_one_partition_rescores_the_current_global_model(tmp_path: Path) -> None:
    """Three new days of a shop the global model chose are its validation rows: the stored
    model, never refitted, is scored on them, rows it did not see."""
    root = tmp_path / "reg"
    train(spec(), panel(), root, backend="local")
    with Registry(root) as reg:
        sha = reg.list_runs(limit=1)[0].options["global"][0]["sha256"]
        key = next(k for k, v in chosen(reg).items() if v == "global")
    data = panel(seed=0, n_noisy=13, n_exact=15)
    summary = train(spec(), data, root, backend="local", only=[key])
    assert summary.run.options["global"][0]["sha256"] == sha  # re-scored, never refitted
    with Registry(root) as reg:
        v = max(reg.list_versions(key), key=lambda m: m.version)
    assert any(c["label"] == "Ridge (global)" and c["score"] is not None for c in v.candidates)


def test_a_retrain_judges_the_global_model_only_on_rows_it_did_not_see(tmp_path: Path) -> None:
    """The stored global model was refitted on every row of its run: scored on those rows
    again (a retrain of named partitions on the same data) it was judged in-sample, chosen and
    promoted. Now only rows after each partition's last time in its run count: a noisy shop
    (10 days, while the fit ran to day 12) is judged on days 11 to 13, and the same rows
    again leave it unscored, saying why."""
    root = tmp_path / "reg"
    train(spec(), panel(), root, backend="local")
    (through,) = [g["through"] for g in Registry.open(root).list_runs(limit=1)[0].options["global"]]
    assert pd.Timestamp(through) == pd.Timestamp("2024-01-12")
    keys = ["shop=s00", "shop=s18"]  # noisy, exact
    train(spec(), panel(), root, backend="local", only=keys)
    with Registry(root) as reg:
        for key in keys:
            v = reg.get_version(key, 2)
            (glob,) = [c for c in v.candidates if c["label"] == "Ridge (global)"]
            assert glob["score"] is None, glob
            assert "judged only on validation rows after those it was fitted on" in glob["error"]
            assert v.validation["chosen"] != "global"
    train(spec(), panel(seed=0, n_noisy=13), root, backend="local", only=["shop=s00"])
    with Registry(root) as reg:
        v = max(reg.list_versions("shop=s00"), key=lambda m: m.version)
        (glob,) = [c for c in v.candidates if c["label"] == "Ridge (global)"]
        assert glob["score"] is not None, glob


@pytest.mark.parametrize("ensemble", ["none", "top2"])
def test_a_global_champion_retrained_on_the_same_rows_is_judged_by_its_recipe_refitted(
    tmp_path: Path, ensemble: str
) -> None:
    """A full run on the same rows again. A champion that *is* a global model is judged by
    the run's global model of its recipe, whose fold fits left these validation rows out: it
    is scored, and the new version (the same bytes) is kept. One that *holds* a global model
    in a top-2 mean cannot be refitted on the partition's rows — its member saw every
    partition's rows, the validation rows too — so it is not scored, and the decision says so
    in words. It was a ``TypeError`` from scikit-learn's ``clone`` with a memory address in
    it; before the recipe, a global champion was never scored on the same periods."""
    root = tmp_path / "reg"
    s = spec(selection={"ensemble": ensemble})
    train(s, panel(), root, backend="local")
    train(s, panel(), root, backend="local")
    with Registry(root) as reg:
        firsts = {p.key: reg.get_version(p.key, 1) for p in reg.list_partitions(limit=100)}
        chosen = {k: v.validation.get("chosen") for k, v in firsts.items()}
        on_global = [k for k, how in chosen.items() if how == "global"]
        holding = [k for k, how in chosen.items() if how == "ensemble"]
        assert on_global and (holding or ensemble == "none")
        for key in on_global:
            ev = reg.get_version(key, 2).evaluation
            assert ev["basis"] == "refit" and ev["champion_score"] is not None, ev
            assert ev["champion_score"] == ev["challenger_score"], ev  # the same model refitted
            assert ev["reason"] == "identical to champion v1 (same bytes); kept", ev
        for key in holding:
            ev = reg.get_version(key, 2).evaluation
            reason = ev["reason"]
            assert "it holds a global model trained on these validation rows too" in reason, reason
            assert "TypeError" not in reason and "0x" not in reason
            assert ev["basis"] == "refit" and ev["champion_score"] is None


def test_a_global_model_fitted_on_other_features_is_not_rescored(tmp_path: Path) -> None:
    """The spec now lists the same features in another order: the stored global model reads
    its columns by position, so a retrain of one partition must not score (or serve) it on
    them. It reports why, and the partition chooses among its local candidates."""
    root = tmp_path / "reg"
    data = panel().assign(z=lambda d: np.cos(d["x"]) * 50.0)
    train(spec(features=["x", "z"]), data, root, backend="local")
    with Registry(root) as reg:
        key = next(k for k, v in chosen(reg).items() if v == "global")
    summary = train(spec(features=["z", "x"]), data, root, backend="local", only=[key])
    (glob,) = summary.run.options["global"]
    assert "fitted on the features ['x', 'z'], and this spec gives ['z', 'x']" in glob["error"]
    with Registry(root) as reg:
        v = max(reg.list_versions(key), key=lambda m: m.version)
    assert v.validation["chosen"] != "global" and not v.members
    assert v.feature_schema["features"] == ["z", "x"]


def _losing_global(constant: float = 1e6, **overrides: Any) -> dict[str, Any]:
    """A spec whose global candidate (a constant far off every target) no partition chooses."""
    far = {"estimator": "sklearn.dummy.DummyRegressor", "scope": "global"}
    far["params"] = {"strategy": "constant", "constant": constant}
    return spec(candidates=[spec()["candidates"][0], far], **overrides)


def test_gc_keeps_the_current_global_model_though_no_version_chose_it(tmp_path: Path) -> None:
    """Retraining one partition re-scores the newest full run's global models: gc keeps them
    even when every partition chose a local model (it deleted them, and the retrain then
    lost its global candidate without a word); a superseded run's unchosen one goes."""
    root = tmp_path / "reg"
    train(_losing_global(), panel(), root, backend="local")
    with Registry(root) as reg:
        first = reg.list_runs(limit=1)[0].options["global"][0]["sha256"]
        assert "global" not in set(chosen(reg).values())
        collect(reg, grace_seconds=0)
        assert reg.artifacts.get(first)
    key = "shop=s01"
    train(_losing_global(), panel(seed=0, n_noisy=13), root, backend="local", only=[key])
    with Registry(root) as reg:
        v = max(reg.list_versions(key), key=lambda m: m.version)
        assert v.version == 2
    scored = {c["label"]: c for c in v.candidates}
    assert scored["DummyRegressor (global)"]["score"] is not None, v.candidates
    # a new full run fits another global model: the first one is superseded
    train(_losing_global(2e6), panel(), root, backend="local")
    with Registry(root) as reg:
        second = reg.list_runs(limit=1)[0].options["global"][0]["sha256"]
        assert second != first
        report = collect(reg, grace_seconds=0)
        assert report.artifacts_deleted >= 1
        assert reg.artifacts.get(second)
        assert first not in reg.store.referenced_digests()
        with pytest.raises(Exception, match=first[:12]):
            reg.artifacts.get(first)


def test_a_running_runs_global_models_are_referenced(tmp_path: Path) -> None:
    """A run's global models are recorded on it before any chunk loads them: a gc during a
    run longer than the young-artifact grace keeps them."""
    root = tmp_path / "reg"
    seen: list[tuple[str, bool]] = []

    def during(_: Any) -> None:
        with Registry(root) as reg:
            run = reg.list_runs(limit=1)[0]
            models = run.options.get("global") or []
            held = bool(models) and models[0]["sha256"] in reg.store.referenced_digests()
            seen.append((run.status, held))

    train(_losing_global(), panel(), root, backend="local", progress=during)
    assert ("running", True) in seen, seen


KILLED_RUN = """
import sys, time
sys.path.insert(0, sys.argv[2])
from test_global_candidates import _losing_global, panel
from manymodels.pipeline import train
calls = []
def wait(_):
    calls.append(1)
    if len(calls) == 2:  # after the global phase, at the first chunk
        print("ready", flush=True)
        time.sleep(600)
train(_losing_global(), panel(), sys.argv[1], backend="local", progress=wait)
"""


@pytest.mark.slow  # a training process of its own, killed: ~5-10 s on a busy machine
def test_a_killed_runs_global_models_go_and_it_still_resumes(tmp_path: Path) -> None:
    """A run killed with SIGKILL stays marked running. Its process is gone from this
    machine, so nothing loads its global models: gc collects them and doctor says so; the
    resume fits its own again."""
    import signal
    import subprocess
    import sys

    from manymodels.doctor import check

    root = tmp_path / "reg"
    tests = str(Path(__file__).parent)
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, str(root), tests], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        with Registry(root) as reg:
            (run,) = reg.list_runs(limit=5)
            sha = run.options["global"][0]["sha256"]
            assert sha in reg.store.referenced_digests()  # it runs: its chunks load it
            assert not run.killed and run.state == "running"
            (problem,) = [p for p in check(reg).problems if p.kind == "unfinished_run"]
            assert f"is running (process {proc.pid} on this machine)" in problem.message
        with pytest.raises(TrainingError, match=f"still running \\(process {proc.pid} "):
            train(_losing_global(), panel(), root, backend="local", resume=run.run_id)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        if proc.stdout is not None:
            proc.stdout.close()
    with Registry(root) as reg:
        gone = reg.get_run(run.run_id)
        assert gone.status == "running" and gone.killed
        assert gone.state == "running (process gone)"  # as `manymodels runs` shows it
        assert sha not in reg.store.referenced_digests()
        (problem,) = [p for p in check(reg).problems if p.kind == "unfinished_run"]
        assert f"its process (pid {proc.pid}, on this machine) is gone" in problem.message
        collect(reg, grace_seconds=0)
        with pytest.raises(Exception, match=sha[:12]):
            reg.artifacts.get(sha)
    summary = train(_losing_global(), panel(), root, backend="local", resume=run.run_id)
    assert summary.run.status == "completed" and summary.run.n_trained == 24
    (fitted,) = summary.run.options["global"]
    assert fitted["sha256"] == sha and "error" not in fitted  # the same model, fitted again
    with Registry(root) as reg:
        assert reg.artifacts.get(sha)


def test_an_interrupted_run_or_a_failed_global_fit_keeps_nothing_more(tmp_path: Path) -> None:
    """What gc keeps of runs' global models is what ``_current_globals`` loads (the newest
    completed full run's, even when every fit failed) and what a running run loads: not an
    interrupted run's (a resume fits its own), nor an older run's behind a failed one."""
    from manymodels.exceptions import RunInterrupted
    from manymodels.run_globals import _current_globals

    root = tmp_path / "reg"
    train(_losing_global(), panel(), root, backend="local")
    calls = [0]

    def stop(_: Any) -> None:
        calls[0] += 1
        if calls[0] == 2:  # after the global phase, at the first chunk
            raise KeyboardInterrupt

    with pytest.raises(RunInterrupted):
        train(_losing_global(3e6), panel(), root, backend="local", progress=stop)
    with Registry(root) as reg:
        runs = reg.list_runs(limit=5)
        assert [r.status for r in runs[:2]] == ["interrupted", "completed"]
        stopped, done = (r.options["global"][0]["sha256"] for r in runs[:2])
        assert stopped in set(reg.artifacts.digests()) and done in reg.store.referenced_digests()
        assert stopped not in reg.store.referenced_digests()
    # a full run whose global fit fails: retraining scores no global model, gc keeps none
    broken = _losing_global()
    broken["candidates"][1]["params"] = {"strategy": "constant"}  # no constant: fit fails
    train(broken, panel(), root, backend="local")
    with Registry(root) as reg:
        assert _current_globals(reg, Spec.from_dict(broken), []) == ([], {})
        assert done not in reg.store.referenced_digests()


def test_a_backup_holds_the_current_global_model_or_does_without_a_lost_one(
    tmp_path: Path,
) -> None:
    """A backup writes the current global model when the store has it, and is still written
    (and restored) when an older gc deleted it: a retrain then goes without it, as it did."""
    from manymodels.backup import export_registry
    from manymodels.restore import import_registry

    root = tmp_path / "reg"
    train(_losing_global(), panel(), root, backend="local")
    with Registry(root) as reg:
        sha = reg.list_runs(limit=1)[0].options["global"][0]["sha256"]
        full = export_registry(reg, tmp_path / "full.tar")
        reg.artifacts.delete(sha)  # as gc did before it kept the current global model
        lost = export_registry(reg, tmp_path / "lost.tar")
    assert lost.artifacts == full.artifacts - 1
    for name in ("full", "lost"):
        import_registry(tmp_path / f"{name}.tar", tmp_path / f"restored-{name}")
        with Registry(tmp_path / f"restored-{name}") as restored:
            assert (sha in set(restored.artifacts.digests())) == (name == "full")


def test_many_newer_runs_do_not_hide_the_current_global_model(tmp_path: Path) -> None:
    """A retrain re-scores the newest full run's global models however many runs came after
    it — other specs' runs, and retrains of named partitions (one run each): it looked only
    at the newest 50 runs of any spec, and then lost its global candidate without a word."""
    import dataclasses

    from manymodels.registry.engine import now
    from manymodels.run_globals import _current_globals

    root = tmp_path / "reg"
    train(_losing_global(), panel(), root, backend="local")
    with Registry(root) as reg:
        full = reg.list_runs(limit=1)[0]
        sha = full.options["global"][0]["sha256"]
        for i in range(26):  # another spec's runs, and retrains of this one's partitions
            other = {"spec_name": "other", "options": {}}
            retrain = {"options": {"only": ["shop=s02"], "global": full.options["global"]}}
            for n, changes in enumerate((other, retrain)):
                reg.store.create_run(
                    dataclasses.replace(
                        full, run_id=f"x{n}{i:03d}", started_at=now(), status="completed",
                        **changes,
                    )
                )  # fmt: skip
        assert reg.list_runs(limit=1)[0].run_id != full.run_id
        found, _ = _current_globals(reg, Spec.from_dict(_losing_global()), [])
        assert [g["sha256"] for g in found] == [sha]
    key = "shop=s01"
    train(_losing_global(), panel(seed=0, n_noisy=13), root, backend="local", only=[key])
    with Registry(root) as reg:
        v = max(reg.list_versions(key), key=lambda m: m.version)
    assert any(c["label"] == "DummyRegressor (global)" and c["score"] is not None
               for c in v.candidates), v.candidates  # fmt: skip


def test_a_full_run_whose_notes_say_only_is_still_the_current_one(tmp_path: Path) -> None:
    """Retraining and gc agree on the current run by one rule: a full run's notes (merged
    into its options) that hold the word "only" do not make it a named-partition retrain."""
    from manymodels.run_globals import _current_globals

    root = tmp_path / "reg"
    train(_losing_global(), panel(), root, backend="local")
    notes = {"scope": "only", "filter": {"only": ["EU"]}}
    train(_losing_global(2e6), panel(), root, backend="local", notes=notes)
    with Registry(root) as reg:
        first, second = (r.options["global"][0]["sha256"] for r in reg.list_runs(limit=2)[::-1])
        found, _ = _current_globals(reg, Spec.from_dict(_losing_global(2e6)), [])
        assert [g["sha256"] for g in found] == [second]
        kept = reg.store.referenced_digests()
        assert second in kept and first not in kept


def test_global_candidates_only_with_the_default_fallback(tmp_path: Path) -> None:
    """A spec of global candidates only, with the fallback on (the default): the fallback fits
    them as pooled models. It failed the whole run with "no model to fit"."""
    only_global = spec(fallback={"enabled": True})
    only_global["candidates"] = [only_global["candidates"][1]]
    summary = train(only_global, panel(), tmp_path / "reg", backend="local")
    assert summary.run.n_failed == 0 and summary.run.n_trained == 24
    with Registry(tmp_path / "reg") as reg:
        fallback = reg.load_model("__fallback__")
        per_partition = {k: v for k, v in chosen(reg).items() if k != "__fallback__"}
        assert set(per_partition.values()) <= {"global", "naive"}
    assert fallback.version.estimator.endswith("Ridge")


def test_a_bad_scope_is_a_spec_error() -> None:
    bad = spec()
    bad["candidates"] = [{"estimator": "sklearn.linear_model.Ridge", "scope": "everywhere"}]
    with pytest.raises(SpecError, match="scope"):
        Spec.from_dict(bad)


def test_local_candidates_keep_their_spec_hash() -> None:
    plain = spec()
    plain["candidates"] = [{"estimator": "sklearn.linear_model.Ridge"}]
    scoped = spec()
    scoped["candidates"] = [{"estimator": "sklearn.linear_model.Ridge", "scope": "local"}]
    assert Spec.from_dict(plain).spec_hash == Spec.from_dict(scoped).spec_hash


def test_lightgbm_as_a_global_candidate_with_native_categorical_keys(tmp_path: Path) -> None:
    pytest.importorskip("lightgbm")
    lgbm = {
        "estimator": "lightgbm.LGBMRegressor",
        "scope": "global",
        "params": {"n_estimators": 20, "min_child_samples": 5, "n_jobs": 1},
    }
    local = {**lgbm, "scope": "local"}
    s = spec(candidates=[{"estimator": "sklearn.linear_model.LinearRegression"}, local, lgbm])
    summary = train(s, panel(), tmp_path / "reg", backend="local")
    (glob,) = summary.run.options["global"]
    assert "error" not in glob, glob
    with Registry(tmp_path / "reg") as reg:
        model = reg.load_model("shop=s00").model
        inner = model.model if isinstance(model, KeyBound) else None
        if inner is None:
            blob = reg.artifacts.get(glob["sha256"])
            from manymodels.artifacts import deserialize

            inner = deserialize(blob)
        assert type(inner.estimator).__name__ == "LGBMRegressor"  # no one-hot encoder in front
        labels = {c["label"]: c for c in reg.get_version("shop=s00").candidates}
        assert labels["LGBMRegressor"]["score"] is not None  # the local one, per partition
        frame = inner.frame(np.array([[1.0]]), [["s00"]])
        assert str(frame["shop"].dtype) == "category"


def test_classifiers_borrow_strength_through_a_global_model(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    frames = []
    for u in range(30):
        n = 16
        x = rng.normal(0, 1, n)
        y = (x + rng.normal(0, 0.3, n) > 0).astype(int)
        days = pd.date_range("2024-01-01", periods=n)
        frames.append(pd.DataFrame({"user": f"u{u}", "day": days, "x": x, "click": y}))
    s = {
        "name": "clicks",
        "task": "classification",
        "partition_by": ["user"],
        "target": "click",
        "time_column": "day",
        "features": ["x"],
        "metric": "neg_log_loss",
        "validation": {"strategy": "last", "size": 4},
        "fallback": {"enabled": False},
        "candidates": [
            {"estimator": "sklearn.linear_model.LogisticRegression"},
            {"estimator": "sklearn.linear_model.LogisticRegression", "scope": "global"},
        ],
    }
    summary = train(s, pd.concat(frames, ignore_index=True), tmp_path / "reg", backend="local")
    assert summary.chosen.get("global", 0) >= 1, summary.chosen
    with Registry(tmp_path / "reg") as reg:
        key = next(k for k, v in chosen(reg).items() if v == "global")
        proba = np.asarray(reg.load_model(key).predict_proba(pd.DataFrame({"x": [-2.0, 2.0]})))
    assert proba.shape == (2, 2) and proba[0, 1] < 0.5 < proba[1, 1]


@pytest.mark.slow
def test_ray_fits_the_global_model_in_its_own_task(tmp_path: Path, ray_session: Any) -> None:
    summary = train(spec(), panel(), tmp_path / "reg", backend="ray")
    (glob,) = summary.run.options["global"]
    assert glob["sha256"] and "error" not in glob
    assert summary.chosen.get("global", 0) >= 5 and summary.chosen.get("candidate", 0) >= 6


def test_top2_ensemble_competes_and_serves_the_mean_of_two(tmp_path: Path) -> None:
    s = spec(
        selection={"ensemble": "top2", "naive_candidate": False},
        candidates=[
            {"estimator": "sklearn.linear_model.LinearRegression"},
            {"estimator": "sklearn.linear_model.Ridge", "params": {"alpha": [1.0, 100.0]}},
        ],
    )
    summary = train(s, panel(), tmp_path / "reg", backend="local")
    with Registry(tmp_path / "reg") as reg:
        versions = [reg.get_version(p.key) for p in reg.list_partitions(limit=1000)]
        assert all(any(c["label"] == "top2" for c in v.candidates) for v in versions)
        picked = [v for v in versions if v.validation["chosen"] == "ensemble"]
        assert picked, summary.chosen
        v = picked[0]
        model = reg.load_model(v.key).model
        rows = pd.DataFrame({"x": [5.0]})
        members = [np.asarray(m.predict(rows.to_numpy()))[0] for m in model.members]
        assert np.isclose(np.asarray(model.predict(rows.to_numpy()))[0], np.mean(members))


def test_a_global_histgradientboosting_fits_on_the_one_hot_keys(tmp_path: Path) -> None:
    """The key columns one-hot encode to mostly zeros, a sparse matrix HistGradientBoosting
    refuses: it gets them dense (``candidates.takes_sparse``), fits, and is scored."""
    hgb = {"estimator": "sklearn.ensemble.HistGradientBoostingRegressor", "scope": "global"}
    hgb["params"] = {"max_iter": 50, "min_samples_leaf": 5}
    s = spec(candidates=[spec()["candidates"][0], hgb])
    scored_global(s, panel(), tmp_path / "reg", "HistGradientBoostingRegressor (global)")


def test_a_dense_one_hot_past_the_limit_is_refused_with_a_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """100,000 partitions one-hot encode to 100,000 dense columns: past ``DENSE_LIMIT`` the
    global fit fails with a reason (and the partitions keep their local candidates) rather
    than exhausting memory. The limit is lowered below this small panel's matrix."""
    from manymodels.training import global_fit

    monkeypatch.setattr(global_fit, "DENSE_LIMIT", 1000)
    hgb = {"estimator": "sklearn.ensemble.HistGradientBoostingRegressor", "scope": "global"}
    s = spec(candidates=[spec()["candidates"][0], hgb])
    summary = train(s, panel(), tmp_path / "reg", backend="local")
    (glob,) = summary.run.options["global"]
    assert "takes no sparse input, and the 24 key values" in glob["error"]
    assert "use lightgbm.LGBMRegressor" in glob["error"]
    assert summary.run.n_trained == 24  # on their local candidates


def test_a_global_candidate_is_not_also_fitted_per_partition(trained: Path) -> None:
    with Registry(trained) as reg:
        v = reg.get_version("shop=s00")
    assert [c["label"] for c in v.candidates] == ["LinearRegression", "Ridge (global)"]


def test_the_router_loads_one_global_model_for_every_partition_on_it(trained: Path) -> None:
    from serving.served import load_served

    with Registry(trained) as reg:
        keys = [k for k, v in chosen(reg).items() if v == "global"][:3]
        served = [load_served(reg, k, reg.get_version(k).version) for k in keys]
    inner = {id(s.model.model) for s in served}
    assert len(inner) == 1  # one unpickled copy, bound to three keys
    assert [s.model.key["shop"] for s in served] == [k.split("=")[1] for k in keys]


def test_a_global_fit_samples_its_training_rows_above_max_rows(tmp_path: Path) -> None:
    summary = train(
        spec(fallback={"enabled": False, "max_rows": 50}), panel(), tmp_path / "reg",
        backend="local",
    )  # fmt: skip
    (glob,) = summary.run.options["global"]
    assert "error" not in glob, glob
    assert glob["rows"] == 50


@pytest.mark.slow  # skops' import and its type checks: ~5-12 s on a busy machine
def test_global_models_and_ensembles_store_as_skops(tmp_path: Path) -> None:
    pytest.importorskip("skops")
    s = spec(artifacts={"format": "skops"}, selection={"ensemble": "top2"})
    s["candidates"].append({"estimator": "sklearn.linear_model.Ridge", "params": {"alpha": 10.0}})
    summary = train(s, panel(), tmp_path / "reg", backend="local")
    (glob,) = summary.run.options["global"]
    assert "error" not in glob, glob
    with Registry(tmp_path / "reg") as reg:
        key = next(k for k, v in chosen(reg).items() if v == "global")
        assert isinstance(reg.load_model(key).model, KeyBound)
        pairs = [reg.get_version(p.key) for p in reg.list_partitions(limit=1000)]
        pair = next(v for v in pairs if v.members)  # an ensemble naming the global model
        members = reg.load_model(pair.key).model.members
        assert any(isinstance(m, KeyBound) for m in members)


@pytest.mark.parametrize("validation", [{"strategy": "holdout", "size": 3}, {"strategy": "kfold"}])
def test_global_candidates_without_a_time_column(tmp_path: Path, validation: Any) -> None:
    s = spec(
        validation={**validation, "folds": 3} if validation["strategy"] == "kfold" else validation
    )
    del s["time_column"]
    v = scored_global(s, panel().drop(columns="day"), tmp_path / "reg", "Ridge (global)")
    assert v.validation["folds"] == (3 if validation["strategy"] == "kfold" else 1)


def test_top2_may_pair_a_local_model_with_the_global_one(tmp_path: Path) -> None:
    s = spec(selection={"ensemble": "top2", "naive_candidate": False})
    s["candidates"].append({"estimator": "sklearn.linear_model.Ridge", "params": {"alpha": 10.0}})
    train(s, panel(), tmp_path / "reg", backend="local")
    with Registry(tmp_path / "reg") as reg:
        versions = [reg.get_version(p.key) for p in reg.list_partitions(limit=1000)]
        top2 = {v.key: next(c for c in v.candidates if c["label"] == "top2") for v in versions}
        mixed = [k for k, c in top2.items() if any("(global)" in m for m in c["params"]["members"])]
        assert mixed and all(top2[k]["score"] is not None for k in mixed)
        served = [v for v in versions if v.key in mixed and v.validation["chosen"] == "ensemble"]
        assert served, {v.key: v.validation["chosen"] for v in versions}
        model = reg.load_model(served[0].key).model
    kinds = {type(m).__name__ for m in model.members}
    assert "KeyBound" in kinds  # the global model inside, bound to the partition's key
    rows = np.array([[5.0]])
    members = [np.asarray(m.predict(rows))[0] for m in model.members]
    assert np.isclose(np.asarray(model.predict(rows))[0], np.mean(members))


def test_forecast_of_many_partitions_on_one_global_model(trained: Path) -> None:
    with Registry(trained) as reg:
        keys = [k for k, v in chosen(reg).items() if v == "global"][:4]
        shops = [k.split("=")[1] for k in keys]
        future = pd.DataFrame({"shop": shops, "day": pd.Timestamp("2024-01-11"), "x": 20.0})
        out = forecast(reg, keys, horizon=1, future=future)
        expected = {
            s: float(np.asarray(reg.load_model(k).predict(pd.DataFrame({"x": [20.0]})))[0])
            for k, s in zip(keys, shops, strict=True)
        }
    got = dict(zip(out["shop"], out["prediction"], strict=True))
    assert got == pytest.approx(expected)
    assert len(set(expected.values())) == len(keys)  # each bound to its own key


def test_batch_scoring_of_many_partitions_on_one_global_model(trained: Path) -> None:
    with Registry(trained) as reg:
        keys = [k for k, v in chosen(reg).items() if v == "global"][:4]
        shops = [k.split("=")[1] for k in keys]
        scored = score(pd.DataFrame({"shop": shops, "x": 20.0}), reg, backend="local")
        expected = [
            float(np.asarray(reg.load_model(k).predict(pd.DataFrame({"x": [20.0]})))[0])
            for k in keys
        ]
    assert scored["prediction"].tolist() == pytest.approx(expected)
    assert len(set(expected)) == len(keys)


def test_one_global_fit_for_every_fold(tmp_path: Path) -> None:
    """``[validation] global_refit = false``: a run whose global model predicted every fold
    from one fit — its later folds judged by a model that never saw the rows before them, so
    its scores differ — stores the same global model, refitted on every row."""
    kfold = {"strategy": "kfold", "size": 2, "folds": 3}
    runs = {}
    for refit in (True, False):
        s = spec(validation={**kfold, "global_refit": refit})
        v = scored_global(s, panel(n_noisy=16, n_exact=16), tmp_path / str(refit), "Ridge (global)")
        with Registry(tmp_path / str(refit)) as reg:
            (glob,) = reg.list_runs(limit=1)[0].options["global"]
        runs[refit] = (glob["sha256"], next(c for c in v.candidates if "(global)" in c["label"]))
    assert runs[True][0] == runs[False][0]
    assert runs[True][1]["score"] != runs[False][1]["score"]


def test_a_global_champion_is_judged_on_corrected_history_by_its_recipe_refitted(
    tmp_path: Path,
) -> None:
    """The same periods again, corrected: a local champion is refitted on the new rows; a
    global one cannot be on one partition's, and was kept for ever ("could not be
    evaluated"). The run's global model of its recipe is it refitted on every partition's
    rows: a partition that chooses it again ties, the same method, and is promoted."""
    root = tmp_path / "reg"
    train(spec(), panel(), root, backend="local")
    with Registry(root) as reg:
        on_global = sorted(k for k, how in chosen(reg).items() if how == "global")
    assert on_global
    corrected = panel().assign(y=lambda d: d["y"] * 1.5)  # the same days, every value fixed
    train(spec(), corrected, root, backend="local")
    with Registry(root) as reg:
        again = [k for k in on_global if chosen_latest(reg, k) == "global"]
        assert again  # partitions whose new version chose the global model again
        for key in again:
            latest = reg.get_partition(key).latest_version
            ev = reg.get_version(key, latest).evaluation
            assert ev["basis"] == "refit" and "could not be evaluated" not in ev["reason"]
            assert ev["promote"], ev["reason"]
            assert reg.get_partition(key).aliases["production"] == latest


def chosen_latest(reg: Registry, key: str) -> str:
    latest = reg.get_partition(key).latest_version
    return str(reg.get_version(key, latest).validation.get("chosen"))


def test_a_rolling_window_longer_than_every_series_names_why_the_global_fit_had_no_rows(
    tmp_path: Path,
) -> None:
    """A 100-day rolling mean over 10-day series leaves no row defined: the global model's
    recorded error was LightGBM's or scikit-learn's own ("Found array with 0 sample(s)"),
    which names no cause; now it counts the rows and the reason they were left out."""
    s = spec(lags=[1], rolling=[{"lag": 1, "window": 100, "stat": "mean"}])
    with pytest.raises(RunFailed, match="no partition trained") as failed:
        train(s, panel(), tmp_path / "r", backend="local")
    (glob,) = failed.value.summary.run.options["global"]
    assert glob["error"].startswith(
        "ValueError: no row of any partition is left to fit on: of 252 row(s), 252 undefined lags"
    ), glob["error"]


@pytest.mark.slow  # ~3 s at load 16 (a global fit per fold, then the refit)
def test_a_partition_whose_training_rows_hold_one_class_can_choose_a_global_model(
    tmp_path: Path,
) -> None:
    """Its rows cannot fit a local classifier, but a global model needs none of its own: it is
    scored on the partition's validation rows against the smoothed constant, and served where
    it scores better. Before, such a partition never looked at the global models: the user
    whose first 12 visits never clicked was answered a constant ~0.04 for clicking, though
    every user clicks where ``x`` is high, and it did on its 4 validation visits."""
    rng = np.random.default_rng(3)
    frames = []
    for u in range(12):
        x = rng.normal(0, 1, 16)
        if u == 0:  # low x while it trains, high in its validation rows
            x = np.concatenate([-np.abs(x[:12]) - 1.0, np.abs(x[12:]) + 1.0])
        y = (x + rng.normal(0, 0.3, 16) > 0).astype(int)
        days = pd.date_range("2024-01-01", periods=16)
        frames.append(pd.DataFrame({"user": f"u{u:02d}", "day": days, "x": x, "click": y}))
    data = pd.concat(frames, ignore_index=True)
    assert data[data["user"] == "u00"]["click"].tolist() == [0] * 12 + [1] * 4
    s = {
        "name": "clicks", "task": "classification", "partition_by": ["user"],
        "target": "click", "time_column": "day", "features": ["x"],
        "metric": "neg_log_loss", "validation": {"strategy": "last", "size": 4},
        "fallback": {"enabled": False},
        "candidates": [
            {"estimator": "sklearn.linear_model.LogisticRegression"},
            {"estimator": "sklearn.linear_model.LogisticRegression", "scope": "global"},
        ],
    }  # fmt: skip
    train(s, data, tmp_path / "reg", backend="local")
    with Registry(tmp_path / "reg") as reg:
        version = reg.get_version("user=u00")
        assert version.validation["chosen"] == "global", version.validation
        assert version.evaluation["single_class"]["where"] == "training rows"
        scores = {c["label"]: c["score"] for c in version.candidates}
        assert scores["LogisticRegression"] is None  # no local fit on one class
        assert scores["LogisticRegression (global)"] > version.naive_score
        proba = np.asarray(reg.load_model("user=u00").predict_proba(pd.DataFrame({"x": [2.0]})))
    assert proba[0, 1] > 0.5
