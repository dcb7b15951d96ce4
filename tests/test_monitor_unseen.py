"""Text values a partition's model never saw at training, made visible (``monitoring.unseen``).

A real registry trained with a text feature, requests with new values through the real router
(``TestClient`` with its lifespan: sampling and flushing as in production), real SQLite; the
share is read back from ``GET /v1/monitor``, ``manymodels monitor`` (table and ``--json``).
"""

from __future__ import annotations

import json
import sqlite3
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from factories import RIDGE
from typer.testing import CliRunner

from manymodels.cli import app as cli_app
from manymodels.monitoring import profile as prof
from manymodels.monitoring.unseen import known_values, unseen_counts
from manymodels.pipeline import train
from serving.app import create_app
from serving.settings import Settings

ROWS = 120
FEW = ["A", "B", "C", "D"]  # pid=0 and pid=3: at most TOP_VALUES values, the top is complete
MANY = [f"P{i:02d}" for i in range(30)]  # pid=1: past the top, listed in ``seen``
LONG = [f"{i:02d}" + "x" * 3_000 for i in range(20)]  # pid=2: past SEEN_CHARS: capped
VALUES = {0: FEW, 1: MANY, 2: LONG, 3: FEW}
SPEC: dict[str, Any] = {
    "name": "unseen",
    "partition_by": ["pid"],
    "target": "y",
    "features": ["x", "promo"],
    "candidates": [{"estimator": RIDGE}],
    "validation": {"strategy": "holdout", "size": 0.2},
    "fallback": {"enabled": False},
    "promotion": {"policy": "always"},
}
NEW = {0: 16, 1: 8, 2: 32, 3: 0}  # of 64 rows sent per partition, how many carry a new value
runner = CliRunner()


def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    parts = []
    for pid, values in VALUES.items():
        promo = [values[i % len(values)] for i in range(ROWS)]
        x = rng.normal(size=ROWS)
        y = 2 * x + np.array([values.index(p) % 3 for p in promo]) + rng.normal(0, 0.1, ROWS)
        parts.append(pd.DataFrame({"pid": pid, "x": x, "promo": promo, "y": y}))
    return pd.concat(parts, ignore_index=True)


def requests() -> Iterator[list[dict[str, Any]]]:
    """Four requests of 16 rows per partition: all 64 are sampled (``PER_REQUEST`` 16, a
    reservoir of 64), ``NEW[pid]`` of them with a value training never had."""
    for r in range(4):
        x = np.random.default_rng(r).normal(size=16)  # as trained: no drift of x
        rows = []
        for pid, values in VALUES.items():
            for i in range(16):
                n = r * 16 + i
                promo = f"NEW-{n}" if n < NEW[pid] else values[n % len(values)]
                rows.append({"pid": pid, "x": float(x[i]), "promo": promo})
        yield rows


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("unseen") / "registry"
    assert train(SPEC, frame(), root, backend="local").run.n_trained == len(VALUES)
    return root


@pytest.fixture
def registry(trained: Path, tmp_path: Path) -> Path:
    import shutil

    root = tmp_path / "registry"
    shutil.copytree(trained, root)
    return root


