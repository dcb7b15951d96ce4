"""Runs in the SQL store: create, finish and reopen them; read them and their outcomes."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from manymodels.exceptions import DataError, RunNotFound, RunTakenOver
from manymodels.feature_schema import FeatureSchema
from manymodels.registry import full_runs
from manymodels.registry import schema as t
from manymodels.registry.base import StoreBase, meta_value, put_meta
from manymodels.registry.db_clock import db_now
from manymodels.registry.engine import batches, dumps, now
from manymodels.registry.entities import PartitionOutcome, Run
from manymodels.registry.firing_runs import note_firing_run
from manymodels.registry.rows import run_entity
from manymodels.registry.run_takeover import refuse_if_taken, stored_options, taken_from
from manymodels.run_busy import refuse_if_busy, training_now, training_run_in
from manymodels.stamps import seconds_between


class RunsMixin(StoreBase):
    """``SqlStore``'s runs: one row per run, one ``run_partitions`` row per outcome."""

    # ---------------------------------------------------------------------------- runs
    def create_run(self, run: Run, *, alone: bool = False) -> None:
        """Insert the run; the first run also records the key columns (``partition_by``) so
        keys given as mappings can be put in canonical column order. So does a run into a
        registry that holds no partition yet (its first runs trained nothing: every partition
        failed, or it was stopped first): the keys recorded are no partition's, and kept they
        refused every spec keyed otherwise ("holds partitions keyed by …") and made ``score``
        and ``POST /v1/predict`` ask for the wrong columns. Not while a run that keyed it so
        is still training (``_refuse_keys_in_training``).

        ``alone``: ``RunBusy`` if a run of the spec is training (``run_busy``), read under
        the write lock that covers the insert (SQLite's ``BEGIN IMMEDIATE``, PostgreSQL's
        advisory lock): two runs started at the same instant both passed a check made
        before it, and trained the same partitions twice."""
        keys = run.spec.get("partition_by")
        with self._begin() as conn:
            if alone:
                refuse_if_busy(training_run_in(conn, run.spec_name))
            known = meta_value(conn, "partition_by")
            stale = (
                known is not None
                and keys
                and json.loads(known) != list(keys)
                and conn.execute(select(t.partitions.c.key).limit(1)).first() is None
            )
            if stale and keys:
                _refuse_keys_in_training(conn, json.loads(str(known)), list(keys), run.spec_name)
            if (known is None or stale) and keys:
                put_meta(conn, "partition_by", dumps(keys))
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
                    heartbeat_at=db_now(conn) if run.status == "running" else None,
                )
            )
            note_firing_run(conn, run.run_id, run.options)

    def beat(self, run_id: str, owner: str | None = None) -> bool:
        """A running run's heartbeat (``manymodels.heartbeat``): its process is alive now.
        ``False``, and nothing written, once the run is another process's (``owner`` no
        longer the recorded one): a process that wakes after a resume elsewhere must not
        make the run look as if it still beat for it."""
        with self._begin() as conn:
            if taken_from(conn, run_id, owner):
                return False
            conn.execute(
                update(t.runs)
                .where(t.runs.c.run_id == run_id, t.runs.c.status == "running")
                .values(heartbeat_at=db_now(conn))
            )
        return True

    def finish_run(
        self,
        run_id: str,
        status: str,
        *,
        error: str | None = None,
        options: Mapping[str, Any] | None = None,
        owner: str | None = None,
        seen: tuple[str, str | None] | None = None,
    ) -> Run:
        """Close a run; ``options`` are merged into the options it was created with. With
        ``owner``, only while the run is still that process's (else ``RunTakenOver``); with
        ``seen``, only while its status and heartbeat are those the caller judged it by."""
        with self._begin() as conn:
            refuse_if_taken(conn, run_id, owner)
            if seen is not None:
                row = conn.execute(select(t.runs).where(t.runs.c.run_id == run_id)).first()
                if row is not None and (row.status, row.heartbeat_at) != seen:
                    raise RunTakenOver(f"run {run_id} changed while this process looked at it")
            values: dict[str, Any] = {"status": status, "ended_at": now(), "error": error}
            if options:
                values["options_json"] = _merged(conn, run_id, options)
            conn.execute(update(t.runs).where(t.runs.c.run_id == run_id).values(**values))
            full_runs.record_full(conn, run_id)
        return self.get_run(run_id)

    def record_run_options(
        self, run_id: str, options: Mapping[str, Any], owner: str | None = None
    ) -> None:
        """Merge ``options`` into a run's while it runs: what it has made that something may
        load before it ends (its global models, which ``referenced_digests`` then keeps).
        With ``owner``, only while the run is still that process's (else ``RunTakenOver``):
        a stale process would replace the global models its successor recorded."""
        with self._begin() as conn:
            refuse_if_taken(conn, run_id, owner)
            conn.execute(
                update(t.runs)
                .where(t.runs.c.run_id == run_id)
                .values(options_json=_merged(conn, run_id, options))
            )
            full_runs.record_full(conn, run_id)

    def reopen_run(
        self,
        run_id: str,
        n_partitions: int,
        owner: str | None = None,
        *,
        seen: tuple[str, str | None] | None = None,
        host: str | None = None,
    ) -> set[str]:
        """Mark an interrupted run as running again, for resume; its ``lost`` partitions are
        forgotten (and uncounted) so they can be trained and recorded again (an outcome is one
        row per run and key). Progress stays monotonic through this: a ``lost`` partition
        never counted as done (``registry.progress``), so forgetting it takes nothing away.
        The options record when the run was resumed and how many partitions were settled then
        (``resumed_at``, ``done_at_resume``): the rate and ETA of a resumed run are measured
        from there, not across the pause; and the process that runs it now (``owner``) and
        its host (``host``: ``None`` for unknown; named by ``RunBusy`` and a takeover).
        ``seen`` — the status and heartbeat the caller judged the run by — makes the reopen
        conditional: two processes resuming one silent run at once, one is refused
        (``RunTakenOver``), as the writes are serialised. Returns the keys the run has
        recorded (``recorded_keys``), read in the same transaction: a process that committed
        a chunk between the caller's look and this reopen cannot have its partitions trained
        again, and none can commit after it (``record`` checks the owner)."""
        c = t.run_partitions.c
        lost = and_(c.run_id == run_id, c.status == "lost")
        with self._begin() as conn:
            n_lost = conn.execute(select(func.count()).where(lost)).scalar_one()
            conn.execute(delete(t.run_partitions).where(lost))
            row = conn.execute(select(t.runs).where(t.runs.c.run_id == run_id)).first()
            if seen is not None and row is not None and (row.status, row.heartbeat_at) != seen:
                raise RunTakenOver(
                    f"run {run_id} changed while this process looked at it (another process "
                    "resumed it, or it was still running): see `manymodels runs show "
                    f"{run_id}` before resuming it"
                )
            options = json.loads(row.options_json or "{}") if row is not None else {}
            if row is not None:
                settled = row.n_trained + row.n_skipped + row.n_failed - n_lost
                options |= {"resumed_at": now(), "done_at_resume": settled}
                options |= {"owner": owner, "host": host} if owner else {}
            conn.execute(
                update(t.runs)
                .where(t.runs.c.run_id == run_id)
                .values(
                    status="running", ended_at=None, error=None, n_partitions=n_partitions,
                    n_failed=t.runs.c.n_failed - n_lost, options_json=dumps(options),
                    heartbeat_at=db_now(conn),
                )
            )  # fmt: skip
            return _recorded(conn, run_id)

    def get_run(self, run_id: str) -> Run:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.runs).where(t.runs.c.run_id == run_id)).first()
            at = db_now(conn) if row is not None else None
        if row is None:
            raise RunNotFound(f"no run with id '{run_id}'")
        return run_entity(row, at)

    def list_runs(self, *, limit: int = 50, offset: int = 0) -> list[Run]:
        """Runs newest first (by start, then id, as ``runs_page``: runs that started in the
        same instant keep one order from page to page), along ``ix_runs_started``."""
        r = t.runs.c
        q = select(t.runs).order_by(r.started_at.desc(), r.run_id.desc())
        q = q.limit(limit).offset(offset)
        with self.engine.connect() as conn:
            at = db_now(conn)
            return [run_entity(r, at) for r in conn.execute(q)]

    def live_runs_since(self) -> tuple[str, str] | None:
        """The oldest run that may still be training, and when it started: ``gc`` keeps what
        is younger than that, for a run writes its artifacts before their versions (and holds
        them longer while it pools its intervals). Such a run is marked running and its
        process is alive on this machine, or, where that cannot be told, it beat within
        ``STILL_TRAINING`` (silence is no proof of death; a day of it, and a run from before
        heartbeats that nothing here can vouch for, no longer keeps everything young).
        Runs are few; the running ones, fewer."""
        q = select(t.runs).where(t.runs.c.status == "running")
        with self.engine.connect() as conn:
            at = db_now(conn)
            runs = [run_entity(r, at) for r in conn.execute(q)]
        live = [(r.started_at, r.run_id) for r in runs if _still_training(r)]
        if not live:
            return None
        started, run_id = min(live)
        return run_id, started

    def newest_global_run(self, spec_name: str) -> Run | None:
        """The newest completed full run of ``spec_name`` that recorded global models (the
        ones retraining named partitions re-scores, and ``gc`` keeps: ``current_global``)."""
        return self.newest_full_run(spec_name, "global")

    def newest_full_run(
        self, spec_name: str, option: str, usable: Callable[[Run], bool] | None = None
    ) -> Run | None:
        """The newest completed full run of ``spec_name`` that recorded ``option`` (``"global"``:
        ``current_global``; a run's interval pool) and that ``usable`` accepts, looked up by
        spec — runs of other specs cannot push it out of sight, as they did out of the newest
        50 runs of every spec. Two primary-key reads: the spec's pointer to its newest full
        run (``full_runs``), and that run; one-partition retrains since, which record the
        option too, are not walked (each retrain looking up its pool walked all the earlier
        ones: O(R²) reads over R retrains)."""
        return full_runs.newest_full(self, spec_name, option, usable)

    def last_times(self, run_id: str, keys: Sequence[str]) -> dict[str, Any]:
        """Each of ``keys``' last training time in the version ``run_id`` made of it (its
        feature schema's ``history``), where it made one: the rows of that partition a
        global model fitted by that run saw (``global_fit.rescore_global``)."""
        c = t.model_versions.c
        out: dict[str, Any] = {}
        with self.engine.connect() as conn:
            for batch in batches(list(keys)):
                q = select(c.key, c.feature_schema_json).where(c.run_id == run_id, c.key.in_(batch))
                for key, text in conn.execute(q):
                    history = FeatureSchema.from_json(text).history
                    if history is not None and history.time is not None:
                        out[key] = history.time
        return out

    def run_outcomes(
        self,
        run_id: str,
        *,
        status: str | tuple[str, ...] | None = None,
        limit: int = 1000,
        key: str | None = None,
    ) -> list[PartitionOutcome]:
        c = t.run_partitions.c
        q = select(t.run_partitions).where(c.run_id == run_id)
        if key is not None:
            q = q.where(c.key == key)
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

    def run_progress(self, run_id: str) -> dict[str, int]:
        """Recorded outcomes of one run counted by status (trained, failed, skipped, lost...):
        one GROUP BY along ``ix_run_partitions_outcome`` (run_id, status, key), so a dashboard
        polling a running run reads O(statuses), never the outcomes of other runs. The
        pipeline records outcomes per chunk as chunks finish, so this moves chunk by chunk."""
        c = t.run_partitions.c
        q = select(c.status, func.count()).where(c.run_id == run_id).group_by(c.status)
        with self.engine.connect() as conn:
            return {str(s): int(n) for s, n in conn.execute(q)}

    def runs_page(self, *, limit: int = 50, after: str | None = None) -> list[Run]:
        """Runs newest first (by start, then id), a page after the run ``after`` (keyset:
        its start is read back, ``RunNotFound`` when it is not a run), along ``ix_runs_started``."""
        r = t.runs.c
        q = select(t.runs).order_by(r.started_at.desc(), r.run_id.desc()).limit(limit)
        with self.engine.connect() as conn:
            if after is not None:
                start = conn.execute(select(r.started_at).where(r.run_id == after)).scalar()
                if start is None:
                    raise RunNotFound(f"no run with id '{after}'")
                q = q.where(
                    or_(r.started_at < start, and_(r.started_at == start, r.run_id < after))
                )
            at = db_now(conn)
            return [run_entity(row, at) for row in conn.execute(q)]

    def lost_counts(self, run_ids: Sequence[str]) -> dict[str, int]:
        """``lost`` outcomes per run, for the runs named: a range of ``ix_run_partitions_outcome``
        each (O(lost), usually nothing), never the runs' every outcome."""
        if not run_ids:
            return {}
        c = t.run_partitions.c
        q = (
            select(c.run_id, func.count())
            .where(and_(c.run_id.in_(list(run_ids)), c.status == "lost"))
            .group_by(c.run_id)
        )
        with self.engine.connect() as conn:
            return {str(run): int(n) for run, n in conn.execute(q)}

    def outcome_status(self, run_id: str, key: str) -> str | None:
        """The status one key recorded in a run (a primary-key read), or ``None``."""
        c = t.run_partitions.c
        q = select(c.status).where(and_(c.run_id == run_id, c.key == key))
        with self.engine.connect() as conn:
            found = conn.execute(q).scalar()
        return None if found is None else str(found)

    def recorded_keys(self, run_id: str) -> set[str]:
        """Keys with an outcome in this run: what a resumed run skips (not ``lost`` ones,
        whose task died: those are trained again)."""
        with self.engine.connect() as conn:
            return _recorded(conn, run_id)


