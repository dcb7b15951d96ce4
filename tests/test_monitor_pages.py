"""A monitor page read in the database's order (``manymodels.monitoring.pages``) is exactly
the slice of the whole-pass ranking (``report.ranked(report.health(...))``), for every order
it answers, on a registry with scored, unscored, stale and fallback drift rows."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from factories import spec_dict
from sqlalchemy import event

from manymodels.monitoring import pages, report, store
from manymodels.partition import FALLBACK_KEY
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.samples import synthetic
from serving.local import running_server
from serving.settings import Settings

N = 24


def samples(
    reg: Registry, key: str, rows: int, shift: int, version: int | None = None
) -> store.Sample:
    """A router's sample of ``rows`` rows of ``key``, all in one bin per feature rotated by
    ``shift`` (different shifts give different drift scores; equal shifts tie)."""
    current = reg.get_version(key, alias="production")
    profile = current.feature_schema["profile"]
    counts = {}
    for name, stats in profile["features"].items():
        bins = [0] * len(stats["counts"])
        bins[shift % len(bins)] = rows
        counts[name] = bins
    return store.Sample(key, version or current.version, rows, counts, profile)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pages") / "r"
    spec = spec_dict(features=["x0", "x1", "x2"], fallback={"enabled": True})
    with Registry(root) as reg:
        train(spec, synthetic(N, 30, n_features=3), reg, backend="local")
        engine = reg.store.engine
        keys = sorted(p.key for p in reg.list_partitions() if p.key != FALLBACK_KEY)
        assert len(keys) == N
        batch = [samples(reg, k, 200, shift=i % 7) for i, k in enumerate(keys[:12])]  # ties
        batch += [samples(reg, k, 10, shift=3) for k in keys[12:15]]  # too few rows: no score
        stale = reg.get_version(keys[15], alias="production").version + 1
        batch += [samples(reg, keys[15], 200, shift=5, version=stale)]  # not production's
        batch += [samples(reg, FALLBACK_KEY, 500, shift=4)]  # never listed
        store.add_samples(engine, batch)
    return root


@pytest.mark.parametrize("sort", pages.PAGED_SORTS)
def test_every_page_is_the_slice_of_the_whole_ranking(registry: Path, sort: str) -> None:
    with Registry.open(registry) as reg:
        engine = reg.store.engine
        whole = [r.key for r in report.ranked(report.health(engine), sort)]
        scored = [r for r in report.health(engine) if r.drift is not None]
        assert len(whole) == N and len(scored) == 12  # the fixture's mix is what it says
        for limit, offset in [(5, 0), (5, 5), (7, 8), (50, 0), (3, 11), (4, 12), (10, 30)]:
            keys, total = pages.page_keys(engine, sort, limit, offset)
            assert total == N
            assert keys == whole[offset : offset + limit], (sort, limit, offset)


@pytest.mark.slow  # a real router (~5-12 s on a busy machine)
def test_the_router_pages_the_monitor_without_the_whole_pass(registry: Path) -> None:
    """Over HTTP the paged orders answer the same rows as the whole pass (which ``error``
    still takes), page after page."""
    with Registry.open(registry) as reg:
        whole = report.ranked(report.health(reg.store.engine), "drift")
    with running_server(Settings(registry=registry)) as url:
        seen = []
        for offset in range(0, N, 10):
            page = httpx.get(
                f"{url}/v1/monitor", params={"sort": "drift", "limit": 10, "offset": offset}
            )
            assert page.status_code == 200, page.text
            assert page.json()["total"] == N
            seen += page.json()["partitions"]
        error = httpx.get(f"{url}/v1/monitor", params={"sort": "error", "limit": 5})
        assert error.status_code == 200 and error.json()["total"] == N
    assert [p["key"] for p in seen] == [r.key for r in whole]
    assert [p["drift"] for p in seen] == [r.drift for r in whole]
    assert seen[0]["drift"] is not None and seen[-1]["drift"] is None


def test_an_order_no_index_answers_is_refused() -> None:
    with pytest.raises(ValueError, match="error"):
        pages.page_keys(None, "error", 10, 0)  # type: ignore[arg-type]


def test_two_versions_of_one_partition_in_one_flush_keep_one_drift_row(tmp_path: Path) -> None:
    """A router that scored two versions of a partition since its last flush (a promotion,
    then a rollback) hands both samples over: the flush keeps one drift row, of the version
    put last — the one it serves (``production_last``) — instead of failing the whole flush
    on the table's unique key (``manymodels demo`` printed that warning)."""
    from serving.monitor import production_last

    with Registry(tmp_path / "r") as reg:
        train(spec_dict(features=["x0"]), synthetic(3, 30, n_features=1), reg, backend="local")
        engine = reg.store.engine
        keys = sorted(p.key for p in reg.list_partitions() if p.key != FALLBACK_KEY)
        live = reg.get_version(keys[0], alias="production").version
        older, serving = (
            samples(reg, keys[0], 200, 1, version=live + 1),
            samples(reg, keys[0], 200, 2),
        )
        other = samples(reg, keys[1], 200, 3)
        batch = production_last([serving, other, older], {keys[0]: live, keys[1]: 1}.get)
        assert batch.index(older) < batch.index(serving)  # per partition, production last
        store.add_samples(engine, batch)
        rows = store.drift_rows(engine, keys[:2])
        assert rows[keys[0]].version == live and keys[1] in rows


