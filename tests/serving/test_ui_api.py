"""The API behind the dashboard's operating views (#15): a run's failed and skipped partitions
(``GET /v1/failures``), the whole registry ordered by skill, score or age
(``GET /v1/partitions?sort=…``), and one partition's health row (``GET /v1/monitor?key=…``)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from factories import executed, sqlite_plan
from routerkit import KEY, SALES_SPEC, TOKEN, TWO_VERSIONS, open_client, sales

from manymodels.exceptions import PartitionNotFound
from manymodels.pipeline import train
from manymodels.registry import Registry
from serving.settings import Settings

TINY = ("store=7,brand=tiny_a", "store=7,brand=tiny_b", "store=8,brand=tiny_c")


def tiny_partitions() -> pd.DataFrame:
    """Three partitions of 5 rows each: under the spec's ``min_rows`` (20), so skipped."""
    base = sales().head(5)
    parts = []
    for key in TINY:
        store, brand = (kv.split("=")[1] for kv in key.split(","))
        parts.append(base.assign(store=int(store), brand=brand))
    return pd.concat(parts, ignore_index=True)


def add_failures(root: Path) -> Path:
    """A run over ``root``'s registry adding three too-small partitions (skipped), one whose
    feature is infinite (failed: the estimator refuses it) and one that trains."""
    rows = sales().query("store == 2 and brand == 'tropicana'")
    broken = rows.assign(store=9, brand="broken", price=np.inf)
    fresh = rows.assign(store=6, brand="fresh")
    data = pd.concat([tiny_partitions(), broken, fresh], ignore_index=True)
    with Registry(root) as reg:
        summary = train(SALES_SPEC, data, reg, backend="local")
        assert (summary.run.n_skipped, summary.run.n_failed) == (3, 1), summary.failures
    return root


