"""Actuals posted again are counted once (``manymodels.monitoring.counted``): a client that
retries ``POST /v1/partitions/{key}/actuals`` after a timeout, or a cron job that runs
``manymodels actuals FILE`` twice, added the same rows twice — twice the live rows, and a
partition flagged ``degraded`` on errors seen once. The real router over a copy of the sales
registry, the real command line, real SQLite.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from routerkit import KEY, doubled_rows
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.monitoring import store
from manymodels.registry import Registry

runner = CliRunner()
OTHER = "store=3,brand=minute_maid"


def live(root: Path, key: str) -> tuple[int, float]:
    """The production version's live rows and its model's mean absolute error over them."""
    with Registry.open(root) as reg:
        version = reg.get_version(key).version
        sums, _ = store.live_sums(reg.store.engine, [(key, version)])[key, version]
    return sums.rows, sums.abs_error / sums.rows


def test_the_router_counts_rows_posted_again_once(client: Any, registry_path: Path) -> None:
    """The same rows again: 0 counted, all said to be counted already, the live rows and
    error as after the first; the rows again with older weeks added: only those count."""
    rows = doubled_rows(2, "tropicana", 6)
    first = client.post(f"/v1/partitions/{KEY}/actuals", json={"rows": rows})
    again = client.post(f"/v1/partitions/{KEY}/actuals", json={"rows": rows})
    assert first.status_code == again.status_code == 200, again.text
    assert (first.json()["rows"], first.json()["already_counted"]) == (6, 0)
    assert (again.json()["rows"], again.json()["already_counted"]) == (0, 6)
    assert again.json()["error"] is None  # this post measured nothing
    n, error = live(registry_path, KEY)
    assert (n, error) == (6, pytest.approx(first.json()["error"]))  # was 12 rows
    page = client.get("/v1/monitor", params={"key": KEY}).json()
    assert page["partitions"][0]["live_rows"] == 6
    assert len(page["actuals"]) == 6  # the chart's points are not doubled either

    more = doubled_rows(2, "tropicana", 9)  # three weeks before the six, then the six
    grown = client.post(f"/v1/partitions/{KEY}/actuals", json={"rows": more})
    assert (grown.json()["rows"], grown.json()["already_counted"]) == (3, 6)
    once = client.post(f"/v1/partitions/{OTHER}/actuals", json={"rows": more})  # for its MAE
    assert once.json()["rows"] == 9
    n, error = live(registry_path, KEY)
    assert n == 9
    assert error == pytest.approx(_mae(client, KEY, more))


def _mae(client: Any, key: str, rows: list[dict[str, Any]]) -> float:
    """The version's mean absolute error over ``rows``, from the router's own predictions."""
    features = [{k: r[k] for k in ("week", "price", "deal", "feat")} for r in rows]
    got = client.post(f"/v1/partitions/{key}/predict", json={"rows": features})
    assert got.status_code == 200, got.text
    predictions = got.json()["predictions"]
    return sum(abs(r["units"] - p) for r, p in zip(rows, predictions, strict=True)) / len(rows)


def test_rows_alike_within_one_post_each_count(client: Any, registry_path: Path) -> None:
    """Two rows alike in every column within one post are two observations; posted again,
    none counts; a third alike in a later post counts once more."""
    row = doubled_rows(2, "tropicana", 1)[0]
    twice = client.post(f"/v1/partitions/{KEY}/actuals", json={"rows": [row, row]}).json()
    again = client.post(f"/v1/partitions/{KEY}/actuals", json={"rows": [row, row]}).json()
    thrice = client.post(f"/v1/partitions/{KEY}/actuals", json={"rows": [row] * 3}).json()
    assert [(r["rows"], r["already_counted"]) for r in (twice, again, thrice)] == [
        (2, 0), (0, 2), (1, 2),
    ]  # fmt: skip
    assert live(registry_path, KEY)[0] == 3


def test_a_retry_racing_its_original_is_counted_once(server: str, registry_path: Path) -> None:
    """A client that timed out posts again while its first post is still being recorded:
    the check of what was counted and the write are one transaction, so one of the two
    counts the rows and the other finds them counted."""
    rows = doubled_rows(2, "tropicana", 8)
    answers: list[dict[str, Any]] = []
    start = threading.Barrier(4)

    def post() -> None:
        start.wait()
        r = httpx.post(f"{server}/v1/partitions/{KEY}/actuals", json={"rows": rows}, timeout=60)
        assert r.status_code == 200, r.text
        answers.append(r.json())

    threads = [threading.Thread(target=post) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=90)
    assert len(answers) == 4
    assert sorted(a["rows"] for a in answers) == [0, 0, 0, 8]
    assert sum(a["already_counted"] for a in answers) == 24
    assert live(registry_path, KEY)[0] == 8


def _file(path: Path, weeks: int) -> Path:
    """Two partitions' last ``weeks`` weeks, units doubled, as ``manymodels actuals`` reads."""
    parts = [
        pd.DataFrame(doubled_rows(store_, brand, weeks)).assign(store=store_, brand=brand)
        for store_, brand in ((2, "tropicana"), (3, "minute_maid"))
    ]
    pd.concat(parts, ignore_index=True).to_csv(path, index=False)
    return path