@pytest.mark.parametrize("sort", pages.PAGED_SORTS)
def test_every_page_after_a_key_is_the_rest_of_the_whole_ranking(registry: Path, sort: str) -> None:
    """Keyset paging (``keys_after``): the page after any partition is what follows it in the
    whole-pass ranking — through the scored rows, across into the unscored, and past the end.
    By key any text is a position (the partitions after it); in a ranking, a key the monitor
    does not list (the fallback, an unknown one) is a ``DataError`` saying what after= is."""
    from manymodels.exceptions import DataError

    with Registry.open(registry) as reg:
        engine = reg.store.engine
        whole = [r.key for r in report.ranked(report.health(engine), sort)]
        for limit in (1, 3, 5, 50):
            for i, after in enumerate(whole):
                got = pages.keys_after(engine, sort, limit, after)
                assert got == whole[i + 1 : i + 1 + limit], (sort, limit, after)
        for gone in (FALLBACK_KEY, "pid=nope"):
            if sort == "key":
                assert pages.keys_after(engine, sort, 5, gone) == [k for k in whole if k > gone][:5]
                continue
            with pytest.raises(DataError, match="is not a partition key in the monitor"):
                pages.keys_after(engine, sort, 5, gone)


def test_after_a_key_that_never_existed_is_a_position_by_key_and_a_422_in_a_ranking(
    registry: Path, tmp_path: Path
) -> None:
    """``GET /v1/monitor?after=`` of a key that never existed answered 404 "partition … has
    no production version any more: the monitor moved since the last page" — of a key that
    never had one. By key it is a cursor like any text: the page of the partitions after it.
    In the rankings (drift, age, error, naive) it has no place: a 422 saying what after= is.
    A partition of the registry that is not in production is still the 404 "start again"
    (it left the monitor since the page that showed it)."""
    root = tmp_path / "r"
    shutil.copytree(registry, root)
    from sqlalchemy import delete

    from manymodels.registry import schema as t

    with Registry.open(root) as reg:
        whole = sorted(r.key for r in report.health(reg.store.engine))
        unpromoted = whole.pop()  # a partition whose production alias is gone (no API removes
        a = t.aliases.c  # one; another tool, an older registry): in the registry, not listed
        with reg.store.engine.begin() as conn:
            conn.execute(delete(t.aliases).where(a.key == unpromoted, a.alias == "production"))
    never = "pid=50%off"
    with running_server(Settings(registry=root)) as url:
        by_key = httpx.get(f"{url}/v1/monitor", params={"sort": "key", "after": never, "limit": 3})
        ranked = {
            sort: httpx.get(f"{url}/v1/monitor", params={"sort": sort, "after": never})
            for sort in ("drift", "age", "error", "naive")
        }
        left = httpx.get(f"{url}/v1/monitor", params={"sort": "drift", "after": unpromoted})
    assert by_key.status_code == 200, by_key.text
    assert [p["key"] for p in by_key.json()["partitions"]] == [k for k in whole if k > never][:3]
    for sort, got in ranked.items():
        assert got.status_code == 422, (sort, got.text)
        said = got.json()["detail"]
        assert f"after='{never}' is not a partition key" in said and "moved" not in said, said
    assert left.status_code == 404 and "start again" in left.json()["detail"], left.text


