"""Options several commands share, declared once so their names, help and defaults agree."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from manymodels.cli.lines import echo

if TYPE_CHECKING:
    from manymodels.registry import Registry, RegistryLocation
    from manymodels.signing import Signer

Backend = Literal["auto", "ray", "local"]
"""Where a command's work runs: typer refuses any other name as a usage error (exit 2)."""

MAX_INT = 2**31 - 1  # bound on integer options: SQLite would overflow past 2**63 - 1


def finite(value: float | None) -> float | None:
    """A float option's callback refusing ``inf`` and ``-inf``: an infinity passes ``min=``
    (it is above any bound), and ``gc --grace-seconds inf`` kept every artifact, saying
    "younger than infs kept"; ``nan`` is already refused by the bound (no comparison holds)."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"must be a finite number, not {value}")
    return value


def registry_dir(text: str) -> Path:
    """``--registry``'s directory; an empty one refused (an unset ``$REG``): as a ``Path``
    it was ".", and ``train`` wrote registry.db and artifacts/ among the user's files."""
    if not text:
        raise typer.BadParameter(
            "the registry is an empty path (''): name its directory, or leave --registry "
            "out for ./mmregistry"
        )
    return Path(text)


def registry_db(text: str) -> str:
    """``--registry-db``'s URL; an in-memory SQLite database refused (``sqlite://``,
    ``sqlite:///`` — ``sqlite:///$DB`` with ``DB`` unset — ``:memory:``, or a ``file:`` URI
    with ``mode=memory``, ``_in_memory``): ``train``
    recorded a whole run in a database that was gone when it exited, left its models in the
    store with no registry to name them, and said ``next: manymodels serve --registry-db
    sqlite://``. Any other text is the opener's to judge (it says why in one line)."""
    if not text.lower().startswith("sqlite"):
        return text
    from sqlalchemy.engine import make_url

    try:
        url = make_url(text)
    except Exception:  # SQLAlchemy's own, or ValueError: opening says why
        return text
    if _in_memory(url.database or "", url.query):
        shown = text if url.password is None else url.render_as_string(hide_password=True)
        raise typer.BadParameter(
            f"'{shown}' is an in-memory SQLite database, gone when the command ends: name "
            "the file (sqlite:///path/registry.db; four slashes for an absolute path)"
        )
    return text


def _in_memory(name: str, query: Mapping[str, str | tuple[str, ...]]) -> bool:
    """Whether SQLite keeps the database ``name`` (a URL's, its ``query`` beside it) only in
    memory or a temporary file: no name or ``:memory:``, or a ``file:`` URI of ``:memory:`` or
    with ``mode=memory`` (SQLite's shared in-memory form, ``file:db1?mode=memory&uri=true``).
    The word alone does not make it so: ``file:/srv/memory-lab/registry.db`` is a file."""
    if name in ("", ":memory:"):
        return True
    if not name.startswith("file:"):
        return False
    path, _, own = name[len("file:") :].partition("?")
    modes = query.get("mode", ())
    modes = (modes,) if isinstance(modes, str) else modes
    return path in ("", ":memory:") or "memory" in modes or "mode=memory" in own.split("&")


