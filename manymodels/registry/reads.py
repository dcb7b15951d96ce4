"""Reads from the SQL store: partitions, versions and aliases (the router's own read of a
model on a cache miss is ``model_rows``; the artifacts they reference, for ``gc``, are
``references``).

Reads take no write lock: under SQLite's WAL they neither block the writer nor wait for it
(see ``engine``). They hand out entities or plain tuples, never rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Select, and_, func, select
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import OperationalError

from manymodels.exceptions import (
    AliasNotFound,
    PartitionNotFound,
    RegistryError,
    VersionNotFound,
)
from manymodels.registry import schema as t
from manymodels.registry.base import StoreBase
from manymodels.registry.checks import VersionDigests
from manymodels.registry.engine import batches
from manymodels.registry.entities import (
    RETIRED,
    AliasMove,
    ModelVersion,
    PartitionSummary,
)
from manymodels.registry.named import retired_in
from manymodels.registry.rows import move_entity, summary_entity, version_entity


class ProductionRef(NamedTuple):
    version: int
    artifact_sha256: str
    data_fingerprint: str
    last_time: Any  # newest time of its training data (JSON form), when the spec has one
    feature_schema_json: str  # signed with the digests (``manymodels.signing``)
    data_sha256: str | None = None  # its training rows in the artifact store
    signature: str | None = None  # of its digests (``manymodels.signing``)
    estimator: str | None = None  # how it was made: a global one is judged by its own recipe
    params_json: str | None = None


class ReadsMixin(StoreBase):
    """``SqlStore``'s reads."""

    # ---------------------------------------------------------------------------- reads
    def get_partition(self, key: str) -> PartitionSummary:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.partitions).where(t.partitions.c.key == key)).first()
            if row is None:
                raise PartitionNotFound(f"no partition '{key}' in the registry")
            return self._summaries(conn, [row])[0]

    def has_partition(self, key: str) -> bool:
        with self.engine.connect() as conn:
            query = select(t.partitions.c.key).where(t.partitions.c.key == key)
            return conn.execute(query).first() is not None

    def list_partitions(
        self,
        *,
        limit: int = 100,
        offset: int = 0,
        after: str | None = None,
        prefix: str | None = None,
    ) -> list[PartitionSummary]:
        """One page, ordered by key; ``after`` (the last key of the previous page) is O(page).
        ``prefix`` keeps keys that start with it, as a range of the primary key's index
        (``prefix <= key < upper``) so a search among 100,000 partitions reads one page, not
        the table; ``substr`` re-checks the range under collations that are not bytewise."""
        key = t.partitions.c.key
        q = select(t.partitions).order_by(key).limit(limit)
        q = q.where(key > after) if after is not None else q.offset(offset)
        q = with_prefix(q, key, prefix)
        with self.engine.connect() as conn:
            return self._summaries(conn, list(conn.execute(q)))

    def count_partitions(self, *, but: str | None = None) -> int:
        """How many partitions there are, ``but`` one key not counted (the fallback's)."""
        q = select(func.count()).select_from(t.partitions)
        if but is not None:
            q = q.where(t.partitions.c.key != but)
        with self.engine.connect() as conn:
            return int(conn.execute(q).scalar_one())

    def keys_without(self, alias: str, *, but: str, limit: int) -> list[str]:
        """The first ``limit`` keys (in key order) with no version at ``alias``, ``but`` one
        key not read (the fallback's): what a forecast at an alias left out, named. One
        anti-join along both primary keys, read only when ``count_partitions`` says some
        lack it."""
        p, a = t.partitions.c, t.aliases.c
        has = select(a.key).where(and_(a.key == p.key, a.alias == alias)).exists()
        q = select(p.key).where(and_(p.key != but, ~has)).order_by(p.key).limit(limit)
        with self.engine.connect() as conn:
            return [k for (k,) in conn.execute(q)]

    def list_versions(self, key: str) -> list[ModelVersion]:
        with self.engine.connect() as conn:
            self._require_partition(conn, key)
            rows = conn.execute(
                select(t.model_versions)
                .where(t.model_versions.c.key == key)
                .order_by(t.model_versions.c.version.desc())
            ).all()
            names = self._aliases_of(conn, [key]).get(key, {})
        return [version_entity(r, names) for r in rows]

    def get_version(self, key: str, version: int) -> ModelVersion:
        got = self.get_versions([(key, version)])
        if not got:
            with self.engine.connect() as conn:
                self._require_partition(conn, key)
            raise VersionNotFound(f"partition '{key}' has no version {version}")
        return got[0]

    def get_versions(self, pairs: Sequence[tuple[str, int]]) -> list[ModelVersion]:
        """Many (key, version) rows in a few queries; missing pairs are left out."""
        out: list[ModelVersion] = []
        c = t.model_versions.c
        with self.engine.connect() as conn:
            for batch in batches(list(pairs)):
                names = self._aliases_of(conn, sorted({k for k, _ in batch}))
                q = select(t.model_versions).where(pairs_in(c, batch))
                wanted = set(batch)
                out += [version_entity(r, names.get(r.key, {})) for r in conn.execute(q)
                        if (r.key, r.version) in wanted]  # fmt: skip
        return out

    def resolve_alias(self, key: str, alias: str = "production") -> ModelVersion:
        """The version ``alias`` points at. Refused: ``PartitionNotFound``, or an
        ``AliasNotFound`` that says a retired partition was (``retired_from``), where it read
        as one never promoted — one more primary-key read, on the refusal's path only."""
        with self.engine.connect() as conn:
            version = conn.execute(
                select(t.aliases.c.version).where(
                    and_(t.aliases.c.key == key, t.aliases.c.alias == alias)
                )
            ).scalar()
            if version is None:
                self._require_partition(conn, key)
                was = retired_in(conn, key) if alias == "production" else None
                raise AliasNotFound(f"partition '{key}' has no '{alias}' alias", was)
        return self.get_version(key, version)

    def production_info(self, keys: Sequence[str]) -> dict[str, ProductionRef]:
        """The production versions of ``keys`` — version, artifact, data fingerprint and the
        newest time in its training data — in a few batched joins: what champions need."""
        a, v = t.aliases.c, t.model_versions.c
        out: dict[str, ProductionRef] = {}
        with self.engine.connect() as conn:
            for batch in batches(keys):
                q = (
                    select(
                        a.key, v.version, v.artifact_sha256, v.data_fingerprint,
                        v.feature_schema_json, v.data_sha256, v.signature, v.estimator,
                        v.params_json,
                    )
                    .join(t.model_versions, and_(v.key == a.key, v.version == a.version))
                    .where(and_(a.alias == "production", a.key.in_(batch)))
                )  # fmt: skip
                for k, ver, sha, fp, schema, data, sig, est, params in conn.execute(q):
                    last = json.loads(schema).get("history", {}).get("time")
                    out[k] = ProductionRef(ver, sha, fp, last, schema, data, sig, est, params)
        return out

    def latest_fingerprints(self, keys: Sequence[str]) -> dict[str, str]:
        """``{key: data fingerprint of its newest version}``: what the data looked like the last
        time each partition was trained, promoted or not."""
        return self._latest(keys, t.model_versions.c.data_fingerprint)

    def skipped_alike(self, fingerprints: Mapping[str, str], spec_hash: str) -> set[str]:
        """The keys of ``fingerprints`` ({key: data fingerprint now}) that a run of the spec
        ``spec_hash`` skipped (below ``min_rows``, too few rows to validate) on data of that
        very fingerprint: trained again, the same rows under the same spec are skipped again.
        A skipped partition has no version to compare its data with, so ``--changed-only``
        took it for changed at every run. Batched reads along ``ix_run_partitions_key``,
        fingerprint included: the cost grows with the keys asked, never with the runs or
        partitions recorded, nor with the runs that skipped a key on other data."""
        rp, r = t.run_partitions.c, t.runs.c
        found: set[str] = set()
        with self.engine.connect() as conn:
            for batch in batches(list(fingerprints)):
                q = (
                    select(rp.key, rp.data_fingerprint)
                    .join(t.runs, r.run_id == rp.run_id)
                    .where(
                        rp.key.in_(batch),
                        rp.status == "skipped",
                        rp.data_fingerprint.in_({fingerprints[k] for k in batch}),
                        r.spec_hash == spec_hash,
                    )
                )
                found |= {k for k, fp in conn.execute(q) if fp and fingerprints.get(k) == fp}
        return found

    def latest_spec_hashes(self, keys: Sequence[str]) -> dict[str, str]:
        """``{key: hash of the spec its newest version was trained under}`` (its run's), in
        batched joins: the same rows under an edited spec are no longer the same model."""
        return self._latest(keys, t.runs.c.spec_hash)

    def latest_spec_names(self, keys: Sequence[str]) -> dict[str, str]:
        """``{key: name of the spec its newest version was trained under}``, in batched
        joins: a key spelt otherwise is one spec's partition, never another spec's
        (``key_spellings``: a second spec's stores 0 and 1 are not the first's flags)."""
        return self._latest(sorted(set(keys)), t.runs.c.spec_name)

    def latest_holidays(self, keys: Sequence[str]) -> dict[str, list[str]]:
        """``{key: the holidays of the spec its newest version was trained under}`` (``[]``
        for none): business days closed on other dates step and lag otherwise, so an edited
        holidays CSV is a change for ``--changed-only``. A batched join for the keys' runs,
        then each distinct run's spec read once (runs are few, keys up to 100,000)."""
        made_by = self._latest(keys, t.model_versions.c.run_id)
        r = t.runs.c
        closed: dict[str, list[str]] = {}
        with self.engine.connect() as conn:
            for batch in batches(sorted(set(made_by.values()))):
                q = select(r.run_id, r.spec_json).where(r.run_id.in_(batch))
                for run_id, spec_json in conn.execute(q):
                    closed[run_id] = list(json.loads(spec_json).get("holidays") or [])
        return {key: closed.get(run_id, []) for key, run_id in made_by.items()}

    def latest_data(self, keys: Sequence[str]) -> dict[str, VersionDigests]:
        """``{key: digests of its newest version that kept its training rows}``: they are the
        rows known so far, promoted or not, which appending new rows builds on; its signature
        vouches for them. A newer version that kept none (imported from MLflow, or rows Arrow
        could not store) is passed over: building on nothing lost the history, and a ``gc``
        then deleted it (``latest_versions`` tells the caller so)."""
        v = t.model_versions.c
        out: dict[str, VersionDigests] = {}
        with self.engine.connect() as conn:
            for batch in batches(keys):
                newest = (
                    select(v.key, func.max(v.version).label("version"))
                    .where(and_(v.key.in_(batch), v.data_sha256.is_not(None)))
                    .group_by(v.key)
                    .subquery()
                )
                columns = (v.artifact_sha256, v.data_sha256, v.signature, v.feature_schema_json)
                on = and_(v.key == newest.c.key, v.version == newest.c.version)
                q = select(v.key, v.version, *columns).join(newest, on)
                for key, *values in conn.execute(q):
                    out[key] = VersionDigests(key, *values)
        return out

    def latest_versions(self, keys: Sequence[str]) -> dict[str, int]:
        """``{key: its newest version}``, promoted or not."""
        return self._latest(keys, t.model_versions.c.version)

    def _latest(self, keys: Sequence[str], *columns: Any) -> dict[str, Any]:
        """Columns of each key's newest version (a value, or a tuple of several), in batched
        joins; columns of ``runs`` are its run's (one more join)."""
        p, v, r = t.partitions.c, t.model_versions.c, t.runs.c
        of_run = any(c.table is t.runs for c in columns)
        out: dict[str, Any] = {}
        with self.engine.connect() as conn:
            for batch in batches(keys):
                q = (
                    select(p.key, *columns)
                    .join(t.model_versions, and_(v.key == p.key, v.version == p.latest_version))
                    .where(p.key.in_(batch))
                )
                if of_run:
                    q = q.join(t.runs, r.run_id == v.run_id)
                for key, *values in conn.execute(q):
                    out[key] = values[0] if len(columns) == 1 else tuple(values)
        return out

    def alias_table(self, alias: str = "production", *, since: str | None = None) -> dict[str, int]:
        """``{key: version}`` for one alias, optionally only entries moved after ``since``."""
        q = select(t.aliases.c.key, t.aliases.c.version).where(t.aliases.c.alias == alias)
        if since is not None:
            q = q.where(t.aliases.c.updated_at > since)
        with self.engine.connect() as conn:
            return {k: v for k, v in conn.execute(q)}

    def alias_history(self, key: str, alias: str | None = None) -> list[AliasMove]:
        c = t.alias_history.c
        q = select(t.alias_history).where(c.key == key)
        if alias:
            q = q.where(c.alias == alias)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(c.id)).all()
        return [move_entity(r) for r in rows]

    def alias_changes(
        self, alias: str = "production", *, since: str | None = None
    ) -> list[tuple[str, int | None, str]]:
        """``(key, version, updated_at)`` for one alias, optionally only entries moved after
        ``since``: what a router needs to mirror the table incrementally (O(changes)). For
        ``production``, a retired partition's entry comes with version ``None`` (its
        ``RETIRED`` row, stamped by the retirement): a deleted row would never be read.

        With ``since`` (every refresh of every router but its first) the rows are found by
        ``ix_aliases_updated``: the alias is compared as ``alias || ''``, which no index
        serves, else SQLite (no statistics) walked ``ix_aliases_age`` through every
        partition's row of both aliases, 15 ms per idle refresh at 100,000 partitions."""
        c = t.aliases.c
        names = [alias, RETIRED] if alias == "production" else [alias]
        q = select(c.key, c.version, c.updated_at, c.alias)
        if since is None:
            q = q.where(c.alias.in_(names))
        else:
            q = q.where(c.updated_at > since, c.alias.concat("").in_(names))
        try:
            with self.engine.connect() as conn:
                return [(k, v if a == alias else None, at) for k, v, at, a in conn.execute(q)]
        except OperationalError as e:
            raise RegistryError(f"registry database unavailable: {e.orig}") from e

    def alias_entry(self, key: str, alias: str = "production") -> tuple[int, str] | None:
        """``(version, updated_at)`` of one alias row as committed, or ``None``."""
        c = t.aliases.c
        q = select(c.version, c.updated_at).where(and_(c.key == key, c.alias == alias))
        try:
            with self.engine.connect() as conn:
                row = conn.execute(q).first()
        except OperationalError as e:
            raise RegistryError(f"registry database unavailable: {e.orig}") from e
        return (row[0], row[1]) if row is not None else None

    def _aliases_of(self, conn: Connection, keys: Sequence[str]) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        c = t.aliases.c
        for batch in batches(keys):
            for k, a, v in conn.execute(select(c.key, c.alias, c.version).where(c.key.in_(batch))):
                out.setdefault(k, {})[a] = v
        return out

    def _summaries(self, conn: Connection, rows: Iterable[Row[Any]]) -> list[PartitionSummary]:
        rows = list(rows)
        keys = [r.key for r in rows]
        names = self._aliases_of(conn, keys)
        with_production = [k for k in keys if "production" in names.get(k, {})]
        prod: dict[str, ModelVersion] = {}
        c, a = t.model_versions.c, t.aliases.c
        # production versions through the alias rows, by key: both primary keys' indexes on
        # SQLite and PostgreSQL (an OR of 100 (key, version) pairs cost ms to compile, and a
        # (key, version) IN list scanned the table on SQLite)
        for batch in batches(with_production):
            q = (
                select(t.model_versions)
                .join(t.aliases, and_(a.key == c.key, a.version == c.version))
                .where(a.alias == "production", a.key.in_(list(batch)))
            )
            for r in conn.execute(q):
                prod[r.key] = version_entity(r, names.get(r.key, {}))
        return [summary_entity(r, names.get(r.key, {}), prod.get(r.key)) for r in rows]


