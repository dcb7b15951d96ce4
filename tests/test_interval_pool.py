"""Intervals whose shape is pooled across partitions (``manymodels.interval_pool``): the pool
against a hand computation, what a version keeps of it, coverage where each partition has few
errors, and how a resumed run and a retrain of one partition find the pool of their run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from factories import linear_series

from manymodels import intervals
from manymodels.exceptions import RunFailed
from manymodels.execution import InProcessBackend
from manymodels.interval_pool import POOL_OPTION, Pool, Pooling, pooled_quantile, with_pool_band
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.registry.entities import NewVersion, PartitionOutcome
from manymodels.run_chunks import Progress
from manymodels.scoring import score
from manymodels.spec import Spec

RIDGE = [{"estimator": "sklearn.linear_model.Ridge", "params": {"alpha": [1.0]}}]


def _version(key: str, rec: dict[str, Any] | None) -> NewVersion:
    return NewVersion(
        key=key, key_values={"series": key}, n_rows=10, data_fingerprint="f", estimator="e",
        params={}, metric="m", score=0.0, naive_score=None, candidates=[],
        feature_schema={"features": ["x"], **({"intervals": rec} if rec else {})},
        artifact_sha256="0" * 64, artifact_size=1, train_seconds=0.0,
    )  # fmt: skip


# ------------------------------------------------------------------------------ the math
def test_scale_free_errors_are_each_divided_by_the_mean_of_the_others() -> None:
    scale, scores = intervals.scale_free(np.array([1.0, 2.0, 3.0]))
    assert scale == 2.0
    # 1 / mean(2, 3), 2 / mean(1, 3), 3 / mean(1, 2)
    np.testing.assert_allclose(scores, [1 / 2.5, 2 / 2.0, 3 / 1.5])
    assert len(intervals.scale_free(np.array([4.0]))[1]) == 0  # no others to divide by
    # a zero error scores 0; an error beside only zeros has no finite score, so none do
    # (2 / mean(0, 2) = 2)
    assert intervals.scale_free(np.array([0.0, 2.0, 2.0]))[1].tolist() == [0.0, 2.0, 2.0]
    assert len(intervals.scale_free(np.array([0.0, 0.0, 5.0]))[1]) == 0
    # all zero: its band is 0 whatever the pool is, so it takes no part in the pool
    assert intervals.scale_free(np.zeros(3)) == (0.0, pytest.approx([]))
    # float rounding is no error: a constant series a linear model predicts to 1e-16
    third = np.full(4, 1 / 3)
    noise = np.array([1e-16, -1e-16, 0.0, 5e-17])
    rec = intervals.record([(third, third + noise)], [80], ordered=False,
                           pool_partitions=True)  # fmt: skip
    assert rec is not None and len(rec["scores"]) == 0


def test_errors_of_folds_that_share_rows_are_divided_by_the_mean_of_other_rows() -> None:
    """Folds a step apart validate a period from several origins, and those errors are
    alike: divided by a mean that holds its own row's errors, an error is partly divided by
    itself, and the pool's tail is too short for a new period's error."""
    errors = np.array([1.0, 1.0, 10.0, 10.0])
    _, plain = intervals.scale_free(errors)
    np.testing.assert_allclose(plain, [1 / 7, 1 / 7, 10 / 4, 10 / 4])
    scale, scores = intervals.scale_free(errors, groups=np.array([7, 7, 8, 8]))
    assert scale == 5.5
    np.testing.assert_allclose(scores, [1 / 10, 1 / 10, 10 / 1, 10 / 1])
    # in a record: each fold's rows name each error's row; disjoint rows change nothing
    folds = [(np.zeros(2), np.array([1.0, 10.0])), (np.zeros(2), np.array([10.0, 3.0]))]
    shared = intervals.record(folds, [80], ordered=True, pool_partitions=True,
                              rows=[np.array([0, 1]), np.array([1, 2])])  # fmt: skip
    assert shared is not None
    # row 1's two errors (10, 10) are divided by rows 0 and 2's mean (2); 1 by 23 / 3 …
    np.testing.assert_allclose(shared["scores"], [1 / (23 / 3), 5.0, 5.0, 3 / (21 / 3)])
    disjoint = intervals.record(folds, [80], ordered=True, pool_partitions=True,
                                rows=[np.array([0, 1]), np.array([2, 3])])  # fmt: skip
    plain_record = intervals.record(folds, [80], ordered=True, pool_partitions=True)
    assert disjoint is not None and plain_record is not None
    assert disjoint["scores"].tolist() == plain_record["scores"].tolist()


def test_the_record_keeps_scale_and_scores_only_when_asked() -> None:
    y = np.zeros(3)
    folds = [(y, np.array([1.0, -2.0, 3.0]))]
    plain = intervals.record(folds, [80], ordered=False)
    assert plain is not None and "mean_error" not in plain and "scores" not in plain
    asked = intervals.record(folds, [80], ordered=False, pool_partitions=True)
    assert asked is not None and asked["mean_error"] == 2.0
    assert asked["quantiles"] == plain["quantiles"]  # the partition's own band, until pooled
    np.testing.assert_allclose(asked["scores"], [0.4, 1.0, 2.0])


def test_the_pool_is_the_conformal_quantile_of_every_partitions_scores() -> None:
    scores = [np.array([0.5, 1.0]), np.array([]), np.array([2.0, 1.5])]
    pool = Pool.of(scores, [50, 80], "run1")
    assert pool is not None
    # 2 partitions of 2 scores: as conformal_quantile over 4, sorted 0.5 1 1.5 2:
    # 50 % → rank ⌈2.5⌉ = 3rd; 80 % → ⌈4⌉ = 4th
    assert pool.quantiles == (1.5, 2.0)
    assert (pool.rows, pool.partitions, pool.run_id) == (4, 2, "run1")
    assert Pool.of([np.array([])], [80], "r") is None
    assert Pool.from_json(pool.to_json(), [50, 80]) == pool
    assert Pool.from_json(pool.to_json(), [80, 95]) is None  # the spec's levels changed
    assert Pool.from_json({"levels": [50]}, [50]) is None


def test_every_partition_weighs_the_same_in_the_pool_however_many_errors_it_has() -> None:
    """One partition of 1 score (9.0) beside one of 9 scores (1 … 9 tenths): counted in errors
    the long one would set the 50 % quantile (the 6th of 10: 0.6); each weighing 1, the
    cumulative weight must reach 0.5 · (2 + mean(1, 1/9)) = 1.28 — past the long partition's
    whole weight of 1, at the short one's score."""
    short, long = np.array([9.0]), np.arange(1, 10) / 10
    assert pooled_quantile([short, long], 50) == 9.0
    assert intervals.conformal_quantile(np.concatenate([short, long]), 50) == 0.6
    # equal lengths: the unweighted conformal quantile, rank for rank
    rng = np.random.default_rng(1)
    equal = [rng.random(10) for _ in range(46)]
    for level in (80, 95):
        joined = np.concatenate(equal)
        assert pooled_quantile(equal, level) == intervals.conformal_quantile(joined, level)


