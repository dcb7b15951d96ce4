"""Monitoring (#15): drift from sampled traffic, live accuracy from actuals, retrain --when.

Real training (in process), the real router (``TestClient`` with its lifespan, so sampling and
flushing run as in production), real SQLite; the numbers are checked against hand computations.
"""

from __future__ import annotations

import json
import math
import shutil
import sqlite3
import time
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from factories import RIDGE, as_older_schema
from typer.testing import CliRunner

from manymodels.cli import app as cli_app
from manymodels.exceptions import DataError
from manymodels.feature_schema import FeatureSchema
from manymodels.monitoring import actuals as live_actuals
from manymodels.monitoring import drift as drift_scores
from manymodels.monitoring import profile as prof
from manymodels.monitoring import report, store
from manymodels.monitoring.live import WINDOWS
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.registry import schema as t
from manymodels.spec import Spec
from serving.app import create_app
from serving.settings import Settings

N_PARTITIONS = 40
SHIFTED = (7, 23)  # 5 % of the partitions
ROWS = 200
SPEC: dict[str, Any] = {
    "name": "drift",
    "partition_by": ["pid"],
    "target": "y",
    "features": ["x0", "x1"],
    "candidates": [{"estimator": RIDGE}],
    "validation": {"strategy": "holdout", "size": 0.2},
    "fallback": {"enabled": False},
    "promotion": {"policy": "always"},
}
SPEC_TOML = (  # SPEC as a spec file, for the command-line runs
    'name = "drift"\npartition_by = ["pid"]\ntarget = "y"\nfeatures = ["x0", "x1"]\n'
    '[[candidates]]\nestimator = "sklearn.linear_model.Ridge"\n'
    '[validation]\nstrategy = "holdout"\nsize = 0.2\n[fallback]\nenabled = false\n'
    '[promotion]\npolicy = "always"\n'
)
runner = CliRunner()


def frame(seed: int = 0, shift: float = 0.0, shifted: tuple[int, ...] = ()) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for p in range(N_PARTITIONS):
        x = rng.normal(size=(ROWS, 2))
        if p in shifted:
            x[:, 0] += shift
        y = x @ np.array([2.0, -1.0]) + p + rng.normal(scale=0.1, size=ROWS)
        parts.append(pd.DataFrame({"pid": p, "x0": x[:, 0], "x1": x[:, 1], "y": y}))
    return pd.concat(parts, ignore_index=True)


def client(root: Path, **settings: Any) -> Any:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*starlette.testclient.*httpx2")
        from fastapi.testclient import TestClient
    cfg = Settings(registry=root, monitor_flush_seconds=3600, **settings)
    return TestClient(create_app(cfg))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("monitoring") / "registry"
    summary = train(SPEC, frame(), root, backend="local")
    assert summary.run.n_trained == N_PARTITIONS
    return root


@pytest.fixture
def registry(trained: Path, tmp_path: Path) -> Iterator[Path]:
    import shutil

    root = tmp_path / "registry"
    shutil.copytree(trained, root)
    yield root


