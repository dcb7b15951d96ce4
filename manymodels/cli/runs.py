"""The ``runs`` group: ``runs list``, ``runs show`` and ``runs abandon`` — training runs browsed,
and an unfinished one given up on. Apart from ``manymodels.cli.registry`` (the commands that
move aliases and collect garbage) as a group of its own."""

from __future__ import annotations

from typing import Annotated

import typer

from manymodels.cli import views
from manymodels.cli.errors import Group
from manymodels.cli.lines import echo
from manymodels.cli.options import (
    DEFAULT_REGISTRY,
    MAX_INT,
    ArtifactsOpt,
    JsonOpt,
    RegistryDbOpt,
    RegistryOpt,
)
from manymodels.cli.registry import _open
from manymodels.reasons import MAX_REASON

runs_app = typer.Typer(
    cls=Group, help="Browse training runs.", no_args_is_help=True, rich_markup_mode=None
)


@runs_app.command("list")
def runs_list(
    registry: RegistryOpt = DEFAULT_REGISTRY,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Rows per page.")] = 20,
    offset: Annotated[int, typer.Option(min=0, max=MAX_INT, help="Rows to skip.")] = 0,
    json_out: JsonOpt = False,
    registry_db: RegistryDbOpt = None,
    artifacts: ArtifactsOpt = None,
) -> None:
    """Training runs, newest first, a page at a time (as `models list`)."""
    with _open(registry, registry_db, artifacts) as reg:
        runs = reg.list_runs(limit=limit, offset=offset)
        total = reg.count_runs()
        lost = reg.store.lost_counts([r.run_id for r in runs])
    views.runs_list(runs, lost, total=total, offset=offset, json_out=json_out)


@runs_app.command("abandon")
def runs_abandon(
    run_id: Annotated[str, typer.Argument(help="Run id (from 'runs list' or 'doctor').")],
    reason: Annotated[
        str | None,
        typer.Option(help=f"Why, recorded on the run (at most {MAX_REASON} characters)."),
    ] = None,
    registry: RegistryOpt = DEFAULT_REGISTRY,
    registry_db: RegistryDbOpt = None,
    artifacts: ArtifactsOpt = None,
) -> None:
    """Give up on an unfinished run that cannot or need not be resumed.

    For a run killed before its data moved on: `doctor` lists it until it is finished or
    abandoned. What it committed stays; a `--resume` of it is then refused."""
    from manymodels.reasons import check_reason
    from manymodels.run_abandon import abandon_run

    check_reason(reason)
    with _open(registry, registry_db, artifacts) as reg:
        run = abandon_run(reg, run_id, reason)
    echo(f"run {run.run_id} abandoned ({run.status}: {run.error})")


@runs_app.command("show")
def runs_show(
    run_id: Annotated[str, typer.Argument(help="Run id (from 'runs list').")],
    registry: RegistryOpt = DEFAULT_REGISTRY,
    json_out: JsonOpt = False,
    registry_db: RegistryDbOpt = None,
    artifacts: ArtifactsOpt = None,
) -> None:
    """One run: inputs, counts, failed and skipped partitions.

    Every failed or skipped partition is listed with its reason."""
    with _open(registry, registry_db, artifacts) as reg:
        run = reg.get_run(run_id)
        failed = reg.store.run_outcomes(run_id, status=views.FAILED)
        lost = reg.store.run_outcomes(run_id, status=views.LOST)
        skipped = reg.store.run_outcomes(run_id, status=views.SKIPPED)
        n_lost = reg.store.lost_counts([run_id]).get(run_id, 0)
    views.runs_show(run, failed, lost, skipped, n_lost=n_lost, json_out=json_out)
