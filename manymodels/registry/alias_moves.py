"""Alias moves in the SQL store: promote, roll back, repair; each one write transaction.

An alias (``production``, ``candidate``) points at one version of a partition; every move
is kept in ``alias_history`` beside the pointer it changes, in the same transaction, so the
history can be replayed (``rollback_alias`` pops it as a stack) and a reader never sees a
pointer without its entry. ``WritesMixin.record`` moves a run's aliases through the same
``_move_aliases``. A retirement (``retire_aliases``) removes ``production`` and keeps the
version it served under ``RETIRED``, for ``rollback_alias`` to put back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from manymodels.exceptions import (
    AliasNotFound,
    DataError,
    NothingToRollBack,
    PartitionNotFound,
    VersionNotFound,
)
from manymodels.keys import FALLBACK_KEY
from manymodels.reasons import MAX_RECORDED, check_reason
from manymodels.registry import schema as t
from manymodels.registry.base import StoreBase
from manymodels.registry.engine import Move, batches, now
from manymodels.registry.entities import RETIRED, AliasMove
from manymodels.registry.named import alias_versions_in, retired_in
from manymodels.registry.rows import move_entity


class AliasMovesMixin(StoreBase):
    """``SqlStore``'s alias moves: each public method is one write transaction."""

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
        check_reason(reason, "a reason", MAX_RECORDED)
        with self._begin() as conn:
            if not self._version_exists(conn, key, version):
                self._require_partition(conn, key)
                raise VersionNotFound(f"partition '{key}' has no version {version}")
            if idempotent and alias_versions_in(conn, [key], alias).get(key) == version:
                c = t.alias_history.c
                last = conn.execute(
                    select(t.alias_history)
                    .where(and_(c.key == key, c.alias == alias))
                    .order_by(c.id.desc())
                    .limit(1)
                ).first()
                if last is not None and last.to_version == version:
                    return dataclasses.replace(move_entity(last), moved=False)
            move = (key, alias, version, reason, action)
            return self._move_aliases(conn, [move], run_id, now())[0]

    def move_alias_from(
        self, key: str, alias: str, current: int, version: int, *, reason: str, action: str
    ) -> AliasMove | None:
        """Move ``alias`` from ``current`` to ``version`` (which must exist), in one
        transaction, only if it still points at ``current``; ``None`` when it has moved
        meanwhile (compare-and-set: a repair never overwrites a newer promotion)."""
        check_reason(reason, "a reason", MAX_RECORDED)
        with self._begin() as conn:
            if alias_versions_in(conn, [key], alias).get(key) != current:
                return None
            if not self._version_exists(conn, key, version):
                raise VersionNotFound(f"partition '{key}' has no version {version}")
            return self._move_aliases(conn, [(key, alias, version, reason, action)], None, now())[0]

    def rollback_alias(
        self,
        key: str,
        alias: str = "production",
        *,
        reason: str | None = None,
        skip: Collection[int] = (),
    ) -> AliasMove:
        """Move ``alias`` back to the version it pointed at before its latest forward move.

        The history is replayed as a stack (a rollback pops), so rolling back twice goes two
        versions back rather than toggling. Versions deleted since (``gc --keep``) are skipped:
        the alias goes to the newest earlier version that still exists and is not the one it
        points at, and ``NothingToRollBack`` is raised when none does; so are those in
        ``skip`` (versions no reader could load, checked by the caller). Read and write
        happen in one transaction (under the write lock). ``reason`` defaults to "rollback from vN".
        """
        check_reason(reason, "a reason", MAX_RECORDED)
        with self._begin() as conn:
            self._require_partition(conn, key)
            c = t.alias_history.c
            rows = conn.execute(
                select(c.to_version, c.action)
                .where(and_(c.key == key, c.alias == alias))
                .order_by(c.id)
            ).all()
            stack = _replay(rows)
            current = alias_versions_in(conn, [key], alias).get(key)
            retired = None
            if current is None and alias == "production":
                retired = retired_in(conn, key)
            if current is None and retired is None:
                raise AliasNotFound(f"partition '{key}' has no '{alias}' alias")
            last = current if current is not None else retired
            assert last is not None
            if stack and stack[-1] != last:  # moved outside the history: start from there
                stack.append(last)
            # a retired partition goes back to the version it served (or, deleted or
            # unloadable, the newest earlier one): the retirement is what is rolled back
            earlier = stack[:-1] if retired is None else stack or [retired]
            exists = self._existing_versions(conn, key, earlier)
            # the alias's own version is no rollback: with the versions between deleted
            # (promoted back by hand, then gc), a "rollback" moved it onto itself, said moved
            target = next(
                (v for v in reversed(earlier) if v in exists and v not in skip and v != current),
                None,
            )
            if target is None:
                left = " that still exists" + (" and can be loaded" if skip else "")
                raise NothingToRollBack(
                    f"partition '{key}' has no earlier '{alias}' version to roll back to"
                    + (left if earlier else "")
                )
            back = f"rollback from v{current}"
            why = reason or (back if retired is None else f"rollback of v{retired}'s retirement")
            return self._move_aliases(conn, [(key, alias, target, why, "rollback")], None, now())[0]

    def retire_aliases(self, keys: Sequence[str], *, reason: str) -> list[AliasMove]:
        """Take ``keys`` out of production, all or none, in one transaction: each one's
        ``production`` row goes, the version it pointed at is kept under ``RETIRED`` (gc
        keeps aliased versions; ``rollback_alias`` puts it back), and the history gets a
        "retire" entry to ``None``. A key retired already is answered by the entry that
        retired it, ``moved`` false, and written nothing (as ``set_alias``'s ``idempotent``
        promotion): a retire script run again succeeds, saying since when. Nothing is written
        when any key is unknown, is the fallback, or was never in production
        (``PartitionNotFound``, ``DataError``, ``AliasNotFound``, naming the first such key)."""
        check_reason(reason, "a reason", MAX_RECORDED)
        wanted = list(dict.fromkeys(keys))
        if FALLBACK_KEY in wanted:
            raise DataError(
                f"'{FALLBACK_KEY}' is the fallback model, not a partition: it is not retired"
            )
        with self._begin() as conn:
            serving = alias_versions_in(conn, wanted, "production")
            lacking = [k for k in wanted if k not in serving]
            already = _retirements(conn, lacking) if lacking else {}
            if refused := [k for k in lacking if k not in already]:
                _refuse_lacking(conn, refused)
            fresh = [k for k in wanted if k in serving]
            at = now()
            moves = {
                k: AliasMove(k, "production", serving[k], None, reason, None, at, "retire")
                for k in fresh
            }
            if fresh:
                self._retire(conn, fresh, serving, at, list(moves.values()))
        return [moves[k] if k in moves else already[k] for k in wanted]

    def _retire(
        self,
        conn: Connection,
        keys: Sequence[str],
        serving: dict[str, int],
        at: str,
        moves: Sequence[AliasMove],
    ) -> None:
        """``retire_aliases``' writes: ``keys``' production rows become ``RETIRED`` ones."""
        born = _created_at(conn, [(k, serving[k]) for k in keys])
        a = t.aliases.c
        for batch in batches(keys):
            conn.execute(
                delete(t.aliases).where(a.alias.in_(["production", RETIRED]), a.key.in_(batch))
            )
        conn.execute(
            insert(t.aliases),
            [
                {
                    "key": k, "alias": RETIRED, "version": serving[k], "updated_at": at,
                    "version_created_at": born.get((k, serving[k])),
                }
                for k in keys
            ],
        )  # fmt: skip
        conn.execute(insert(t.alias_history), [m.row() for m in moves])

    def _move_aliases(
        self,
        conn: Connection,
        moves: list[Move],
        run_id: str | None,
        at: str,
        *,
        created: str | None = None,
    ) -> list[AliasMove]:
        """Write ``moves`` and their history. ``created``: every version moved onto was made
        at that time (``record``'s new ones), so their ``created_at`` is not read back."""
        if not moves:
            return []
        out = []
        for alias in {m[1] for m in moves}:
            group = [m for m in moves if m[1] == alias]
            before = alias_versions_in(conn, [m[0] for m in group], alias)
            updates = [m for m in group if m[0] in before]
            inserts = [m for m in group if m[0] not in before]
            pairs = [(m[0], m[2]) for m in group]
            born = dict.fromkeys(pairs, created) if created else _created_at(conn, pairs)
            if updates:
                conn.execute(
                    update(t.aliases)
                    .where(and_(t.aliases.c.key == bindparam("k"), t.aliases.c.alias == alias))
                    .values(
                        version=bindparam("v"), updated_at=at, version_created_at=bindparam("c")
                    ),
                    [{"k": m[0], "v": m[2], "c": born.get((m[0], m[2]))} for m in updates],
                )
            if inserts and alias == "production":  # back in production: no longer retired
                for batch in batches([m[0] for m in inserts]):
                    a = t.aliases.c
                    conn.execute(delete(t.aliases).where(a.alias == RETIRED, a.key.in_(batch)))
            if inserts:
                conn.execute(
                    insert(t.aliases),
                    [
                        {
                            "key": m[0], "alias": alias, "version": m[2], "updated_at": at,
                            "version_created_at": born.get((m[0], m[2])),
                        }
                        for m in inserts
                    ],
                )  # fmt: skip
            out += [
                AliasMove(k, a, before.get(k), v, r, run_id, at, act) for k, a, v, r, act in group
            ]
        conn.execute(insert(t.alias_history), [m.row() for m in out])
        return out

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