@pytest.mark.slow  # a real router (~5-12 s on a busy machine)
def test_the_monitor_pages_after_the_last_key_and_rows_do_not_repeat_as_drift_moves(
    registry: Path, tmp_path: Path
) -> None:
    """Every order walked by ``next_after`` over HTTP is the whole ranking, once each. Then a
    partition that had too few sampled rows for a score drifts to the top between two pages:
    by ``offset`` the next page began with the previous page's last row again (every row
    moved one place down); after the last key it begins with the row that followed it."""
    import shutil

    root = tmp_path / "r"
    shutil.copytree(registry, root)
    with Registry.open(root) as reg:
        engine = reg.store.engine
        wholes = {s: [r.key for r in report.ranked(report.health(engine), s)] for s in report.SORTS}
    with running_server(Settings(registry=root)) as url:
        for sort, whole in wholes.items():
            seen: list[str] = []
            params: dict[str, str | int] = {"sort": sort, "limit": 5}
            for _ in range(N):
                page = httpx.get(f"{url}/v1/monitor", params=params)
                assert page.status_code == 200, page.text
                seen += [p["key"] for p in page.json()["partitions"]]
                if page.json()["next_after"] is None:
                    break
                params["after"] = page.json()["next_after"]
            assert seen == whole, sort

        first = httpx.get(f"{url}/v1/monitor", params={"sort": "drift", "limit": 5}).json()
        keys = [p["key"] for p in first["partitions"]]
        assert keys == wholes["drift"][:5] and first["next_after"] == keys[-1]
        risen = wholes["drift"][12]  # 10 sampled rows: no score yet
        assert first["partitions"][0]["drift"] is not None
        with Registry.open(root) as reg:
            store.add_samples(reg.store.engine, [samples(reg, risen, 500, shift=4)])
        by_offset = httpx.get(f"{url}/v1/monitor", params={"sort": "drift", "limit": 5,
                                                           "offset": 5}).json()  # fmt: skip
        by_key = httpx.get(f"{url}/v1/monitor", params={"sort": "drift", "limit": 5,
                                                        "after": keys[-1]}).json()  # fmt: skip
        top = httpx.get(f"{url}/v1/monitor", params={"sort": "drift", "limit": 1}).json()
        gone = httpx.get(f"{url}/v1/monitor", params={"sort": "error", "after": "pid=nope"})
        both = httpx.get(f"{url}/v1/monitor", params={"after": keys[-1], "offset": 5})
    assert top["partitions"][0]["key"] == risen  # it rose above the first page
    assert by_offset["partitions"][0]["key"] == keys[-1]  # what paging by offset showed twice
    shown = [p["key"] for p in by_key["partitions"]]
    assert shown == wholes["drift"][5:10] and not set(shown) & set(keys)
    assert gone.status_code == 422 and "not a partition key" in gone.json()["detail"]
    assert both.status_code == 422


def test_the_drifted_gauge_counts_what_the_monitor_flags_not_the_fallback(
    registry: Path,
) -> None:
    """``manymodels_partitions_drifted`` (``store.count_drifted``) counted the fallback's
    drift row (500 rows in one bin), which the monitor leaves out: the gauge said one
    drifted partition more than the monitor flagged (1 where it flagged none)."""
    limits = report.Thresholds()
    with Registry.open(registry) as reg:
        engine = reg.store.engine
        flagged = [r.key for r in report.health(engine) if "drifted" in r.flags(limits)]
        fallback = store.drift_rows(engine, [FALLBACK_KEY])[FALLBACK_KEY]
        assert fallback.score is not None and fallback.score >= limits.drift  # the fixture's
        assert store.count_drifted(engine, limits.drift) == len(flagged)
        assert store.count_drifted(engine, 1e9) == 0


