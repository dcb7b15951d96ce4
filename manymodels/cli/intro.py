"""The commands a newcomer runs first: ``demo`` (the README's first command) and ``version``.

Neither needs a registry of the user's; they are kept apart from the training and registry
commands, whose shared options they do not use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from manymodels import __version__


def demo(
    registry: Annotated[
        Path,
        typer.Option(
            help="Where the demo registry goes: a new directory, or an earlier demo's (replaced)."
        ),
    ] = Path("mmdemo"),
    backend: Annotated[Literal["ray", "local"], typer.Option(help="'ray' or 'local'.")] = "ray",
) -> None:
    """Train, serve and retrain the sales sample, end to end.

    The per-store sales sample is trained into --registry, served, retrained over HTTP and
    rolled back, and each step says what happened."""
    from manymodels.demo import run_demo

    run_demo(registry, backend=backend)


def version() -> None:
    """Print the manymodels version."""
    typer.echo(__version__)


def _print_version(asked: bool) -> None:
    if asked:
        typer.echo(__version__)
        raise typer.Exit()


def root(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the manymodels version and exit.",
        ),
    ] = False,
) -> None:
    """The options before a command: ``--version``, which pip, MLflow and most other tools
    answer, so that ``manymodels --version`` is not "no such option" (``manymodels version``
    stays)."""