def _retirements(conn: Connection, keys: Sequence[str]) -> dict[str, AliasMove]:
    """Those of ``keys`` retired already (a ``RETIRED`` row), each with the history entry
    that retired it, ``moved`` false: their last ``production`` entries, read by
    ``ix_alias_history_key`` a batch of keys at a time. An entry that is not that
    retirement (the table moved outside the history) is answered from the row itself."""
    a, h = t.aliases.c, t.alias_history.c
    out: dict[str, AliasMove] = {}
    for batch in batches(keys):
        rows = conn.execute(
            select(a.key, a.version, a.updated_at).where(a.alias == RETIRED, a.key.in_(batch))
        ).all()
        if not rows:
            continue
        last = (
            select(func.max(h.id))
            .where(h.alias == "production", h.key.in_([r.key for r in rows]))
            .group_by(h.key)
        )
        entries = {e.key: e for e in conn.execute(select(t.alias_history).where(h.id.in_(last)))}
        for key, version, at in rows:
            entry = entries.get(key)
            if entry is not None and entry.action == "retire" and entry.from_version == version:
                out[key] = dataclasses.replace(move_entity(entry), moved=False)
            else:
                out[key] = AliasMove(
                    key, "production", version, None, "retired", None, at, "retire", moved=False
                )
    return out