def test_an_offset_past_what_sql_holds_is_one_error_line(registry: Path) -> None:
    """``manymodels monitor --offset 99999999999999999999`` ended in a traceback
    (OverflowError: Python int too large to convert to SQLite INTEGER) once its page's keys
    came from SQL's OFFSET; now the option's bound, as ``list --offset``'s, says so."""
    from typer.testing import CliRunner

    from manymodels.cli import app

    args = ["monitor", "--registry", str(registry), "--offset", "9" * 20]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: ") and "--offset" in line, line


def _statements(engine: Any, run: Any) -> list[tuple[str, Any]]:
    """The SQL statements ``run()`` executes on ``engine``, with their parameters."""
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        seen.append((sql, params))

    event.listen(engine, "before_cursor_execute", record)
    try:
        run()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen


def test_a_page_by_key_walks_an_index_and_sorts_nothing(registry: Path) -> None:
    """``sort=key`` read ``aliases WHERE alias = 'production' ORDER BY key``: SQLite took
    ``ix_aliases_age`` for the alias and sorted every production alias for each page, the
    keyset page after a key too (a temp B-tree: 110,000 VM steps a page at 10,000
    partitions). Now each page walks the partitions' primary key from its start or from
    ``after``, probing each one's production alias."""
    with Registry.open(registry) as reg:
        engine = reg.store.engine
        keys = sorted(p.key for p in reg.list_partitions() if p.key != FALLBACK_KEY)
        for run in (
            lambda: pages.page_keys(engine, "key", 5, 10),
            lambda: pages.keys_after(engine, "key", 5, keys[10]),
        ):
            for sql, params in _statements(engine, run):
                with engine.connect() as conn:
                    plan = [r[3] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)]
                assert not [step for step in plan if "TEMP B-TREE" in step], (sql, plan)
        assert pages.keys_after(engine, "key", 5, keys[10]) == keys[11:16]


def test_the_total_is_counted_again_only_when_an_alias_moved(
    tmp_path: Path, registry: Path
) -> None:
    """Every monitor page counted every production alias for its ``total`` (a sequential
    scan on PostgreSQL, 51-65 ms at 100,000 partitions); now a count is reused while no
    alias moved, and a new partition is counted at once."""
    root = Path(shutil.copytree(registry, tmp_path / "r"))

    def counts(engine: Any) -> tuple[int, int]:
        got: list[int] = []
        seen = _statements(engine, lambda: got.append(pages.total(engine)))
        return got[0], len([s for s, _ in seen if "count(" in s.lower()])

    with Registry(root) as reg:
        engine = reg.store.engine
        assert counts(engine)[0] == N
        assert counts(engine) == (N, 0)  # the previous page's count
        spec = spec_dict(features=["x0", "x1", "x2"], fallback={"enabled": True})
        data = synthetic(N + 1, 30, n_features=3)
        train(spec, data, reg, backend="local", only=[f"pid={N}"])  # a new production alias
        assert counts(engine) == (N + 1, 1)
        assert counts(engine) == (N + 1, 0)


def test_the_cli_titles_a_page_by_key_by_key(registry: Path) -> None:
    """Before: "partitions 1–2 of 24, worst key first"."""
    from typer.testing import CliRunner

    from manymodels.cli import app

    args = ["monitor", "--registry", str(registry), "--limit", "2"]
    by_key = CliRunner().invoke(app, [*args, "--sort", "key"])
    assert by_key.exit_code == 0, by_key.output
    assert f"partitions 1–2 of {N}, by key" in by_key.stdout and "worst" not in by_key.stdout
    by_drift = CliRunner().invoke(app, [*args, "--sort", "drift"])
    assert f"partitions 1–2 of {N}, worst drift first" in by_drift.stdout, by_drift.output