def served(root: Path) -> dict[str, dict[str, Any]]:
    """The monitor's rows by key after ``requests()`` went through the router and one flush."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*starlette.testclient.*httpx2")
        from fastapi.testclient import TestClient
    with TestClient(create_app(Settings(registry=root, monitor_flush_seconds=3600))) as c:
        for rows in requests():
            assert c.post("/v1/predict", json={"rows": rows}).status_code == 200
        assert c.app.state.monitor.flush() == len(VALUES)
        page = c.get("/v1/monitor", params={"sort": "key"}).json()
        one = c.get("/v1/monitor", params={"key": "pid=1"}).json()["partitions"][0]
        assert c.get("/v1/monitor", params={"unseen": 1.5}).status_code == 422
    by_key = {p["key"]: p for p in page["partitions"]}
    unseen = ("unseen_share", "unseen_feature", "unseen_rows", "unseen_reason", "flags")
    assert [one[k] for k in unseen] == [by_key["pid=1"][k] for k in unseen]  # its page's row
    return by_key


def test_profiles_list_every_training_value_unless_capped(trained: Path) -> None:
    """Up to TOP_VALUES values the top is the whole set; past it ``seen`` lists the rest;
    past SEEN_CHARS the stats say ``capped`` and no set is known."""
    stats = {pid: prof.text_stats(values * 3, every=True) for pid, values in VALUES.items()}
    assert known_values(stats[0]) == set(FEW) and "seen" not in stats[0]
    assert known_values(stats[1]) == set(MANY) and len(stats[1]["seen"]) == 30 - prof.TOP_VALUES
    assert stats[2].get("capped") is True and known_values(stats[2]) is None
    assert "seen" not in prof.text_stats(MANY)  # a target's stats keep no list
    with sqlite3.connect(trained / "registry.db") as db:
        schema = db.execute(
            "SELECT feature_schema_json FROM model_versions WHERE key = 'pid=1'"
        ).fetchone()[0]
    assert json.loads(schema)["profile"]["features"]["promo"]["seen"] == MANY[prof.TOP_VALUES :]


@pytest.mark.slow  # a real router, a flush and three CLI runs (~3 s)
def test_new_values_are_told_in_the_json_the_cli_and_the_dashboards_rows(
    registry: Path,
) -> None:
    """pid=0: 16 of 64 sampled rows carry a new value (25 %), pid=1: 8 (12 %), both flagged
    ``unseen`` at the default 5 %; pid=2's list is capped: 32 new values, never called
    unseen; pid=3 saw only its training values: 0 %, not flagged."""
    rows = served(registry)
    got = {k: (r["unseen_share"], r["unseen_feature"], r["unseen_rows"]) for k, r in rows.items()}
    assert got == {
        "pid=0": (0.25, "promo", 64),
        "pid=1": (0.125, "promo", 64),
        "pid=2": (None, None, 0),
        "pid=3": (0.0, "promo", 64),
    }
    assert rows["pid=1"]["unseen_reason"] == "unseen values in 'promo': 12 % of 64 sampled rows"
    # pid=0's "other" bin, empty in training, holds 25 % now: its PSI says drifted too
    unseen = [("unseen" in rows[f"pid={p}"]["flags"]) for p in range(4)]
    assert unseen == [True, True, False, False], rows
    assert rows["pid=2"]["unseen_reason"] is None

    args = ["monitor", "--registry", str(registry), "--sort", "key"]
    result = runner.invoke(cli_app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    lines = {line.split("│")[1].strip(): line for line in result.output.splitlines() if "│" in line}
    assert "25 % promo" in lines["pid=0"] and "unseen" in lines["pid=0"].split("│")[-2]
    assert "12 % promo" in lines["pid=1"]
    assert "%" not in lines["pid=2"] and "unseen" not in lines["pid=2"], result.output
    assert "0 % promo" in lines["pid=3"] and "unseen" not in lines["pid=3"].split("│")[-2]
    assert "unseen: pid=1: unseen values in 'promo': 12 % of 64 sampled rows" in result.output

    result = runner.invoke(cli_app, [*args, "--json", "--unseen", "0.2"])
    assert result.exit_code == 0, result.output
    flags = {p["key"]: "unseen" in p["flags"] for p in json.loads(result.output)["partitions"]}
    assert flags == {"pid=0": True, "pid=1": False, "pid=2": False, "pid=3": False}
    bad = runner.invoke(cli_app, [*args, "--unseen", "2"])
    assert bad.exit_code != 0 and "--unseen" in bad.output


@pytest.mark.slow  # a real router and a flush (~2 s)
def test_a_version_trained_before_the_list_shows_a_dash_and_never_errs(registry: Path) -> None:
    """A profile written before ``seen`` existed (pid=1's, its list taken out as older code
    wrote it) cannot tell a new value from a rare one: no share, ``—``, no flag, and the
    flush and the monitor run as before. pid=0's top is its whole set: still judged."""
    with sqlite3.connect(registry / "registry.db") as db:
        (text,) = db.execute(
            "SELECT feature_schema_json FROM model_versions WHERE key = 'pid=1'"
        ).fetchone()
        schema = json.loads(text)
        del schema["profile"]["features"]["promo"]["seen"]
        db.execute(
            "UPDATE model_versions SET feature_schema_json = ? WHERE key = 'pid=1'",
            (json.dumps(schema),),
        )
    rows = served(registry)
    assert (rows["pid=1"]["unseen_share"], rows["pid=1"]["flags"]) == (None, [])
    assert rows["pid=0"]["unseen_share"] == 0.25
    result = runner.invoke(
        cli_app, ["monitor", "--registry", str(registry), "--sort", "key"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if "pid=1 " in x)
    assert line.split("│")[5].strip() == "—", result.output


def test_a_number_is_known_in_the_spelling_its_training_column_had() -> None:
    """A categorical feature of numbers (12 store types, int64 or float64 at training) is read
    as float64 by the router: ``1.0`` and ``1`` are one category to its model, so neither is
    unseen, nor drift's other bin; text ``"1"`` stays text and 99 is new."""
    rows = [{"code": v} for v in (1, 1.0, 9, 9.0, np.int64(11), 11.0, True)]
    for column in (np.arange(120) % 12, (np.arange(120) % 12).astype(float)):
        stats = prof.text_stats(column, every=True)
        profile = {"features": {"code": stats}}
        assert unseen_counts(profile, rows) == {"__unseen__:code": [0, len(rows)]}, stats
        other = prof.bin_counts(stats, [1.0, 1, 2.0, np.int64(3)])[-1]
        assert other == 0, stats
    ints = {"features": {"code": prof.text_stats(np.arange(120) % 12, every=True)}}
    assert unseen_counts(ints, [{"code": 99}, {"code": 99.5}, {"code": "x"}]) == {
        "__unseen__:code": [3, 3]
    }
    assert prof.text_of("1", {"1.0"}) == "1"
    assert prof.text_of(1, {"True", "False"}) == "True"


def test_a_list_in_another_script_is_bounded_as_the_registry_stores_it() -> None:
    """The registry writes a profile as JSON with non-ASCII escaped: product names of 20
    characters, 14 of them CJK, whose characters fit SEEN_CHARS (and whose count fits
    SEEN_VALUES) store ~4.6× as many, past the bound. The list is kept only while it fits
    SEEN_CHARS as stored, else ``capped``; short ones still fit."""
    from manymodels.registry.rows import encode_json

    def name(i: int) -> str:
        return f"商品{i:03d}番号の名前で長い商品の名前"[:20]

    n = min(prof.SEEN_VALUES, prof.SEEN_CHARS // 21)  # their characters fit the bound
    names = [name(i) for i in range(n)]
    assert sum(map(len, names)) <= prof.SEEN_CHARS < len(encode_json(names))
    stats = prof.text_stats(names, every=True)
    stored = len(encode_json(stats.get("seen", [])))
    assert stats.get("capped") is True and stored <= prof.SEEN_CHARS, (stored, len(names))
    k = prof.SEEN_CHARS // len(encode_json([name(0)])) // 2  # escaped, they fit too
    few = prof.text_stats(names[:k], every=True)
    assert len(few["seen"]) == k - prof.TOP_VALUES
    assert len(encode_json(few["seen"])) <= prof.SEEN_CHARS