def _recorded(conn: Connection, run_id: str) -> set[str]:
    c = t.run_partitions.c
    q = select(c.key).where(and_(c.run_id == run_id, c.status != "lost"))
    return set(conn.execute(q).scalars())


def _merged(conn: Connection, run_id: str, options: Mapping[str, Any]) -> str:
    """The run's options with ``options`` merged in, as stored."""
    return dumps({**stored_options(conn, run_id), **options})


STILL_TRAINING = 86_400.0
"""Seconds of heartbeat silence after which a running run no longer keeps ``gc`` off
everything written since it started."""


def _still_training(run: Run) -> bool:
    """Whether ``run`` may still be writing artifacts, for ``gc`` only (``live_runs_since``):
    its process alive here, or a heartbeat within ``STILL_TRAINING`` — stamped ahead of this
    clock too, however far. Not ``run_busy.training_now`` on purpose: to which a beat stamped
    ahead past the silence limit (a clock running ahead where the run trains) proves nothing,
    so that it blocks no run. Here it errs the safe way: counted alive, the run keeps gc off
    what was written since it started until this clock passes its beat by a day, where
    taking it for dead could delete the artifacts of a run training on that machine."""
    if run.status != "running" or run.killed:
        return False
    if run.owner_alive:
        return True
    if not run.heartbeat_at:
        return False
    silence = seconds_between(run.judged_at(), run.heartbeat_at)
    return silence is not None and silence < STILL_TRAINING