def test_a_version_is_written_with_its_band_from_the_pool_and_without_its_scores() -> None:
    rec = {"levels": [80.0, 95.0], "rows": 3, "quantiles": [3.0, 4.0], "mean_error": 2.0,
           "steps": [[1.5, 2.0], [3.0, 4.0]], "scores": np.array([0.4, 1.0, 2.0]),
           "held_out": True}  # fmt: skip
    pool = Pool((80.0, 95.0), (1.25, 3.0), 400, 40, "run1")
    written = with_pool_band(_version("a", rec), pool).feature_schema["intervals"]
    assert written == {
        "levels": [80.0, 95.0], "rows": 3, "quantiles": [2.5, 6.0],
        "partition_quantiles": [3.0, 4.0], "mean_error": 2.0, "held_out": True,
        # each level's steps scaled as its band was: 2.5 / 3 and 6 / 4
        "steps": [[1.25, 3.0], [2.5, 6.0]],
        "pool": {"rows": 400, "partitions": 40, "run_id": "run1"},
    }  # fmt: skip
    # no pool (no partition had a score): its own band, the scores still taken out
    own = with_pool_band(_version("a", rec), None).feature_schema["intervals"]
    assert "scores" not in own and own["quantiles"] == [3.0, 4.0] and "pool" not in own
    plain = _version("b", {"levels": [80.0], "rows": 3, "quantiles": [3.0]})
    assert with_pool_band(plain, pool) is plain
    # the run's warning counts the pool's errors, not the partition's 3…
    assert intervals.short_levels(written) == []
    assert intervals.short_levels(own)[0] == intervals.ShortLevel(80.0, 4, 3)
    # … unless its scale is one error
    one = {**written, "rows": 1}
    assert intervals.short_levels(one)[0] == intervals.ShortLevel(80.0, 4, 1)


