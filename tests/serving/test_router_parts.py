"""The router's parts on their own: settings, the model cache, the alias table, row checking."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import FrozenInstanceError
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from routerkit import KEY, TWO_VERSIONS

from manymodels.feature_schema import FeatureSchema
from manymodels.registry import Registry
from serving.aliases import AliasTable
from serving.cache import ModelCache
from serving.rows import InvalidRows, model_input, to_json_list
from serving.settings import Settings

# ---------------------------------------------------------------------------------- settings


def test_settings_defaults_are_local_and_frozen(tmp_path: Path) -> None:
    s = Settings(registry=tmp_path)
    assert (s.host, s.port, s.cache_size, s.refresh_seconds) == ("127.0.0.1", 8000, 1000, 2.0)
    assert s.admin_token is None and not s.admin_enabled
    assert s.max_body_bytes == 10 * 1024 * 1024
    with pytest.raises(FrozenInstanceError):
        s.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    "bad",
    [{"cache_size": 0}, {"port": 70000}, {"refresh_seconds": 0}, {"admin_token": " "}],
)
def test_settings_reject_invalid_values(tmp_path: Path, bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Settings(registry=tmp_path, **bad)  # type: ignore[arg-type]


def test_settings_from_env_reads_token_and_registry(tmp_path: Path) -> None:
    env = {"MANYMODELS_REGISTRY": str(tmp_path), "MANYMODELS_ADMIN_TOKEN": "abc"}
    s = Settings.from_env(env, port=9000, cache_size=None)
    assert s.registry == tmp_path and s.admin_token == "abc" and s.port == 9000
    assert s.cache_size == 1000  # None overrides are ignored
    assert "abc" not in repr(s)


def test_settings_token_file_and_conflicts(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("from-file\n")
    s = Settings.from_env({"MANYMODELS_ADMIN_TOKEN_FILE": str(secret)}, registry=tmp_path)
    assert s.admin_token_file == secret and s.admin_tokens and s.admin_tokens.matches("from-file")
    both = {"MANYMODELS_ADMIN_TOKEN_FILE": str(secret), "MANYMODELS_ADMIN_TOKEN": "x"}
    with pytest.raises(ValueError, match="not both"):
        Settings.from_env(both, registry=tmp_path)
    with pytest.raises(ValueError, match="no registry"):
        Settings.from_env({})
    empty = Settings.from_env({"MANYMODELS_ADMIN_TOKEN": "  "}, registry=tmp_path)
    assert empty.admin_token is None


# ---------------------------------------------------------------------------------- cache


def test_cache_is_lru_bounded_by_count() -> None:
    cache: ModelCache[str] = ModelCache(lambda k, v: f"{k}@{v}", max_size=2)
    cache.get("a", 1)
    cache.get("b", 1)
    cache.get("a", 1)  # a is now the most recent
    cache.get("c", 1)  # evicts b
    assert cache.entries() == [("a", 1), ("c", 1)]
    s = cache.stats()
    assert (s.hits, s.misses, s.loads, s.evictions, s.size) == (1, 3, 3, 1, 2)


def test_a_batch_look_refreshes_the_models_it_finds_and_counts_no_hit() -> None:
    cache: ModelCache[str] = ModelCache(lambda k, v: f"{k}@{v}", max_size=3)
    for key in "abc":
        cache.get(key, 1)
    assert cache.peek_many([("a", 1), ("x", 1), ("b", 1)]) == ["a@1", None, "b@1"]
    cache.get("d", 1)  # evicts c, the one the batch did not use
    assert cache.entries() == [("a", 1), ("b", 1), ("d", 1)]
    assert cache.stats().hits == 0


def test_a_loaded_model_is_stored_under_the_tuple_key_of_gives() -> None:
    """The router stores models under the alias table's own ``(key, version)`` tuples, so a
    batch that looks them up with those very objects is answered by identity."""
    kept = ("a", 1)
    cache: ModelCache[str] = ModelCache(
        lambda k, v: f"{k}@{v}", max_size=3, key_of=lambda k, v: kept if (k, v) == kept else (k, v)
    )
    cache.get("a", 1)
    cache.get("b", 1)
    assert cache.entries()[0] is kept and cache.entries()[1] is not kept
    assert cache.peek_many([kept]) == ["a@1"]


def test_a_load_retried_after_a_failed_one_is_under_way() -> None:
    """A caller that waited on a load which failed loads the model itself; that load was not
    among ``loads_under_way`` (the failure forgot the key), which the router's follower of
    gc's deletions reads to catch a deleted version being loaded."""
    first_in, fail, second_in, finish = (threading.Event() for _ in range(4))
    calls: list[int] = []

    def loader(key: str, version: int) -> str:
        calls.append(version)
        if len(calls) == 1:
            first_in.set()
            fail.wait(10)
            raise OSError("the store hiccupped")
        second_in.set()
        finish.wait(10)
        return f"{key}@{version}"

    cache: ModelCache[str] = ModelCache(loader, max_size=2)
    got: list[object] = []

    def get() -> None:
        try:
            got.append(cache.get("a", 1))
        except OSError as e:
            got.append(e)

    threads = [threading.Thread(target=get) for _ in range(2)]
    threads[0].start()
    assert first_in.wait(10)
    threads[1].start()  # waits on the first's load
    time.sleep(0.1)
    fail.set()
    assert second_in.wait(10)
    assert cache.loads_under_way() == {("a", 1)}
    finish.set()
    for t in threads:
        t.join(10)
    assert cache.loads_under_way() == frozenset() and "a@1" in got


