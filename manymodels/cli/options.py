"""Options several commands share, declared once so their names, help and defaults agree."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from manymodels.signing import Signer

MAX_INT = 2**31 - 1  # bound on integer options: SQLite would overflow past 2**63 - 1

RegistryOpt = Annotated[
    Path,
    typer.Option(
        "--registry",
        envvar="MANYMODELS_REGISTRY",
        help="Registry directory (registry.db + artifacts/).",
        show_default=True,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
DEFAULT_REGISTRY = Path("mmregistry")


def signer() -> Signer | None:
    """The signing key of ``MANYMODELS_SIGNING_KEY`` (or ``…_FILE``), read here at the edge
    and passed down as a ``Signer``; ``None`` without one. A key that is too short, or set
    both ways, is one ``error:`` line (exit 2)."""
    from manymodels.signing import Signer

    try:
        return Signer.from_env(os.environ)
    except ValueError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
