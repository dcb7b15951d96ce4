"""Options several commands share, declared once so their names, help and defaults agree."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
