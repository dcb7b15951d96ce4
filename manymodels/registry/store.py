"""SQL store: entities in, entities out; database errors translated at this boundary.

Writes come in batches (one transaction per finished chunk of partitions), because a
per-partition transaction would make the registry the bottleneck at 100,000 partitions. Every
write here is a single transaction: a version row, its alias move and its run record land
together or not at all.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import (
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    inspect,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.engine import Connection, Dialect, Row
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from manymodels.exceptions import (
    AliasNotFound,
    NothingToRollBack,
    PartitionNotFound,
    RegistryError,
    RunNotFound,
    VersionNotFound,
)
from manymodels.registry import schema as t
from manymodels.registry.engine import (
    WRITE_OPTION,
    Move,
    WriteTransaction,
    batches,
    dumps,
    make_engine,
    now,
)
from manymodels.registry.entities import (
    AliasMove,
    ModelVersion,
    NewVersion,
    PartitionOutcome,
    PartitionSummary,
    Run,
)
from manymodels.registry.rows import (
    VERSION_COLUMNS,
    JsonMemo,
    encode_json,
    move_entity,
    run_entity,
    version_entity,
    version_row,
)


class ProductionRef(NamedTuple):
    version: int
    artifact_sha256: str
    data_fingerprint: str
    last_time: Any  # newest time of its training data (JSON form), when the spec has one


class SqlStore:
    """The registry's metadata in a SQL database."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine = make_engine(url)
            found = self._schema_version()
            if found is None:  # a new registry: create it under the write lock
                conn = self.engine.connect().execution_options(**{WRITE_OPTION: True})
                with conn, conn.begin():
                    t.metadata.create_all(conn)
                    found = conn.execute(
                        select(t.meta.c.value).where(t.meta.c.name == "schema_version")
                    ).scalar()
                    if found is None:
                        found = t.SCHEMA_VERSION
                        conn.execute(insert(t.meta).values(name="schema_version", value=found))
            if found != t.SCHEMA_VERSION:
                raise RegistryError(
                    f"registry {url} has schema version {found}; this manymodels "
                    f"reads version {t.SCHEMA_VERSION}"
                )
        except SQLAlchemyError as e:
            raise RegistryError(
                f"cannot open registry database {url}: {e.__class__.__name__}: {e}"
            ) from e

    def close(self) -> None:
        self.engine.dispose()

    def _schema_version(self) -> str | None:
        """The recorded schema version, or ``None`` unless every table exists (a read only:
        opening an existing registry takes no write lock)."""
        with self.engine.connect() as conn:
            if not set(t.metadata.tables) <= set(inspect(conn).get_table_names()):
                return None
            return conn.execute(
                select(t.meta.c.value).where(t.meta.c.name == "schema_version")
            ).scalar()

    # ---------------------------------------------------------------------------- meta
    def get_meta(self, name: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(t.meta.c.value).where(t.meta.c.name == name)).scalar()

    # ---------------------------------------------------------------------------- runs
    def create_run(self, run: Run) -> None:
        """Insert the run; the first run also records the key columns (``partition_by``) so
        keys given as mappings can be put in canonical column order."""
        with self._begin() as conn:
            known = conn.execute(
                select(t.meta.c.value).where(t.meta.c.name == "partition_by")
            ).scalar()
            if known is None and run.spec.get("partition_by"):
                conn.execute(
                    insert(t.meta).values(
                        name="partition_by", value=dumps(run.spec["partition_by"])
                    )
                )
            conn.execute(
                insert(t.runs).values(
                    run_id=run.run_id,
                    kind=run.kind,
                    status=run.status,
                    spec_name=run.spec_name,
                    spec_hash=run.spec_hash,
                    spec_json=dumps(run.spec),
                    data_source=run.data_source,
                    data_fingerprint=run.data_fingerprint,
                    started_at=run.started_at,
                    ended_at=run.ended_at,
                    n_partitions=run.n_partitions,
                    n_trained=0,
                    n_skipped=0,
                    n_failed=0,
                    options_json=dumps(run.options),
                )
            )

    def finish_run(self, run_id: str, status: str, *, error: str | None = None) -> Run:
        with self._begin() as conn:
            conn.execute(
                update(t.runs)
                .where(t.runs.c.run_id == run_id)
                .values(status=status, ended_at=now(), error=error)
            )
        return self.get_run(run_id)

    def reopen_run(self, run_id: str, n_partitions: int) -> None:
        """Mark an interrupted run as running again, for resume; its ``lost`` partitions are
        forgotten (and uncounted) so they can be trained and recorded again."""
        c = t.run_partitions.c
        lost = and_(c.run_id == run_id, c.status == "lost")
        with self._begin() as conn:
            n_lost = conn.execute(select(func.count()).where(lost)).scalar_one()
            conn.execute(delete(t.run_partitions).where(lost))
            conn.execute(
                update(t.runs)
                .where(t.runs.c.run_id == run_id)
                .values(
                    status="running", ended_at=None, error=None, n_partitions=n_partitions,
                    n_failed=t.runs.c.n_failed - n_lost,
                )
            )  # fmt: skip

    def get_run(self, run_id: str) -> Run:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.runs).where(t.runs.c.run_id == run_id)).first()
        if row is None:
            raise RunNotFound(f"no run with id '{run_id}'")
        return run_entity(row)

    def list_runs(self, *, limit: int = 50, offset: int = 0) -> list[Run]:
        q = select(t.runs).order_by(t.runs.c.started_at.desc()).limit(limit).offset(offset)
        with self.engine.connect() as conn:
            return [run_entity(r) for r in conn.execute(q)]

    def run_outcomes(
        self, run_id: str, *, status: str | tuple[str, ...] | None = None, limit: int = 1000
    ) -> list[PartitionOutcome]:
        c = t.run_partitions.c
        q = select(t.run_partitions).where(c.run_id == run_id)
        if status:
            q = q.where(c.status.in_([status] if isinstance(status, str) else status))
        q = q.order_by(c.key).limit(limit)
        with self.engine.connect() as conn:
            return [
                PartitionOutcome(
                    r.key,
                    r.status,
                    r.error_type or "",
                    r.message or "",
                    r.n_rows,
                    r.data_fingerprint,
                )
                for r in conn.execute(q)
            ]

    def recorded_keys(self, run_id: str) -> set[str]:
        """Keys with an outcome in this run: what a resumed run skips (not ``lost`` ones,
        whose task died: those are trained again)."""
        c = t.run_partitions.c
        q = select(c.key).where(and_(c.run_id == run_id, c.status != "lost"))
        with self.engine.connect() as conn:
            return set(conn.execute(q).scalars())

    # ---------------------------------------------------------------------------- writes
    def record(
        self,
        run_id: str,
        versions: Sequence[NewVersion],
        outcomes: Sequence[PartitionOutcome],
        *,
        libraries: dict[str, str],
        promote: Callable[[NewVersion], str | None] | None = None,
        candidate_alias: str | None = "candidate",
        count: bool = True,
    ) -> dict[str, int]:
        """Register a chunk's results in one transaction; returns ``{key: new version}``.

        A partition with no ``production`` alias gets it (reason "first version"); otherwise the
        new version is promoted when ``promote(version)`` gives a reason, or else gets
        ``candidate_alias``. A verdict is only applied while production still points at the
        champion it was made against (``evaluation["champion_version"]``): if production moved
        during the run (a manual promotion or rollback), the new version becomes a candidate.
        ``count=False`` keeps the run's partition counts unchanged (the fallback model is not one
        of the partitions).
        """
        with self._begin() as conn:
            stamp = now()  # under the write lock: stamps follow commit order
            keys = [v.key for v in versions]
            latest = self._latest_versions(conn, keys)
            production = self._alias_versions(conn, keys, "production")
            new_numbers = {v.key: latest.get(v.key, 0) + 1 for v in versions}
            fresh = [v for v in versions if v.key not in latest]
            if fresh:
                _insert_rows(
                    conn,
                    t.partitions,
                    _PARTITION_COLUMNS,
                    [
                        (v.key, encode_json(v.key_values), new_numbers[v.key], stamp, stamp)
                        for v in fresh
                    ],
                )
            known = [v for v in versions if v.key in latest]
            if known:
                conn.execute(
                    update(t.partitions)
                    .where(t.partitions.c.key == bindparam("k"))
                    .values(latest_version=bindparam("v"), updated_at=stamp),
                    [{"k": v.key, "v": new_numbers[v.key]} for v in known],
                )
            if versions:
                libraries_json, memo = encode_json(libraries), JsonMemo()
                _insert_rows(
                    conn,
                    t.model_versions,
                    VERSION_COLUMNS,
                    [
                        version_row(v, new_numbers[v.key], run_id, stamp, libraries_json, memo)
                        for v in versions
                    ],
                )
            moves: list[Move] = []
            for v in versions:
                reason = promote(v) if promote and v.key in production else None
                if v.key not in production:
                    moves.append(
                        (v.key, "production", new_numbers[v.key], "first version", "first")
                    )
                elif reason and (moved := _moved_since_planned(v, production[v.key])):
                    if candidate_alias:
                        why = f"not promoted: {moved}; the verdict was '{reason}'"
                        moves.append((v.key, candidate_alias, new_numbers[v.key], why, "new"))
                elif reason:
                    moves.append((v.key, "production", new_numbers[v.key], reason, "policy"))
                elif candidate_alias:
                    moves.append((v.key, candidate_alias, new_numbers[v.key], "new version", "new"))
            self._move_aliases(conn, moves, run_id, stamp)
            rows = [
                (run_id, v.key, "trained", new_numbers[v.key], None, None, v.n_rows,
                 v.data_fingerprint)
                for v in versions
            ] + [
                (run_id, o.key, o.status, None, o.error_type, o.message, o.n_rows,
                 o.data_fingerprint)
                for o in outcomes
            ]  # fmt: skip
            if rows:
                _insert_rows(conn, t.run_partitions, _RUN_PARTITION_COLUMNS, rows)
            if not count:
                return new_numbers
            conn.execute(
                update(t.runs)
                .where(t.runs.c.run_id == run_id)
                .values(
                    n_trained=t.runs.c.n_trained + len(versions),
                    n_skipped=t.runs.c.n_skipped + sum(o.status == "skipped" for o in outcomes),
                    n_failed=t.runs.c.n_failed
                    + sum(o.status in ("failed", "lost") for o in outcomes),
                )
            )
        return new_numbers

    def set_alias(
        self,
        key: str,
        alias: str,
        version: int,
        *,
        reason: str,
        run_id: str | None = None,
        action: str = "promote",
        idempotent: bool = False,
    ) -> AliasMove:
        """Point ``alias`` at an existing version, with its history entry, in one transaction.

        ``idempotent``: when ``alias`` already points at ``version``, write nothing and return
        the history entry that put it there (checked inside the same transaction).
        """
        with self._begin() as conn:
            if not self._version_exists(conn, key, version):
                self._require_partition(conn, key)
                raise VersionNotFound(f"partition '{key}' has no version {version}")
            if idempotent and self._alias_versions(conn, [key], alias).get(key) == version:
                c = t.alias_history.c
                last = conn.execute(
                    select(t.alias_history)
                    .where(and_(c.key == key, c.alias == alias))
                    .order_by(c.id.desc())
                    .limit(1)
                ).first()
                if last is not None and last.to_version == version:
                    return move_entity(last)
            move = (key, alias, version, reason, action)
            return self._move_aliases(conn, [move], run_id, now())[0]

    def rollback_alias(
        self, key: str, alias: str = "production", *, reason: str | None = None
    ) -> AliasMove:
        """Move ``alias`` back to the version it pointed at before its latest forward move.

        The history is replayed as a stack (a rollback pops), so rolling back twice goes two
        versions back rather than toggling. Versions deleted since (``gc --keep``) are skipped:
        the alias goes to the newest earlier version that still exists, and
        ``NothingToRollBack`` is raised when none does. Read and write happen in one
        transaction (under the write lock). ``reason`` defaults to "rollback from vN".
        """
        with self._begin() as conn:
            self._require_partition(conn, key)
            c = t.alias_history.c
            rows = conn.execute(
                select(c.to_version, c.action)
                .where(and_(c.key == key, c.alias == alias))
                .order_by(c.id)
            ).all()
            stack = _replay(rows)
            current = self._alias_versions(conn, [key], alias).get(key)
            if current is None:
                raise AliasNotFound(f"partition '{key}' has no '{alias}' alias")
            if stack and stack[-1] != current:  # moved outside the history: start from there
                stack.append(current)
            earlier = stack[:-1]
            exists = self._existing_versions(conn, key, earlier)
            target = next((v for v in reversed(earlier) if v in exists), None)
            if target is None:
                raise NothingToRollBack(
                    f"partition '{key}' has no earlier '{alias}' version to roll back to"
                    + (" that still exists" if earlier else "")
                )
            why = reason or f"rollback from v{current}"
            return self._move_aliases(conn, [(key, alias, target, why, "rollback")], None, now())[0]

    def _move_aliases(
        self, conn: Connection, moves: list[Move], run_id: str | None, at: str
    ) -> list[AliasMove]:
        if not moves:
            return []
        out = []
        for alias in {m[1] for m in moves}:
            group = [m for m in moves if m[1] == alias]
            before = self._alias_versions(conn, [m[0] for m in group], alias)
            updates = [m for m in group if m[0] in before]
            inserts = [m for m in group if m[0] not in before]
            if updates:
                conn.execute(
                    update(t.aliases)
                    .where(and_(t.aliases.c.key == bindparam("k"), t.aliases.c.alias == alias))
                    .values(version=bindparam("v"), updated_at=at),
                    [{"k": m[0], "v": m[2]} for m in updates],
                )
            if inserts:
                conn.execute(
                    insert(t.aliases),
                    [
                        {"key": m[0], "alias": alias, "version": m[2], "updated_at": at}
                        for m in inserts
                    ],
                )
            out += [
                AliasMove(k, a, before.get(k), v, r, run_id, at, act) for k, a, v, r, act in group
            ]
        conn.execute(insert(t.alias_history), [m.__dict__ for m in out])
        return out

    # ---------------------------------------------------------------------------- reads
    def get_partition(self, key: str) -> PartitionSummary:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.partitions).where(t.partitions.c.key == key)).first()
            if row is None:
                raise PartitionNotFound(f"no partition '{key}' in the registry")
            return self._summaries(conn, [row])[0]

    def list_partitions(
        self, *, limit: int = 100, offset: int = 0, after: str | None = None
    ) -> list[PartitionSummary]:
        """One page, ordered by key; ``after`` (the last key of the previous page) is O(page)."""
        q = select(t.partitions).order_by(t.partitions.c.key).limit(limit)
        q = q.where(t.partitions.c.key > after) if after is not None else q.offset(offset)
        with self.engine.connect() as conn:
            return self._summaries(conn, list(conn.execute(q)))

    def count_partitions(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(t.partitions)).scalar_one())

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

    def model_refs(self, pairs: Sequence[tuple[str, int]]) -> list[tuple[str, int, str, str]]:
        """``(key, version, artifact sha256, feature schema JSON)`` for many (key, version)
        pairs: only what loading and feeding a model needs, one indexed lookup per pair in
        batched queries (``get_versions`` builds whole entities, ~10× the work)."""
        c = t.model_versions.c
        out: list[tuple[str, int, str, str]] = []
        with self.engine.connect() as conn:
            for batch in batches(list(pairs)):
                q = select(c.key, c.version, c.artifact_sha256, c.feature_schema_json).where(
                    tuple_(c.key, c.version).in_(batch)
                )
                out += [(r[0], r[1], r[2], r[3]) for r in conn.execute(q)]
        return out

    def model_ref(self, key: str, version: int) -> tuple[str, str] | None:
        """``(artifact sha256, feature schema JSON)`` of one version, or ``None``: a router's
        cache miss. At a high miss rate this read *is* the router's throughput, so it runs a
        statement compiled once on a pooled DBAPI connection (~12 µs); SQLAlchemy's execution
        path costs ~60 µs for the same indexed lookup, ``get_version`` ~380 µs."""
        sql, bind = self._model_ref_statement
        raw = self.engine.raw_connection()
        try:
            cur = raw.cursor()
            try:
                cur.execute(sql, bind(key, version))
                rows = cur.fetchall()  # to the end: an unfinished read would pin a snapshot
            finally:
                cur.close()
        except Exception as e:  # the DBAPI's own errors: not SQLAlchemy-wrapped on this path
            raise RegistryError(f"registry database unavailable: {e}") from e
        finally:
            raw.close()  # back to the pool
        return (rows[0][0], rows[0][1]) if rows else None

    @functools.cached_property
    def _model_ref_statement(self) -> tuple[str, Callable[[str, int], Any]]:
        """The SQL text of ``model_ref`` in this database's dialect, and how to bind it."""
        c = t.model_versions.c
        stmt = select(c.artifact_sha256, c.feature_schema_json).where(
            c.key == bindparam("k"), c.version == bindparam("v")
        )
        compiled = stmt.compile(dialect=self.engine.dialect)
        names = compiled.positiontup
        if self.engine.dialect.positional and names is not None:
            return compiled.string, lambda k, v: tuple({"k": k, "v": v}[n] for n in names)
        return compiled.string, lambda k, v: {"k": k, "v": v}

    def get_versions(self, pairs: Sequence[tuple[str, int]]) -> list[ModelVersion]:
        """Many (key, version) rows in a few queries; missing pairs are left out."""
        out: list[ModelVersion] = []
        c = t.model_versions.c
        with self.engine.connect() as conn:
            for batch in batches(list(pairs)):
                names = self._aliases_of(conn, sorted({k for k, _ in batch}))
                q = select(t.model_versions).where(tuple_(c.key, c.version).in_(list(batch)))
                out += [version_entity(r, names.get(r.key, {})) for r in conn.execute(q)]
        return out

    def resolve_alias(self, key: str, alias: str = "production") -> ModelVersion:
        with self.engine.connect() as conn:
            version = conn.execute(
                select(t.aliases.c.version).where(
                    and_(t.aliases.c.key == key, t.aliases.c.alias == alias)
                )
            ).scalar()
            if version is None:
                self._require_partition(conn, key)
                raise AliasNotFound(f"partition '{key}' has no '{alias}' alias")
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
                        v.feature_schema_json,
                    )
                    .join(t.model_versions, and_(v.key == a.key, v.version == a.version))
                    .where(and_(a.alias == "production", a.key.in_(batch)))
                )  # fmt: skip
                for k, ver, sha, fp, schema in conn.execute(q):
                    last = json.loads(schema).get("history", {}).get("time")
                    out[k] = ProductionRef(ver, sha, fp, last)
        return out

    def latest_fingerprints(self, keys: Sequence[str]) -> dict[str, str]:
        """``{key: data fingerprint of its newest version}``: what the data looked like the last
        time each partition was trained, promoted or not."""
        p, v = t.partitions.c, t.model_versions.c
        out: dict[str, str] = {}
        with self.engine.connect() as conn:
            for batch in batches(keys):
                q = (
                    select(p.key, v.data_fingerprint)
                    .join(t.model_versions, and_(v.key == p.key, v.version == p.latest_version))
                    .where(p.key.in_(batch))
                )
                out.update(dict(conn.execute(q).all()))
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

    def referenced_digests(self, *, exclude: Sequence[tuple[str, int]] = ()) -> set[str]:
        """Artifacts something references: a version's model (optionally as if ``exclude``
        were deleted), or a run's training data stored as ``artifact:<sha256>``."""
        c = t.model_versions.c
        gone = set(exclude)
        with self.engine.connect() as conn:
            if not gone:
                out = set(conn.execute(select(c.artifact_sha256).distinct()).scalars())
            else:
                rows = conn.execute(select(c.key, c.version, c.artifact_sha256))
                out = {sha for k, v, sha in rows if (k, v) not in gone}
            q = select(t.runs.c.data_source).where(t.runs.c.data_source.like("artifact:%"))
            out |= {s.removeprefix("artifact:") for s in conn.execute(q).scalars()}
        return out

    def prune_versions(self, keep: int, *, dry_run: bool = False) -> list[tuple[str, int, str]]:
        """Delete versions older than each partition's ``keep`` newest, except aliased ones.

        One transaction; returns ``(key, version, sha256)`` of what was (or would be) deleted.
        """
        if keep < 1:
            raise RegistryError("retention must keep at least 1 version per partition")
        c, a = t.model_versions.c, t.aliases.c
        rank = func.row_number().over(partition_by=c.key, order_by=c.version.desc()).label("rank")
        ranked = select(c.id, c.key, c.version, c.artifact_sha256, rank).subquery()
        aliased = select(a.key, a.version)
        q = select(ranked.c.id, ranked.c.key, ranked.c.version, ranked.c.artifact_sha256).where(
            ranked.c.rank > keep,
            ~tuple_(ranked.c.key, ranked.c.version).in_(aliased),
        )
        with self._begin() as conn:
            doomed = conn.execute(q).all()
            if doomed and not dry_run:
                ids = [r.id for r in doomed]
                for batch in batches(ids):
                    conn.execute(delete(t.model_versions).where(c.id.in_(batch)))
        return [(r.key, r.version, r.artifact_sha256) for r in doomed]

    def alias_changes(
        self, alias: str = "production", *, since: str | None = None
    ) -> list[tuple[str, int, str]]:
        """``(key, version, updated_at)`` for one alias, optionally only entries moved after
        ``since``: what a router needs to mirror the table incrementally (O(changes))."""
        c = t.aliases.c
        q = select(c.key, c.version, c.updated_at).where(c.alias == alias)
        if since is not None:
            q = q.where(c.updated_at > since)
        try:
            with self.engine.connect() as conn:
                return [(k, v, at) for k, v, at in conn.execute(q)]
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

    def ping(self) -> None:
        """Raise ``RegistryError`` unless the database answers (a readiness check)."""
        try:
            with self.engine.connect() as conn:
                conn.execute(select(1)).scalar()
        except SQLAlchemyError as e:
            raise RegistryError(f"registry database unavailable: {e}") from e

    def _begin(self) -> Any:
        return WriteTransaction(self.engine)

    def _version_exists(self, conn: Connection, key: str, version: int) -> bool:
        c = t.model_versions.c
        q = select(c.id).where(and_(c.key == key, c.version == version))
        return conn.execute(q).first() is not None

    def _existing_versions(self, conn: Connection, key: str, versions: Sequence[int]) -> set[int]:
        c = t.model_versions.c
        found: set[int] = set()
        for batch in batches(sorted(set(versions))):
            q = select(c.version).where(and_(c.key == key, c.version.in_(batch)))
            found.update(conn.execute(q).scalars())
        return found

    def _require_partition(self, conn: Connection, key: str) -> None:
        if (
            conn.execute(select(t.partitions.c.key).where(t.partitions.c.key == key)).first()
            is None
        ):
            raise PartitionNotFound(f"no partition '{key}' in the registry")

    def _latest_versions(self, conn: Connection, keys: Sequence[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        c = t.partitions.c
        for batch in batches(keys):
            out.update(conn.execute(select(c.key, c.latest_version).where(c.key.in_(batch))).all())
        return out

    def _alias_versions(self, conn: Connection, keys: Sequence[str], alias: str) -> dict[str, int]:
        out: dict[str, int] = {}
        c = t.aliases.c
        for batch in batches(keys):
            q = select(c.key, c.version).where(and_(c.alias == alias, c.key.in_(batch)))
            out.update(conn.execute(q).all())
        return out

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
        prod_pairs = [(k, names[k]["production"]) for k in keys if "production" in names.get(k, {})]
        prod: dict[str, ModelVersion] = {}
        c = t.model_versions.c
        for batch in batches(prod_pairs):
            conds = [and_(c.key == k, c.version == v) for k, v in batch]
            for r in conn.execute(select(t.model_versions).where(or_(*conds))):
                prod[r.key] = version_entity(r, names.get(r.key, {}))
        return [
            PartitionSummary(
                key=r.key,
                key_values=json.loads(r.key_json),
                latest_version=r.latest_version,
                aliases=names.get(r.key, {}),
                production=prod.get(r.key),
            )
            for r in rows
        ]


def _replay(rows: Iterable[Any]) -> list[int]:
    """The alias history ``(to_version, action)`` replayed as a stack: a forward move pushes,
    a rollback pops back to its target. Never fails, whatever the history holds."""
    stack: list[int] = []
    for to_version, action in rows:
        if action == "rollback":
            if stack:
                stack.pop()
            if to_version is None or (stack and stack[-1] == to_version):
                continue
            if to_version in stack:  # it skipped versions deleted since: back to its target
                del stack[len(stack) - stack[::-1].index(to_version) :]
            else:  # a history written by racing writers (before writes were serialised)
                stack.append(to_version)
        elif to_version is not None:
            stack.append(to_version)
    return stack


def _moved_since_planned(v: NewVersion, current: int) -> str | None:
    """Why a promotion verdict no longer applies, or ``None`` if it does: the verdict compared
    the new version against the production version of when the run was planned."""
    if "champion_version" not in v.evaluation:
        return None  # no champion recorded: nothing to compare (a direct store call)
    planned = v.evaluation.get("champion_version")
    if planned == current:
        return None
    against = f"v{planned}" if planned is not None else "no production version"
    return f"production moved during the run (evaluated against {against}, now v{current})"


# Column order of the tuples record() builds (each table's own order, as INSERT compiles it).
_PARTITION_COLUMNS = ("key", "key_json", "latest_version", "created_at", "updated_at")
_RUN_PARTITION_COLUMNS = (
    "run_id", "key", "status", "version", "error_type", "message", "n_rows", "data_fingerprint",
)  # fmt: skip


class _BulkInsert(NamedTuple):
    sql: str
    processors: tuple[tuple[int, Callable[[Any], Any]], ...]  # (column index, bind processor)


@functools.lru_cache(maxsize=64)  # bounded: it keeps every engine's dialect it has seen alive
def _bulk_insert(dialect: Dialect, table: Table, columns: tuple[str, ...]) -> _BulkInsert | None:
    """``INSERT INTO table (columns)`` compiled once for a positional-paramstyle dialect
    (SQLite's ``qmark``), or ``None`` where rows must go through ``conn.execute``: a named
    paramstyle, or a compiled column order that differs from ``columns``."""
    compiled = insert(table).compile(dialect=dialect, column_keys=list(columns))
    if not dialect.positional or tuple(compiled.positiontup or ()) != columns:
        return None
    processors = tuple(
        (i, proc)
        for i, name in enumerate(columns)
        if (proc := table.c[name].type.bind_processor(dialect)) is not None
    )
    return _BulkInsert(compiled.string, processors)


def _insert_rows(
    conn: Connection, table: Table, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
) -> None:
    """``executemany`` of ``rows`` (tuples in ``columns`` order) into ``table``.

    ``conn.execute(insert(table), dicts)`` builds and processes a parameter dict per row
    (~3 µs for ``model_versions``): at 1,000 rows per statement and three such statements
    per chunk, a sizeable share of the driver's ``record()``. Here the INSERT is compiled
    once and the DBAPI gets the tuples as they are, after the same bind processors
    SQLAlchemy applies (SQLite's ``Float`` → ``float``). Errors are still SQLAlchemy's
    (``exec_driver_sql`` wraps them), so the transaction's error translation is unchanged.
    """
    plan = _bulk_insert(conn.dialect, table, columns)
    if plan is None:
        conn.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in rows])
        return
    if plan.processors:
        rows = [_processed(row, plan.processors) for row in rows]
    conn.exec_driver_sql(plan.sql, rows)


def _processed(
    row: tuple[Any, ...], processors: tuple[tuple[int, Callable[[Any], Any]], ...]
) -> tuple[Any, ...]:
    values = list(row)
    for i, proc in processors:
        values[i] = proc(values[i])
    return tuple(values)
