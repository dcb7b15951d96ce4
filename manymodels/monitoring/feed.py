"""The registry reads behind ``manymodels actuals`` of a whole file, batched as ``score``
batches them: a day's feed names every partition, and reading each partition alone (its
alias, its version, its last actual: 7 statements) took 152 s at 20,000 partitions on SQLite,
44 s batched, the rest being each model's load and predict.

The file's partitions are taken in chunks of ``CHUNK``: each chunk's production aliases,
version records and last recorded actuals are read in a few batched queries by key (never the
whole alias table: a file of ten partitions reads ten keys' rows), its models loaded (one
read of an ensemble's shared members), and the chunk's records dropped before the next. A
partition the batched reads do not find is left to ``Registry.load_model``, whose error (an
unknown key, no production alias, no such version) is the one the caller reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from manymodels.monitoring import store
from manymodels.monitoring.actuals import READ
from manymodels.registry import schema as t
from manymodels.registry.client import Registry
from manymodels.registry.engine import batches
from manymodels.registry.entities import ModelVersion

CHUNK = 1000
"""Partitions whose version records are held at once."""

Wanted = tuple[str, int | None]  # (key, version named in the file, or None: production)


class FeedReads:
    """What a file's partitions need from the registry, read chunk by chunk."""

    def __init__(self, reg: Registry, *, production: bool) -> None:
        self.reg = reg
        self.production = production  # versions named by production, not by the file
        self.records: dict[Wanted, ModelVersion] = {}
        self.previous: dict[tuple[str, int], Any] = {}
        self.read: set[tuple[str, int]] = set()  # versions whose last actual was read
        self.shared: dict[str, Any] = {}  # global models by sha256, read once

    def fetch(self, wanted: Sequence[Wanted]) -> None:
        """Read the version records and last actuals of one chunk (replacing the last's)."""
        pairs: dict[Wanted, tuple[str, int]] = {}
        production = self._production([k for k, v in wanted if v is None])
        for key, version in wanted:
            if version is not None:
                pairs[key, version] = (key, version)
            elif key in production:  # else load_model finds it, or says why not
                pairs[key, None] = (key, production[key])
        got = {(r.key, r.version): r for r in self.reg.store.get_versions(list(pairs.values()))}
        self.records = {w: got[p] for w, p in pairs.items() if p in got}
        timed = [(r.key, r.version) for r in self.records.values() if r.schema.time_column]
        self.previous = store.previous_actuals(self.reg.store.engine, timed)
        self.read = set(timed)

    def _production(self, keys: Sequence[str]) -> dict[str, int]:
        """``{key: production version}`` of those of ``keys`` that have one."""
        if not self.production or not keys:
            return {}
        a = t.aliases.c
        out: dict[str, int] = {}
        with self.reg.store.engine.connect() as conn:
            for batch in batches(list(dict.fromkeys(keys))):
                q = select(a.key, a.version).where(a.alias == "production", a.key.in_(batch))
                out.update({k: v for k, v in conn.execute(q)})
        return out

    def load(self, key: str, version: int | None) -> Any:
        """The ``LoadedModel`` of a partition of this chunk, checked as ``load_model`` checks
        it; ``load_model`` itself (and its error) for one the batched reads did not find."""
        from manymodels.registry.loaded import LoadedModel

        record = self.records.get((key, version))
        if record is None:
            return self.reg.load_model(key, version)
        return LoadedModel(self.reg.load_artifact(record, self.shared), record)

    def previous_actual(self, key: str, version: int) -> Any:
        """Its last recorded actual (``None``: none yet), or ``actuals.READ`` for a version
        this chunk did not read: ``measure`` reads it then."""
        if (key, version) not in self.read:
            return READ
        return self.previous.get((key, version))