@pytest.fixture(scope="module")
def with_failures(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sales registry plus a run with skipped and failed partitions (``add_failures``)."""
    return add_failures(
        Path(shutil.copytree(trained, tmp_path_factory.mktemp("failures") / "registry"))
    )


@pytest.fixture(scope="module")
def api(with_failures: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A router on a copy of ``with_failures``, one for the module: every test of it only
    reads (a copy and a start were ~1 s a test)."""
    root = Path(shutil.copytree(with_failures, tmp_path_factory.mktemp("api") / "registry"))
    with open_client(Settings(registry=root, admin_token=TOKEN)) as c:
        yield c


# ---------------------------------------------------------------------------- failures
def test_the_newest_runs_failures_are_listed_with_their_reasons(api: Any) -> None:
    page = api.get("/v1/failures").json()
    assert (page["n_skipped"], page["n_failed"]) == (3, 1)
    got = {f["partition"]: f for f in page["failures"]}
    assert sorted(got) == sorted([*TINY, "store=9,brand=broken"])
    assert got[TINY[0]]["status"] == "skipped" and "20" in got[TINY[0]]["message"]
    assert got[TINY[0]]["rows"] == 5
    broken = got["store=9,brand=broken"]
    assert broken["status"] == "failed" and "infinity" in broken["message"].lower()
    assert broken["error_type"]
    assert [f["partition"] for f in page["failures"]] == sorted(got)  # by key

    # the run by id, one status, a prefix search, and pages of one
    run = page["run_id"]
    assert api.get("/v1/failures", params={"run": run}).json() == page
    only = api.get("/v1/failures", params={"status": "skipped"}).json()["failures"]
    assert {f["status"] for f in only} == {"skipped"}
    found = api.get("/v1/failures", params={"prefix": "store=7,"}).json()["failures"]
    assert [f["partition"] for f in found] == list(TINY[:2])
    seen, after = [], None
    while True:
        params = {"limit": 1, **({"after": after} if after else {})}
        one = api.get("/v1/failures", params=params).json()
        seen += [f["partition"] for f in one["failures"]]
        if not (after := one["next_after"]):
            break
    assert seen == sorted(got)


def skip_a_trained_partition(root: Path) -> Path:
    """A run over ``root``'s registry in which ``KEY`` (trained before: it has versions) and a
    new partition are both too small, so both skipped."""
    rows = sales().query("store == 2 and brand == 'tropicana'").head(5)
    data = pd.concat([rows, rows.assign(store=8, brand="tiny_d")], ignore_index=True)
    with Registry(root) as reg:
        summary = train(SALES_SPEC, data, reg, backend="local")
        assert summary.run.n_skipped == 2, summary.failures
    return root


def test_a_failure_says_whether_its_partition_has_a_version(api: Any, tmp_path: Path) -> None:
    """The dashboard linked every failed or skipped partition to its page, and one that never
    had a version has none ("no partition … in the registry"): each says its newest version."""
    first = {
        f["partition"]: f["latest_version"] for f in api.get("/v1/failures").json()["failures"]
    }
    assert first == dict.fromkeys([*TINY, "store=9,brand=broken"])  # never trained: no page
    root = skip_a_trained_partition(Path(shutil.copytree(api.app.state.settings.registry,
                                                        tmp_path / "again")))  # fmt: skip
    with open_client(Settings(registry=root)) as c:
        page = c.get("/v1/failures").json()["failures"]
        latest = {f["partition"]: f["latest_version"] for f in page}
        assert latest == {KEY: c.get(f"/v1/partitions/{KEY}").json()["latest_version"],
                          "store=8,brand=tiny_d": None}  # fmt: skip
        assert latest[KEY] >= 1
        assert c.get("/v1/partitions/store=8,brand=tiny_d").status_code == 404


def test_bad_failures_requests_are_4xx_json(api: Any) -> None:
    for params, status in (
        ({"run": "no-such-run"}, 404),
        ({"status": "exploded"}, 422),
        ({"limit": 0}, 422),
        ({"limit": 1001}, 422),
        ({"run": "x" * 33}, 422),
        ({"prefix": "x" * 513}, 422),
    ):
        got = api.get("/v1/failures", params=params)
        assert got.status_code == status, (params, got.text)
        assert "detail" in got.json()


def test_a_run_without_failures_lists_none(reader: Any) -> None:
    page = reader.get("/v1/failures").json()
    assert page["failures"] == [] and page["run_id"]


# ---------------------------------------------------------------------------- sorting
def production(api: Any) -> list[dict[str, Any]]:
    rows = api.get("/v1/partitions", params={"limit": 1000}).json()["partitions"]
    return [p for p in rows if p["production"]]


@pytest.mark.parametrize("sort", ["skill", "score", "age"])
def test_the_whole_registry_sorts_server_side_across_pages(api: Any, sort: str) -> None:
    """Pages of 3 put together are every production partition worst first, as a sort of the
    full listing gives (skill: those without a naive score last)."""
    everything = production(api)
    field = {"skill": "skill", "score": "score", "age": "created_at"}[sort]

    def worst(p: dict[str, Any]) -> tuple[bool, Any, str]:
        value = p["production"][field]
        return (value is None, value if value is not None else 0, p["partition"])

    expected = [p["partition"] for p in sorted(everything, key=worst)]
    seen, after = [], None
    while True:
        params = {"sort": sort, "limit": 3, **({"after": after} if after else {})}
        page = api.get("/v1/partitions", params=params)
        assert page.status_code == 200, page.text
        seen += [p["partition"] for p in page.json()["partitions"]]
        if not (after := page.json()["next_after"]):
            break
    assert seen == expected
    first = api.get("/v1/partitions", params={"sort": sort, "prefix": "store=1,"}).json()
    assert [p["partition"] for p in first["partitions"]] == [
        k for k in expected if k.startswith("store=1,")
    ]


def test_bad_sort_requests_are_4xx_json(api: Any) -> None:
    got = api.get("/v1/partitions", params={"sort": "drift"})
    assert got.status_code == 422 and "detail" in got.json()
    never = api.get("/v1/partitions", params={"sort": "skill", "after": "store=99,brand=x"})
    assert never.status_code == 404, never.text  # it said "no production version any more"
    assert never.json()["detail"].startswith("no partition 'store=99,brand=x' in this registry")
    assert "any more" not in never.json()["detail"]
    failed = api.get("/v1/partitions", params={"sort": "skill", "after": "store=9,brand=broken"})
    assert failed.status_code == 404 and "no partition" in failed.json()["detail"]  # no row


def test_a_ranking_after_a_partition_out_of_production_says_start_again(
    with_failures: Path, tmp_path: Path
) -> None:
    """A partition the last page showed that has since left production: the listing moved."""
    root = Path(shutil.copytree(with_failures, tmp_path / "registry"))
    with Registry.open(root) as reg:
        # as if its production alias were gone (no API takes one away)
        with reg.store.engine.begin() as conn:
            conn.exec_driver_sql(
                "DELETE FROM aliases WHERE key = ? AND alias = 'production'", (KEY,)
            )
        with pytest.raises(PartitionNotFound, match=r"no production version .*start again"):
            reg.store.ranked_partitions("skill", limit=2, after=KEY)


def test_sorting_walks_an_index_not_the_table(with_failures: Path) -> None:
    """SQLite's plans: the skill order reads ``ix_model_versions_skill`` in order (checking
    production by the aliases' primary key), a run's failures a range of
    ``ix_run_partitions_outcome``: neither sorts nor scans a table."""
    with Registry.open(with_failures) as reg:
        engine = reg.store.engine
        with executed(engine) as seen:
            page = reg.store.ranked_partitions("skill", limit=2)
            reg.store.ranked_partitions("skill", limit=2, after=page[-1].key)
            run = reg.list_runs(limit=1)[0].run_id
            reg.store.run_failures(run, limit=2)
        plans = [
            sqlite_plan(engine, s, p)
            for s, p in seen
            if ("EXISTS" in s or "FROM run_partitions" in s) and "ORDER BY" in s
        ]
    skill = [p for p in plans if "model_versions" in p]
    assert skill and all("USING INDEX ix_model_versions_skill" in p for p in skill), plans
    failures = [p for p in plans if "run_partitions" in p]
    assert failures and all("ix_run_partitions_outcome" in p for p in failures), plans
    assert not [p for p in plans if "TEMP B-TREE" in p], plans


# ---------------------------------------------------------------------------- health row
def test_one_partitions_health_row(client: Any) -> None:
    rows = [{"week": "2024-01-01", "price": 2.0, "deal": 0, "feat": 0, "units": 10.0}] * 3
    assert client.post(f"/v1/partitions/{KEY}/actuals", json={"rows": rows}).status_code == 200
    page = client.get("/v1/monitor", params={"key": KEY}).json()
    assert page["total"] == 1 and [h["key"] for h in page["partitions"]] == [KEY]
    whole = client.get("/v1/monitor", params={"limit": 1000}).json()["partitions"]
    same = next(h for h in whole if h["key"] == KEY)
    ages = ("model_age_days", "data_age_days")  # read a moment apart
    assert {k: v for k, v in page["partitions"][0].items() if k not in ages} == {
        k: v for k, v in same.items() if k not in ages
    }
    typed = client.get("/v1/monitor", params={"key": "store=2,brand=tropicana"}).json()
    assert typed["partitions"][0]["live_rows"] == 3
    points = typed["actuals"]
    assert [(p["time"], p["actual"]) for p in points] == [("2024-01-01", 10.0)] * 3
    assert all(isinstance(p["prediction"], float) for p in points)
    assert whole and client.get("/v1/monitor").json()["actuals"] is None  # only with a key
    for bad, status in (("store=99,brand=x", 404), ("", 422), ("x" * 513, 422)):
        got = client.get("/v1/monitor", params={"key": bad})
        assert got.status_code == status, got.text
        assert "detail" in got.json()


def test_the_monitor_says_how_many_sampled_rows_drift_is_scored_from(
    client: Any, registry_path: Path
) -> None:
    """A partition sampled 30 rows has no drift score yet, which the dashboard showed as a
    bare "–" (as if its traffic had not been looked at): the page had no way to know drift
    needs ``MIN_DRIFT_ROWS``. Each monitor page says so now (``drift_min_rows``), beside each
    row's ``sampled_rows``, and the Health view reads "— (30/50 rows)" (test_ui_health_pages)."""
    from test_monitor_pages import samples

    from manymodels.monitoring import store
    from manymodels.monitoring.drift import MIN_DRIFT_ROWS

    other = TWO_VERSIONS[0]
    with Registry.open(registry_path) as reg:
        few = MIN_DRIFT_ROWS - 20
        batch = [samples(reg, KEY, few, shift=1), samples(reg, other, 4 * MIN_DRIFT_ROWS, 1)]
        store.add_samples(reg.store.engine, batch)
    one = client.get("/v1/monitor", params={"key": KEY}).json()
    assert one["drift_min_rows"] == MIN_DRIFT_ROWS, one
    row = one["partitions"][0]
    assert (row["drift"], row["sampled_rows"]) == (None, few), row
    whole = client.get("/v1/monitor", params={"sort": "key", "limit": 1000}).json()
    assert whole["drift_min_rows"] == MIN_DRIFT_ROWS
    scored = next(h for h in whole["partitions"] if h["key"] == other)
    assert scored["drift"] is not None and scored["sampled_rows"] >= MIN_DRIFT_ROWS, scored
    schema = client.get("/openapi.json").json()["components"]["schemas"]["MonitorPage"]
    assert "drift_min_rows" in schema["properties"]


@pytest.mark.parametrize("sort", ["drift", "age", "error", "naive"])
def test_a_ranking_resumes_after_a_key_given_in_any_column_order(reader: Any, sort: str) -> None:
    """``after=brand=tropicana,store=2`` (the key's columns in another order than the
    registry's) was a 422 "is not a partition key in the monitor" in the rankings, where the
    key routes take that key; it is put in canonical order now, as they do."""
    first = reader.get("/v1/monitor", params={"sort": sort, "limit": 2}).json()
    last = first["next_after"]
    assert last is not None and last.startswith("store="), first
    reordered = ",".join(reversed(last.split(",")))  # brand=…,store=…
    pages = [
        reader.get("/v1/monitor", params={"sort": sort, "limit": 2, "after": after})
        for after in (last, reordered)
    ]
    assert [p.status_code for p in pages] == [200, 200], pages[1].text
    keys = [[h["key"] for h in p.json()["partitions"]] for p in pages]
    assert keys[0] == keys[1] and keys[0] and last not in keys[0], keys


def test_recent_actuals_are_bounded_and_old_rows_still_read(registry_path: Path) -> None:
    """At most ``RECENT`` points per day window, newest kept; a row written before points
    were kept (a bare last value) still gives the naive answer and no points."""
    from manymodels.monitoring import store
    from manymodels.monitoring.live import ErrorSums
    from manymodels.registry import schema as t

    sums = ErrorSums(1, 1.0, 1.0, 0, 1.0, 1.0, 0)
    with Registry.open(registry_path) as reg:
        engine = reg.store.engine
        for i in range(100):
            store.add_many_actuals(
                engine, "2024-01-02", [(KEY, 1, sums, float(i), [(i, float(i), 0.5)])]
            )
        points = store.recent_actuals(engine, KEY, 1)
        assert [p[0] for p in points] == list(range(100 - store.RECENT, 100))
        assert store.previous_actual(engine, KEY, 1) == 99.0
        with engine.begin() as conn:
            conn.execute(
                t.monitor_actuals.update()
                .where(t.monitor_actuals.c.key == KEY)
                .values(last_actual="41.5")
            )
        assert store.previous_actual(engine, KEY, 1) == 41.5
        assert store.recent_actuals(engine, KEY, 1) == []


def test_every_module_of_the_page_is_served_and_nothing_else(reader: Any) -> None:
    """The page is ES modules imported from ``app.js``: each is served (as JavaScript, with the
    page's CSP), none writes HTML from data, and only files of ``serving/ui`` are served."""
    from serving.routes.ui import ASSETS

    script = reader.get("/ui/app.js").text
    imported = set(re.findall(r'from "\./([a-z]+\.js)"', script))
    assert imported >= {"dom.js", "api.js", "list.js", "health.js", "failures.js", "partition.js"}
    for name in {n for n in ASSETS if n.endswith(".js")}:
        got = reader.get(f"/ui/{name}")
        assert got.status_code == 200 and got.headers["content-type"].startswith("text/javascript")
        assert "default-src 'none'" in got.headers["content-security-policy"]
        assert "innerHTML" not in got.text and "insertAdjacentHTML" not in got.text, name
    for missing in ("secrets.txt", "index.html.bak", "..%2Fui.py", "app.py"):
        got = reader.get(f"/ui/{missing}")
        assert got.status_code == 404, missing