def test_pooling_holds_versions_until_the_sample_is_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("manymodels.interval_pool.SAMPLE_PARTITIONS", 2)
    monkeypatch.setattr("manymodels.interval_pool.SAMPLE_CHUNKS", 3)
    rec = {"levels": [80.0], "rows": 2, "quantiles": [1.0], "mean_error": 1.0}
    a = _version("a", {**rec, "scores": np.array([1.0, 1.0])})
    b = _version("b", {**rec, "scores": np.array([3.0, 3.0])})
    c = _version("c", {**rec, "scores": np.array([9.0, 9.0])})
    fb = _version("_fallback", {**rec, "scores": np.array([20.0, 20.0])})
    lost = PartitionOutcome("d", "failed", "ValueError", "no")
    pooling = Pooling([80.0], "run1", None, chunks=5)
    assert pooling.take("fallback", [fb]) == ([], None)  # never in the pool
    assert pooling.take("chunk", [a, lost]) == ([], None)
    assert pooling.take("chunk", [b]) == ([], None)  # 2 partitions, but from 2 chunks of 3
    ready, pool = pooling.take("chunk", [c])
    assert pool is not None and pool.quantiles == (9.0,) and pool.partitions == 3
    assert [[getattr(r, "key", None) for r in rs] for _, rs in ready] == [
        ["_fallback"],
        ["a", "d"],
        ["b"],
        ["c"],
    ]
    fallback_band = ready[0][1][0].feature_schema["intervals"]
    assert fallback_band["quantiles"] == [1.0] and "pool" not in fallback_band  # its own
    assert ready[1][1][0].feature_schema["intervals"]["quantiles"] == [9.0]
    e = _version("e", {**rec, "scores": np.ones(2)})
    ((_, [later]),) = pooling.take("chunk", [e])[0]
    assert later.feature_schema["intervals"]["quantiles"] == [9.0]  # the pool, not its own
    assert pooling.finish() == ([], None)


def test_a_run_stopped_early_writes_what_it_holds_with_its_own_bands() -> None:
    rec = {"levels": [80.0], "rows": 2, "quantiles": [1.0], "mean_error": 1.0}
    pooling = Pooling([80.0], "run1", None, chunks=4)
    pooling.take("fallback", [_version("_fallback", {**rec, "scores": np.array([1.0, 1.0])})])
    assert pooling.held == 1  # the fallback's version waits too, and is not lost at a stop
    pooling.take("chunk", [_version("a", {**rec, "scores": np.array([5.0, 5.0])})])
    assert pooling.held == 2
    ((_, [fallback]), (kind, [kept])) = pooling.abandon()
    assert kind == "chunk" and kept.feature_schema["intervals"] == rec
    assert fallback.feature_schema["intervals"] == rec
    assert pooling.pool is None and pooling.abandon() == [] and pooling.held == 0


# ------------------------------------------------------------------------------- a run
def _panel(n_series: int, n_rows: int, rng: np.random.Generator) -> pd.DataFrame:
    """Series whose errors differ in scale by 30×, and in nothing else."""
    return linear_series(n_series, n_rows, rng, widest=30.0)


def _spec(pool: bool) -> dict[str, Any]:
    return {
        "name": "pooled",
        "partition_by": ["series"],
        "target": "y",
        "time_column": "t",
        "features": ["x"],
        "validation": {"strategy": "last", "size": 8},
        "candidates": RIDGE,
        "fallback": {"enabled": False},
        "intervals": {"levels": [80, 95], "pool_partitions": pool},
    }


