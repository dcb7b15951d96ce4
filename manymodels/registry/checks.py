"""Reads for checking a registry's consistency (``manymodels doctor``): each is one or two
queries over a whole table, so a check costs O(versions) however many partitions there are.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, and_, case, func, literal_column, or_, select, union

from manymodels.feature_schema import Predicts, predicts
from manymodels.registry import schema as t
from manymodels.registry.base import StoreBase
from manymodels.registry.db_clock import db_now
from manymodels.registry.entities import RETIRED, Run
from manymodels.registry.rows import members_of, run_entity

UNFINISHED = ("running", "interrupted")
SCHEMAS_PER_FETCH = 256
"""Rows of feature schemas read at a time (a few kB each) where a check needs one at once."""


class VersionDigests(NamedTuple):
    key: str
    version: int
    artifact_sha256: str
    data_sha256: str | None
    signature: str | None
    feature_schema_json: str  # signed with the digests (``manymodels.signing``)
    members: tuple[str, ...] = ()  # the global models its artifact names (``members_json``)


class ChecksMixin(StoreBase):
    """``SqlStore``'s consistency reads."""

    def global_model_records(self) -> list[tuple[str, dict[str, Any]]]:
        """``(run_id, record)`` of every global model record runs hold (``options["global"]``,
        what ``sign_global_records`` signs), in run order: one scan of the runs table."""
        c = t.runs.c
        q = select(c.run_id, c.options_json).where(c.options_json.like('%"global"%'))
        out: list[tuple[str, dict[str, Any]]] = []
        with self.engine.connect() as conn:
            for run_id, text in conn.execute(q.order_by(c.started_at, c.run_id)):
                records = json.loads(text).get("global")
                if isinstance(records, list):
                    out += [(run_id, r) for r in records if isinstance(r, dict) and r.get("sha256")]
        return out

    def version_digests(self) -> list[VersionDigests]:
        """Every version's model and training-rows digests, its signature and the feature
        schema it signs, in (key, version) order."""
        c = t.model_versions.c
        q = select(
            c.key, c.version, c.artifact_sha256, c.data_sha256, c.signature,
            c.feature_schema_json, c.members_json,
        )  # fmt: skip
        q = q.order_by(c.key, c.version)
        with self.engine.connect() as conn:
            return [VersionDigests(*row[:-1], members_of(row[-1])) for row in conn.execute(q)]

    def records_artifacts(self) -> bool:
        """Whether this database records an artifact written to its store: a version (its
        model, its kept rows) or a router job's stored rows. One ``LIMIT 1`` per table, the
        first on the versions' primary key, whatever the registry's size: a reader told no
        store is found takes a missing directory as an empty store only when this is false
        (``registry.location.store_not_found``)."""
        versions = select(t.model_versions.c.id).limit(1)
        jobs = select(t.jobs.c.seq).where(t.jobs.c.data_json.is_not(None)).limit(1)
        with self.engine.connect() as conn:
            return any(conn.execute(q).first() is not None for q in (versions, jobs))

    def sample_artifacts(self, n: int = 3) -> list[tuple[str, int, str]]:
        """``(key, version, artifact sha256)`` of up to ``n`` versions, production ones first
        (what a router serves), others when none is in production: models the artifact store
        must hold (``registry.ownership.check_store``). Two queries at most, each stopping at
        ``n`` rows, whatever the registry's size."""
        a, v = t.aliases.c, t.model_versions.c
        production = (
            select(v.key, v.version, v.artifact_sha256)
            .select_from(
                t.aliases.join(t.model_versions, and_(v.key == a.key, v.version == a.version))
            )
            .where(a.alias == "production")
            .limit(n)
        )
        with self.engine.connect() as conn:
            found = conn.execute(production).all()
            if not found:
                found = conn.execute(select(v.key, v.version, v.artifact_sha256).limit(n)).all()
        return [(k, ver, sha) for k, ver, sha in found]

    def count_aliases(self) -> tuple[int, int]:
        """``(aliases, retired)``: the alias rows a user set or a run moved, and apart the
        ``RETIRED`` rows, one per retired partition — counted among the first, a retirement
        read as one alias more where a partition had left production. One scan."""
        a = t.aliases.c
        retired = func.coalesce(func.sum(case((a.alias == RETIRED, 1), else_=0)), 0)
        with self.engine.connect() as conn:
            total, gone = conn.execute(select(func.count(), retired).select_from(t.aliases)).one()
        return int(total) - int(gone), int(gone)

    def dangling_aliases(self) -> list[tuple[str, str, int]]:
        """``(key, alias, version)`` of every alias pointing at a version with no row."""
        a, v = t.aliases.c, t.model_versions.c
        q = (
            select(a.key, a.alias, a.version)
            .select_from(
                t.aliases.outerjoin(t.model_versions, and_(v.key == a.key, v.version == a.version))
            )
            .where(v.id.is_(None))
            .order_by(a.key, a.alias)
        )
        with self.engine.connect() as conn:
            return [(k, al, ver) for k, al, ver in conn.execute(q)]

    def production_targets(self) -> list[tuple[str, str, int, str | None]]:
        """``(spec name, key, version, target)`` of every production version, in key order:
        what ``doctor`` asks of a spec's production (one target). One join over the aliases,
        its rows read a page at a time (PostgreSQL: a server-side cursor), as each schema's
        text is needed only until its target is known: 100,000 of them held at once would
        be every schema's text in memory. A schema is parsed only when it does not say what
        the one before predicts (``feature_schema.predicts``): 100,000 parses cost ~2 s."""
        a, v, r = t.aliases.c, t.model_versions.c, t.runs.c
        q = (
            select(r.spec_name, a.key, v.version, v.feature_schema_json)
            .select_from(
                t.aliases.join(t.model_versions, and_(v.key == a.key, v.version == a.version)).join(
                    t.runs, r.run_id == v.run_id
                )
            )
            .where(a.alias == "production")
            .order_by(a.key)
        )
        out: list[tuple[str, str, int, str | None]] = []
        last: Predicts | None = None
        paged = {"yield_per": SCHEMAS_PER_FETCH}
        with self.engine.connect() as conn, conn.execute(q, execution_options=paged) as rows:
            for spec, key, version, text in rows:
                last = predicts(text, last)
                out.append((spec, key, version, last.target))
        return out

    def unfinished_runs(self) -> list[tuple[Run, int]]:
        """Runs a ``--resume`` would finish, oldest first, each with its count of ``lost``
        partitions: still marked running (killed, or training now), interrupted, finished
        with partitions lost to infrastructure faults, or failed before every partition had an
        outcome (a registry write that failed mid-run: a full disk, a database gone; its row's
        counts say how many it recorded). Not a run given up on (``manymodels runs abandon``)."""
        rp, r = t.run_partitions.c, t.runs.c
        is_lost = rp.status == literal_column("'lost'")  # a literal: what the partial index says
        # the candidates, each an index range (never a scan of every run, every outcome): the
        # runs marked running / interrupted / failed (``ix_runs_status``) and those with a
        # lost partition (``ix_run_partitions_lost``, whose predicate is said word for word)
        marked: ColumnElement[bool] = r.status.in_((*UNFINISHED, "failed"))
        if self.engine.dialect.name == "sqlite":
            # few of all runs, as SQLite cannot know: after an ``ANALYZE`` its statistics say
            # a status matches a share of every run, and it would scan them all instead
            marked = func.unlikely(marked)  # untyped: a Boolean type would add "= 1"
        candidates = union(
            select(r.run_id).where(marked),
            select(rp.run_id).where(is_lost),
        )
        lost = (
            select(func.count()).where(rp.run_id == r.run_id, is_lost).scalar_subquery()
        )  # one index seek a candidate
        found = select(t.runs, lost.label("n_lost")).where(r.run_id.in_(candidates)).subquery()
        f = found.c
        recorded = f.n_trained + f.n_skipped + f.n_failed + f.n_lost
        cut_short = and_(f.status == "failed", recorded < f.n_partitions)
        q = select(found).where(or_(f.status.in_(UNFINISHED), f.n_lost > 0, cut_short))
        with self.engine.connect() as conn:
            at = db_now(conn)  # heartbeats are judged by the database's clock (``Run.read_at``)
            runs = [(run_entity(row, at), int(row[-1])) for row in conn.execute(q)]
        # oldest first, sorted here: an ORDER BY would lead SQLite to walk ``ix_runs_started``
        # — every run — to skip a sort of the few found
        runs.sort(key=lambda found: found[0].started_at)
        return [(run, n) for run, n in runs if not run.options.get("abandoned")]

    def count_runs(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(t.runs)).scalar_one())
