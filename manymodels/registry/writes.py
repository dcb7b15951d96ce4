"""Writes to the SQL store: versions and their alias moves, signatures, pruning (the moves
themselves: ``alias_moves``).

Writes come in batches (one transaction per finished chunk of partitions), because a
per-partition transaction would make the registry the bottleneck at 100,000 partitions. Every
write here is a single transaction: a version row, its alias move and its run record land
together or not at all.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, delete, insert, or_, select, update
from sqlalchemy.engine import Connection

from manymodels.exceptions import RegistryError
from manymodels.registry import holiday_rows
from manymodels.registry import schema as t
from manymodels.registry.alias_moves import AliasMovesMixin
from manymodels.registry.base import put_meta
from manymodels.registry.bulk import _insert_rows
from manymodels.registry.engine import Move, batches, now
from manymodels.registry.entities import RETIRED, NewVersion, PartitionOutcome
from manymodels.registry.named import alias_versions_in
from manymodels.registry.retention import Pruned, past_retention
from manymodels.registry.rows import (
    VERSION_COLUMNS,
    JsonMemo,
    encode_json,
    version_row,
)
from manymodels.registry.run_takeover import refuse_if_taken
from manymodels.signing import OLD_SCHEME, SIGNED_META, Signer

VERSIONS_DELETED = "versions_deleted"
"""The ``meta`` row ``prune_versions`` rewrites in the transaction that deletes versions: a
router holding models in memory re-checks the versions it holds when it changes
(``serving.deletions``), rather than answering ``?version=N`` of a deleted one from memory."""


class Recorded(dict[str, int]):
    """What ``record`` registered: ``{key: new version}``, the keys whose promotion verdict
    it ``overruled`` because production moved during their run (each stored as not promoted,
    and its version made the candidate): a run's summary must not count them as promoted, and
    the keys ``returned`` to production from a retirement (``retire``): a summary that counted
    them as new partitions told a user who retired 40 stores that 40 stores were new."""

    def __init__(
        self,
        numbers: Mapping[str, int],
        overruled: Iterable[str] = (),
        returned: Iterable[str] = (),
    ) -> None:
        super().__init__(numbers)
        self.overruled = frozenset(overruled)
        self.returned = frozenset(returned)


class WritesMixin(AliasMovesMixin):
    """``SqlStore``'s writes: each method is one write transaction."""

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
        owner: str | None = None,
    ) -> Recorded:
        """Register a chunk's results in one transaction; returns ``{key: new version}``.

        A partition with no ``production`` alias gets it (reason "first version", or, for one
        retired (``retire_aliases``), "back in production after its retirement from vN": its
        stored ``evaluation`` says so too, with ``retired_from``, and its key is in
        ``Recorded.returned``); otherwise the
        new version is promoted when ``promote(version)`` gives a reason, or else gets
        ``candidate_alias``. A verdict is only applied while production still points at the
        champion it was made against (``evaluation["champion_version"]``): if production moved
        during the run (another run's promotion, a manual one or a rollback), the new version
        becomes a candidate, and its stored ``evaluation`` says so (``promote`` false, the
        verdict it had in ``overruled``; the key in ``Recorded.overruled``). ``count=False``
        keeps the run's partition counts unchanged (the fallback model is not one of the
        partitions). With a signing key (``self.signer``), each version's row carries the
        signature of its digests from the start. With ``owner`` (the run's process), nothing is
        written once another process resumed the run (``RunTakenOver``): a frozen process
        woken after a takeover would record its partitions a second time.
        """
        with self._begin() as conn:
            refuse_if_taken(conn, run_id, owner)
            stamp = now()  # under the write lock: stamps follow commit order
            keys = [v.key for v in versions]
            latest = self._latest_versions(conn, keys)
            production = alias_versions_in(conn, keys, "production")
            # only a known key with nothing in production can be retired: usually none, and
            # then no statement (the retired rows are read in batches, as production's)
            unserved = [k for k in keys if k in latest and k not in production]
            retired = alias_versions_in(conn, unserved, RETIRED) if unserved else {}
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
            moves: list[Move] = []
            overruled: set[str] = set()
            written: list[NewVersion] = []
            for v in versions:
                reason = promote(v) if promote and v.key in production else None
                if v.key in retired:
                    v = _returned(v, retired[v.key])
                    back = str(v.evaluation["reason"])
                    moves.append((v.key, "production", new_numbers[v.key], back, "first"))
                elif v.key not in production:
                    moves.append(
                        (v.key, "production", new_numbers[v.key], "first version", "first")
                    )
                elif reason and (moved := _moved_since_planned(v, production[v.key])):
                    why = f"not promoted: {moved}; the verdict was '{reason}'"
                    v = _overruled(v, why, reason)
                    overruled.add(v.key)
                    if candidate_alias:
                        moves.append((v.key, candidate_alias, new_numbers[v.key], why, "new"))
                elif reason:
                    moves.append((v.key, "production", new_numbers[v.key], reason, "policy"))
                elif candidate_alias:
                    moves.append((v.key, candidate_alias, new_numbers[v.key], "new version", "new"))
                written.append(v)
            if written:
                written, sets = holiday_rows.by_hash(written)  # each set once, by its hash
                if sets:
                    holiday_rows.keep(conn, sets)
                if self.signer is not None:
                    _mark_signed(conn, self.signer)
                libraries_json, memo = encode_json(libraries), JsonMemo()
                _insert_rows(
                    conn,
                    t.model_versions,
                    VERSION_COLUMNS,
                    [
                        version_row(
                            v, new_numbers[v.key], run_id, stamp, libraries_json, memo, self.signer
                        )
                        for v in written
                    ],
                )
            self._move_aliases(conn, moves, run_id, stamp, created=stamp)  # new versions only
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
                return Recorded(new_numbers, overruled, retired)
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
        return Recorded(new_numbers, overruled, retired)

    def sign_unsigned(self, signer: Signer) -> list[tuple[str, int]]:
        """Sign every version that has no signature, and re-sign those whose signature is in
        the old format (which did not cover the feature schema) when it verifies with this
        key, in one transaction; returns their ``(key, version)``. Any other signature is
        never replaced: one that does not verify may mark an altered row, and signing it
        again would vouch for it."""
        c = t.model_versions.c
        q = select(
            c.id, c.key, c.version, c.artifact_sha256, c.data_sha256, c.signature,
            c.feature_schema_json,
        ).where(or_(c.signature.is_(None), c.signature.like(f"{OLD_SCHEME}:%")))  # fmt: skip
        with self._begin() as conn:
            signed: list[tuple[str, int]] = []
            params: list[dict[str, Any]] = []
            for r in conn.execute(q.order_by(c.key, c.version)):
                digests = (r.key, r.version, r.artifact_sha256, r.data_sha256)
                sig = (
                    signer.sign(*digests, r.feature_schema_json)
                    if r.signature is None
                    else signer.upgrade(r.signature, *digests, r.feature_schema_json)
                )
                if sig is not None:
                    params.append({"row": r.id, "sig": sig})
                    signed.append((r.key, r.version))
            if params:
                conn.execute(
                    update(t.model_versions)
                    .where(c.id == bindparam("row"))
                    .values(signature=bindparam("sig")),
                    params,
                )
                _mark_signed(conn, signer)
        return signed

    def sign_global_records(self, signer: Signer) -> int:
        """Sign the global model records of runs (``options["global"]``) that carry no
        signature — recorded before a key was set, or before records were signed — in one
        transaction; returns how many. A retrain with a key loads only a global model its
        record's signature vouches for (``signing.global_refusal``). A record that has a
        signature is never re-signed, as for versions."""
        c = t.runs.c
        q = select(c.run_id, c.options_json).where(c.options_json.like('%"global"%'))
        with self._begin() as conn:
            params: list[dict[str, Any]] = []
            count = 0
            for run_id, text in conn.execute(q):
                options = json.loads(text)
                records = options.get("global")
                if not isinstance(records, list):
                    continue
                fresh = [
                    r for r in records
                    if isinstance(r, dict) and r.get("sha256") and "signature" not in r
                ]  # fmt: skip
                for r in fresh:
                    r["signature"] = signer.sign_global(str(r["sha256"]))
                if fresh:
                    params.append({"run": run_id, "text": json.dumps(options)})
                    count += len(fresh)
            if params:
                conn.execute(
                    update(t.runs).where(c.run_id == bindparam("run"))
                    .values(options_json=bindparam("text")),
                    params,
                )  # fmt: skip
        return count

    def prune_versions(
        self, keep: int, *, dry_run: bool = False, moved_since: str | None = None
    ) -> Pruned:
        """Delete versions older than each partition's ``keep`` newest, except aliased ones,
        each partition's newest version that kept its training rows (``train --append``
        builds on them: after an MLflow import, which keeps none, ``gc --keep 1`` deleted the
        history), and, with ``moved_since`` (a timestamp as ``now()`` writes them), any
        version an alias moved onto or off after it: a router may still be serving it until
        it re-reads the alias.

        One transaction, which also deletes the deleted versions' actuals windows
        (``monitor_actuals``); returns ``(key, version, sha256)`` of what was (or would be)
        deleted, and how many versions the alias grace spared — split from the same one read
        (``retention.past_retention``): ``gc`` says what it kept and why, and a second query
        to count them was a second full scan.
        A dry run only reads, outside the write lock.
        """
        if keep < 1:
            raise RegistryError("retention must keep at least 1 version per partition")
        q = past_retention(keep, moved_since)
        if dry_run:  # a read: it must not hold the write lock, nor wait for it
            with self.engine.connect() as conn:
                past = conn.execute(q).all()
            return _split(past)
        with self._begin() as conn:
            past = conn.execute(q).all()
            doomed = [r for r in past if not r.spared]
            if doomed:
                ids = [r.id for r in doomed]
                for batch in batches(ids):
                    conn.execute(delete(t.model_versions).where(t.model_versions.c.id.in_(batch)))
                # their live-error windows go with them: nothing reads a deleted version's, and
                # kept, a partition's grew by up to 14 day rows per version it ever had
                a = t.monitor_actuals.c
                conn.execute(
                    delete(t.monitor_actuals).where(
                        a.key == bindparam("k"), a.version == bindparam("v")
                    ),
                    [{"k": r.key, "v": r.version} for r in doomed],
                )
                mark = f"{now()} {uuid.uuid4().hex[:8]}"  # any new value will do: compared only
                put_meta(conn, VERSIONS_DELETED, mark)
        return _split(past)

    def _latest_versions(self, conn: Connection, keys: Sequence[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        c = t.partitions.c
        for batch in batches(keys):
            out.update(conn.execute(select(c.key, c.latest_version).where(c.key.in_(batch))).all())
        return out


def _split(past: Sequence[Any]) -> Pruned:
    """Rows of ``past_retention`` as what a prune deletes and how many the grace spared."""
    deleted = [(r.key, r.version, r.artifact_sha256) for r in past if not r.spared]
    return Pruned(deleted=deleted, spared=len(past) - len(deleted))


def _overruled(v: NewVersion, why: str, verdict: str) -> NewVersion:
    """``v`` as stored when its promotion verdict no longer applies: not promoted, and why."""
    evaluation = {**v.evaluation, "promote": False, "reason": why, "overruled": verdict}
    return dataclasses.replace(v, evaluation=evaluation)


def _returned(v: NewVersion, retired: int) -> NewVersion:
    """``v`` as stored when it puts a retired partition back in production: uncompared, as a
    first version is, and saying from which retirement (``Decision.outcome`` reads
    ``returned``)."""
    why = f"back in production after its retirement from v{retired}"
    evaluation = {**v.evaluation, "promote": True, "reason": why, "retired_from": retired}
    return dataclasses.replace(v, evaluation=evaluation)


def _moved_since_planned(v: NewVersion, current: int) -> str | None:
    """Why a promotion verdict no longer applies, or ``None`` if it does: the verdict compared
    the new version against the production version of when the run was planned."""
    if v.decision is None or "champion_version" not in v.evaluation:
        return None  # no comparison recorded: nothing to compare (a direct store call)
    planned = v.decision.champion_version
    if planned == current:
        return None
    against = f"v{planned}" if planned is not None else "no production version"
    return f"production moved during the run (evaluated against {against}, now v{current})"


# Column order of the tuples record() builds (each table's own order, as INSERT compiles it).
_PARTITION_COLUMNS = ("key", "key_json", "latest_version", "created_at", "updated_at")
_RUN_PARTITION_COLUMNS = (
    "run_id", "key", "status", "version", "error_type", "message", "n_rows", "data_fingerprint",
)  # fmt: skip


def _mark_signed(conn: Connection, signer: Signer) -> None:
    """Record in ``meta`` that the registry holds signed versions (the key id of the first
    signature written), so a process opening it without a key can say nothing is verified."""
    marked = select(t.meta.c.name).where(t.meta.c.name == SIGNED_META)
    if conn.execute(marked).first() is None:
        conn.execute(insert(t.meta).values(name=SIGNED_META, value=signer.key_id))