def test_cache_key_includes_the_version() -> None:
    cache: ModelCache[str] = ModelCache(lambda k, v: f"{k}@{v}", max_size=10)
    assert cache.get("a", 1) == "a@1"
    assert cache.get("a", 2) == "a@2"
    assert len(cache) == 2


def test_concurrent_first_requests_load_once() -> None:
    calls: list[tuple[str, int]] = []

    def slow(key: str, version: int) -> object:
        calls.append((key, version))
        time.sleep(0.2)
        return object()

    cache: ModelCache[object] = ModelCache(slow, max_size=4)
    barrier = threading.Barrier(12)
    got: list[object] = []

    def worker() -> None:
        barrier.wait()
        got.append(cache.get("k", 1))

    threads = [threading.Thread(target=worker) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [("k", 1)]
    assert len(got) == 12 and all(g is got[0] for g in got)
    assert cache.stats().loads == 1


def test_peek_never_loads_and_loading_says_when_a_get_would_wait() -> None:
    release = threading.Event()
    started = threading.Event()

    def slow(key: str, version: int) -> str:
        started.set()
        release.wait(10)
        return f"{key}@{version}"

    cache: ModelCache[str] = ModelCache(slow, max_size=2)
    assert cache.peek("a", 1) is None and not cache.loading("a", 1)
    t = threading.Thread(target=cache.get, args=("a", 1))
    t.start()
    assert started.wait(10)
    assert cache.loading("a", 1) and not cache.loading("a", 2)
    assert cache.peek("a", 1) is None  # still loading: peek does not wait
    release.set()
    t.join(10)
    assert not cache.loading("a", 1) and cache.peek("a", 1) == "a@1"
    assert cache.stats().loads == 1


def test_inline_loads_stop_after_a_slow_one_and_failures_do_not_restart_them(
    registry_path: Path,
) -> None:
    from manymodels.exceptions import VersionNotFound
    from serving.service import ModelService

    with Registry.open(registry_path) as reg:
        service = ModelService(reg, cache_size=1)  # every get of another model is a load
        service.start()
        assert service.inline_loads  # a SQLite file and a local artifact directory
        other = service.resolve(TWO_VERSIONS[0])
        assert service.loads_inline(other) is True
        read = reg.artifacts.get

        def slow_read(digest: str) -> bytes:
            time.sleep(0.05)
            return read(digest)

        reg.artifacts.get = slow_read  # type: ignore[method-assign]
        service.model(service.resolve(KEY))
        reg.artifacts.get = read  # type: ignore[method-assign]
        assert service.loads_inline(other) is False  # after a slow load: a thread
        for _ in range(30):  # quick failures say nothing about how long a real load takes
            with pytest.raises(VersionNotFound):
                service.cache.get(KEY, 999)
        assert service.loads_inline(other) is False
        loads = service.cache.stats().loads
        for _ in range(20):  # quick real loads bring inline loading back
            service.cache.get(KEY, 1)
            service.cache.get(TWO_VERSIONS[1], 1)
        assert service.cache.stats().loads == loads + 39  # KEY was cached at the start
        assert service.loads_inline(other) is True  # not cached, and loads are quick again


def test_one_slow_load_among_quick_ones_does_not_flip_loads_to_threads() -> None:
    """A full GC pause (~140 ms) that lands inside one load is timed as that load: a moving
    average jumped past the 2 ms inline limit on it and sent misses to threads for seconds.
    The median of recent loads only moves when loads are slow again and again."""
    pause = {"next": False}

    def loader(key: str, version: int) -> str:
        if pause["next"]:
            time.sleep(0.1)
            pause["next"] = False
        return key

    cache: ModelCache[str] = ModelCache(loader, max_size=100)
    for i in range(9):
        cache.get(f"k{i}", 1)
    assert cache.recent_load_seconds < 0.002
    pause["next"] = True
    cache.get("paused", 1)
    assert cache.recent_load_seconds < 0.002  # one outlier: still quick
    for i in range(5):  # slow again and again: the median follows
        pause["next"] = True
        cache.get(f"slow{i}", 1)
    assert cache.recent_load_seconds >= 0.1


def test_failed_load_is_not_cached() -> None:
    attempts = []

    def flaky(key: str, version: int) -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("tampered")
        return "ok"

    cache: ModelCache[str] = ModelCache(flaky, max_size=2)
    with pytest.raises(RuntimeError):
        cache.get("k", 1)
    assert len(cache) == 0
    assert cache.get("k", 1) == "ok"
    assert cache.stats().load_failures == 1


# ---------------------------------------------------------------------------------- aliases


class FakeSource:
    """An alias table in memory, recording each ``since`` it is asked for."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[int, str]] = {}
        self.asked: list[str | None] = []

    def alias_changes(
        self, alias: str = "production", *, since: str | None = None
    ) -> list[tuple[str, int, str]]:
        self.asked.append(since)
        return [(k, v, at) for k, (v, at) in self.rows.items() if since is None or at > since]


def stamp(second: int) -> str:
    return f"2030-01-01T00:00:{second:02d}.000000+00:00"


def test_alias_table_refreshes_incrementally() -> None:
    src = FakeSource()
    src.rows = {"k=1": (1, stamp(1)), "k=2": (1, stamp(2))}
    table = AliasTable(src, overlap_seconds=1)
    assert table.load() == 2
    src.rows["k=2"] = (2, stamp(30))
    assert table.refresh() == 1
    assert table.get("k=2") == 2
    assert src.asked[-1] <= stamp(1)  # never later than newest seen (2 s) minus the overlap
    assert table.refresh() == 0
    assert src.asked[-1] <= stamp(29)


def test_alias_table_never_goes_back_in_time() -> None:
    src = FakeSource()
    src.rows = {"k=1": (1, stamp(1))}
    table = AliasTable(src)
    table.load()
    assert table.apply("k=1", 2, stamp(5))  # a promotion made through the router
    table.refresh()  # a read that started before the promotion committed
    assert table.get("k=1") == 2


def test_alias_pairs_are_the_same_tuples_until_the_alias_moves() -> None:
    src = FakeSource()
    src.rows = {"k=1": (1, stamp(1)), "k=2": (4, stamp(2))}
    table = AliasTable(src)
    table.load()
    first = table.pairs_many(["k=1", "k=2", "k=9"])
    assert first == [("k=1", 1), ("k=2", 4), None]
    again = table.pairs_many(["k=1", "k=2"])
    assert again[0] is first[0] and again[1] is first[1]
    assert table.pair("k=2", 4) is first[1]
    assert table.pair("k=2", 3) == ("k=2", 3)  # not the alias's version: a tuple of its own
    src.rows["k=2"] = (5, stamp(9))
    table.refresh()
    assert table.pairs_many(["k=1", "k=2"]) == [("k=1", 1), ("k=2", 5)]
    assert table.pairs_many(["k=1"])[0] is first[0]


class CountingSource:
    """The real store, counting the rows each read returns."""

    def __init__(self, root: Path) -> None:
        self.registry = Registry.open(root)
        self.returned: list[int] = []

    def alias_changes(
        self, alias: str = "production", *, since: str | None = None
    ) -> list[tuple[str, int, str]]:
        rows = self.registry.store.alias_changes(alias, since=since)
        self.returned.append(len(rows))
        return rows


def test_alias_refresh_reads_only_what_moved(registry_path: Path) -> None:
    source = CountingSource(registry_path)
    try:
        table = AliasTable(source, overlap_seconds=0.0)
        assert table.load() == 11
        assert table.refresh() == 0
        source.registry.set_alias(KEY, "production", 1, reason="re-pointed, same version")
        source.registry.set_alias(TWO_VERSIONS[0], "production", 2, reason="promoted")
        assert table.refresh() == 1
        assert table.get(TWO_VERSIONS[0]) == 2
        assert source.returned == [11, 0, 2]
    finally:
        source.registry.close()


# ---------------------------------------------------------------------------------- rows

SCHEMA = FeatureSchema.parse(
    {
        "features": ["price", "deal"],
        "dtypes": {"price": "float64", "deal": "int64"},
        "categorical": [],
        "input": "numpy",
    }
)


def test_rows_become_a_float_array_in_feature_order() -> None:
    X = model_input(
        [{"deal": 1, "price": 2.5, "extra": "ignored"}, {"price": 3, "deal": True}], SCHEMA
    )
    assert isinstance(X, np.ndarray) and X.dtype == np.float64
    assert X.tolist() == [[2.5, 1.0], [3.0, 1.0]]


def test_bad_rows_name_row_and_column() -> None:
    with pytest.raises(InvalidRows) as e:
        model_input([{"price": 1.0, "deal": 0}, {"price": "cheap"}], SCHEMA, positions=[4, 7])
    locs = [err["loc"] for err in e.value.detail()]
    assert locs == [["body", "rows", 7, "price"], ["body", "rows", 7, "deal"]]


def test_categorical_rows_become_a_dataframe() -> None:
    schema = FeatureSchema.parse(
        {
            "features": ["plan", "sessions"],
            "dtypes": {"plan": "str", "sessions": "int64"},
            "categorical": ["plan"],
            "input": "dataframe",
        }
    )
    X = model_input([{"plan": "pro", "sessions": 3}], schema)
    assert isinstance(X, pd.DataFrame) and list(X.columns) == ["plan", "sessions"]
    with pytest.raises(InvalidRows, match="must be text"):
        model_input([{"plan": 1, "sessions": 3}], schema)


def test_non_finite_predictions_become_null() -> None:
    assert to_json_list(np.array([1.0, np.nan, np.inf])) == [1.0, None, None]
    assert to_json_list(np.array(["a", "b"])) == ["a", "b"]


@pytest.mark.parametrize("unit", ["ns", "us", "s"])
def test_date_predictions_are_iso_text(unit: str) -> None:
    """A model answering ``datetime64`` classes (trained before classes of dates were text,
    or imported): ``json.dumps`` of its answers raised, a 500. Now ISO text, NaT null."""
    dates = np.array(["2024-01-01T06:30", "NaT"], dtype=f"datetime64[{unit}]")
    assert json.loads(json.dumps(to_json_list(dates))) == ["2024-01-01T06:30:00", None]


def test_a_quiet_router_stops_rereading_the_last_bulk_run(tmp_path: Path) -> None:
    """After the overlap has passed with nothing new, a refresh asks only for rows newer than
    the newest it holds (it used to re-read the whole overlap window on every refresh)."""
    from datetime import UTC, datetime, timedelta

    from serving.aliases import AliasTable

    old = (datetime.now(UTC) - timedelta(minutes=10)).isoformat(timespec="microseconds")
    asked: list[str | None] = []

    class Source:
        def alias_changes(
            self, alias: str = "production", *, since: str | None = None
        ) -> list[tuple[str, int, str]]:
            asked.append(since)
            return [("k=1", 1, old)] if since is None else []

    table = AliasTable(Source(), overlap_seconds=120)
    table.load()
    table.refresh()
    assert asked[0] is None and asked[1] == old  # nothing is re-read from the overlap window


def test_most_refreshes_look_back_only_the_recent_seconds() -> None:
    """A refresh looks back ``recent_seconds``; one every ``deep_every`` looks back the whole
    overlap. Every refresh re-read the overlap window: a bulk run's rows for two minutes after
    it (100,000 partitions: ~0.2 s of the router's CPU every 2 s)."""
    from datetime import UTC, datetime, timedelta

    def ago(seconds: float) -> str:
        return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat(timespec="microseconds")

    returned: list[int] = []

    class Source(FakeSource):
        def alias_changes(
            self, alias: str = "production", *, since: str | None = None
        ) -> list[tuple[str, int, str]]:
            rows = super().alias_changes(alias, since=since)
            returned.append(len(rows))
            return rows

    src = Source()
    src.rows = {f"k={i}": (1, ago(30)) for i in range(100)}  # a bulk run 30 s ago
    src.rows["k=new"] = (1, ago(0))
    table = AliasTable(src, overlap_seconds=120, recent_seconds=10, deep_every=3600)
    assert table.load() == 101
    src.rows["k=late"] = (1, ago(60))  # committed now, stamped a minute ago
    assert table.refresh() == 0
    assert returned[-1] == 1  # the newest row only, not the bulk run's (101 before)
    assert table.get("k=late") is None  # … nor the late commit: that is a deep refresh's
    table.deep_every = 0.0
    assert table.refresh() == 1
    assert returned[-1] == 102 and table.get("k=late") == 1
