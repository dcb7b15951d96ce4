"""The commands that look after a registry: ``gc``, ``doctor``, ``sign`` and the ``models``
group (the alias moves promote, rollback, retire: ``manymodels.cli.alias_commands``; the
``runs`` group: ``manymodels.cli.runs``).

None of them trains or scores; they open the registry, do one thing, and print it as a table or
``--json``. The groups are built here with their commands, and added to the top-level app in
``manymodels.cli``, which also registers the top-level commands in the order ``--help`` lists.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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
    finite,
    open_checked,
    open_registry,
    repeated_flags,
    signer,
)
from manymodels.keys import FALLBACK_KEY

if TYPE_CHECKING:
    from manymodels.doctor import Checkup

models_app = typer.Typer(
    cls=Group, help="Browse registered models.", no_args_is_help=True, rich_markup_mode=None
)


def _open(registry: Path, db_url: str | None = None, artifacts: str | None = None) -> Any:
    return open_registry(registry, db_url, artifacts, signer=signer())


ONE_LINE = {"soft_wrap": True, "markup": False, "emoji": False}
"""A result line printed as it is: rich folded one past the console's width (160 on a pipe:
gc's "…; put back 1 artifact(s) …" came out as two lines in a cron log), read a reason's
"[bold]" as its markup, dropping text the user recorded, and its ":x:" as an emoji code
(printed "❌"; markup off does not turn that off). User text in it is passed through
``one_line``: a reason's newline printed the result on two lines."""


def _print_checkup(checkup: Checkup) -> None:
    """Notes first (a run training now: said, never a failure), then each problem, then the
    counts; one 'ok' line when there is no problem."""
    for p in checkup.notes:
        echo(f"note: {p.message}")
    found = [p for p in checkup.problems if not p.note]
    if not found:
        echo(f"ok: {checkup.counts()}; no problems")
        return
    for p in found:
        echo(f"{'repaired' if p.repaired else 'problem'}: {p.message}")
    repaired = len(found) - len(checkup.unresolved)
    echo(f"{len(found)} problem(s), {repaired} repaired; checked {checkup.counts()}")


def gc(
    registry: RegistryOpt = DEFAULT_REGISTRY,
    keep: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=MAX_INT,
            help="Keep this many newest versions per partition (+ aliased ones).",
        ),
    ] = None,
    grace_seconds: Annotated[
        float,
        typer.Option(
            min=0,
            callback=finite,
            help="Spare unreferenced artifacts younger than this (seconds).",
        ),
    ] = 3600.0,
    alias_grace_seconds: Annotated[
        float,
        typer.Option(
            min=0,
            callback=finite,
            help="Spare versions an alias (production, candidate…) moved onto or off within "
            "this many seconds: routers follow aliases from a table refreshed every "
            "--refresh-seconds.",
        ),
    ] = 600.0,
    dry_run: Annotated[bool, typer.Option(help="Report what would go; delete nothing.")] = False,
    json_out: JsonOpt = False,
    registry_db: RegistryDbOpt = None,
    artifacts: ArtifactsOpt = None,
) -> None:
    """Delete old versions and unreferenced artifacts.

    Versions past the retention limit (--keep) go, then artifacts no version references."""
    from manymodels import console
    from manymodels.gc import collect

    with _open(registry, registry_db, artifacts) as reg:
        report = collect(
            reg,
            keep=keep,
            grace_seconds=grace_seconds,
            alias_grace_seconds=alias_grace_seconds,
            dry_run=dry_run,
        )
    if json_out:
        console.print_json(report.to_dict())
        return
    verb = "would delete" if dry_run else "deleted"
    temps = f" and {report.temp_files_deleted} leftover temp file(s)" * bool(
        report.temp_files_deleted
    )
    sets = report.holiday_sets_deleted
    temps += f" and {sets} holiday set(s) no version names" * bool(sets)
    back = report.artifacts_put_back
    verb_back = "would put" if dry_run else "put"
    aside = f"; {verb_back} back {back} artifact(s) a gc killed mid-way had left moved aside"
    spared = report.versions_kept_alias_grace
    grace_kept = (
        f"; {spared} version(s) past --keep kept: an alias moved onto or off them within "
        f"{alias_grace_seconds:g}s (--alias-grace-seconds), which routers may not have seen yet"
    )
    console.out.print(
        f"{verb} {len(report.versions_deleted)} version(s) and {report.artifacts_deleted} "
        f"artifact(s){temps}, {report.bytes_freed:,} bytes; {report.artifacts_kept_young} "
        f"unreferenced artifact(s) younger than {grace_seconds:g}s kept"
        + (f", or than run {report.kept_for_run}, still training" if report.kept_for_run else "")
        + aside * bool(back)
        + grace_kept * bool(spared),
        **ONE_LINE,
    )


def doctor(
    registry: RegistryOpt = DEFAULT_REGISTRY,
    repair: Annotated[
        bool,
        typer.Option(
            help="Fix what loses no data: remove old temp files of killed writers, move an "
            "alias off a missing version back to the newest earlier one that verifies."
        ),
    ] = False,
    json_out: JsonOpt = False,
    registry_db: RegistryDbOpt = None,
    artifacts: ArtifactsOpt = None,
) -> None:
    """Check artifacts, aliases and unfinished runs.

    Every version's artifacts (sha256), every alias, and every unfinished run.

    Prints each problem and exits 1 while any is left; prints one 'ok' line otherwise.
    Nothing is deleted: a missing or tampered artifact, or a run to resume, is reported
    with what to do. With MANYMODELS_SIGNING_KEY set, unsigned versions and global model
    records, and signatures that do not verify, are problems too ('manymodels sign' signs
    the unsigned).
    """
    from manymodels import console
    from manymodels.doctor import check

    with open_checked(registry, registry_db, artifacts) as reg:
        checkup = check(reg, repair=repair, flags=repeated_flags(registry, registry_db, artifacts))
        where = reg.location
    if json_out:
        console.print_json(checkup.to_dict())
    else:
        _print_checkup(checkup)
    if not checkup.ok:
        fixable = sum(p.repairable for p in checkup.unresolved)
        hint = f", {fixable} of them for --repair" if fixable and not repair else ""
        left = len(checkup.unresolved)
        echo(f"error: {left} problem(s) in registry {where}{hint}", err=True)
        raise typer.Exit(1)


