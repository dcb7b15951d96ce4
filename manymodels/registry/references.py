"""Which artifacts the registry still references: what ``gc`` must keep and ``doctor`` checks
against the store. A version's model, the global models it names, its training rows; a run's
training data kept in the store; the global models a run may still load.

Apart from ``registry.reads`` (partitions, versions and aliases as entities) because this read
answers one question for one job, over every version at once, and its rules about which
runs' global models stay loadable are gc's, not a reader's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.engine import Connection

from manymodels.registry import schema as t
from manymodels.registry.base import StoreBase
from manymodels.registry.entities import killed
from manymodels.registry.full_runs import current_global, global_runs
from manymodels.registry.rows import members_of


class ReferencesMixin(StoreBase):
    """``SqlStore``'s read of the artifacts something references."""

    def referenced_digests(
        self, *, exclude: Sequence[tuple[str, int]] = (), global_models: bool = True
    ) -> set[str]:
        """Artifacts something references: a version's model, the global models its model
        names (``members_json``) and its training rows (optionally as if ``exclude`` were
        deleted), a run's training data stored as ``artifact:<sha256>``, and, with
        ``global_models``, the global models a run may still load (``_run_global_models``)."""
        c = t.model_versions.c
        gone = set(exclude)
        with self.engine.connect() as conn:
            if not gone:
                out = set(conn.execute(select(c.artifact_sha256).distinct()).scalars())
                q = select(c.data_sha256).where(c.data_sha256.is_not(None)).distinct()
                out |= set(conn.execute(q).scalars())
                q = select(c.members_json).where(c.members_json.is_not(None)).distinct()
                out.update(*(members_of(text) for text in conn.execute(q).scalars()))
            else:
                out = set()
                q = select(c.key, c.version, c.artifact_sha256, c.data_sha256, c.members_json)
                for k, v, sha, data, members in conn.execute(q):
                    if (k, v) not in gone:
                        out.add(sha)
                        out.update(members_of(members))
                        if data is not None:
                            out.add(data)
            q = select(t.runs.c.data_source).where(t.runs.c.data_source.like("artifact:%"))
            out |= {s.removeprefix("artifact:") for s in conn.execute(q).scalars()}
            if global_models:
                out |= _run_global_models(conn)
        return out


def _run_global_models(conn: Connection) -> set[str]:
    """The global models runs recorded (``options["global"]``) that a run may still load,
    though no version chose one: per spec, those of its newest completed full run that
    recorded any, which retraining one partition re-scores (the run
    ``run_globals._current_globals`` picks; without them the retrain would quietly lose its
    global candidate); and a running run's, which its chunks load, unless its process is gone
    from this machine (``entities.killed``). An interrupted or failed run's are not kept (a
    resume fits its own again), nor a superseded run's, beyond the versions that chose them.
    Runs are few (one per job): their options are read whole."""
    r = t.runs.c
    q = global_runs(r.spec_name, r.status, r.options_json)
    out: set[str] = set()
    current: set[str] = set()  # specs whose newest completed full run is counted
    for spec_name, status, text in conn.execute(q):
        options = json.loads(text or "{}")
        models = options.get("global")
        if not models or not isinstance(models, list):
            continue
        shas = {g["sha256"] for g in models if isinstance(g, dict) and g.get("sha256")}
        if status == "running":
            if not killed(status, options):  # a killed run loads nothing
                out |= shas
        elif spec_name not in current and current_global(status, options):
            current.add(spec_name)  # this run, even if every fit failed (nothing is kept then)
            out |= shas
    return out
