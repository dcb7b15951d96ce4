"""The commands that move a partition's production alias: ``promote``, ``rollback`` and
``retire`` (the registry's other commands: ``manymodels.cli.registry``).

Each opens the registry, makes one move (all or none, for ``retire``'s several partitions) and
prints it as one line per partition, or ``--json``; the router's admin routes make the same
moves through ``Registry``.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from manymodels.cli.options import (
    DEFAULT_REGISTRY,
    MAX_INT,
    ArtifactsOpt,
    JsonOpt,
    RegistryDbOpt,
    RegistryOpt,
)
from manymodels.cli.registry import ONE_LINE, _open
from manymodels.oneline import one_line
from manymodels.reasons import MAX_REASON

ByHandReason = Annotated[
    str, typer.Option(help=f"Recorded in the alias history (at most {MAX_REASON} characters).")
]
"""``--reason`` of promote and retire, recorded after the command's label ("promoted by hand:
…", "retired by hand: …"); rollback's has its own help: no label, a default of its own."""


def promote(
    key: Annotated[str, typer.Argument(help="Partition key, e.g. 'store=2,brand=tropicana'.")],
    version: Annotated[int, typer.Argument(min=1, max=MAX_INT, help="The version to serve.")],
    registry: RegistryOpt = DEFAULT_REGISTRY,
    reason: ByHandReason = "manual",
    json_out: JsonOpt = False,
    registry_db: RegistryDbOpt = None,
    artifacts: ArtifactsOpt = None,
) -> None:
    """Point a partition's production alias at VERSION.

    Routers pick it up within seconds."""
    from manymodels import console
    from manymodels.reasons import check_reason, given

    check_reason(reason)  # as the router's body: before the registry is opened
    with _open(registry, registry_db, artifacts) as reg:
        move = reg.promote(key, version, reason=f"promoted by hand: {given(reason) or 'manual'}")
    _show_move(move, json_out, console)


def rollback(
    key: Annotated[str, typer.Argument(help="Partition key, e.g. 'store=2,brand=tropicana'.")],
    registry: RegistryOpt = DEFAULT_REGISTRY,
    reason: Annotated[
        str | None,
        typer.Option(
            help="Recorded in the alias history (default: 'rollback from vN'), as the "
            f"router's rollback body's reason (at most {MAX_REASON} characters)."
        ),
    ] = None,
    json_out: JsonOpt = False,
    registry_db: RegistryDbOpt = None,
    artifacts: ArtifactsOpt = None,
) -> None:
    """Move production back to the version served before.

    The partition's production alias goes one step back through its history."""
    from manymodels import console
    from manymodels.reasons import check_reason

    check_reason(reason)
    with _open(registry, registry_db, artifacts) as reg:
        move = reg.rollback(key, reason=reason)
    _show_move(move, json_out, console)


def retire(
    keys: Annotated[
        list[str],
        typer.Argument(
            metavar="PARTITION...", help="Partition keys, e.g. 'store=2,brand=tropicana'."
        ),
    ],
    registry: RegistryOpt = DEFAULT_REGISTRY,
    reason: ByHandReason = "manual",
    json_out: JsonOpt = False,
    registry_db: RegistryDbOpt = None,
    artifacts: ArtifactsOpt = None,
) -> None:
    """Take partitions out of production.

    Each is then served as a partition with no model: the fallback where there is one, else
    none (score and forecast leave it out as an unknown key). Its versions stay; 'manymodels
    rollback PARTITION' puts production back on the version it served. A later train or
    retrain whose data holds its rows puts their new version in production, as a partition's
    first (leave its rows out to keep it retired). One retired already is said so (since
    when), and left as it is. All or none: nothing changes when a key is unknown or was never
    in production."""
    from manymodels import console
    from manymodels.reasons import check_reason, given

    check_reason(reason)
    with _open(registry, registry_db, artifacts) as reg:
        moves = reg.retire(keys, reason=f"retired by hand: {given(reason) or 'manual'}")
    if json_out:
        console.print_json([m.to_dict() for m in moves])
        return
    for m in moves:
        line = f"{m.key}: production v{m.from_version} → retired ({m.reason})"
        if not m.moved:
            line = (
                f"{m.key}: production is already retired from v{m.from_version} "
                f"(since {m.at}: {m.reason}); nothing changed"
            )
        console.out.print(one_line(line), **ONE_LINE)


def _show_move(move: Any, json_out: bool, console: Any) -> None:
    """The move made; a promotion of the version already served (``moved`` false: nothing
    written) says so: it printed the move that put it there, "production vNone → v1 (first
    version)", as if production had just moved."""
    if json_out:
        console.print_json(move.to_dict())
    elif not move.moved:
        console.out.print(
            one_line(
                f"{move.key}: {move.alias} is already v{move.to_version} (since {move.at}: "
                f"{move.reason}); nothing changed"
            ),
            **ONE_LINE,
        )
    else:
        was = "nothing" if move.from_version is None else f"v{move.from_version}"
        line = f"{move.key}: {move.alias} {was} → v{move.to_version} ({move.reason})"
        console.out.print(one_line(line), **ONE_LINE)