def sign(
    registry: RegistryOpt = DEFAULT_REGISTRY,
    json_out: JsonOpt = False,
    registry_db: RegistryDbOpt = None,
    artifacts: ArtifactsOpt = None,
) -> None:
    """Sign unsigned versions with MANYMODELS_SIGNING_KEY.

    While a signing key is set, a version without a valid signature is never loaded (by
    serve, score, forecast or a retrain). Signing vouches for the registry as it is now: run
    'manymodels doctor' first, and sign only a registry you trust. A signature in the old
    format (which did not cover the feature schema) is re-signed when it verifies with the
    key; any other signature already there is never replaced; versions whose signature does
    not verify make this command exit 1. The unsigned records of the global models runs
    fitted (which a retrain of some partitions loads) are signed too, and one whose
    signature does not verify makes it exit 1 as well.
    """
    from manymodels import console
    from manymodels.exceptions import BadSignature
    from manymodels.signing import global_refusal

    key = signer()
    if key is None:
        echo(
            "error: set MANYMODELS_SIGNING_KEY (or MANYMODELS_SIGNING_KEY_FILE) to sign with",
            err=True,
        )
        raise typer.Exit(2)
    with open_registry(registry, registry_db, artifacts, signer=key) as reg:
        signed = reg.sign_unsigned()
        globals_signed = reg.sign_global_models()
        bad = 0
        for r in reg.version_digests():
            try:
                key.verify(
                    r.signature, r.key, r.version, r.artifact_sha256, r.data_sha256,
                    r.feature_schema_json,
                )  # fmt: skip
            except BadSignature:
                bad += 1
        records = reg.store.global_model_records()  # signed above: any refusal is a bad one
        bad_globals = sum(global_refusal(key, r) is not None for _, r in records)
    if json_out:
        console.print_json(
            {"key_id": key.key_id, "signed": [{"key": k, "version": v} for k, v in signed],
             "bad_signatures": bad, "global_models_signed": globals_signed,
             "bad_global_signatures": bad_globals}
        )  # fmt: skip
    else:
        also = f" and {globals_signed} global model(s)" if globals_signed else ""
        echo(f"signed {len(signed)} version(s){also} with key {key.key_id}")
    if bad or bad_globals:
        doctor = ["manymodels", "doctor", *repeated_flags(registry, registry_db, artifacts)]
        parts = [f"{bad} version(s)"] if bad else []
        parts += [f"{bad_globals} global model record(s)"] if bad_globals else []
        what = " and ".join(parts)
        echo(
            f"error: {what} carry a signature that does not verify with this key; "
            f"see: {shlex.join(doctor)}",
            err=True,
        )
        raise typer.Exit(1)


@models_app.command("list")
def models_list(
    registry: RegistryOpt = DEFAULT_REGISTRY,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Rows per page.")] = 50,
    offset: Annotated[int, typer.Option(min=0, max=MAX_INT, help="Rows to skip.")] = 0,
    json_out: JsonOpt = False,
    registry_db: RegistryDbOpt = None,
    artifacts: ArtifactsOpt = None,
) -> None:
    """Partitions with their production model and metric.

    Each with its production version, its metric and the naive baseline's."""
    with _open(registry, registry_db, artifacts) as reg:
        items = reg.list_partitions(limit=limit, offset=offset)
        total = reg.count_partitions()
        fallback = reg.store.has_partition(FALLBACK_KEY)
    views.models_list(items, total=total, offset=offset, json_out=json_out, fallback=fallback)


@models_app.command("show")
def models_show(
    key: Annotated[str, typer.Argument(help="Partition key, e.g. 'store=2,brand=tropicana'.")],
    registry: RegistryOpt = DEFAULT_REGISTRY,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain",
            help="Why this model: the production version's coefficients (per unit of each "
            "feature) or importances, beside its candidates' and the naive baseline's scores.",
        ),
    ] = False,
    json_out: JsonOpt = False,
    registry_db: RegistryDbOpt = None,
    artifacts: ArtifactsOpt = None,
) -> None:
    """One partition's versions, aliases and candidates.

    All versions of the partition, its aliases, the candidates tried, and alias history."""
    with _open(registry, registry_db, artifacts) as reg:
        part = reg.get_partition(key)
        versions = reg.list_versions(part.key)
        history = reg.alias_history(part.key)
        why = _explanation(reg, part.key) if explain else None
    views.models_show(part, versions, history, json_out=json_out, why=why)


def _explanation(reg: Any, key: str) -> Any:
    """The production version's explanation (its model loaded, digest and signature checked).

    A retired partition has none: the registry's refusal says it was retired, and this adds
    where its versions are (no second read)."""
    from manymodels.cli.interop import ROLLBACK
    from manymodels.exceptions import AliasNotFound
    from manymodels.explain import explain

    try:
        loaded = reg.load_model(key)
    except AliasNotFound as e:
        hint = f" (drop --explain to see its versions; {ROLLBACK})"
        raise e.hinted(hint, f"{e.refusal} to explain") from None
    return explain(loaded.version, loaded.model)