def _coverage(scored: pd.DataFrame, level: int) -> float:
    inside = (scored[f"lo-{level}"] <= scored["y"]) & (scored["y"] <= scored[f"hi-{level}"])
    return 100 * float(inside.mean())


def test_pooled_bands_cover_their_level_where_each_partition_has_8_errors(tmp_path: Path) -> None:
    """150 series with 8 validation errors each: a partition's own 95 % band is its largest
    error, which covers a new one with probability 8/9 (88.9 %); pooled, the 95 % rank falls
    among 1,200 scale-free errors. Each scored on 30 new rows: 4,500 answers per level."""
    rng = np.random.default_rng(20261203)
    panel = _panel(150, 70, rng)
    history, new = panel[panel["t"] < 40], panel[panel["t"] >= 40]
    found: dict[bool, dict[int, float]] = {}
    for pool in (False, True):
        root = tmp_path / f"pool-{pool}"
        with Registry(root) as reg:
            summary = train(_spec(pool), history, reg, backend="local")
        assert summary.run.n_trained == 150
        assert (95.0 in summary.short_intervals) is not pool  # pooled: enough errors
        scored = score(new, root, backend="local")
        found[pool] = {lv: _coverage(scored, lv) for lv in (80, 95)}
    assert found[False][95] < 91.0, found  # the partition's own: too narrow
    for level in (80, 95):
        assert abs(found[True][level] - level) < 3.0, found


def test_pooled_bands_from_folds_a_step_apart_cover_their_level(tmp_path: Path) -> None:
    """Folds one period apart (``[validation] step_size = 1``): 6 folds of 4 rows validate 9
    rows, most of them from several origins, among a Ridge and two constant models chosen
    per series. The held-out choice of each fold is judged on the other folds' rows outside
    it, and each scale-free error divided by the other rows' mean: 150 series' bands cover
    30 new rows each (4,500 answers per level) within 3 points of their level."""
    rng = np.random.default_rng(20261206)
    panel = _panel(150, 70, rng)
    history, new = panel[panel["t"] < 40], panel[panel["t"] >= 40]
    spec = _spec(True)
    spec["validation"] = {"strategy": "kfold", "size": 4, "folds": 6, "step_size": 1}
    spec["candidates"] = [
        *RIDGE,
        {"estimator": "sklearn.dummy.DummyRegressor", "params": {"strategy": ["mean", "median"]}},
    ]
    root = tmp_path / "stepped"
    with Registry(root) as reg:
        summary = train(spec, history, reg, backend="local")
        assert summary.run.n_trained == 150
        rec = reg.get_version("series=0").feature_schema["intervals"]
    assert rec["held_out"] is True and rec["rows"] == 24  # 6 folds × 4 rows, 9 distinct
    scored = score(new, root, backend="local")
    for level in (80, 95):
        assert abs(_coverage(scored, level) - level) < 3.0, (level, _coverage(scored, level))


def test_series_that_never_move_take_no_part_in_the_pool(tmp_path: Path) -> None:
    """Ten constant series (a product no longer sold) beside thirty live ones: each constant
    one's errors are all 0 and its band 0, and the live ones' bands are those of the live
    ones alone. The constant ones' zeros used to weigh in the pool as much as any live
    series' scores, and narrowed every live band."""
    rng = np.random.default_rng(11)
    live = _panel(30, 40, rng)
    dead = pd.concat(
        [pd.DataFrame({"series": 100 + s, "t": np.arange(40), "x": rng.normal(size=40),
                       "y": 0.0}) for s in range(10)],
        ignore_index=True,
    )  # fmt: skip
    bands: dict[str, dict[str, list[float]]] = {}
    for name, panel in (("live", live), ("with dead", pd.concat([live, dead]))):
        with Registry(tmp_path / name.replace(" ", "-")) as reg:
            summary = train(_spec(True), panel, reg, backend="local")
            pool = Pool.from_json(summary.run.options[POOL_OPTION], [80, 95])
            assert pool is not None and pool.partitions == 30, pool
            keys = [p.key for p in reg.list_partitions(limit=100)]
            got = {k: reg.get_version(k).feature_schema["intervals"] for k in keys}
        bands[name] = {k: rec["quantiles"] for k, rec in got.items()}
        if name == "with dead":
            assert all(bands[name][f"series={100 + s}"] == [0.0, 0.0] for s in range(10))
    for key, quantiles in bands["live"].items():
        assert bands["with dead"][key] == quantiles, key