def pairs_in(c: Any, pairs: Sequence[tuple[str, int]]) -> Any:
    """A condition that holds for every ``(key, version)`` of ``pairs`` (and possibly other
    combinations of their keys and versions: filter the rows by the pairs). ``(key, version)
    IN (…)`` reads the whole table on SQLite for two pairs or more (8.5 ms at 10,000 versions,
    ~10x that at 100,000); ``key IN (…) AND version IN (…)`` walks the primary key's index."""
    keys, versions = sorted({k for k, _ in pairs}), sorted({v for _, v in pairs})
    return and_(c.key.in_(keys), c.version.in_(versions))


def with_prefix(q: Select[Any], column: Any, prefix: str | None) -> Select[Any]:
    """``q`` kept to ``column`` values that start with ``prefix``, as a range of the column's
    index (``prefix <= value < upper``) so a search reads one page, not the table; ``substr``
    re-checks the range under collations that are not bytewise."""
    if not prefix:
        return q
    q = q.where(column >= prefix, func.substr(column, 1, len(prefix)) == prefix)
    upper = prefix_upper(prefix)
    return q.where(column < upper) if upper is not None else q


def prefix_upper(prefix: str) -> str | None:
    """The least string above every string that starts with ``prefix`` (code-point order, which
    is UTF-8 byte order): its last character incremented; ``None`` when none exists."""
    stripped = prefix.rstrip(chr(0x10FFFF))
    if not stripped:
        return None
    after = ord(stripped[-1]) + 1
    return stripped[:-1] + chr(0xE000 if 0xD800 <= after < 0xE000 else after)  # no surrogates
