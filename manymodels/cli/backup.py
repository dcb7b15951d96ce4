"""The commands that back a registry up and restore it: ``export-registry``, ``import-registry``.

``manymodels.backup`` does the work; these read the command line and print one line (or
``--json``).
"""

from __future__ import annotations

from pathlib import Path
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
)


def export_registry(
    out: Annotated[
        Path,
        typer.Argument(
            help="The tar file to write (replaced if it exists); .tar.gz, .tgz, .tar.bz2 "
            "or .tar.xz compresses it (a name of another format, .zip or .gz, is refused). "
            "Not '-': a backup is a file, complete or absent, never a stream."
        ),
    ],
    registry: RegistryOpt = DEFAULT_REGISTRY,
    json_out: JsonOpt = False,
    registry_db: RegistryDbOpt = None,
    artifacts: ArtifactsOpt = None,
) -> None:
    """Back the registry up into one tar file.

    The tar holds a consistent snapshot of its database and every artifact that snapshot
    references, with a manifest of their sha256.

    Safe while the router serves and a training run writes. OUT appears only once complete;
    a missing or corrupted artifact stops the backup with its name.
    """
    from manymodels import console
    from manymodels.backup import export_registry as export

    if str(out) == "-":  # was a tar file named '-' in the current directory
        from manymodels.exceptions import DataError

        raise DataError(
            "-: export-registry writes a tar file, complete or absent, not standard output: "
            "name the file (e.g. backup.tar.gz), then copy or pipe it from there"
        )
    with open_registry(registry, registry_db, artifacts) as reg:
        done = export(reg, out)
    if json_out:
        console.print_json(done.to_dict())
        return
    echo(
        f"exported {done.counts['versions']} version(s) of {done.counts['partitions']} "
        f"partition(s) and {done.artifacts} artifact(s) ({done.bytes:,} bytes) → {out}"
    )


def import_registry(
    backup: Annotated[Path, typer.Argument(help="A tar written by export-registry.")],
    registry: RegistryOpt = DEFAULT_REGISTRY,
    json_out: JsonOpt = False,
) -> None:
    """Restore a backup as a new registry.

    The registry is made at --registry, a new or empty directory.

    Every member is checked against the manifest's sha256 before the registry appears; a
    backup of an older schema is upgraded as any registry is when opened.
    """
    from manymodels import console
    from manymodels.restore import import_registry as restore

    done = restore(backup, registry)
    if json_out:
        console.print_json(done.to_dict())
        return
    echo(
        f"restored {done.counts['versions']} version(s) of {done.counts['partitions']} "
        f"partition(s) and {done.artifacts} artifact(s) into {registry}"
    )
