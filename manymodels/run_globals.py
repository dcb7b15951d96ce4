"""A run's global models (``[[candidates]] global = true``), fitted before any chunk of
partitions is shipped, and each chunk's share of their validation predictions.

A full run fits every grid point on all partitions' rows (``training.global_tasks``: a task
per fold and one for the refit); retraining named partitions re-scores the last full run's
models on their rows instead. A module apart from ``run_chunks`` because this phase has its
own tasks, its own records on the run (``options["global"]``, which ``gc`` keeps) and its own
reads of an earlier run; ``run_chunks.execute`` only calls ``global_phase`` first and ships
``chunk_slices`` with each chunk.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from manymodels.exceptions import RunTakenOver
from manymodels.execution import Backend
from manymodels.partition import PartitionedTable
from manymodels.registry.client import Registry
from manymodels.registry.run_takeover import taken_over_message
from manymodels.run_plan import RunPlan
from manymodels.signing import global_refusal
from manymodels.spec import Spec
from manymodels.store_outage import stop_if_down
from manymodels.training import global_tasks
from manymodels.training.external import External
from manymodels.training.global_fit import GlobalFit, global_candidates, rescore_global
from manymodels.training.transforms import view

GLOBAL_SUFFIX = " (global)"
"""How a version's candidate list names a global model beside the local candidates."""


def still_ours(reg: Registry, plan: RunPlan, taken_over: threading.Event | None) -> None:
    """``RunTakenOver`` once the heartbeat found the run resumed by another process (the
    pipeline then cancels the backend's rest, as for a refused commit)."""
    if taken_over is not None and taken_over.is_set():
        raise RunTakenOver(taken_over_message(plan.run_id, reg.store.get_run(plan.run_id).options))


def global_phase(
    reg: Registry,
    spec: Spec,
    table: PartitionedTable,
    plan: RunPlan,
    backend: Backend,
    recorded: list[dict[str, Any]],
    run_id: str,
    taken_over: threading.Event | None = None,
) -> tuple[list[GlobalFit], PartitionedTable]:
    """The run's global models, before any chunk: a full run fits each global grid point (a
    task per fold and one for the refit, on every partition's rows); retraining named
    partitions re-scores the last full run's global models on their rows instead. Returns
    them with the table their validation predictions are aligned to. Each model's record (the
    run summary's ``Tally.global_models``) is appended to ``recorded``, and they are recorded
    on the run ``run_id`` (when given) before any chunk loads them."""
    pairs = global_candidates(spec)
    if not pairs or not len(plan.todo):
        return [], table
    fits: list[GlobalFit] = []
    if plan.partial:
        source = plan.todo
        views: dict[str, PartitionedTable] = {spec.transform: source}
        records, seen = _current_globals(reg, spec, source.keys)
        for record in records:
            kind = record["transform"]
            if kind not in spec.transforms:  # a transform the spec no longer lists: no view
                continue
            if kind not in views:
                views[kind] = view(source, spec, kind).table
            refused = global_refusal(reg.signer, record)
            if refused is not None:
                fit = GlobalFit(record["label"], record["estimator"], dict(record["params"]),
                                error=refused)  # fmt: skip
            else:
                fit = rescore_global(views[kind], spec, reg.artifacts, record, seen)
            fits.append(replace(fit, transform=kind))
    else:
        source = table
        # every grid point under every target transform, each a task per fold and one for
        # the refit (``global_tasks``): the table is shipped once and each task builds its
        # transform's view (the driver holds one table, not one per transform)
        grid = [(kind, cand, params) for kind in spec.transforms for cand, params in pairs]
        work = global_tasks.tasks(spec, grid)
        done: list[Any] = [None] * len(work)
        shared = (spec, reg.artifacts, table)
        for i, result in backend.map_unordered(global_tasks.run_task, work, *shared):
            still_ours(reg, plan, taken_over)
            stop_if_down(result, backend, plan.run_id, 0)
            done[i] = result
        each = len(work) // len(grid)
        fits = [
            global_tasks.assemble(
                GlobalFit(c.label, c.estimator, dict(p), transform=k),
                done[at * each : (at + 1) * each], table, spec,
            )
            for at, (k, c, p) in enumerate(grid)
        ]  # fmt: skip
    for f in fits:
        record = {"label": f.label, "estimator": f.estimator, "params": f.params}
        record["transform"] = f.transform
        record |= {"sha256": f.sha256, "size": f.size, "rows": f.rows}
        if reg.signer is not None and f.sha256 is not None:  # what a later retrain loads
            record["signature"] = reg.signer.sign_global(f.sha256)
        record |= {"through": f.through} if f.through is not None else {}
        record |= {"seconds": round(f.seconds, 3), **({"error": f.error} if f.error else {})}
        recorded.append(record)
    if run_id and recorded:
        # on the run before any chunk loads them: ``gc`` keeps a running run's global models
        # (``referenced_digests``) however long its chunks take; during the global phase
        # itself the young-artifact grace covers them
        reg.store.record_run_options(run_id, {"global": recorded}, owner=plan.owner)
    return [f for f in fits if f.error is None and f.val_pred is not None], source


def _current_globals(
    reg: Registry, spec: Spec, keys: Sequence[str]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The global models of the newest completed full run of this spec (``gc`` keeps them:
    ``referenced_digests``), and the last time of each of ``keys`` that run trained: the
    rows those models saw of it."""
    run = reg.store.newest_global_run(spec.name)
    if run is None:
        return [], {}
    # a run before transforms were recorded fitted its spec's (first) transform
    listed = run.spec.get("target_transform", "none")
    first = listed[0] if isinstance(listed, list) else listed
    found = run.options["global"]  # a list: ``current_global``
    records = [{"transform": first, **g} for g in found if isinstance(g, dict) and g.get("sha256")]
    return records, reg.store.last_times(run.run_id, keys) if records else {}


def chunk_slices(
    fits: list[GlobalFit],
    source: PartitionedTable,
    position: dict[str, int],
    chunk: PartitionedTable,
) -> list[External]:
    """Each global model's validation predictions of ``chunk``'s rows only: a chunk ships
    O(its rows), never the whole table's."""
    if not fits:
        return []
    at = position  # each key's partition in ``source``, built once per run
    rows = np.concatenate(
        [np.arange(source.offsets[at[k]], source.offsets[at[k] + 1]) for k in chunk.keys]
    )
    out = []
    for f in fits:
        assert f.sha256 is not None and f.val_pred is not None and f.transform is not None
        label = f"{f.label}{GLOBAL_SUFFIX}"
        pred = f.val_pred[rows]
        out.append(
            External(label, f.estimator, f.params, f.sha256, f.size, pred, f.transform,
                     unscored=f.unscored, own={g: p[rows] for g, p in f.own_pred.items()})
        )  # fmt: skip
    return out