def test_monitor_past_the_last_partition_says_so_in_one_line(trained: Path) -> None:
    """``monitor --offset 100`` of a registry of fewer partitions printed its line, then a
    table's frame of headers over no row; now the line alone, as ``models list`` says it."""
    for offset in ("100", str(N_PARTITIONS)):
        args = ["monitor", "--registry", str(trained), "--offset", offset]
        result = runner.invoke(cli_app, args, env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        lines = [x.strip() for x in result.output.splitlines()]
        assert lines == [f"no partitions past {offset} of {N_PARTITIONS}"]


# ------------------------------------------------------------------------------ profile / PSI
def test_profile_bins_match_between_training_and_serving() -> None:
    """Training counts and live binning use the same rule (edges[i-1] ≤ x < edges[i]), ties
    included, so the same rows give PSI 0."""
    x = np.r_[np.zeros(50), np.arange(50.0)]
    stats = prof.numeric_stats(x)
    assert bin_counts_equal(stats, x)
    assert drift_scores.psi(stats["counts"], prof.bin_counts(stats, list(x))) == 0.0
    text = prof.text_stats(["a"] * 5 + ["b"] * 3 + [f"c{i}" for i in range(10)])
    assert text["top"][:2] == ["a", "b"] and sum(text["counts"]) == 18
    assert prof.bin_counts(text, ["a", "zzz", None]) == [1] + [0] * 7 + [1]


def test_live_binning_counts_as_numpy_searchsorted_would() -> None:
    """The flush bins by bisection; numpy's searchsorted(side="right") + bincount is the rule
    training's counts follow. Missing, infinite and unparseable values count nowhere."""
    rng = np.random.default_rng(3)
    stats = prof.numeric_stats(rng.normal(size=500).round(1))
    odd = [None, "x", math.nan, math.inf, True, "1.5", np.int64(2), -math.inf]
    live = [*rng.normal(size=300).round(1), *stats["edges"], *odd]
    x = np.array([f for v in live if (f := _parsed(v)) is not None and math.isfinite(f)])
    edges = np.asarray(stats["edges"])
    want = np.bincount(np.searchsorted(edges, x, side="right"), minlength=len(stats["counts"]))
    assert prof.bin_counts(stats, live) == want[: len(stats["counts"])].tolist()
    assert sum(prof.bin_counts(stats, live)) == len(x)


def _parsed(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def bin_counts_equal(stats: dict[str, Any], x: np.ndarray) -> bool:
    return bool(prof.bin_counts(stats, list(x)) == stats["counts"])


def test_psi_by_hand() -> None:
    """Each bin's count is smoothed by half a row (Jeffreys), over the bins either sample
    holds a row of: an empty bin weighs what its sample size says, not a floor's ln(1/ε)."""
    q, p = [50, 50], [90, 10]
    q_, p_ = [50.5 / 101, 50.5 / 101], [90.5 / 101, 10.5 / 101]
    by_hand = sum((b - a) * math.log(b / a) for a, b in zip(q_, p_, strict=True))
    assert drift_scores.psi(q, p) == pytest.approx(by_hand)
    assert drift_scores.psi([10, 0, 0], [0, 10, 0]) == pytest.approx(2 * (10 / 11) * math.log(21))


def test_drift_score_is_psi_less_its_noise_where_significant() -> None:
    """Without drift PSI / (1/n + 1/m) is about chi-square with bins − 1 degrees of freedom:
    the score is PSI less that mean where PSI passes the 1 − 5 %/features quantile, else 0."""
    q, p = [6] * 10, [12, 1, 9, 4, 8, 11, 2, 7, 5, 5]  # 60 training rows, 64 sampled: noise
    value, scale = drift_scores.psi(q, p), 1 / 60 + 1 / 64
    assert value is not None and value > 0.25  # what was flagged as a major shift
    assert drift_scores.drift_score(q, p) == (0.0, pytest.approx(value - 9 * scale))
    q, p = [60] * 10, [0, 0, 0, 0, 0, 10, 20, 30, 40, 50]  # half the bins empty: drifted
    value, scale = drift_scores.psi(q, p), 1 / 600 + 1 / 150
    assert value is not None and value > scale * 21.67  # chi-square(9)'s 99 % quantile
    assert drift_scores.drift_score(q, p, features=5) == (pytest.approx(value - 9 * scale),) * 2
    assert drift_scores.noise_quantile(1, 0.05) == pytest.approx(3.8415, abs=1e-4)  # chi2.isf
    assert drift_scores.noise_quantile(9, 0.05 / 3) == pytest.approx(20.209, rel=1e-3)


def test_every_version_records_a_profile(trained: Path) -> None:
    with Registry.open(trained) as reg:
        v = reg.get_version("pid=3")
        rows = reg.training_rows("pid=3")
    p = v.feature_schema["profile"]
    assert p["rows"] == v.n_rows and set(p["features"]) == {"x0", "x1"}
    assert sum(p["features"]["x0"]["counts"]) == v.n_rows
    assert p["naive"] == pytest.approx(rows["y"].mean())  # no time column: the mean


# ------------------------------------------------------------------------------ drift
def _traffic(shifted: tuple[int, ...], requests: int, seed: int) -> Iterator[list[dict[str, Any]]]:
    for r in range(requests):
        df = frame(seed=seed + r, shift=4.0, shifted=shifted).groupby("pid").head(16)
        yield df.drop(columns="y").to_dict("records")


def _send_shifted_traffic(c: Any) -> list[dict[str, Any]]:
    """Four requests to every partition, ``SHIFTED``'s rows shifted, every model's rows
    sampled; the last request's rows."""
    c.app.state.monitor.sampler.models_per_request = N_PARTITIONS
    for rows in _traffic(SHIFTED, 4, seed=100):
        assert c.post("/v1/predict", json={"rows": rows}).status_code == 200
    return rows


def _drifted_after_shifted_traffic(c: Any) -> list[str]:
    """The keys the monitor flags drifted once ``_send_shifted_traffic``'s samples are
    flushed."""
    _send_shifted_traffic(c)
    assert c.app.state.monitor.flush() == N_PARTITIONS
    page = c.get("/v1/monitor").json()["partitions"]
    return [p["key"] for p in page if "drifted" in p["flags"]]


def test_drift_ranks_the_shifted_partitions_first_and_retrain_takes_only_them(
    registry: Path, tmp_path: Path
) -> None:
    with client(registry) as c:
        c.app.state.monitor.sampler.models_per_request = N_PARTITIONS  # every model, every batch
        for i, rows in enumerate(_traffic(SHIFTED, 12, seed=100)):
            assert c.post("/v1/predict", json={"rows": rows}).status_code == 200
            if i % 4 == 3:
                assert c.app.state.monitor.flush() == N_PARTITIONS
        page = c.get("/v1/monitor", params={"limit": 5}).json()
        metrics = c.get("/metrics").text
    top = [p["key"] for p in page["partitions"]]
    assert page["total"] == N_PARTITIONS
    assert sorted(top[:2]) == sorted(f"pid={p}" for p in SHIFTED)
    assert all(p["drift_feature"] == "x0" for p in page["partitions"][:2])
    assert page["partitions"][0]["sampled_rows"] == 192
    assert [p["flags"] for p in page["partitions"][:3]] == [["drifted"], ["drifted"], []]
    assert "manymodels_partitions_drifted 2.0" in metrics
    assert "manymodels_monitor_last_flush_seconds " in metrics
    assert "pid=" not in metrics  # aggregates only

    result = runner.invoke(cli_app, ["monitor", "--registry", str(registry), "--json"])
    assert result.exit_code == 0, result.output
    assert [p["key"] for p in json.loads(result.output)["partitions"][:2]] == top[:2]

    data = tmp_path / "new.csv"
    frame(seed=5, shift=4.0, shifted=SHIFTED).to_csv(data, index=False)
    spec = tmp_path / "spec.toml"
    spec.write_text(_toml(SPEC))
    result = runner.invoke(
        cli_app,
        ["retrain", str(spec), str(data), "--when", "drifted", "--registry", str(registry),
         "--backend", "local", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    run = json.loads(result.output)["run"]
    assert run["n_trained"] == 2 and run["options"]["only"] == 2
    with Registry.open(registry) as reg:
        retrained = {
            k for k in (f"pid={p}" for p in range(N_PARTITIONS))
            if reg.get_partition(k).latest_version == 2
        }  # fmt: skip
    assert retrained == {f"pid={p}" for p in SHIFTED}


def test_the_drifted_gauge_counts_what_production_serves_not_retrained_versions(
    registry: Path,
) -> None:
    """``manymodels_partitions_drifted`` counted every drift row, those of versions production
    no longer points at too: after the drifted partitions were retrained and promoted, the
    monitor flagged none and the gauge went on saying so at every flush (until traffic to each
    retrained partition replaced its row) — an alert on it never cleared. It counts the
    monitor's ``drifted`` flags now."""
    with client(registry) as c:
        drifted = _drifted_after_shifted_traffic(c)
        assert set(drifted) >= {f"pid={p}" for p in SHIFTED}
        assert f"manymodels_partitions_drifted {len(drifted)}.0" in c.get("/metrics").text
        summary = train(SPEC, frame(seed=5), registry, backend="local", only=drifted)
        assert summary.run.n_trained == len(drifted)  # policy 'always': promoted to v2
        c.app.state.service.aliases.refresh()
        other = frame(seed=7).query("pid == 0").head(16).drop(columns="y")
        answer = c.post("/v1/predict", json={"rows": other.to_dict("records")})
        assert answer.status_code == 200
        assert c.app.state.monitor.flush() == 1  # a flush of another partition's traffic
        metrics = c.get("/metrics").text
        flagged = [p for p in c.get("/v1/monitor").json()["partitions"] if p["flags"]]
    assert flagged == []
    assert "manymodels_partitions_drifted 0.0" in metrics


def test_a_restarted_router_reports_the_drifted_partitions_before_any_traffic(
    registry: Path,
) -> None:
    """``manymodels_partitions_drifted`` was read only after a flush that wrote a sample: a
    router restarted (a deploy) said 0 until traffic was sampled and flushed — an alert on it
    resolved at every deploy — and one without traffic never followed a retrain. It is read
    when the router starts, and at every flush, sampled or not."""
    with client(registry) as c:
        drifted = _drifted_after_shifted_traffic(c)
    assert len(drifted) >= 2
    with client(registry) as c:  # restarted: nothing sampled yet
        for _ in range(100):  # the flusher thread reads it as it starts
            metrics = c.get("/metrics").text
            if f"manymodels_partitions_drifted {len(drifted)}.0" in metrics:
                break
            time.sleep(0.05)
        assert f"manymodels_partitions_drifted {len(drifted)}.0" in metrics
        train(SPEC, frame(seed=5), registry, backend="local", only=drifted)  # promoted
        assert c.app.state.monitor.flush() == 0  # no traffic since: nothing sampled
        assert "manymodels_partitions_drifted 0.0" in c.get("/metrics").text


def test_a_flush_bins_the_rows_of_models_the_cache_has_evicted(
    trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under cold traffic most sampled models are gone from the cache by the flush: their
    profiles are read from the registry in batched reads (here chunks of 7), and the drift
    written is the same as a router's that held every model. A sampled version the registry
    no longer has (deleted by gc since it answered) is left out, the rest written."""
    import shutil

    import serving.monitor

    monkeypatch.setattr(serving.monitor, "FLUSH_CHUNK", 7)
    monkeypatch.setattr(serving.monitor, "YIELD_EVERY", 3)
    pages = []
    for cache_size in (4, 1000):
        root = tmp_path / f"cache-{cache_size}"
        shutil.copytree(trained, root)
        with client(root, cache_size=cache_size) as c:
            rows = _send_shifted_traffic(c)
            cache = c.app.state.service.cache
            held = [p for p in range(N_PARTITIONS) if cache.held(f"pid={p}", 1) is not None]
            assert len(held) == min(cache_size, N_PARTITIONS)
            c.app.state.monitor.sampler.offer("pid=3", 99, rows[:2])  # no such version
            assert c.app.state.monitor.flush() == N_PARTITIONS
            assert c.app.state.monitor.last_flush_seconds > 0
            page = c.get("/v1/monitor", params={"limit": N_PARTITIONS}).json()
        assert page["total"] == N_PARTITIONS
        assert {p["key"] for p in page["partitions"][:2]} == {f"pid={p}" for p in SHIFTED}
        assert all(p["sampled_rows"] == 64 for p in page["partitions"])
        pages.append({p["key"]: (p["drift"], p["drift_feature"]) for p in page["partitions"]})
    evicted, held_all = pages
    assert evicted == held_all


def _toml(spec: dict[str, Any]) -> str:
    """SPEC as TOML (what a user's spec file holds)."""
    assert spec is SPEC
    return f"""name = "drift"
partition_by = ["pid"]
target = "y"
features = ["x0", "x1"]

[validation]
strategy = "holdout"
size = 0.2

[[candidates]]
estimator = "{RIDGE}"

[fallback]
enabled = false

[promotion]
policy = "always"
"""


# ---------------------------------------------------------------- drift at small sample sizes
SMALL, SMALL_ROWS = 30, 60  # per-user models: 30 partitions of 60 training rows


def small_frame(seed: int, rows: int, move: dict[int, Any] | None = None) -> pd.DataFrame:
    """Rows of every small partition from the training distribution (x0, x1 ~ N(0, 1)),
    except that ``move[p]`` (a function of the two columns) changes partition p's."""
    rng = np.random.default_rng(seed)
    parts = []
    for p in range(SMALL):
        x = rng.normal(size=(rows, 2))
        if move and p in move:
            x = move[p](x)
        y = x @ np.array([2.0, -1.0]) + p + rng.normal(scale=0.1, size=rows)
        parts.append(pd.DataFrame({"pid": p, "x0": x[:, 0], "x1": x[:, 1], "y": y}))
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("small") / "registry"
    assert train(SPEC, small_frame(0, SMALL_ROWS), root, backend="local").run.n_trained == SMALL
    return root


def _flushes(
    root: Path, flushes: int, move: dict[int, Any] | None = None
) -> list[dict[str, dict[str, Any]]]:
    """Traffic through the router, 64 sampled rows per partition and flush (4 requests of 16
    rows each): the monitor's partitions after each flush, by key."""
    pages = []
    with client(root) as c:
        c.app.state.monitor.sampler.models_per_request = SMALL  # every model, every batch
        for f in range(flushes):
            for r in range(4):
                rows = small_frame(1000 + 10 * f + r, 16, move).drop(columns="y").to_dict("records")
                assert c.post("/v1/predict", json={"rows": rows}).status_code == 200
            assert c.app.state.monitor.flush() == SMALL
            page = c.get("/v1/monitor", params={"limit": SMALL}).json()
            assert {p["sampled_rows"] for p in page["partitions"]} == {64.0 * (f + 1)}
            pages.append({p["key"]: p for p in page["partitions"]})
    return pages


def _flagged(page: dict[str, dict[str, Any]], pids: Iterable[int]) -> int:
    return sum("drifted" in page[f"pid={p}"]["flags"] for p in pids)


def test_traffic_from_the_training_distribution_is_rarely_flagged(
    small: Path, tmp_path: Path
) -> None:
    """30 partitions of 60 training rows get traffic drawn from exactly their training
    distribution. PSI over deciles of 60 rows is noisy — about 9 · (1/60 + 1/64) = 0.29 on
    average after one flush of 64 rows, above the 0.25 threshold — and an empty bin alone used
    to add ~0.69: 25 of 30 were flagged after one flush and 6 after six. The score is the PSI
    less its expected noise where significant: at most one or two false alarms."""
    root = tmp_path / "registry"
    shutil.copytree(small, root)
    pages = _flushes(root, 6)
    assert _flagged(pages[0], range(SMALL)) <= 2
    assert _flagged(pages[-1], range(SMALL)) <= 1
    result = runner.invoke(cli_app, ["monitor", "--registry", str(root), "--json"])
    assert result.exit_code == 0, result.output
    assert sum("drifted" in p["flags"] for p in json.loads(result.output)["partitions"]) <= 1


def test_a_real_shift_is_flagged_at_small_sample_sizes(small: Path, tmp_path: Path) -> None:
    """The same 60-row partitions: x0 moved by one standard deviation in ten of them, x1's
    values doubled in ten others (a PSI of ~0.5 over deciles), the last ten unchanged. The
    moved mean is flagged after one flush of 64 rows; the doubled values, a subtler change
    at 60 training rows, as the sample grows."""
    moved, doubled, same = range(0, 10), range(10, 20), range(20, 30)

    def mean(x: np.ndarray) -> np.ndarray:
        return x + np.array([1.0, 0.0])

    def scale(x: np.ndarray) -> np.ndarray:
        return x * np.array([1.0, 2.0])

    root = tmp_path / "registry"
    shutil.copytree(small, root)
    pages = _flushes(root, 6, {**dict.fromkeys(moved, mean), **dict.fromkeys(doubled, scale)})
    assert _flagged(pages[0], moved) >= 8
    assert _flagged(pages[1], moved) == 10
    assert _flagged(pages[-1], doubled) >= 8
    assert all(pages[-1][f"pid={p}"]["drift_feature"] == "x0" for p in moved)
    assert all(pages[-1][f"pid={p}"]["drift_feature"] == "x1" for p in doubled)
    assert _flagged(pages[-1], same) <= 1


# ------------------------------------------------------------------------------ actuals
def test_actuals_give_live_error_against_validation_and_naive(registry: Path) -> None:
    key = "pid=5"
    rows = frame(seed=9).query("pid == 5").head(10).to_dict("records")
    with Registry.open(registry) as reg:
        loaded = reg.load_model(key)
        training = reg.training_rows(key)
    predicted = loaded.predict([{k: r[k] for k in ("x0", "x1")} for r in rows])
    y = np.array([r["y"] for r in rows])
    mae = np.mean(np.abs(y - predicted))
    naive_mae = np.mean(np.abs(y - training["y"].mean()))
    with client(registry) as c:
        got = c.post(f"/v1/partitions/{key}/actuals", json={"rows": rows})
        assert got.status_code == 200, got.text
        assert got.json()["error"] == pytest.approx(mae)
        assert got.json()["naive_error"] == pytest.approx(naive_mae)
        page = c.get("/v1/monitor", params={"sort": "naive", "limit": 40}).json()
        metrics = c.get("/metrics").text
    mine = next(p for p in page["partitions"] if p["key"] == key)
    assert mine["live_rows"] == 10 and mine["live_error"] == pytest.approx(mae)
    assert mine["error_ratio"] == pytest.approx(mae / -loaded.version.score)
    assert mine["naive_ratio"] == pytest.approx(mae / naive_mae)
    assert page["partitions"][0]["key"] == key  # the only one with actuals sorts first
    assert "manymodels_actual_rows_total 10.0" in metrics


def test_time_ordered_naive_is_the_previous_actual(tmp_path: Path) -> None:
    """With a time column, the naive answer of each actual is the one before it (the last
    training target for the first), across batches and in time order within one."""
    df = frame().query("pid < 2").assign(t=lambda d: d.groupby("pid").cumcount())
    root = tmp_path / "reg"
    train({**SPEC, "time_column": "t", "validation": {"strategy": "last", "size": 20}}, df, root,
          backend="local")  # fmt: skip
    with Registry.open(root) as reg:
        v = reg.get_version("pid=1")
        model = reg.load_model("pid=1")
        last = float(df.query("pid == 1")["y"].iloc[-1])
        rows = [{"t": 300 + i, "x0": 0.1 * i, "x1": 0.0, "y": 10.0 + i} for i in range(4)]

        def post(batch: list[dict[str, Any]]) -> Any:
            return live_actuals.record(
                reg.store.engine, key="pid=1", version=v.version, metric=v.metric,
                schema=v.schema, predict=model.predict, rows=batch,
            )  # fmt: skip

        first = post([rows[1], rows[0]])  # out of order: sorted by t
        second = post(rows[2:])
    assert first.naive_error == pytest.approx((abs(10.0 - last) + 1.0) / 2)
    assert second.naive_error == pytest.approx(1.0)  # 12 vs 11, 13 vs 12


def test_storage_is_bounded_per_partition_and_version(registry: Path) -> None:
    with Registry.open(registry) as reg:
        v = reg.get_version("pid=1")
        model = reg.load_model("pid=1")
        for day in range(1, 31):  # a row of its own each day (one posted again is skipped)
            live_actuals.record(
                reg.store.engine, key="pid=1", version=v.version, metric=v.metric,
                schema=v.schema, predict=model.predict, rows=[{"x0": 0.0, "x1": 0.0, "y": day}],
                day=f"2026-01-{day:02d}",
            )  # fmt: skip
        kept = store.windows(reg.store.engine, "pid=1", v.version)
        sums, n = store.live_sums(reg.store.engine)[("pid=1", v.version)]
    assert len(kept) == n == WINDOWS
    assert kept[0]["day"] == "2026-01-30" and kept[-1]["day"] == "2026-01-17"
    assert sums.rows == WINDOWS


def test_bad_actuals(registry: Path, tmp_path: Path) -> None:
    with client(registry) as c:
        unknown = c.post(
            "/v1/partitions/pid=999/actuals", json={"rows": [{"x0": 1, "x1": 2, "y": 3}]}
        )
        missing = c.post("/v1/partitions/pid=1/actuals", json={"rows": [{"x0": 1, "x1": 2}]})
        no_rows = c.post("/v1/partitions/pid=1/actuals", json={"rows": []})
    assert unknown.status_code == 404 and "pid=999" in unknown.json()["detail"]
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["body", "rows", 0, "y"]
    assert "target 'y' is missing" in missing.json()["detail"][0]["msg"]
    assert no_rows.status_code == 422

    bad = tmp_path / "bad.csv"
    pd.DataFrame({"pid": [1], "x0": [1.0], "x1": [2.0]}).to_csv(bad, index=False)
    result = runner.invoke(cli_app, ["actuals", str(bad), "--registry", str(registry)])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {bad}: no target column 'y'"
    when = ["--when", "drifted", "--when", "sideways"]
    result = runner.invoke(
        cli_app, ["retrain", str(bad), str(bad), *when, "--registry", str(registry)]
    )
    assert result.exit_code == 2  # as click words a bad choice; it printed a Python list
    assert result.output == (
        "error: --when: 'sideways' is not one of 'drifted', 'stale', 'degraded', 'changed'\n"
    )
    # --resume beside --dry-run was ignored (the flagged partitions listed, exit 0) even for
    # a run that does not exist
    result = runner.invoke(cli_app, ["retrain", str(bad), str(bad), "--when", "drifted",
                                     "--dry-run", "--resume", "nosuchrun",
                                     "--registry", str(registry)])  # fmt: skip
    assert (result.exit_code, result.output) == (
        2,
        "error: --dry-run trains nothing and --resume finishes a run: give one of them\n",
    )
    # only `train` creates a registry: a mistyped one trained a new registry from scratch
    typo = tmp_path / "typo"
    result = runner.invoke(cli_app, ["retrain", str(bad), str(bad), "--when", "changed",
                                     "--registry", str(typo)])  # fmt: skip
    assert result.exit_code == 1 and result.output.startswith(f"error: no registry at {typo}")
    assert not typo.exists()


def test_a_non_finite_actual_is_refused_and_writes_nothing(registry: Path) -> None:
    """1e400 in JSON reads as inf, NaN as nan: one such row made the day's window Inf, so
    the partition's live error read null (and never 'degraded') until the window aged out."""
    with client(registry) as c:
        for raw in (
            '{"rows": [{"x0": 1, "x1": 2, "y": 1e400}]}',
            '{"rows": [{"x0": 1, "x1": 2, "y": 3}, {"x0": 1, "x1": 2, "y": NaN}]}',
        ):
            r = c.post("/v1/partitions/pid=1/actuals", content=raw,
                       headers={"content-type": "application/json"})  # fmt: skip
            assert r.status_code == 422, r.text
            assert "finite" in r.json()["detail"][0]["msg"]
    with Registry.open(registry) as reg:
        assert store.live_sums(reg.store.engine, [("pid=1", 1)]) == {}


def _degrade_pid_11(registry: Path, tmp_path: Path) -> Path:
    """Actuals of every partition posted with ``manymodels actuals`` (from the file it
    returns), pid 11's 50 above what its model learnt: the world changed for one partition."""
    df = frame(seed=3).groupby("pid").head(25)
    df.loc[df.pid == 11, "y"] += 50.0
    path = tmp_path / "actuals.parquet"
    df.to_parquet(path)
    result = runner.invoke(cli_app, ["actuals", str(path), "--registry", str(registry), "--json"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)["recorded"]) == N_PARTITIONS
    return path


def test_cli_actuals_then_retrain_degraded(registry: Path, tmp_path: Path) -> None:
    """Actuals from a file; a partition whose live error is far above validation is degraded
    and is the one --when degraded selects."""
    _degrade_pid_11(registry, tmp_path)
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC_TOML)
    data = tmp_path / "data.parquet"
    frame().to_parquet(data)
    result = runner.invoke(
        cli_app,
        ["retrain", str(spec), str(data), "--when", "degraded", "--registry", str(registry),
         "--error-ratio", "3", "--dry-run", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["selected"] == ["pid=11"]


def test_cli_actuals_says_how_many_rows_had_no_target(registry: Path, tmp_path: Path) -> None:
    """Rows without a target (no actual yet) are left out, and were silently: "recorded 57"
    of a file of 60 rows."""
    df = frame(seed=3).query("pid < 2").groupby("pid").head(5).reset_index(drop=True)
    df.loc[[1, 7, 8], "y"] = np.nan
    path = tmp_path / "actuals.csv"
    df.to_csv(path, index=False)
    result = runner.invoke(cli_app, ["actuals", str(path), "--registry", str(registry)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("recorded 7 actual(s) of 2 partition(s) in ")
    assert result.output.rstrip().endswith("; 3 row(s) without a target left out")
    as_json = runner.invoke(cli_app, ["actuals", str(path), "--registry", str(registry), "--json"])
    assert json.loads(as_json.output)["without_target"] == 3


@pytest.mark.parametrize(
    ("column", "value", "says"),
    [("y", "inf", "finite"), ("version", "abc", "version"),
     ("version", "99999999999999999999", "version"), ("version", "", "version")],
)  # fmt: skip
def test_cli_actuals_with_a_bad_row_write_nothing(
    registry: Path, tmp_path: Path, column: str, value: str, says: str
) -> None:
    """A bad row in a later partition used to stop the command after earlier partitions'
    actuals were written (a fixed re-run counted them twice), and a version column that is
    not a version was a traceback."""
    df = frame(seed=3).query("pid < 3").groupby("pid").head(4).assign(version=1).astype(object)
    df.iloc[-1, df.columns.get_loc(column)] = value
    path = tmp_path / "actuals.csv"
    df.to_csv(path, index=False)
    result = runner.invoke(cli_app, ["actuals", str(path), "--registry", str(registry)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], lines
    with Registry.open(registry) as reg:
        assert store.live_sums(reg.store.engine) == {}


@pytest.mark.parametrize(("value", "says"), [("", "version is blank"), ("1.5", "version 1.5 is")])
def test_cli_actuals_name_a_bad_version_cell_as_the_file_has_it(
    registry: Path, tmp_path: Path, value: str, says: str
) -> None:
    """A blank cell read "version np.float64(nan) is not a version number": numpy's repr."""
    df = frame(seed=3).query("pid < 2").groupby("pid").head(3).assign(version=1).astype(object)
    df.iloc[-1, df.columns.get_loc("version")] = value
    path = tmp_path / "actuals.csv"
    df.to_csv(path, index=False)
    result = runner.invoke(cli_app, ["actuals", str(path), "--registry", str(registry)])
    assert result.exit_code == 2 and "np." not in result.stderr, result.output
    said = f"actuals.csv: data row 6 (counting from 1): {says}"  # the file's sixth, as train
    assert said in result.stderr, result.stderr  # counts


def test_cli_actuals_take_no_boolean_for_version_1(registry: Path, tmp_path: Path) -> None:
    """A column of ``true`` (pandas reads it as booleans) was recorded against version 1."""
    df = frame(seed=3).query("pid < 2").groupby("pid").head(3).assign(version=True)
    path = tmp_path / "actuals.csv"
    df.to_csv(path, index=False)
    result = runner.invoke(cli_app, ["actuals", str(path), "--registry", str(registry)])
    assert result.exit_code == 2, result.output
    said = "actuals.csv: data row 1 (counting from 1): version True is not a version number"
    assert said in result.stderr, result.stderr
    with Registry.open(registry) as reg:
        assert store.live_sums(reg.store.engine) == {}


def test_a_schema_3_registry_gets_the_monitoring_tables(registry: Path) -> None:
    with sqlite3.connect(registry / "registry.db") as conn:
        as_older_schema(conn.execute, "3")  # its later steps first: one is on monitor_actuals
        conn.execute("DROP TABLE monitor_drift")
        conn.execute("DROP TABLE monitor_actuals")
    with Registry.open(registry) as reg:
        assert reg.store.get_meta("schema_version") == t.SCHEMA_VERSION == "15"
        assert report.health(reg.store.engine)[0].live_rows == 0


def test_a_batch_of_many_models_offers_each_in_turn() -> None:
    """Over k requests of a batch of 8·k models, every model is offered exactly once."""
    from serving.monitor import RowSampler

    sampler = RowSampler(models_per_request=8)
    rows = [{"x0": 1.0}]
    for _ in range(5):
        sampler.offer_many(rows, [(f"pid={k}", 1, [0]) for k in range(40)])
    taken = sampler.take()
    assert len(taken) == 40 and all(len(r) == 1 for r in taken.values())


def test_a_models_one_row_is_kept_as_a_run_of_rows_would_keep_it() -> None:
    """A model's single row (a batch over many partitions) skips the loop over a model's rows:
    offered one at a time, 1,000 rows leave the reservoir, the draws and the count that the
    same rows offered 16 at a time do (past a full reservoir, so rows are replaced)."""
    from serving.monitor import PER_REQUEST, RowSampler

    rows = [{"x0": float(i)} for i in range(1000)]
    alone, runs = RowSampler(rows_per_partition=8), RowSampler(rows_per_partition=8)
    for i in range(len(rows)):
        alone.offer_groups(rows, [("pid=1", 1)], {"pid=1": [i]})
    for lo in range(0, len(rows), PER_REQUEST):
        runs.offer("pid=1", 1, rows, list(range(lo, min(lo + PER_REQUEST, len(rows)))))
    assert alone.sampled_rows == runs.sampled_rows == len(rows)
    kept = alone.take()[("pid=1", 1)]
    assert kept == runs.take()[("pid=1", 1)]
    assert len(kept) == 8 and max(r["x0"] for r in kept) > 100  # replaced as rows came
    assert alone._random.random() == runs._random.random()  # the same draws were made


def test_the_sampler_holds_a_bounded_sample() -> None:
    """However many partitions and rows it is offered, it holds at most max_partitions ×
    rows_per_partition rows, counts what it turned away and asks for an early flush."""
    from serving.monitor import PER_REQUEST, RowSampler

    sampler = RowSampler(rows_per_partition=8, max_partitions=3)
    for k in range(5):
        for _ in range(10):
            sampler.offer(f"pid={k}", 1, [{"x0": float(k)}] * 100)
    assert sampler.held() == 3 * 8
    assert sampler.sampled_rows == 3 * 10 * PER_REQUEST
    assert sampler.dropped_rows == 2 * 10 * PER_REQUEST
    assert sampler.full.is_set()
    taken = sampler.take()
    assert sorted(taken) == [("pid=0", 1), ("pid=1", 1), ("pid=2", 1)]
    assert sampler.held() == 0 and not sampler.full.is_set()


def test_errors_whose_sum_would_overflow_are_refused_and_a_huge_base_answers_nothing() -> None:
    """Two errors of 1.2e154 square to finite numbers whose sum is infinite: the day's
    window became infinite. A previous actual of 1e160 refused every next batch's first row."""
    from manymodels.exceptions import InvalidRows
    from manymodels.monitoring.live import error_sums

    with pytest.raises(InvalidRows) as caught:
        error_sums([1.2e154, 1.2e154], [0.0, 0.0], task="regression", naive=0.0,
                   time_ordered=False)  # fmt: skip
    assert [p["loc"] for p in caught.value.errors] == [["body", "rows", 0], ["body", "rows", 1]]
    sums, _ = error_sums([3.0], [1.0], task="regression", naive=2.5, time_ordered=True,
                         previous=1e160)  # fmt: skip
    assert (sums.rows, sums.abs_error, sums.naive_abs_error) == (1, 2.0, 0.5)
    sums, _ = error_sums([10.0, 12.0, 11.0], [1.0, 1.0, 1.0], task="regression", naive=None,
                         time_ordered=True)  # fmt: skip
    # the first row has no naive answer: the others' mean (1.5) stands for all three rows
    assert sums.naive_abs_error / sums.rows == pytest.approx(1.5)


def test_times_of_actuals_are_checked_as_times() -> None:
    """A Parquet date column reads as datetime.date (refused by the first check); '' and
    'NaT' parse as no time at all."""
    import datetime as dt

    from manymodels.exceptions import InvalidRows
    from manymodels.monitoring.actuals import check_times

    schema = FeatureSchema.parse({"time_column": "day", "history": {"time": "2024-01-01T00:00:00"}})
    good = [{"day": dt.date(2024, 1, 2)}, {"day": np.datetime64("2024-01-03")},
            {"day": "2024-01-04"}, {"day": pd.Timestamp("2024-01-05")}, {}]  # fmt: skip
    check_times(good, schema)
    check_times([{"day": float("nan")}, {"day": np.nan}], schema)  # blank CSV cells: no time
    with pytest.raises(InvalidRows) as caught:
        check_times([{"day": ""}, {"day": "NaT"}, {"day": "soon"}, {"day": True},
                     {"day": 12345}, {"day": 1e308}], schema)  # fmt: skip
    assert [p["loc"][2] for p in caught.value.errors] == [0, 1, 2, 3, 4, 5]
    # … a number is a period only where the version's times are periods
    periods = FeatureSchema.parse({"time_column": "day", "history": {"time": 40}})
    check_times([{"day": 41}, {"day": 42.0}], periods)


def test_a_text_time_of_actuals_is_iso_8601_as_trainings() -> None:
    """'10/04/2024' was taken (read month first, as October 4th) and stored as an actual's
    time, where training and the router's scoring refuse it: one 422 naming the row."""
    from manymodels.exceptions import InvalidRows
    from manymodels.monitoring.actuals import check_times

    schema = FeatureSchema.parse({"time_column": "day", "history": {"time": "2024-01-01T00:00:00"}})
    check_times([{"day": "2024-04-10"}, {"day": "2024-04-10T08:00:00"}], schema)
    with pytest.raises(InvalidRows) as caught:
        check_times([{"day": "2024-04-10"}, {"day": "10/04/2024"}], schema)
    assert [p["loc"][2] for p in caught.value.errors] == [1]
    assert "ISO 8601" in caught.value.errors[0]["msg"]


def test_class_labels_compare_by_value_only_where_one_is_a_number() -> None:
    from manymodels.monitoring.live import same_label

    assert same_label(0, 0.0) and same_label(np.int64(1), "1.0") and same_label(1.0, "1")
    assert same_label("yes", "yes") and not same_label(1, "yes")
    assert not same_label("01", "1")  # two texts: two classes, as the model holds them


def test_classification_actuals_read_as_floats_are_the_same_classes(tmp_path: Path) -> None:
    """A blank cell anywhere makes pandas read a column of labels 0 and 1 as 0.0 and 1.0:
    every actual then differed from the model's label ``0`` as text, a perfect model read
    as always wrong, and the monitor flagged it degraded."""
    from manymodels.samples import sensor_readings

    spec = {
        "name": "pumps", "task": "classification", "partition_by": ["asset"],
        "target": "failure_within_24h", "time_column": "ts", "metric": "accuracy",
        "features": ["temperature", "vibration", "pressure", "rpm", "hours_since_service"],
        "validation": {"strategy": "last", "size": 0.25}, "min_rows": 40,
        "candidates": [{"estimator": "sklearn.linear_model.LogisticRegression",
                        "params": {"max_iter": 1000}}],
    }  # fmt: skip
    data = sensor_readings(n_assets=1, readings=120)
    train(spec, data, tmp_path / "reg", backend="local")
    with Registry.open(tmp_path / "reg") as reg:
        answered = reg.load_model(reg.list_partitions()[0].key).model.predict(
            data[spec["features"]].tail(30).to_numpy()
        )
    recorded = {}
    for kind in ("int", "float"):
        rows = data.tail(30).assign(failure_within_24h=answered.astype(kind))
        root = tmp_path / kind
        shutil.copytree(tmp_path / "reg", root)
        path = tmp_path / f"{kind}.csv"
        rows.to_csv(path, index=False)
        assert "0.0" in path.read_text() if kind == "float" else True
        result = runner.invoke(cli_app, ["actuals", str(path), "--registry", str(root), "--json"])
        assert result.exit_code == 0, result.output
        (recorded[kind],) = json.loads(result.output)["recorded"]
    assert recorded["int"]["error"] == recorded["float"]["error"] == 0.0, recorded
    # a label that is no class (a typo, another column's value) is no model's mistake
    rows = data.tail(30).assign(failure_within_24h=answered.astype(object)).reset_index(drop=True)
    rows.loc[4, "failure_within_24h"] = "unknown"
    path = tmp_path / "typo.csv"
    rows.to_csv(path, index=False)
    result = runner.invoke(cli_app, ["actuals", str(path), "--registry", str(tmp_path / "int")])
    assert result.exit_code == 2, result.output
    assert (
        "data row 5 (counting from 1): target 'failure_within_24h' is 'unknown', "
        "not one of the classes" in result.stderr
    )


def test_cli_actuals_that_fail_while_writing_write_nothing(registry: Path, tmp_path: Path) -> None:
    """Each partition's actuals were their own transaction: a write failing at the third (a
    kill, a full disk; here the database refuses it) left the first two recorded, and the
    file run again counted their rows twice. One transaction now: all or nothing."""
    df = frame(seed=3).query("pid < 4").groupby("pid").head(5)
    path = tmp_path / "actuals.csv"
    df.to_csv(path, index=False)
    with sqlite3.connect(registry / "registry.db") as conn:
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON monitor_actuals WHEN NEW.key = 'pid=2' "
            "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        )
    result = runner.invoke(cli_app, ["actuals", str(path), "--registry", str(registry)])
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert result.output.startswith("error: ") and "disk full" in result.output
    with Registry.open(registry) as reg:
        assert store.live_sums(reg.store.engine) == {}
    with sqlite3.connect(registry / "registry.db") as conn:
        conn.execute("DROP TRIGGER refuse")
    result = runner.invoke(cli_app, ["actuals", str(path), "--registry", str(registry)])
    assert result.exit_code == 0, result.output
    with Registry.open(registry) as reg:
        sums = store.live_sums(reg.store.engine)
    assert sorted(k for k, _ in sums) == [f"pid={p}" for p in range(4)]
    assert {s.rows for s, _ in sums.values()} == {5}


def test_retrain_leaves_out_flagged_partitions_the_data_no_longer_holds(
    registry: Path, tmp_path: Path
) -> None:
    """Every partition is stale, and one is gone from the data (a store that closed): the
    retrain refused them all ("no rows in the data for partition(s) pid=3"), at every
    firing, for good. It retrains the others and says which it left out."""
    df = frame(seed=4)
    path = tmp_path / "data.csv"
    df[df.pid != 3].to_csv(path, index=False)
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC_TOML)
    result = runner.invoke(
        cli_app,
        ["retrain", str(spec), str(path), "--when", "stale", "--max-age-days", "0",
         "--registry", str(registry), "--backend", "local", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "warning: 1 flagged partition(s) have no rows in" in result.stderr
    assert result.stderr.strip().endswith("not retrained: pid=3")
    run = json.loads(result.stdout)["run"]
    assert run["n_partitions"] == N_PARTITIONS - 1
    assert run["options"]["not_in_data"] == {"count": 1, "first": ["pid=3"]}
    assert Spec.from_toml(spec).to_dict() == Spec.from_dict(SPEC).to_dict()


def test_actuals_skip_a_version_that_cannot_score_them_and_record_the_rest(
    registry: Path, tmp_path: Path
) -> None:
    """With a signing key, one unsigned production version (trained without the key)
    stopped the whole file: no partition was recorded. It is skipped with a warning now, as
    an unknown key is; so is a version imported from MLflow (no target column)."""
    key = {"MANYMODELS_SIGNING_KEY": "monitoring-test-key-0123456789"}
    result = runner.invoke(cli_app, ["sign", "--registry", str(registry)], env=key)
    assert result.exit_code == 0, result.output
    train(SPEC, frame(seed=5).query("pid == 0"), registry, backend="local", only=["pid=0"])
    df = frame(seed=3).query("pid < 3").groupby("pid").head(5)
    path = tmp_path / "actuals.csv"
    df.to_csv(path, index=False)
    result = runner.invoke(
        cli_app, ["actuals", str(path), "--registry", str(registry), "--json"], env=key
    )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert sorted(r["key"] for r in answer["recorded"]) == ["pid=1", "pid=2"]
    assert len(answer["skipped"]) == 1 and "'pid=0' is not signed" in answer["skipped"][0]
    (warning,) = result.stderr.strip().splitlines()
    assert warning.startswith("warning: 1 partition(s) skipped: ") and "pid=0" in warning
    # a signature that does not match is tampering, not a version to skip: an error
    with sqlite3.connect(registry / "registry.db") as conn:
        conn.execute("UPDATE model_versions SET data_sha256 = 'f00d' WHERE key = 'pid=1'")
    result = runner.invoke(cli_app, ["actuals", str(path), "--registry", str(registry)], env=key)
    assert result.exit_code == 1 and "its registry row was altered" in result.stderr


def test_cli_actuals_name_the_file_partition_and_row_of_a_bad_cell(
    registry: Path, tmp_path: Path
) -> None:
    """One word in the target column made every number in it text: the error named row 0 of
    another partition "and 2 more problems", and neither the file nor the partition. The row
    is a file's, named as every refusal of a file's row names it ("row 5", a request's
    wording, read as the router's 0-based index)."""
    df = frame(seed=3).query("pid < 2").groupby("pid").head(3).reset_index(drop=True)
    df = df.astype({"y": object})
    df.loc[4, "y"] = "abc"  # pid=1's second row, the file's fifth
    path = tmp_path / "actuals.csv"
    df.to_csv(path, index=False)
    result = runner.invoke(cli_app, ["actuals", str(path), "--registry", str(registry)])
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"error: {path}: partition 'pid=1': data row 5 (counting from 1): target 'y' must be "
        "a number\n"
    )
    # a word in a numeric feature: its own partition and row, not pid=0's first number
    df = frame(seed=3).query("pid < 2").groupby("pid").head(3).reset_index(drop=True)
    df = df.astype({"x0": object})
    df.loc[5, "x0"] = "cheap"
    df.to_csv(path, index=False)
    result = runner.invoke(cli_app, ["actuals", str(path), "--registry", str(registry)])
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    shown = f"error: {path}: partition 'pid=1': data row 6 (counting from 1): feature 'x0'"
    assert line.startswith(shown), line
    assert "'cheap'" in line and "more problem" not in line


def test_cli_actuals_count_a_files_rows_as_train_does(registry: Path, tmp_path: Path) -> None:
    """train named a bad cell's row counting data rows from 1, actuals the same cell's from 0:
    one file, two rows named for one mistake. Now both say "data row 251 (counting from 1)"."""
    df = frame(seed=3).query("pid < 2").reset_index(drop=True).astype({"x0": object})
    df.loc[250, "x0"] = "cheap"  # the 251st data row: line 252 of the file
    path = tmp_path / "actuals.csv"
    df.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"'cheap' in data row 251 \(counting from 1\)"):
        train(SPEC, path, tmp_path / "other", backend="local")
    result = runner.invoke(cli_app, ["actuals", str(path), "--registry", str(registry)])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(
        f"error: {path}: partition 'pid=1': data row 251 (counting from 1): feature 'x0'"
    )


def test_many_partitions_actuals_in_one_call_add_to_windows_and_keep_fourteen(
    registry: Path,
) -> None:
    """The file's write: one read, one insert, one update of many rows. A second batch of
    the same day adds to each partition's window; a new day past ``WINDOWS`` drops the
    oldest; a pair named twice in one call is one row with both batches' sums."""
    from manymodels.monitoring.live import ErrorSums

    one = ErrorSums(2, 1.0, 0.5, 0, 2.0, 2.5, 0)
    batches = [(f"pid={p}", 1, one, 3.0, [(p, 3.0, 2.0)]) for p in range(N_PARTITIONS)]
    with Registry.open(registry) as reg:
        engine = reg.store.engine
        store.add_many_actuals(engine, "2026-11-01", batches)
        store.add_many_actuals(engine, "2026-11-01", [*batches[:2], batches[0]])
        sums = store.live_sums(engine)
        assert sums["pid=0", 1][0].rows == 6 and sums["pid=1", 1][0].rows == 4
        assert {s.rows for (k, _), (s, _) in sums.items() if k not in ("pid=0", "pid=1")} == {2}
        assert len(store.recent_actuals(engine, "pid=0", 1)) == 3
        for day in range(2, 2 + WINDOWS):
            store.add_many_actuals(engine, f"2026-11-{day:02d}", batches[:1])
        kept = [w["day"] for w in store.windows(engine, "pid=0", 1)]
        assert len(kept) == WINDOWS and "2026-11-01" not in kept
        assert len(store.windows(engine, "pid=1", 1)) == 1


def test_a_partition_predicted_perfectly_in_validation(tmp_path: Path) -> None:
    """A constant series, predicted exactly on its validation rows (validation error 0). While
    its live error is 0 too, its ratio is undefined and it is not degraded, listed after the
    partitions with a ratio; once live rows miss, it is degraded and worst first, and the
    table said "—" (undefined) for its live/validation ratio, beside the flag: now "∞". Its
    validation error was -0.0 in the JSON: now 0.0."""
    rows = []
    for p in ("const", "noisy"):
        rng = np.random.default_rng(1)
        for i in range(30):
            x = float(i % 5)
            rows.append({"pid": p, "x": x, "y": 5.0 if p == "const" else 2 * x + rng.normal()})
    spec = {**SPEC, "features": ["x"], "min_rows": 5}
    root = tmp_path / "registry"
    assert train(spec, pd.DataFrame(rows), root, backend="local").run.n_trained == 2
    path = tmp_path / "actuals.csv"

    def monitor(live_const: float) -> tuple[list[dict[str, Any]], str]:
        rng = np.random.default_rng(2)
        live = [{"pid": "const", "x": float(i % 5), "y": live_const} for i in range(20)]
        live += [
            {"pid": "noisy", "x": float(i % 5), "y": 2.0 * (i % 5) + rng.normal()}
            for i in range(20)
        ]
        pd.DataFrame(live).to_csv(path, index=False)
        result = runner.invoke(cli_app, ["actuals", str(path), "--registry", str(root)])
        assert result.exit_code == 0, result.output
        args = ["monitor", "--registry", str(root), "--sort", "error"]
        listed = runner.invoke(cli_app, [*args, "--json"])
        assert listed.exit_code == 0, listed.output
        table = runner.invoke(cli_app, args, env={"COLUMNS": "200"})
        assert table.exit_code == 0, table.output
        return json.loads(listed.output)["partitions"], table.output

    partitions, _ = monitor(5.0)
    assert [p["key"] for p in partitions] == ["pid=noisy", "pid=const"]
    const = partitions[1]
    assert (const["live_error"], const["error_ratio"], const["flags"]) == (0.0, None, [])
    assert math.copysign(1.0, const["validation_error"]) == 1.0  # 0.0, not -0.0

    partitions, table = monitor(6.0)
    const = partitions[0]
    assert const["key"] == "pid=const" and const["live_error"] > 0
    assert const["error_ratio"] is None and "degraded" in const["flags"]
    line = next(x for x in table.splitlines() if "pid=const" in x)
    assert "∞" in line and "degraded" in line, table


def test_retrain_when_degraded_adds_no_version_while_the_data_is_unchanged(
    registry: Path, tmp_path: Path
) -> None:
    """One partition degraded; `retrain --when degraded` on the data it was trained from, run
    again and again while it stays degraded: each run added a new version, byte for byte the
    one before (v2, v3, …, each the 'candidate'). Now a flagged partition whose data is
    unchanged since its newest version is left out and counted, as `--when changed` leaves
    out what did not change; a new row of it retrains it."""
    _degrade_pid_11(registry, tmp_path)
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC_TOML)
    data = tmp_path / "data.parquet"
    frame().to_parquet(data)  # the rows the registry was trained from
    args = ["retrain", str(spec), str(data), "--when", "degraded", "--error-ratio", "3",
            "--registry", str(registry), "--backend", "local"]  # fmt: skip
    with Registry.open(registry) as reg:
        runs = len(reg.list_runs())
    for _ in range(2):
        result = runner.invoke(cli_app, args)
        assert result.exit_code == 0, result.output
        # nothing else to retrain: no run of nothing recorded (one was, at every retrain)
        assert result.stdout.strip() == (
            "nothing to retrain: the flagged partition has the data its newest version was "
            "trained on, under this spec; no run recorded"
        )
        with Registry.open(registry) as reg:
            assert [v.version for v in reg.list_versions("pid=11")] == [1]
            assert len(reg.list_runs()) == runs

    grown = pd.concat([frame(), frame(seed=9)[lambda d: d.pid == 11].head(5)], ignore_index=True)
    grown.to_parquet(data)
    result = runner.invoke(cli_app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["run"]["n_trained"] == 1
    with Registry.open(registry) as reg:
        assert sorted(v.version for v in reg.list_versions("pid=11")) == [1, 2]


def test_retrain_dry_run_lists_exactly_what_the_run_retrains(
    registry: Path, tmp_path: Path
) -> None:
    """pids 11, 12 and 13 degraded; DATA has new rows of 11, 12's rows as trained, no row of
    13. `--dry-run` listed all three (the flagged keys) where the run retrains 11 alone: 12's
    data is unchanged and 13 has no rows. Now the dry run lists what the run then retrains."""
    df = frame(seed=3).groupby("pid").head(25)
    df.loc[df.pid.isin([11, 12, 13]), "y"] += 50.0
    posted = tmp_path / "actuals.parquet"
    df.to_parquet(posted)
    done = runner.invoke(cli_app, ["actuals", str(posted), "--registry", str(registry)])
    assert done.exit_code == 0, done.output
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC_TOML)
    data = tmp_path / "data.parquet"
    grown = pd.concat([frame(), frame(seed=9)[lambda d: d.pid == 11].head(5)], ignore_index=True)
    grown[grown.pid != 13].to_parquet(data)
    args = ["retrain", str(spec), str(data), "--when", "degraded", "--error-ratio", "3",
            "--registry", str(registry), "--backend", "local"]  # fmt: skip
    listed = runner.invoke(cli_app, [*args, "--dry-run"])
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.splitlines() == ["pid=11"]
    assert "1 flagged partition(s) have no rows in" in listed.stderr
    as_json = runner.invoke(cli_app, [*args, "--dry-run", "--json"])
    assert json.loads(as_json.stdout) == {
        "selected": ["pid=11", "pid=12", "pid=13"], "retrain": ["pid=11"], "unchanged": 1,
        "when": ["degraded"], "trained": False,
    }  # fmt: skip
    result = runner.invoke(cli_app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    with Registry.open(registry) as reg:
        run_id = json.loads(result.stdout)["run"]["run_id"]
        trained = [o.key for o in reg.store.run_outcomes(run_id, status="trained")]
    assert trained == ["pid=11"] == json.loads(as_json.stdout)["retrain"]


def test_retrain_dry_run_of_a_spec_the_run_refuses_is_refused_alike(
    registry: Path, tmp_path: Path
) -> None:
    """The spec's target edited (y → y2, the same column renamed): `retrain --when degraded`
    is refused (its champions predict 'y'), but `--dry-run` listed the flagged partitions,
    exit 0, as if the run would retrain them. It is refused now with the run's own line."""
    df = frame(seed=3).groupby("pid").head(25)
    df.loc[df.pid.isin([11, 12]), "y"] += 50.0
    posted = tmp_path / "actuals.parquet"
    df.to_parquet(posted)
    done = runner.invoke(cli_app, ["actuals", str(posted), "--registry", str(registry)])
    assert done.exit_code == 0, done.output
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC_TOML.replace('target = "y"', 'target = "y2"'))
    data = tmp_path / "data.parquet"
    frame(seed=9).rename(columns={"y": "y2"}).to_parquet(data)
    args = ["retrain", str(spec), str(data), "--when", "degraded", "--error-ratio", "3",
            "--registry", str(registry), "--backend", "local"]  # fmt: skip
    run = runner.invoke(cli_app, args)
    assert run.exit_code != 0
    assert "in production predicts 'y'; spec 'drift' predicts 'y2'" in run.output
    for extra in (["--dry-run"], ["--dry-run", "--json"]):
        listed = runner.invoke(cli_app, [*args, *extra])
        assert listed.exit_code == run.exit_code, listed.output
        assert listed.stdout == ""
        assert listed.output == run.output


def test_retrain_json_of_no_flagged_partition_reads_as_every_run_of_nothing(
    registry: Path, tmp_path: Path
) -> None:
    """`retrain --when stale --json` with no partition stale printed {"selected": [], …}
    without the `run` (null), `reason` and `unchanged` that `train --changed-only --json` and
    a retrain of only unchanged flagged partitions print: a script reading `["run"]` of a run
    of nothing met a KeyError in this one case. `--dry-run` still only lists."""
    spec = tmp_path / "spec.toml"
    spec.write_text(
        'name = "drift"\npartition_by = ["pid"]\ntarget = "y"\nfeatures = ["x0", "x1"]\n'
        '[[candidates]]\nestimator = "sklearn.linear_model.Ridge"\n'
        '[validation]\nstrategy = "holdout"\nsize = 0.2\n[fallback]\nenabled = false\n'
    )
    data = tmp_path / "data.parquet"
    frame().to_parquet(data)
    args = ["retrain", str(spec), str(data), "--when", "stale", "--registry", str(registry),
            "--backend", "local", "--json"]  # fmt: skip
    result = runner.invoke(cli_app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "run": None, "trained": False, "unchanged": 0,
        "reason": "nothing to retrain: no partition is stale", "warnings": [],
        "selected": [], "when": ["stale"],
    }  # fmt: skip
    listed = runner.invoke(cli_app, [*args, "--dry-run"])
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout) == {
        "selected": [], "retrain": [], "unchanged": 0, "when": ["stale"], "trained": False,
    }  # fmt: skip


def test_retrain_when_degraded_trains_a_partition_of_unchanged_data_under_an_edited_spec(
    registry: Path, tmp_path: Path
) -> None:
    """A partition is degraded, and its owner edits the spec (another candidate) to retrain
    it: `retrain --when degraded` left it out as "data unchanged" — the same rows would give
    the same model only under the same spec — and trained nothing. Now a partition whose
    newest version came from another spec is retrained; run again under the same spec, it
    is left out."""
    _degrade_pid_11(registry, tmp_path)
    spec = tmp_path / "spec.toml"
    spec.write_text(
        'name = "drift"\npartition_by = ["pid"]\ntarget = "y"\nfeatures = ["x0", "x1"]\n'
        '[[candidates]]\nestimator = "sklearn.linear_model.Ridge"\n'
        "params = { alpha = [0.1, 10.0] }\n"  # the edit: a wider search
        '[validation]\nstrategy = "holdout"\nsize = 0.2\n[fallback]\nenabled = false\n'
        '[promotion]\npolicy = "always"\n'
    )
    data = tmp_path / "data.parquet"
    frame().to_parquet(data)  # the rows the registry was trained from
    args = ["retrain", str(spec), str(data), "--when", "degraded", "--error-ratio", "3",
            "--registry", str(registry), "--backend", "local", "--json"]  # fmt: skip
    result = runner.invoke(cli_app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["run"]["n_trained"] == 1
    result = runner.invoke(cli_app, args)  # the same spec and rows again: nothing new
    assert result.exit_code == 0, result.output
    with Registry.open(registry) as reg:
        assert sorted(v.version for v in reg.list_versions("pid=11")) == [1, 2]


# ------------------------------------------------------------ a classifier with a [decision]
DECIDED: dict[str, Any] = {
    "name": "failures",
    "task": "classification",
    "partition_by": ["device"],
    "target": "failed",
    "time_column": "t",
    "features": ["x"],
    "metric": "accuracy",
    "validation": {"strategy": "last", "size": 400},
    "candidates": [{"estimator": "sklearn.linear_model.LogisticRegression"}],
    "fallback": {"enabled": False},
    "decision": {"threshold": "cost", "cost": {"fp": 1, "fn": 10}},
}


def failures(seed: int, rows: int, start: int = 0) -> pd.DataFrame:
    """Eight devices failing in ~15 % of their periods, more often the higher their ``x``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(8, rows))
    failed = rng.random((8, rows)) < 1 / (1 + np.exp(-(3.0 * x - 3.0)))
    return pd.DataFrame({
        "device": np.repeat([f"d{i}" for i in range(8)], rows),
        "t": np.tile(np.arange(start, start + rows), 8),
        "x": x.ravel(),
        "failed": failed.ravel().astype(np.int64),
    })  # fmt: skip


def test_a_decided_classifier_is_not_degraded_by_its_threshold(tmp_path: Path) -> None:
    """A cost threshold of 1/11 labels many more rows positive than the most probable class
    does — wrong more often, by design, to miss fewer failures. The live error counted those
    labels and compared them with the validation accuracy and the naive majority class, both
    of the most probable class: on actuals drawn like the training rows every partition was
    flagged ``degraded`` (live/validation 3–8), and a ``retrain --when degraded`` would
    retrain them for ever. The live error counts the most probable class now, like with like;
    the labels' error is reported beside it (``label_error``), over HTTP and from the CLI."""
    root = tmp_path / "registry"
    assert train(DECIDED, failures(0, 1200), root, backend="local").run.n_trained == 8
    actuals = failures(1, 400, start=1200)
    path = tmp_path / "actuals.csv"
    actuals[actuals["device"] != "d0"].to_csv(path, index=False)
    done = runner.invoke(cli_app, ["actuals", str(path), "--registry", str(root), "--json"])
    assert done.exit_code == 0, done.output
    recorded = {r["key"]: r for r in json.loads(done.stdout)["recorded"]}
    d0 = actuals[actuals["device"] == "d0"].drop(columns="device")
    with client(root) as c:
        posted = c.post("/v1/partitions/device=d0/actuals", json={"rows": d0.to_dict("records")})
        assert posted.status_code == 200, posted.text
        recorded["device=d0"] = posted.json()
        page = c.get("/v1/monitor", params={"sort": "error"}).json()["partitions"]
    with Registry.open(root) as reg:
        loaded = {k: reg.load_model(k) for k in recorded}
    for key, answer in recorded.items():
        rows = actuals[actuals["device"] == key.removeprefix("device=")]
        model = loaded[key]
        assert model.version.schema.decision is not None
        p = model.predict_proba(rows[["x"]])[:, 1]
        threshold = model.version.schema.decision["threshold"]
        truth = rows["failed"].to_numpy()
        assert answer["error"] == pytest.approx(np.mean((p >= 0.5) != truth))
        assert answer["label_error"] == pytest.approx(np.mean((p >= threshold) != truth))
    errors = [(r["error"], r["label_error"]) for r in recorded.values()]
    assert np.mean([b for _, b in errors]) > 1.5 * np.mean([a for a, _ in errors])
    assert [p["flags"] for p in page] == [[]] * 8, page
    assert all(p["label_error"] is not None for p in page)
    assert max(p["error_ratio"] for p in page) < 1.5


def test_cli_actuals_of_score_s_output_go_to_the_version_that_answered(tmp_path: Path) -> None:
    """``manymodels score`` names the version that answered each row ``model_version`` (as
    the router's answers name it ``version``); ``manymodels actuals`` read only a ``version``
    column, so score's output with the target was scored again by production — after a
    promotion, the new version was credited with rows the old one answered. Rows the
    fallback answered stay production's."""
    from factories import linear_frame, spec_dict

    root = tmp_path / "reg"
    spec = spec_dict(promotion={"policy": "manual"})
    df = linear_frame(2, 40)
    train(spec, df, root, backend="local")
    train(spec, df.assign(y=df["y"] * 2), root, backend="local")  # v2, not promoted
    rows = tmp_path / "rows.csv"
    df.groupby("pid").tail(4).to_csv(rows, index=False)
    scored = tmp_path / "scored.csv"
    ran = runner.invoke(cli_app, ["score", str(rows), "--out", str(scored), "--registry",
                                  str(root)])  # fmt: skip
    assert ran.exit_code == 0, ran.output
    assert set(pd.read_csv(scored)["model_version"]) == {1}
    with Registry.open(root) as reg:
        reg.promote("pid=0", 2)
        reg.promote("pid=1", 2)
    ran = runner.invoke(cli_app, ["actuals", str(scored), "--registry", str(root), "--json"])
    assert ran.exit_code == 0, ran.output
    recorded = json.loads(ran.output)["recorded"]
    assert sorted((r["key"], r["version"]) for r in recorded) == [("pid=0", 1), ("pid=1", 1)]
    # a row the fallback answered is production's, as before (its version is the fallback's)
    fell = pd.read_csv(scored).assign(fallback=True, model_version=7)
    fell.to_csv(scored, index=False)
    ran = runner.invoke(cli_app, ["actuals", str(scored), "--registry", str(root), "--json"])
    assert ran.exit_code == 0, ran.output
    recorded = json.loads(ran.output)["recorded"]
    assert sorted((r["key"], r["version"]) for r in recorded) == [("pid=0", 2), ("pid=1", 2)]