RegistryOpt = Annotated[
    Path,
    typer.Option(
        "--registry",
        parser=registry_dir,
        metavar="PATH",
        envvar="MANYMODELS_REGISTRY",
        help="Registry directory (registry.db + artifacts/).",
        show_default=True,
    ),
]
RegistryDbOpt = Annotated[
    str | None,
    typer.Option(
        "--registry-db",
        parser=registry_db,
        envvar="MANYMODELS_REGISTRY_DB",
        help="Registry database URL instead of --registry's registry.db, e.g. "
        "postgresql+psycopg://user@host/db (artifacts stay in --registry).",
        show_default=False,
    ),
]
ArtifactsOpt = Annotated[
    str | None,
    typer.Option(
        "--artifacts",
        envvar="MANYMODELS_ARTIFACTS",
        help="Artifact store URL instead of --registry's artifacts/, e.g. s3://bucket/prefix "
        "(any fsspec URL; credentials from the backend's own configuration).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
DEFAULT_REGISTRY = Path("mmregistry")


def open_registry(
    registry: Path,
    db_url: str | None,
    artifacts: str | None = None,
    *,
    create: bool = False,
    signer: Signer | None = None,
) -> Registry:
    """The registry of ``--registry`` (its database unless ``--registry-db`` names another,
    its artifacts unless ``--artifacts`` does): opened (``create=False``) or started
    (``create=True``)."""
    from manymodels.registry import Registry

    refuse_moot_registry(registry, db_url, artifacts)
    return Registry(registry, db_url=db_url, artifacts=artifacts, create=create, signer=signer)


def refuse_moot_registry(registry: Path, db_url: str | None, artifacts: str | None) -> None:
    """One ``error:`` line (exit 2) for a ``--registry`` directory given beside a database and
    a store named elsewhere — most often by ``MANYMODELS_REGISTRY_DB`` and
    ``MANYMODELS_ARTIFACTS`` exported long before: the directory would be ignored, and a
    ``promote`` or ``gc`` meant for it would act on the other registry."""
    if db_url and artifacts and Path(registry) != DEFAULT_REGISTRY:
        echo(
            f"error: --registry {registry} (or MANYMODELS_REGISTRY) names a registry "
            "directory, but its database and artifact store are named elsewhere "
            "(--registry-db and --artifacts, or MANYMODELS_REGISTRY_DB and "
            "MANYMODELS_ARTIFACTS): give one or the other",
            err=True,
        )
        raise typer.Exit(2)


def repeated_flags(registry: Path, db_url: str | None, artifacts: str | None) -> list[str]:
    """The options that name this registry, for a command printed for the user to run next:
    ``--registry`` unless it is the default or a database and store elsewhere make it moot,
    and ``--registry-db`` / ``--artifacts`` as given on the command line (a value the
    environment gave is given again by it; a database URL loses its password)."""
    from manymodels.registry.store import url_without_password

    words: list[str] = []
    if Path(registry) != Path(DEFAULT_REGISTRY) and not (db_url and artifacts):
        words += ["--registry", str(registry)]
    if db_url is not None and db_url != os.environ.get("MANYMODELS_REGISTRY_DB"):
        words += ["--registry-db", url_without_password(db_url)]
    if artifacts is not None and artifacts != os.environ.get("MANYMODELS_ARTIFACTS"):
        words += ["--artifacts", artifacts]
    return words


def open_checked(
    registry: Path,
    db_url: str | None,
    artifacts: str | None,
    *,
    create: bool = False,
    models: bool = False,
) -> Registry:
    """``open_registry`` for a command that loads models: with the environment's signing key
    (``signer``), or, without one, a ``warning:`` line when the registry holds signed
    versions — judged on this one opening (a database that is down is waited for once).
    With ``models`` (a command that only reads models: score, forecast, export), an artifact
    store that holds none of the registry's models is refused at once, naming it
    (``registry.ownership.check_store``), not at the first model after the data is read."""
    from manymodels.registry.ownership import check_store

    key = signer()
    reg = open_registry(registry, db_url, artifacts, create=create, signer=key)
    if models:
        try:
            check_store(reg)
        except BaseException:
            reg.close()
            raise
    _warn_unverified(reg, key)
    return reg


def located(registry: Path, db_url: str | None, artifacts: str | None) -> RegistryLocation:
    """The registry of these options named, not opened, for a command whose library call
    opens (makes) it only once the data is read and checked (``train``): opened here first,
    a data error left an empty database made for it. What ``open_checked`` does is carried:
    the moot ``--registry`` refused now, the environment's signing key, and without one the
    ``warning:`` line of a registry holding signed versions, said when it is opened."""
    from manymodels.registry import RegistryLocation

    refuse_moot_registry(registry, db_url, artifacts)
    key = signer()
    return RegistryLocation(
        registry, db_url, artifacts, signer=key, on_open=lambda reg: _warn_unverified(reg, key)
    )


def _warn_unverified(reg: Registry, key: Signer | None) -> None:
    """One ``warning:`` line if ``reg`` holds signed versions and no ``key`` is set."""
    from manymodels.signing import unverified_warning

    said = unverified_warning(reg.signed_by, key, reg.location)
    if said is not None:
        echo(f"warning: {said}", err=True)


def signer(registry: Path | None = None) -> Signer | None:
    """The signing key of ``MANYMODELS_SIGNING_KEY`` (or ``…_FILE``), read here at the edge
    and passed down as a ``Signer``; ``None`` without one. A key that is too short, or set
    both ways, is one ``error:`` line (exit 2). Commands that load models from a registry
    they do not open themselves name their ``registry`` directory: without a key, one that
    holds signed versions gets one ``warning:`` line (nothing would be verified, silently
    otherwise); those that open it use ``open_checked``."""
    from manymodels.signing import Signer

    try:
        key = Signer.from_env(os.environ)
    except ValueError as e:
        echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    if key is None and registry is not None:
        warn_if_unverified(registry)
    return key


def warn_if_unverified(registry: Path) -> None:
    """One ``warning:`` line on stderr if ``registry`` holds signed versions (its ``meta``
    says so) while no key is set; silent when it cannot be opened (the command says why)."""
    from manymodels.exceptions import ManyModelsError
    from manymodels.signing import unverified_warning

    try:
        with open_registry(registry, None) as reg:
            said = unverified_warning(reg.signed_by, None, str(registry))
    except ManyModelsError:
        return
    if said is not None:
        echo(f"warning: {said}", err=True)


ThresholdOpt = Annotated[
    float | None,
    typer.Option(
        help="Label a binary classifier's rows at this probability of the positive class "
        "(0-1) instead of the version's own threshold (a spec's [decision] rule), as the "
        "router's ?threshold= does: decision_label and decision_threshold columns.",
    ),
]

LevelsOpt = Annotated[
    str | None,
    typer.Option(
        help="Prediction interval levels to write as lo-<level>/hi-<level> columns, e.g. 80,95 "
        "(default: every level the models recorded; a level one did not record is an error)."
    ),
]

ProbabilitiesOpt = Annotated[
    bool,
    typer.Option(
        "--probabilities",
        help="Also write a classifier's class probabilities (of each step, when forecasting): "
        "a proba-<class> column per class (0 for a class a partition never held).",
    ),
]