def test_the_same_file_run_twice_counts_its_rows_once(registry_path: Path, tmp_path: Path) -> None:
    """``manymodels actuals`` of one file twice (a cron job retried) counts its rows once and
    says so in one line; the file again with weeks added counts only those."""
    path = _file(tmp_path / "actuals.csv", 5)
    args = ["actuals", str(path), "--registry", str(registry_path)]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert first.output.startswith("recorded 10 actual(s) of 2 partition(s) in ")
    after_first = live(registry_path, KEY)
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert again.output.splitlines() == [
        f"recorded 0 actual(s) of 0 partition(s) in {registry_path}; 10 row(s) of 2 "
        "partitions were already counted (posted before), skipped"
    ]
    assert live(registry_path, KEY) == after_first and after_first[0] == 5  # was 10

    _file(path, 7)  # two older weeks of each partition, then the five
    grown = runner.invoke(app, [*args, "--json"])
    assert grown.exit_code == 0, grown.output
    said = json.loads(grown.stdout)
    assert [(r["key"], r["rows"], r["already_counted"]) for r in said["recorded"]] == [
        (KEY, 2, 5), (OTHER, 2, 5),
    ]  # fmt: skip
    assert said["already_counted"] == 10
    assert live(registry_path, KEY)[0] == live(registry_path, OTHER)[0] == 7


def test_rows_posted_to_the_router_then_in_a_file_count_once(
    client: Any, registry_path: Path, tmp_path: Path
) -> None:
    """A row is the same row whichever way it came: the key columns a file has and a path
    names are left out, a week the CSV reads as text or a date is one week, 1 is 1.0."""
    rows = doubled_rows(2, "tropicana", 4)
    posted = client.post(f"/v1/partitions/{KEY}/actuals", json={"rows": rows})
    assert posted.json()["rows"] == 4
    for name in ("actuals.csv", "actuals.parquet"):
        frame = pd.DataFrame(rows).assign(store=2, brand="tropicana")
        if name.endswith(".parquet"):
            frame = frame.assign(week=pd.to_datetime(frame["week"]))
            frame.to_parquet(tmp_path / name)
        else:
            frame.to_csv(tmp_path / name, index=False)
        result = runner.invoke(
            app, ["actuals", str(tmp_path / name), "--registry", str(registry_path)]
        )
        assert result.exit_code == 0, result.output
        assert result.output.rstrip().endswith(
            f"4 row(s) of {KEY} were already counted (posted before), skipped"
        ), result.output
    assert live(registry_path, KEY)[0] == 4


@pytest.mark.parametrize("column", ["version", "model_version"])
def test_rows_posted_to_the_router_then_in_a_file_naming_their_version_count_once(
    client: Any, registry_path: Path, tmp_path: Path, column: str
) -> None:
    """A file that names the version that answered (a ``version`` column, or score's
    ``model_version``) holds the same rows as a post of that version: the column names
    which version's window, as a path and ``"version"`` do, and is no part of a row."""
    rows = doubled_rows(2, "tropicana", 4)
    posted = client.post(f"/v1/partitions/{KEY}/actuals", json={"rows": rows}).json()
    assert posted["rows"] == 4
    path = tmp_path / "actuals.csv"
    frame = pd.DataFrame(rows).assign(store=2, brand="tropicana")
    frame.assign(**{column: posted["version"]}).to_csv(path, index=False)
    result = runner.invoke(app, ["actuals", str(path), "--registry", str(registry_path)])
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().endswith(
        f"4 row(s) of {KEY} were already counted (posted before), skipped"
    ), result.output
    assert live(registry_path, KEY)[0] == 4  # was 8


def test_a_week_spelt_as_a_midnight_time_is_the_same_week(
    client: Any, registry_path: Path, tmp_path: Path
) -> None:
    """A client posting weeks as pandas' ``to_json`` writes them ("2023-01-02T00:00:00.000")
    and then a CSV of the same rows ("2023-01-02") counted them twice: the time column's
    text was compared as text. It is compared as the time it names now."""
    rows = doubled_rows(2, "tropicana", 4)
    stamped = [{**r, "week": r["week"] + "T00:00:00.000"} for r in rows]
    first = client.post(f"/v1/partitions/{KEY}/actuals", json={"rows": stamped}).json()
    assert (first["rows"], first["already_counted"]) == (4, 0)
    path = tmp_path / "actuals.csv"
    pd.DataFrame(rows).assign(store=2, brand="tropicana").to_csv(path, index=False)
    result = runner.invoke(app, ["actuals", str(path), "--registry", str(registry_path)])
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().endswith(
        f"4 row(s) of {KEY} were already counted (posted before), skipped"
    ), result.output
    spaced = [{**r, "week": r["week"] + " 00:00:00"} for r in rows]  # a third spelling
    again = client.post(f"/v1/partitions/{KEY}/actuals", json={"rows": spaced}).json()
    assert (again["rows"], again["already_counted"]) == (0, 4)
    assert live(registry_path, KEY)[0] == 4  # was 8, then 12