def test_the_run_records_its_pool_and_a_retrain_of_one_partition_uses_it(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    panel = _panel(30, 40, rng)
    root = tmp_path / "registry"
    with Registry(root) as reg:
        first = train(_spec(True), panel, reg, backend="local")
        recorded = Pool.from_json(first.run.options[POOL_OPTION], [80, 95])
        assert recorded is not None and recorded.partitions == 30 and recorded.rows == 30 * 8
        assert recorded.run_id == first.run.run_id
        v1 = reg.get_version("series=3")
        rec = v1.schema.intervals
        assert rec is not None and "scores" not in rec
        assert rec["pool"]["run_id"] == first.run.run_id
        np.testing.assert_allclose(
            rec["quantiles"], [q * rec["mean_error"] for q in recorded.quantiles]
        )

        # one partition retrained on new rows: the full run's pool, its own new scale
        more = _panel(30, 48, np.random.default_rng(8))
        again = train(_spec(True), more, reg, backend="local", only=["series=3"])
        assert again.run.n_trained == 1
        assert again.run.options[POOL_OPTION] == recorded.to_json()
        v2 = reg.get_version("series=3", again.versions["series=3"])
        rec2 = v2.schema.intervals
        assert rec2 is not None and rec2["pool"]["run_id"] == first.run.run_id
        np.testing.assert_allclose(
            rec2["quantiles"], [q * rec2["mean_error"] for q in recorded.quantiles]
        )
        assert rec2["mean_error"] != rec["mean_error"]


def test_a_spec_without_the_option_keeps_its_hash() -> None:
    with_levels = {**_spec(False), "intervals": {"levels": [80, 95]}}
    assert Spec.from_dict(_spec(False)).spec_hash == Spec.from_dict(with_levels).spec_hash
    assert Spec.from_dict(_spec(True)).spec_hash != Spec.from_dict(with_levels).spec_hash


class _FirstTaskDies(InProcessBackend):
    """The first task dies as a crashed worker's does: the exception in place of the result."""

    dies = 0

    def map_unordered(self, fn: Any, items: Any, *shared: Any) -> Any:
        for i, result in super().map_unordered(fn, items, *shared):
            yield i, (RuntimeError("worker died (OOM)") if i == self.dies else result)


class _SecondTaskDies(_FirstTaskDies):
    dies = 1


def test_a_resumed_run_writes_its_versions_with_the_pool_its_first_process_recorded(
    tmp_path: Path,
) -> None:
    panel = _panel(30, 40, np.random.default_rng(11))
    root = tmp_path / "registry"
    with pytest.raises(RunFailed) as caught:
        train(_spec(True), panel, root, backend=_FirstTaskDies())
    run = caught.value.summary.run
    lost = {f.key for f in caught.value.summary.failures}
    assert 0 < len(lost) < 30
    recorded = Pool.from_json(run.options[POOL_OPTION], [80, 95])
    assert recorded is not None and recorded.partitions == 30 - len(lost)

    resumed = train(_spec(True), panel, root, backend="local", resume=run.run_id)
    assert resumed.run.n_trained == 30 and resumed.run.options[POOL_OPTION] == recorded.to_json()
    with Registry.open(root) as reg:
        for key in lost:
            rec = reg.get_version(key).schema.intervals
            assert rec is not None and rec["pool"]["partitions"] == recorded.partitions
            np.testing.assert_allclose(
                rec["quantiles"], [q * rec["mean_error"] for q in recorded.quantiles]
            )


def test_the_run_says_where_its_bands_come_from(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from manymodels.cli import app

    csv = tmp_path / "panel.csv"
    _panel(30, 40, np.random.default_rng(3)).to_csv(csv, index=False)
    spec = tmp_path / "spec.toml"
    spec.write_text(
        'name = "pooled"\npartition_by = ["series"]\ntarget = "y"\ntime_column = "t"\n'
        'features = ["x"]\n[validation]\nstrategy = "last"\nsize = 8\n[fallback]\n'
        "enabled = false\n[intervals]\nlevels = [80, 95]\npool_partitions = true\n"
        '[[candidates]]\nestimator = "sklearn.linear_model.Ridge"\n',
        encoding="utf-8",
    )
    args = ["train", str(spec), str(csv), "--backend", "local", "--registry", str(tmp_path / "r")]
    shown = CliRunner().invoke(app, args)
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.output.split())
    assert "a quantile of 240 scale-free errors from 30 partitions" in text
    assert "warning" not in text  # 8 errors each, but 240 in the pool
    again = CliRunner().invoke(app, [*args, "--partitions", "series=3"])
    assert again.exit_code == 0, again.output
    assert "scale-free errors from 30 partitions of run " in " ".join(again.output.split())


def test_progress_moves_while_the_pools_partitions_are_held(tmp_path: Path) -> None:
    """Every version waits for the pool (30 partitions < 1,000), but the bar counts each
    chunk as it returns; none is written before the last returns."""
    root = tmp_path / "registry"
    seen: list[tuple[int, int]] = []

    def progress(p: Progress) -> None:
        with Registry.open(root) as reg:
            written = sum(1 for part in reg.list_partitions(limit=100) if part.latest_version)
        seen.append((p.trained, written))

    with Registry(root) as reg:
        train(_spec(True), _panel(30, 40, np.random.default_rng(5)), reg, backend="local",
              progress=progress)  # fmt: skip
    trained = [t for t, _ in seen]
    assert trained == sorted(trained) and trained[-1] == 30 and len(set(trained)) > 2
    assert all(written == 0 for t, written in seen if t < 30)


def test_a_changed_only_run_takes_the_full_runs_pool_and_is_never_one(tmp_path: Path) -> None:
    """The scheduler's and the monitor's retrains are changed-only: one changed partition
    must not become the pool of the next retrain. A changed-only run that trains every
    partition (the first) is a full run."""
    root = tmp_path / "registry"
    panel = _panel(30, 40, np.random.default_rng(21))
    with Registry(root) as reg:
        first = train(_spec(True), panel, reg, backend="local", changed_only=True)
        assert first.run.n_trained == 30 and first.run.options[POOL_OPTION]["partitions"] == 30
        moved = panel.assign(y=np.where(panel["series"] == 29, panel["y"] + 1.0, panel["y"]))
        changed = train(_spec(True), moved, reg, backend="local", changed_only=True)
        assert changed.run.n_trained == 1
        assert changed.run.options[POOL_OPTION] == first.run.options[POOL_OPTION]
        named = train(_spec(True), moved, reg, backend="local", only=["series=5"])
        assert named.run.options[POOL_OPTION]["run_id"] == first.run.run_id


def test_a_strict_stop_writes_what_it_held_with_its_own_bands_and_no_pool(
    tmp_path: Path,
) -> None:
    from manymodels.exceptions import TrainingError

    panel = _panel(30, 40, np.random.default_rng(22))
    root = tmp_path / "registry"
    with pytest.raises(TrainingError, match="stopped because of --strict"):
        train(_spec(True), panel, root, backend=_SecondTaskDies(), strict=True)
    with Registry.open(root) as reg:
        (run,) = reg.list_runs(limit=5)
        assert POOL_OPTION not in run.options and run.n_trained > 0
        kept = [p.latest_version for p in reg.list_partitions(limit=100)]
        assert len(kept) == run.n_trained  # everything trained before the stop is written
        for part in reg.list_partitions(limit=100):
            rec = reg.get_version(part.key).schema.intervals
            assert rec is not None and "pool" not in rec and "scores" not in rec
    (why,) = run.options["warnings"]
    assert f"stopped before its pool was known; {run.n_trained} partition(s)" in why
    # the partitions left are no sample of all: the resume takes a full run's pool (none
    # here, so their own bands) and is never one
    resumed = train(_spec(True), panel, root, backend="local", resume=run.run_id)
    assert resumed.run.n_trained == 30 and POOL_OPTION not in resumed.run.options
    assert resumed.run.options["warnings"][0] == why  # said once
    assert "no completed run of this spec pooled" in resumed.run.options["warnings"][1]
    full = train(_spec(True), panel.assign(y=panel["y"] + 1), root, backend="local")
    assert full.run.options[POOL_OPTION]["partitions"] == 30  # a full run pools again


def test_a_retrain_without_a_full_runs_pool_keeps_own_bands_and_says_so(tmp_path: Path) -> None:
    """No full run pooled at the spec's levels (the option just turned on, or levels changed
    since): the retrained partition keeps its own band; it is not cut from a pool of itself."""
    root = tmp_path / "registry"
    panel = _panel(30, 40, np.random.default_rng(23))
    with Registry(root) as reg:
        train(_spec(True), panel, reg, backend="local")
        other_levels = {**_spec(True), "intervals": {"levels": [80, 90], "pool_partitions": True}}
        again = train(other_levels, panel.assign(y=panel["y"] * 2), reg, backend="local",
                      only=["series=4"])  # fmt: skip
        assert POOL_OPTION not in again.run.options
        (why,) = again.run.options["warnings"]
        assert "no completed run of this spec pooled" in why and "80, 90" in why
        rec = reg.get_version("series=4", again.versions["series=4"]).schema.intervals
        assert rec is not None and "pool" not in rec and "scores" not in rec
        # a newer full run at other levels does not hide the older one at these
        train(other_levels, panel, reg, backend="local")
        back = train(_spec(True), panel.assign(y=panel["y"] * 3), reg, backend="local",
                     only=["series=4"])  # fmt: skip
        assert back.run.options[POOL_OPTION]["levels"] == [80.0, 95.0]
        # nor a pool of partitions with another number of validation errors each
        other_rows = {**_spec(True), "validation": {"strategy": "last", "size": 5}}
        fewer = train(other_rows, panel, reg, backend="local", only=["series=4"])
        assert (
            POOL_OPTION not in fewer.run.options
            and "validation rows" in fewer.run.options["warnings"][0]
        )


def test_gc_keeps_what_a_running_run_wrote_while_it_holds_its_versions(tmp_path: Path) -> None:
    """A pooling run holds its versions until the pool is known, their artifacts already
    written: a gc (with no grace at all) while the run trains must take none of them."""
    from manymodels.gc import collect

    root = tmp_path / "registry"
    deleted: list[int] = []

    def progress(p: Progress) -> None:
        if 0 < p.trained < 30:  # versions held, their artifacts in the store
            with Registry(root) as other:
                deleted.append(collect(other, grace_seconds=0).artifacts_deleted)

    with Registry(root) as reg:
        train(_spec(False), _panel(3, 40, np.random.default_rng(24)), reg, backend="local")
        train(_spec(True), _panel(30, 40, np.random.default_rng(25)), reg, backend="local",
              progress=progress)  # fmt: skip
        assert deleted and deleted == [0] * len(deleted)
        for part in reg.list_partitions(limit=100):
            assert reg.load_model(part.key) is not None  # every artifact is there


def test_a_run_whose_partitions_have_one_error_each_says_it_pooled_nothing(
    tmp_path: Path,
) -> None:
    spec = {**_spec(True), "validation": {"strategy": "last", "size": 1}}
    with Registry(tmp_path / "registry") as reg:
        summary = train(spec, _panel(10, 30, np.random.default_rng(26)), reg, backend="local")
        assert POOL_OPTION not in summary.run.options
        (why,) = summary.run.options["warnings"]
        assert "no partition had 2 validation errors or more to pool" in why
        rec = reg.get_version("series=1").schema.intervals
        assert rec is not None and rec["rows"] == 1 and "scores" not in rec and "pool" not in rec


def test_models_show_says_each_bands_width_and_whose_errors_cut_it(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from manymodels.cli import app

    panel = _panel(30, 40, np.random.default_rng(27))
    for pool in (True, False):
        root = tmp_path / f"pool-{pool}"
        with Registry(root) as reg:
            summary = train(_spec(pool), panel, reg, backend="local")
            rec = reg.get_version("series=7").schema.intervals
        assert rec is not None
        shown = CliRunner().invoke(app, ["models", "show", "series=7", "--registry", str(root)])
        assert shown.exit_code == 0, shown.output
        text = " ".join(shown.output.split())
        w80, w95 = (f"{q:.4g}" for q in rec["quantiles"])
        if pool:
            o80, o95 = (f"{q:.4g}" for q in rec["partition_quantiles"])
            assert (
                f"intervals: 80% ± {w80}, 95% ± {w95}: its mean validation error "
                f"{rec['mean_error']:.4g} × the pool of run {summary.run.run_id} (240 "
                f"scale-free errors of 30 partitions); from its own 8 errors alone: "
                f"80% ± {o80}, 95% ± {o95}"
            ) in text
        else:
            assert f"intervals: 80% ± {w80}, 95% ± {w95}, from its 8 errors" in text


def test_pooled_per_step_bands_keep_one_horizon_shape_so_levels_stay_nested() -> None:
    """Own steps whose 50 % band is far narrower, relative to its own width, than its 80 %
    one: scaled level by level the 80 % band could come out inside the 50 % one."""
    rec = {"levels": [50.0, 80.0], "rows": 20, "quantiles": [1.0, 10.0], "mean_error": 2.0,
           "steps": [[0.5, 10.0], [2.0, 10.0]], "scores": np.ones(20)}  # fmt: skip
    pool = Pool((50.0, 80.0), (1.0, 1.5), 400, 40, "run1")
    steps = with_pool_band(_version("a", rec), pool).feature_schema["intervals"]["steps"]
    # bands 2.0 and 3.0; step profiles (0.5 / 1 + 10 / 10) / 2 = 0.75 and (2 + 1) / 2 = 1.5
    assert steps == [[1.5, 2.25], [3.0, 4.5]]
    assert all(step[0] <= step[1] for step in steps)


def test_a_spec_without_a_validation_strategy_retrains_with_the_full_runs_pool(
    tmp_path: Path,
) -> None:
    """The stored spec leaves out what is None; the spec read again has it: both say the
    same validation rows."""
    spec = {**_spec(True), "validation": {"size": 8}}
    panel = _panel(30, 40, np.random.default_rng(28))
    with Registry(tmp_path / "registry") as reg:
        first = train(spec, panel, reg, backend="local")
        assert first.run.options[POOL_OPTION]["partitions"] == 30
        again = train(spec, panel, reg, backend="local", only=["series=2"])
        assert again.run.options[POOL_OPTION]["run_id"] == first.run.run_id


def test_a_changed_only_run_of_new_partitions_only_does_not_pool_them(tmp_path: Path) -> None:
    panel = _panel(30, 40, np.random.default_rng(29))
    with Registry(tmp_path / "registry") as reg:
        first = train(_spec(True), panel[panel["series"] < 28], reg, backend="local")
        new = train(_spec(True), panel, reg, backend="local", changed_only=True)
        assert new.run.n_trained == 2  # the two new partitions; the rest unchanged
        assert new.run.options[POOL_OPTION]["run_id"] == first.run.run_id


def test_partitions_skipped_again_do_not_keep_a_changed_only_run_from_its_pool(
    tmp_path: Path,
) -> None:
    """Every series below min_rows at first (all skipped, no model); then 25 grow and 5 keep
    the rows they were skipped on. The 5 are unchanged since dec03dc, which made the run count
    them as partitions left as they were — a run of some partitions only — so it took no pool
    of its own and, no full run having pooled, each series kept bands of its own 8 errors
    with a warning. They have no model: the 25 are every partition that trains."""
    panel = _panel(30, 40, np.random.default_rng(31))
    spec = {**_spec(True), "min_rows": 20}
    short = panel.groupby("series").head(10)
    grown = pd.concat([panel[panel["series"] < 25], short[short["series"] >= 25]])
    with Registry(tmp_path / "registry") as reg:
        with pytest.raises(RunFailed) as failed:  # nothing trained: the run fails as a whole
            train(spec, short, reg, backend="local", changed_only=True)
        assert failed.value.summary.run.n_skipped == 30
        second = train(spec, grown, reg, backend="local", changed_only=True)
        assert (second.run.n_trained, second.run.options["unchanged"]) == (25, 5)
        assert second.run.options[POOL_OPTION]["partitions"] == 25
        assert second.run.options[POOL_OPTION]["run_id"] == second.run.run_id
