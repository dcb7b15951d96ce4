"""``manymodels train SPEC DATA``: one model per partition of DATA into the registry.

The command reads its options, runs the pipeline and, when the run fails or is interrupted,
names the command line that finishes it (``--resume``). How a run is reported is
``manymodels.cli.run_report`` (``retrain`` and ``scheduler`` report theirs the same way);
``score`` and ``forecast`` are in ``manymodels.cli.score`` and ``manymodels.cli.forecast``, the
commands that look after a registry (promote, rollback, gc, browsing) in
``manymodels.cli.registry``. Heavy imports stay inside the command so ``--help`` is instant.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from manymodels.cli.lines import echo
from manymodels.cli.options import (
    DEFAULT_REGISTRY,
    ArtifactsOpt,
    Backend,
    JsonOpt,
    RegistryDbOpt,
    RegistryOpt,
    located,
    repeated_flags,
)
from manymodels.cli.run_report import failed, nothing, report


def train(
    spec: Annotated[Path, typer.Argument(help="Spec file (TOML).")],
    data: Annotated[
        str,
        typer.Argument(
            help="Data: a .csv or .parquet file, or a Parquet directory (hive-partitioned or "
            "not; local or an fsspec URL such as s3://bucket/sales/), read in batches.",
        ),
    ],
    registry: RegistryOpt = DEFAULT_REGISTRY,
    ray_address: Annotated[
        str | None,
        typer.Option(envvar="RAY_ADDRESS", help="Existing Ray cluster (default: embedded Ray)."),
    ] = None,
    backend: Annotated[
        Backend,
        typer.Option(
            help="'auto': in this process for small jobs (rows × candidate configurations "
            "below 1,000,000, or one partition), on Ray for large ones or with --ray-address; "
            "'ray' or 'local' to force either."
        ),
    ] = "auto",
    strict: Annotated[bool, typer.Option(help="Stop at the first failed partition.")] = False,
    resume: Annotated[
        str | None, typer.Option(help="Finish an interrupted run, skipping committed partitions.")
    ] = None,
    changed_only: Annotated[
        bool,
        typer.Option(help="Only partitions whose data changed since they were last trained."),
    ] = False,
    partitions: Annotated[
        list[str] | None,
        typer.Option("--partitions", help="Train exactly these keys (repeat the option)."),
    ] = None,
    partitions_file: Annotated[
        Path | None, typer.Option(help="Train exactly the keys listed in this file, one a line.")
    ] = None,
    append: Annotated[
        bool,
        typer.Option(
            help="DATA holds new rows only: each partition in it trains on its newest "
            "version's kept training rows, promoted or not, plus these (a new row replaces a "
            "kept one with the same time). Only those partitions train; the fallback is left "
            "as it is."
        ),
    ] = False,
    new_target: Annotated[
        bool,
        typer.Option(
            help="The spec's target replaces the one production predicts (a renamed column, "
            "or the quantity to serve from now on): each partition's new version replaces "
            "the old target's champion uncompared, as a first version does. Not with "
            "--partitions or --append (the rest would serve the old target)."
        ),
    ] = False,
    max_failed_fraction: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Fail the run (exit 1) when more than this share of partitions failed.",
        ),
    ] = 1.0,
    json_out: JsonOpt = False,
    registry_db: RegistryDbOpt = None,
    artifacts: ArtifactsOpt = None,
    shuffle_dir: Annotated[
        str | None,
        typer.Option(
            "--shuffle-dir",
            envvar="MANYMODELS_SHUFFLE_DIR",
            help="Where a Parquet directory's rows wait, bucketed by chunk, while they train: "
            "a directory or fsspec URL every Ray node reads (s3://bucket/tmp/) on a cluster of "
            "several machines (default: a local temporary directory). A local one is made if its "
            "parent exists.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Train one model per partition of DATA into the registry.

    SPEC (TOML) says how DATA splits into partitions, the target, the candidates and the
    promotion policy.

    A partition that already has a production model is retrained: the new version is evaluated
    against production and the spec's promotion policy decides whether it replaces it. The
    command exits 1 when no partition trained, when more than --max-failed-fraction of them
    failed, or when the fallback model failed; what did train is kept either way.
    """
    from manymodels import console
    from manymodels.exceptions import NothingToTrain, RunFailed, RunInterrupted
    from manymodels.pipeline import RunSummary
    from manymodels.pipeline import train as run_train
    from manymodels.spec import Spec

    parsed = Spec.from_toml(spec)
    only = _keys_from(partitions, partitions_file)
    show_bar = not json_out and sys.stderr.isatty()
    summary: RunSummary
    # named, not opened: the library opens (makes) it once DATA is read and checked, so bad
    # data leaves no database behind (--registry-db sqlite:///x/r.db made x/r.db first)
    where = located(registry, registry_db, artifacts)
    try:
        with console.progress_bar(f"training {parsed.name}", enabled=show_bar) as bar:
            summary = run_train(
                parsed, data, where,
                backend=backend, ray_address=ray_address, strict=strict, progress=bar,
                resume=resume, only=only, changed_only=changed_only, append=append,
                max_failed_fraction=max_failed_fraction, shuffle_dir=shuffle_dir,
                record_nothing=False, new_target=new_target,
            )  # fmt: skip
    except NothingToTrain as e:  # --changed-only, nothing changed: one line, no run, exit 0
        nothing(e, json_out=json_out)
        return
    except (RunFailed, RunInterrupted) as e:
        # the command that finishes the run: this one, naming the same registry, resumed
        words = ["manymodels", "train", str(spec), str(data)]
        words += repeated_flags(registry, registry_db, artifacts)  # no password
        words += ["--shuffle-dir", shuffle_dir] if shuffle_dir else []
        if backend != "auto":
            words += ["--backend", backend]
        for key in partitions or []:
            words += ["--partitions", key]
        words += ["--partitions-file", str(partitions_file)] if partitions_file else []
        words += ["--append"] if append else []
        words += ["--strict"] if strict else []
        if max_failed_fraction != 1.0:
            words += ["--max-failed-fraction", f"{max_failed_fraction:g}"]
        words += ["--changed-only"] if changed_only else []
        words += ["--new-target"] if new_target else []
        words += ["--ray-address", ray_address] if ray_address else []
        if isinstance(e, RunFailed):
            failed(e, words, registry, json_out=json_out, db_url=registry_db, artifacts=artifacts)
        run_id = e.run_id
        echo(
            f"interrupted: run {run_id} keeps what it committed; finish it with: "
            f"{shlex.join([*words, '--resume', run_id])}",
            err=True,
        )
        raise typer.Exit(130) from None
    report(summary, registry, json_out=json_out, db_url=registry_db, artifacts=artifacts)


def _keys_from(keys: list[str] | None, path: Path | None) -> list[str] | None:
    """Keys from the command line and/or a file (blank lines and # comments ignored)."""
    if keys is None and path is None:
        return None
    out = list(keys or [])
    if path is not None:
        from manymodels.exceptions import DataError

        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise DataError(f"{path}: cannot read the partitions file ({e.strerror})") from None
        out += [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    return out
