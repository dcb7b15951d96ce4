"""``manymodels trust``: which artifact formats a registry loads (``manymodels.serialization``).

Kept in its own module: it is the one command that sets a registry's security policy, and
its rules (which formats, what a reader does with the others) live beside the loader.
"""

from __future__ import annotations

import shlex
from typing import Annotated

import typer

from manymodels.cli.lines import echo
from manymodels.cli.options import (
    DEFAULT_REGISTRY,
    ArtifactsOpt,
    JsonOpt,
    RegistryDbOpt,
    RegistryOpt,
    open_registry,
    repeated_flags,
)

FormatsOpt = Annotated[
    str | None,
    typer.Option(
        "--trusted-formats",
        help="Comma-separated formats the registry loads: 'skops' forbids pickles; "
        "'pickle,skops' lifts the limit. Omit to show the current policy.",
    ),
]


def trust(
    trusted_formats: FormatsOpt = None,
    registry: RegistryOpt = DEFAULT_REGISTRY,
    json_out: JsonOpt = False,
    registry_db: RegistryDbOpt = None,
    artifacts: ArtifactsOpt = None,
) -> None:
    """Show or set the artifact formats a registry loads.

    With '--trusted-formats skops' every reader of the registry — serve, score, forecast,
    retrains, Registry.load_model — refuses a pickled model before unpickling a byte of it
    (exit 1 here, HTTP 500 from the router), so a shared store can be read without running
    code from it. Train with '[artifacts] format = "skops"' in the spec; a spec that would
    store pickles is refused before it trains. Models already stored as pickles stay, and
    are refused until retrained.
    """
    from manymodels import console
    from manymodels.serialization import describe, parse_formats

    chosen = None
    if trusted_formats is not None:
        try:
            chosen = parse_formats(trusted_formats)
        except ValueError as e:
            echo(f"error: --trusted-formats: {e}", err=True)
            raise typer.Exit(2) from None
    with open_registry(registry, registry_db, artifacts) as reg:
        before = reg.trusted_formats
        if chosen is not None:
            reg.set_trusted_formats(chosen)
        now, where = reg.trusted_formats, reg.location
    if json_out:
        console.print_json({"registry": where, "trusted_formats": sorted(now)})
    else:
        echo(f"registry {where} loads {describe(now)} artifacts")
        if before - now:  # models stored so stay, refused by every reader from now on
            doctor = ["manymodels", "doctor", *repeated_flags(registry, registry_db, artifacts)]
            echo(
                f"models already stored as {describe(before - now)} are refused from now on: "
                f"{shlex.join(doctor)} counts them"
            )
