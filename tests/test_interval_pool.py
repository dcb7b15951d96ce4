"""Intervals whose shape is pooled across partitions (``manymodels.interval_pool``): the pool
against a hand computation, what a version keeps of it, coverage where each partition has few
errors, and how a resumed run and a retrain of one partition find the pool of their run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from manymodels import intervals
from manymodels.exceptions import RunFailed
from manymodels.execution import InProcessBackend
from manymodels.interval_pool import RUN_OPTION, Pool, Pooling, pooled
from manymodels.pipeline import train
from manymodels.run_chunks import Progress
from manymodels.registry import Registry
from manymodels.registry.entities import NewVersion, PartitionOutcome
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
    # others all zero: no finite score (nor 0 / 0)
    assert intervals.scale_free(np.array([0.0, 0.0, 5.0]))[1].tolist() == [0.0, 0.0]


def test_the_record_keeps_scale_and_scores_only_when_asked() -> None:
    y = np.zeros(3)
    folds = [(y, np.array([1.0, -2.0, 3.0]))]
    plain = intervals.record(folds, [80], ordered=False)
    assert plain is not None and "scale" not in plain and "scores" not in plain
    asked = intervals.record(folds, [80], ordered=False, pool_partitions=True)
    assert asked is not None and asked["scale"] == 2.0
    assert asked["quantiles"] == plain["quantiles"]  # the partition's own band, until pooled
    np.testing.assert_allclose(asked["scores"], [0.4, 1.0, 2.0])


def test_the_pool_is_the_conformal_quantile_of_every_partitions_scores() -> None:
    scores = [np.array([0.5, 1.0]), np.array([]), np.array([2.0, 1.5, np.inf])]
    pool = Pool.of(scores, [50, 80], "run1")
    assert pool is not None
    # 4 finite scores, sorted 0.5 1 1.5 2: 50 % → rank ⌈2.5⌉ = 3rd; 80 % → ⌈4⌉ = 4th
    assert pool.quantiles == (1.5, 2.0)
    assert (pool.rows, pool.partitions, pool.run_id) == (4, 2, "run1")
    assert Pool.of([np.array([])], [80], "r") is None
    assert Pool.from_json(pool.to_json(), [50, 80]) == pool
    assert Pool.from_json(pool.to_json(), [80, 95]) is None  # the spec's levels changed
    assert Pool.from_json({"levels": [50]}, [50]) is None


def test_a_version_is_written_with_its_band_from_the_pool_and_without_its_scores() -> None:
    rec = {"levels": [80.0], "rows": 3, "quantiles": [3.0], "steps": [[1.0]], "scale": 2.0,
           "scores": np.array([0.4, 1.0, 2.0]), "held_out": True}  # fmt: skip
    pool = Pool((80.0,), (1.25,), 400, 40, "run1")
    written = pooled(_version("a", rec), pool).feature_schema["intervals"]
    assert written == {
        "levels": [80.0], "rows": 3, "quantiles": [2.5], "partition_quantiles": [3.0],
        "scale": 2.0, "held_out": True, "pool": {"rows": 400, "partitions": 40, "run_id": "run1"},
    }  # fmt: skip
    # no pool (no partition had a score): its own band, the scores still taken out
    own = pooled(_version("a", rec), None).feature_schema["intervals"]
    assert "scores" not in own and own["quantiles"] == [3.0] and "pool" not in own
    plain = _version("b", {"levels": [80.0], "rows": 3, "quantiles": [3.0]})
    assert pooled(plain, pool) is plain
    # the run's warning counts the pool's errors, not the partition's 3
    assert intervals.short_levels(written) == []
    assert intervals.short_levels(own) == [intervals.ShortLevel(80.0, 4, 3)]


def test_pooling_holds_versions_until_the_sample_is_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("manymodels.interval_pool.SAMPLE_PARTITIONS", 2)
    rec = {"levels": [80.0], "rows": 2, "quantiles": [1.0], "scale": 1.0}
    a = _version("a", {**rec, "scores": np.array([1.0, 1.0])})
    b = _version("b", {**rec, "scores": np.array([3.0, 3.0])})
    c = _version("c", {**rec, "scores": np.array([9.0, 9.0])})
    lost = PartitionOutcome("d", "failed", "ValueError", "no")
    pooling = Pooling([80.0], "run1", None)
    assert pooling.take("chunk", [a, lost]) == ([], None)  # one partition's scores: held
    ready, pool = pooling.take("chunk", [b])
    assert pool is not None and pool.quantiles == (3.0,) and pool.partitions == 2
    assert [[getattr(r, "key", None) for r in rs] for _, rs in ready] == [["a", "d"], ["b"]]
    (_, [later]), = pooling.take("chunk", [c])[0]  # fmt: skip
    assert later.feature_schema["intervals"]["quantiles"] == [3.0]  # c's scores came too late
    assert pooling.finish() == ([], None)


# ------------------------------------------------------------------------------- a run
def _panel(n_series: int, n_rows: int, rng: np.random.Generator) -> pd.DataFrame:
    """``y = a + b·x + noise``, noise N(0, σ) with σ from 1 to 30 across series: errors that
    differ in scale by 30×, and in nothing else."""
    parts = []
    for s in range(n_series):
        x = rng.normal(size=n_rows)
        sigma = 1.0 + 29.0 * s / max(1, n_series - 1)
        y = rng.normal(10, 3) + rng.normal(2, 1) * x + rng.normal(0, sigma, n_rows)
        parts.append(pd.DataFrame({"series": s, "t": np.arange(n_rows), "x": x, "y": y}))
    return pd.concat(parts, ignore_index=True)


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


def test_the_run_records_its_pool_and_a_retrain_of_one_partition_uses_it(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    panel = _panel(30, 40, rng)
    root = tmp_path / "registry"
    with Registry(root) as reg:
        first = train(_spec(True), panel, reg, backend="local")
        recorded = Pool.from_json(first.run.options[RUN_OPTION], [80, 95])
        assert recorded is not None and recorded.partitions == 30 and recorded.rows == 30 * 8
        assert recorded.run_id == first.run.run_id
        v1 = reg.get_version("series=3")
        rec = v1.schema.intervals
        assert rec is not None and "scores" not in rec
        assert rec["pool"]["run_id"] == first.run.run_id
        np.testing.assert_allclose(rec["quantiles"], [q * rec["scale"] for q in recorded.quantiles])

        # one partition retrained on new rows: the full run's pool, its own new scale
        more = _panel(30, 48, np.random.default_rng(8))
        again = train(_spec(True), more, reg, backend="local", only=["series=3"])
        assert again.run.n_trained == 1
        assert again.run.options[RUN_OPTION] == recorded.to_json()
        v2 = reg.get_version("series=3", again.versions["series=3"])
        rec2 = v2.schema.intervals
        assert rec2 is not None and rec2["pool"]["run_id"] == first.run.run_id
        np.testing.assert_allclose(
            rec2["quantiles"], [q * rec2["scale"] for q in recorded.quantiles]
        )
        assert rec2["scale"] != rec["scale"]


def test_a_spec_without_the_option_keeps_its_hash() -> None:
    with_levels = {**_spec(False), "intervals": {"levels": [80, 95]}}
    assert Spec.from_dict(_spec(False)).spec_hash == Spec.from_dict(with_levels).spec_hash
    assert Spec.from_dict(_spec(True)).spec_hash != Spec.from_dict(with_levels).spec_hash


class _FirstTaskDies(InProcessBackend):
    """The first task dies as a crashed worker's does: the exception in place of the result."""

    def map_unordered(self, fn: Any, items: Any, *shared: Any) -> Any:
        for i, result in super().map_unordered(fn, items, *shared):
            yield i, (RuntimeError("worker died (OOM)") if i == 0 else result)


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
    recorded = Pool.from_json(run.options[RUN_OPTION], [80, 95])
    assert recorded is not None and recorded.partitions == 30 - len(lost)

    resumed = train(_spec(True), panel, root, backend="local", resume=run.run_id)
    assert resumed.run.n_trained == 30 and resumed.run.options[RUN_OPTION] == recorded.to_json()
    with Registry.open(root) as reg:
        for key in lost:
            rec = reg.get_version(key).schema.intervals
            assert rec is not None and rec["pool"]["partitions"] == recorded.partitions
            np.testing.assert_allclose(
                rec["quantiles"], [q * rec["scale"] for q in recorded.quantiles]
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
