"""What ``models list``, ``models show``, ``runs list`` and ``runs show`` print, given what they
read: one place for both ways of reading (``Registry``, or the SQLite browser of
``manymodels.cli.fastpath``), so the two can only differ in speed, never in output.

No typer here (``fastpath`` answers without it); ``manymodels.browse_tables`` loads only to
print a table, ``--json`` needs just ``manymodels.jsonout``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from manymodels.jsonout import print_json

if TYPE_CHECKING:
    from manymodels.registry.entities import (
        AliasMove,
        ModelVersion,
        PartitionOutcome,
        PartitionSummary,
        Run,
    )

FAILED = ("failed",)
LOST = ("lost",)  # their task died (a worker, a node, a full disk): `train --resume` trains them
SKIPPED = ("skipped",)


def models_list(
    items: Sequence[PartitionSummary],
    *,
    total: int,
    offset: int,
    json_out: bool,
    fallback: bool = False,
) -> None:
    """``fallback``: the registry holds the fallback model, one of ``total`` (the table says
    so; JSON keeps ``total`` as the count of rows, the fallback among its items by key)."""
    if json_out:
        print_json({"total": total, "offset": offset, "items": [p.to_dict() for p in items]})
    else:
        from manymodels import browse_tables

        browse_tables.partitions_table(items, total=total, offset=offset, fallback=fallback)


def models_show(
    part: PartitionSummary,
    versions: Sequence[ModelVersion],
    history: Sequence[AliasMove],
    *,
    json_out: bool,
    why: Any = None,
) -> None:
    """``why``: the production version's ``manymodels.explain.Explanation``, with --explain."""
    if json_out:
        out: dict[str, Any] = {
            "partition": {k: v for k, v in part.to_dict().items() if k != "production"},
            "versions": [v.to_dict() for v in versions],
            "alias_history": [m.to_dict() for m in history],
        }
        if why is not None:
            out["explain"] = why.to_dict()
        print_json(out)
        return
    from manymodels import browse_tables

    browse_tables.versions_table(part.key, versions)
    prod = next((v for v in versions if "production" in v.aliases), None)
    if prod is not None:
        browse_tables.candidates_table(prod)
    browse_tables.history_table(history)
    if why is not None:
        browse_tables.explanation_table(why)


def runs_list(
    runs: Sequence[Run], lost: Mapping[str, int], *, total: int, offset: int, json_out: bool
) -> None:
    """``lost`` counts each run's lost partitions, which the run's row counts in ``n_failed``:
    the table and ``counts`` (``GET /v1/runs``'s) show them apart. The table says which of
    ``total`` runs it shows ("runs 1–20 of 57"); JSON has the shape of ``models list``'s,
    ``total``, ``offset`` and the page's ``items`` (it was the bare page: a script could not
    tell the last page, nor how many runs there are, but by asking past the end)."""
    if json_out:
        items = [_with_counts(r, lost.get(r.run_id, 0)) for r in runs]
        print_json({"total": total, "offset": offset, "items": items})
    else:
        from manymodels import browse_tables

        browse_tables.runs_table(runs, lost, total=total, offset=offset)


def runs_show(
    run: Run,
    failed: Sequence[PartitionOutcome],
    lost: Sequence[PartitionOutcome],
    skipped: Sequence[PartitionOutcome],
    *,
    n_lost: int,
    json_out: bool,
) -> None:
    if json_out:
        print_json(
            {
                "run": _with_counts(run, n_lost),
                "failed": [o.to_dict() for o in failed],
                "lost": [o.to_dict() for o in lost],
                "skipped": [o.to_dict() for o in skipped],
            }
        )
        return
    from manymodels import browse_tables, console

    browse_tables.run_detail(run, n_lost)
    if failed:
        console.outcomes_table(failed, title="failed partitions")
    if lost:  # an abandoned run's are not resumed (`runs abandon`): a later run trains them
        hint = (
            "the run was abandoned" if run.options.get("abandoned") else "train them with --resume"
        )
        console.outcomes_table(lost, title=f"lost partitions ({hint})")
    if skipped:
        said = "skipped partitions (answered by an earlier version of their own, else the fallback)"
        console.outcomes_table(skipped, title=said)


def _with_counts(run: Run, lost: int) -> dict[str, Any]:
    from manymodels.registry.progress import counted

    return {**run.to_dict(), "counts": counted(run, lost)}