def _refuse_lacking(conn: Connection, lacking: Sequence[str]) -> None:
    """Raise for the first of ``lacking`` (keys with no production, none retired): unknown,
    or known and never in production."""
    p = t.partitions.c
    known: set[str] = set()
    for batch in batches(lacking):
        known.update(conn.execute(select(p.key).where(p.key.in_(batch))).scalars())
    unknown = [k for k in lacking if k not in known]
    more = len(unknown or lacking) - 1
    also = f" (and {more} more)" if more else ""
    if unknown:
        raise PartitionNotFound(f"no partition '{unknown[0]}' in the registry{also}")
    raise AliasNotFound(f"partition '{lacking[0]}' has no production version{also}")


def _created_at(conn: Connection, pairs: Sequence[tuple[str, int]]) -> dict[tuple[str, int], str]:
    """The ``created_at`` of each ``(key, version)`` (``aliases.version_created_at``): probes of
    the versions' unique (key, version) index, a batch of keys at a time."""
    c = t.model_versions.c
    wanted = set(pairs)
    out: dict[tuple[str, int], str] = {}
    for batch in batches(sorted(wanted)):
        versions = sorted({v for _, v in batch})
        q = select(c.key, c.version, c.created_at).where(
            c.key.in_([k for k, _ in batch]), c.version.in_(versions)
        )
        out.update(((k, v), at) for k, v, at in conn.execute(q) if (k, v) in wanted)
    return out


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
