"""The router's in-memory mirror of one alias (``production``): ``{partition key: version}``.

Loaded in full once at start, then refreshed incrementally: each refresh reads only the alias
rows moved since the newest ``updated_at`` already seen (minus a small overlap, see below), so
its cost is O(changes), not O(partitions). A promotion made through this router is applied at
once with ``apply``; one made elsewhere (the CLI, another router, a retraining run) shows up
within one refresh interval.

Every entry keeps the ``updated_at`` it came with and a move only replaces an older one, so a
refresh that read the table just before a promotion can never undo it. A retired partition
(``manymodels retire``) comes as an entry without a version, stamped by its retirement, and
leaves the table.

**Stamps and overlap.** A writer stamps ``updated_at`` inside its write transaction, after
``BEGIN IMMEDIATE`` has taken SQLite's write lock, so on one machine stamps follow commit order
and a row that becomes visible after a refresh is stamped later than anything that refresh saw.
Refreshes still look back, as a margin for what that ordering does not cover: a transaction
on PostgreSQL that commits after a later-stamped one, a wall clock stepped back, writers on
other hosts. Most look back ``recent_seconds`` (10 s: longer than a transaction takes from its
stamp to its commit), and one every ``deep_every`` seconds (30 s) looks back
``overlap_seconds`` from the previous such read: several times the registry's busy timeout,
so even a writer whose stamp was taken before its wait is not missed — it shows up within
``deep_every`` rather than one interval. Rows read twice are applied twice, harmlessly. Every
refresh looking back the whole overlap re-read a bulk run's rows for two minutes after it:
at 100,000 partitions ~0.2 s of the router's CPU, with the GIL, every 2 s.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

from manymodels.exceptions import RegistryError
from manymodels.registry.engine import BUSY_TIMEOUT_SECONDS
from manymodels.registry.entities import RETIRED

logger = logging.getLogger("manymodels.serving.aliases")

DEFAULT_OVERLAP_SECONDS = 4 * BUSY_TIMEOUT_SECONDS  # safely above the busy timeout
RECENT_SECONDS = 10.0  # what most refreshes look back (see the module's docstring)
DEEP_EVERY_SECONDS = 30.0  # how often a refresh looks back the whole overlap
_VALUES = re.compile(r"=[^,]*")  # a canonical key's values (their ',' and '=' are encoded)


class AliasSource(Protocol):
    """What the table reads from: ``SqlStore`` satisfies it."""

    def alias_changes(
        self, alias: str = "production", *, since: str | None = None
    ) -> list[tuple[str, int | None, str]]: ...


class AliasTable:
    """``get(key)`` is a dict lookup: no lock and no database on the request path."""

    def __init__(
        self,
        source: AliasSource,
        alias: str = "production",
        *,
        overlap_seconds: float = DEFAULT_OVERLAP_SECONDS,
        recent_seconds: float = RECENT_SECONDS,
        deep_every: float = DEEP_EVERY_SECONDS,
    ) -> None:
        self.source = source
        self.alias = alias
        self.overlap = timedelta(seconds=overlap_seconds)
        self.recent = timedelta(seconds=min(recent_seconds, overlap_seconds))
        self.deep_every = deep_every
        self._versions: dict[str, int] = {}
        # each key's ``(key, version)``, one tuple kept while the alias stays: a batch looks up
        # the cache with these very objects (found by identity; a fresh tuple is hashed and
        # compared item by item: a third of the cache lookup of a 100-partition batch)
        self._pairs: dict[str, tuple[str, int]] = {}
        self._stamps: dict[str, str] = {}
        # each set of key columns a key in the table has, as its keys write it ("store,brand",
        # values dropped), → one key of them: a handful (one per spec), grown as keys arrive
        self.shapes: dict[str, str] = {}
        self._newest: str | None = None
        self._read_started: datetime | None = None  # start of the last successful read
        self._deep_started: datetime | None = None  # … of the last one looking back the overlap
        self._deep_at = -math.inf  # its time.monotonic()
        self._lock = threading.Lock()  # serialises writers; readers never take it
        self.loaded = False
        self.last_refresh: float | None = None  # time.time() of the last successful read
        self.refreshes = 0
        self.changes = 0

    def __len__(self) -> int:
        return len(self._versions)

    def __contains__(self, key: object) -> bool:
        return key in self._versions

    def get(self, key: str) -> int | None:
        return self._versions.get(key)

    def pairs_many(self, keys: Iterable[str]) -> list[tuple[str, int] | None]:
        """Each key's ``(key, version)`` (``None`` where it has none), the same tuple every
        call until the alias moves: the cache's lookup key, found by identity."""
        return list(map(self._pairs.get, keys))

    def pair(self, key: str, version: int) -> tuple[str, int]:
        """``(key, version)``: this table's own tuple when the alias names that version (what
        ``pairs_many`` returns, so a cache keyed by it finds the entry by identity)."""
        found = self._pairs.get(key)
        return found if found is not None and found[1] == version else (key, version)

    def partitions(self) -> list[str]:
        return list(self._versions)

    def load(self) -> int:
        """Read the whole alias table; returns its size."""
        at, started = time.monotonic(), datetime.now(UTC)
        self._merge(self.source.alias_changes(self.alias), read=True)
        self._read_started = self._deep_started = started
        self._deep_at = at
        self.loaded = True
        return len(self)

    def refresh(self) -> int:
        """Apply what moved since the last read; returns how many entries changed."""
        if not self.loaded:
            self.load()
            return len(self)
        at = time.monotonic()
        deep = at - self._deep_at >= self.deep_every
        if deep:
            since = self._since(self._deep_started, self.overlap)
        else:
            since = self._since(self._read_started, self.recent)
        started = datetime.now(UTC)
        changed = self._merge(self.source.alias_changes(self.alias, since=since), read=True)
        self._read_started = started
        if deep:
            self._deep_started, self._deep_at = started, at
        return changed

    def apply(self, key: str, version: int | None, updated_at: str) -> bool:
        """Record a move we made ourselves (a promotion through the router) right away; a
        version ``None`` is a retirement, which removes the key.

        The caller's ``(version, updated_at)`` is not trusted blindly: an idempotent promotion
        returns an old move, and another writer may have moved the alias since. When the source
        can read one row (``alias_entry``, as ``SqlStore`` can) the committed row is applied
        instead; the caller's values are used only if that read is impossible.
        """
        row: tuple[str, int | None, str] = (key, version, updated_at)
        read_one = getattr(self.source, "alias_entry", None)
        if read_one is not None:
            try:
                committed = read_one(key, self.alias)
            except RegistryError as e:
                logger.warning("cannot re-read alias '%s' of %s: %s", self.alias, key, e)
            else:
                if committed is None:  # the alias is gone: nothing to serve from it, and
                    return version is None and self._merge([row], read=False) > 0  # retired
                row = (key, committed[0], committed[1])
        return self._merge([row], read=False) > 0

    def reread(self, key: str) -> int | None:
        """Read one key's committed alias row now and apply it; returns the version the table
        then holds. For a version found missing (``gc`` deleted the one this table still
        named): the move that replaced it is picked up at once rather than at the next
        refresh. A partition retired meanwhile has no ``production`` row to read: its
        ``retired`` one, stamped by the retirement, removes the key (``None``), as a refresh
        would; the key kept the deleted version, a 404 where the fallback answers. A source
        that cannot read one row leaves the table as it is."""
        read_one = getattr(self.source, "alias_entry", None)
        if read_one is not None:
            committed = read_one(key, self.alias)
            if committed is not None:
                self._merge([(key, committed[0], committed[1])], read=False)
            elif self.alias == "production" and (retired := read_one(key, RETIRED)) is not None:
                self._merge([(key, None, retired[1])], read=False)
        return self.get(key)

    def _since(self, anchor: datetime | None, back: timedelta) -> str | None:
        """``min(newest stamp seen, anchor − back)``: every row stamped after what we hold is
        read, and so is a commit in flight during the read that started at ``anchor`` (stamped
        at most ``back`` before it committed). Anchoring on the newest stamp minus the overlap
        alone made a quiet router re-read the tail of the last bulk run on every refresh,
        forever; this way a quiet router reads nothing."""
        if self._newest is None:
            return None
        try:
            newest = datetime.fromisoformat(self._newest)
        except ValueError:
            return self._newest
        if anchor is None or newest.tzinfo is None:
            return (newest - back).isoformat(timespec="microseconds")
        return min(newest, anchor - back).isoformat(timespec="microseconds")

    def _merge(self, rows: list[tuple[str, int | None, str]], *, read: bool) -> int:
        """Apply rows newer than what each key holds; a version ``None`` (a retired
        partition: ``SqlStore.alias_changes``) removes the key, served then as one with no
        model."""
        changed = 0
        with self._lock:
            for key, version, at in rows:
                seen = self._stamps.get(key)
                if seen is not None and at < seen:
                    continue
                self._stamps[key] = at
                if self._newest is None or at > self._newest:
                    self._newest = at
                if version is None:
                    if self._versions.pop(key, None) is not None:
                        del self._pairs[key]
                        changed += 1
                    continue
                if key not in self._versions and "=" in key:  # a new key: its columns
                    self.shapes.setdefault(_VALUES.sub("", key), key)
                if self._versions.get(key) != version:
                    self._versions[key] = version
                    self._pairs[key] = (key, version)
                    changed += 1
            self.changes += changed
            if read:
                self.last_refresh = time.time()
                self.refreshes += 1
        if changed and self.loaded:
            logger.info("alias '%s': %d partition(s) moved", self.alias, changed)
        return changed


class Refresher:
    """A daemon thread calling ``table.refresh()`` every ``interval`` seconds until stopped.

    A failed refresh (registry briefly unavailable) is logged and the router keeps serving from
    the table it has.
    """

    def __init__(
        self, table: AliasTable, interval: float, also: Sequence[Callable[[], object]] = ()
    ) -> None:
        self.table = table
        self.interval = interval
        self.also = tuple(also)  # more to follow at the same pace (the trusted formats)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alias-refresher", daemon=True)
        self.failures = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.table.refresh()
                for follow in self.also:
                    follow()
            except Exception as e:
                self.failures += 1
                logger.warning("alias refresh failed (serving the last table): %s", e)