def _refuse_keys_in_training(
    conn: Connection, known: list[str], keys: list[str], spec_name: str
) -> None:
    """``DataError`` for a run keyed by ``keys`` into a registry keyed ``known`` by a run that
    is still training (``run_busy.training_now``: alive on this machine, or beating elsewhere
    — a heartbeat stamped ahead of this clock past the silence limit proves nothing here as
    it proves nothing to ``RunBusy``; counted, it refused every other keying until this clock
    caught up) and has committed no partition yet. Two first runs into an empty registry
    keyed differently each found no partition and both trained: the second took the
    registry's key columns from the first while it trained, and the registry held partitions
    of both keyings. Read under the write lock ``create_run`` holds, so one of two racing
    runs keys the registry and the other is refused. Reads the running runs only (few)."""
    running = conn.execute(select(t.runs).where(t.runs.c.status == "running"))
    at = db_now(conn)
    for found in (run_entity(r, at) for r in running):
        if found.spec.get("partition_by") != known:
            continue
        if training_now(found):
            raise DataError(
                f"run {found.run_id} of spec '{found.spec_name}' is training into this "
                f"registry, keyed by {', '.join(known)}; spec '{spec_name}' keys its "
                f"partitions by {', '.join(keys)}: train it into a registry of its own "
                "(--registry DIR)"
            )
