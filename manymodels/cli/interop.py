"""The commands that move models between manymodels and other tools: ``export`` and ``import``.

Both need the ``mlflow`` extra, imported only when they run (``manymodels --help`` stays fast,
and a registry without MLflow installed works as before).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from manymodels.cli.lines import echo
from manymodels.cli.options import (
    DEFAULT_REGISTRY,
    MAX_INT,
    ArtifactsOpt,
    JsonOpt,
    RegistryDbOpt,
    RegistryOpt,
    open_checked,
    refuse_moot_registry,
    signer,
)

ROLLBACK = "'manymodels rollback' puts it back in production"  # a retired partition's way back


class ExportFormat(StrEnum):
    mlflow = "mlflow"


def export(
    key: Annotated[str, typer.Argument(help="Partition key, e.g. 'store=2,brand=tropicana'.")],
    out: Annotated[
        Path, typer.Argument(help="New (or empty) directory to write the model to (not '-').")
    ],
    format: Annotated[
        ExportFormat, typer.Option("--format", help="What to write: an MLflow model directory.")
    ],
    registry: RegistryOpt = DEFAULT_REGISTRY,
    version: Annotated[
        int | None, typer.Option(min=1, max=MAX_INT, help="This version (default: --alias).")
    ] = None,
    alias: Annotated[
        str | None,
        typer.Option(
            help="The version this alias points at (default: production).", show_default=False
        ),
    ] = None,
    json_out: JsonOpt = False,
    registry_db: RegistryDbOpt = None,
    artifacts: ArtifactsOpt = None,
) -> None:
    """Write a partition's version as an MLflow model.

    The model is written as pyfunc (and sklearn when it is plain scikit-learn), with a
    signature from its feature schema and an input example.

    mlflow.pyfunc.load_model(OUT).predict(frame) then gives what manymodels gives. A model that
    is not plain scikit-learn (a naive or single-class model, a class of your own) is written
    as a pyfunc model that needs manymodels importable where it is loaded.
    """
    from manymodels import console
    from manymodels.exceptions import AliasNotFound
    from manymodels.interop.mlflow_io import export_mlflow, require_mlflow
    from manymodels.registry.model_access import one_version_choice

    one_version_choice(version, alias)  # --alias was ignored: the router's 422
    if str(out) == "-":  # was a model directory named '-' in the current directory
        from manymodels.exceptions import DataError

        raise DataError(
            "-: export writes an MLflow model directory, not standard output: name the "
            "directory to write (e.g. ./model)"
        )
    require_mlflow()  # before the registry is opened: say what to install first
    with open_checked(registry, registry_db, artifacts, models=True) as reg:
        try:
            done = export_mlflow(reg, key, out, version=version, alias=alias or "production")
        except AliasNotFound as e:  # retired: the registry says so; how to export it anyway
            hint = f"; export it with --version {e.retired_from} (or {ROLLBACK})"
            raise e.hinted(hint) from None
    if json_out:
        console.print_json(done.to_dict())
        return
    needs = f" (needs {', '.join(done.foreign_modules)} to load)" * bool(done.foreign_modules)
    echo(f"exported {done.key} v{done.version} as an MLflow {done.flavor} model → {out}{needs}")


def import_model(
    source: Annotated[Path, typer.Argument(help="An MLflow model directory (holds MLmodel).")],
    key: Annotated[
        str, typer.Option("--key", help="Partition key to register it under, e.g. 'store=2'.")
    ],
    registry: RegistryOpt = DEFAULT_REGISTRY,
    promote: Annotated[
        bool,
        typer.Option(help="Serve it at once: point production at it (default: 'candidate')."),
    ] = False,
    json_out: JsonOpt = False,
    registry_db: RegistryDbOpt = None,
    artifacts: ArtifactsOpt = None,
) -> None:
    """Register an MLflow scikit-learn model as a version.

    The model becomes a new version of the partition given by --key.

    Its feature schema comes from the model's signature (required). It is recorded as
    imported: no training rows, no validation score (metric 'none'). The partition's first
    version serves at once; a later one becomes its 'candidate' unless --promote. Loading an
    MLflow model unpickles it: import only models you trust.
    """
    from manymodels import console
    from manymodels.exceptions import LostDatabase, NoRegistry
    from manymodels.interop.mlflow_import import import_mlflow, read_mlflow, storable
    from manymodels.key_lookup import check_new_key
    from manymodels.keys import normalize_key, refuse_long_keys
    from manymodels.registry.client import ARTIFACTS_DIR, Registry
    from manymodels.registry.store import describe_url

    # a malformed or too long key is refused before a new registry is made for it
    refuse_long_keys([normalize_key(key)], "--key")
    check_new_key(key, None)  # 'store = 2' would make the column 'store ' in a new registry
    signer()  # a bad key is refused before anything is read
    formats = None  # a registry that refuses pickles gets no pickle unpickled for it
    # with a database named, its artifacts' place is named too, so that only the database
    # decides whether the registry is new — not whether --registry's directory exists
    probe = artifacts
    if registry_db is not None and probe is None:
        probe = str(registry / ARTIFACTS_DIR)
    refuse_moot_registry(registry, registry_db, artifacts)
    try:
        with Registry.open(registry, db_url=registry_db, artifacts=probe) as reg:
            formats = reg.trusted_formats
        new = False
    except LostDatabase:  # models without their database: not a new place
        raise
    except NoRegistry:  # said below: a mistyped --registry starts a new one
        new = True
    model = read_mlflow(source, formats)  # before a registry is made for a model it refuses
    if new:  # a new registry stores pickles: a model that cannot be is refused before it
        storable(model.model, "pickle", source)
    # a signed registry opened without a key gets the warning `train` gives: this version
    # goes in unsigned, and keyed routers would refuse it
    with open_checked(registry, registry_db, artifacts, create=True) as reg:
        v = import_mlflow(reg, model, key, promote=promote)
    if json_out:
        console.print_json(v.to_dict())
        return
    aliases = f" ({', '.join(v.aliases)})" if v.aliases else ""
    place = describe_url(registry_db) if registry_db is not None else registry
    where = f" into a new registry at {place}" if new else ""
    echo(f"imported {source} as {v.key} v{v.version}{aliases}{where}, run {v.run_id}")
