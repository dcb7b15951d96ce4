"""The commands that run models over data: ``train`` and ``score`` (``forecast`` is in
``manymodels.cli.forecast``).

They share the compute choices (``--backend``, ``--ray-address``) and report a summary of the
work done; the commands that look after a registry (promote, rollback, gc, browsing) are in
``manymodels.cli.registry``. Heavy imports stay inside the commands so ``--help`` is instant.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from manymodels.cli.lines import echo
from manymodels.cli.options import (
    DEFAULT_REGISTRY,
    ArtifactsOpt,
    Backend,
    JsonOpt,
    LevelsOpt,
    RegistryDbOpt,
    RegistryOpt,
    ThresholdOpt,
    located,
    open_checked,
    repeated_flags,
    signer,
)

WHERE = {"local": " in this process", "ray": " on Ray"}
"""What ``score``'s summary line says of where it ran (``auto`` chooses)."""


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
            _failed(e, words, registry, json_out=json_out, db_url=registry_db, artifacts=artifacts)
        run_id = e.run_id
        echo(
            f"interrupted: run {run_id} keeps what it committed; finish it with: "
            f"{shlex.join([*words, '--resume', run_id])}",
            err=True,
        )
        raise typer.Exit(130) from None
    _report(summary, registry, json_out=json_out, db_url=registry_db, artifacts=artifacts)


def nothing(error: Any, *, json_out: bool, **more: Any) -> None:
    """A changed-only run that found nothing to train (``NothingToTrain``): its line, or with
    ``--json`` no run and how many partitions were left as they were (``more``: the caller's
    members, ``retrain``'s)."""
    from manymodels import console

    said = error.said()
    if json_out:
        console.print_json(
            {"run": None, "trained": False, "unchanged": error.unchanged, "reason": str(error),
             "warnings": said, **more}
        )  # fmt: skip
    else:
        for line in said:
            echo(f"warning: {line}", err=True)
        echo(str(error))


def _failed(
    error: Any, again: list[str], registry: Path, *, json_out: bool, **where: Any
) -> NoReturn:
    """Report a failed run and raise its error. A run that lost partitions says how to finish
    it with commands that name this registry (``again``: this command, without ``--resume``),
    as the summary's ``next:`` does; the library's own message cannot know them."""
    from dataclasses import replace

    from manymodels.exceptions import RunFailed
    from manymodels.pipeline import lost_failure

    summary = error.summary
    if not summary.lost:
        _report(summary, registry, json_out=json_out, **where)
        raise error
    run = summary.run
    flags = "".join(f" {shlex.quote(w)}" for w in repeated_flags(registry, **where))
    resume = shlex.join([*again, "--resume", run.run_id])
    why = lost_failure(run.run_id, summary.lost, run.n_partitions, where=flags, resume=resume)
    shown = summary if json_out else replace(summary, run=replace(run, error=why))
    _report(shown, registry, json_out=json_out, **where)
    raise RunFailed(why, summary) from None


def _report(
    summary: Any,
    registry: Path,
    *,
    json_out: bool,
    db_url: str | None = None,
    artifacts: str | None = None,
    more: dict[str, Any] | None = None,
) -> None:
    """The run's summary, or with ``--json`` its members, and the caller's (``more``:
    ``retrain``'s ``selected`` and ``when``, which its run of nothing has too)."""
    from manymodels import console
    from manymodels.registry.store import describe_url

    location = describe_url(db_url) if db_url is not None else None
    if json_out:
        console.print_json(summary_json(summary, registry, db_url=db_url, more=more))
    else:
        flags = repeated_flags(registry, db_url, artifacts)
        console.run_summary(summary, flags, location or str(registry))


def summary_json(
    summary: Any, registry: Path, *, db_url: str | None = None, more: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The members ``--json`` prints of a run that was recorded: ``train``'s, ``retrain``'s,
    and each firing of ``scheduler --json`` that trained."""
    from dataclasses import asdict

    from manymodels.exceptions import data_warnings
    from manymodels.registry.store import describe_url

    location = describe_url(db_url) if db_url is not None else None
    return {
        "run": summary.run.to_dict(),
        "decisions": summary.decisions,
        "chosen": summary.chosen,
        "global_members": summary.global_members,
        "rows_dropped": summary.rows_dropped,
        "fallback": summary.fallback,
        "failures": [f.to_dict() for f in summary.failures],
        "lost": summary.lost,  # of run's n_failed: infrastructure's, not the data's
        "seconds": summary.seconds,
        "startup_seconds": summary.startup_seconds,
        "backend": summary.backend,
        "backend_reason": summary.backend_reason,
        "skill": asdict(summary.skill) if summary.skill else None,
        "short_intervals": [
            {"level": level, **asdict(short)}
            for level, short in sorted(summary.short_intervals.items())
        ],
        "candidate_failures": [
            {"candidate": label, **asdict(failed)}
            for label, failed in sorted(summary.candidate_failures.items())
        ],
        "global_unjudged": [
            {"candidate": label, **asdict(failed)}
            for label, failed in sorted(summary.global_unjudged.items())
        ],
        # as a run of nothing has them (``nothing``): a script reading `warnings`
        # met a KeyError exactly when a run was recorded
        "warnings": data_warnings(summary.run.options),
        # a --new-target run's partitions left serving the old target (champion_targets)
        "old_target": summary.run.options.get("old_target"),
        "registry": str(registry),
        **({"registry_db": location} if location is not None else {}),
        **(more or {}),
    }


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


def score(
    data: Annotated[  # text: a Path made file://localhost/x the relative file:/localhost/x
        str, typer.Argument(help="Table to score (.csv or .parquet) with key and feature columns.")
    ],
    out: Annotated[  # text: a Path made file:///x the relative file:/x
        str,
        typer.Option(
            "--out",
            "-o",
            help="Scores file, .parquet or .csv (written on success); '-' writes CSV to "
            "standard output (the summary line to standard error).",
        ),
    ],
    registry: RegistryOpt = DEFAULT_REGISTRY,
    alias: Annotated[
        str, typer.Option(help="Which version of each partition scores its rows.")
    ] = "production",
    backend: Annotated[
        Backend,
        typer.Option(
            help="'auto' (default): in this process, on Ray from 20,000 partitions or with "
            "--ray-address; 'ray' or 'local' to choose."
        ),
    ] = "auto",
    ray_address: Annotated[
        str | None,
        typer.Option(envvar="RAY_ADDRESS", help="Existing Ray cluster (default: embedded Ray)."),
    ] = None,
    skip_unknown: Annotated[
        bool,
        typer.Option(help="Leave rows with no model and no fallback unscored instead of failing."),
    ] = False,
    levels: LevelsOpt = None,
    threshold: ThresholdOpt = None,
    probabilities: Annotated[
        bool,
        typer.Option(
            "--probabilities",
            help="Also write a classifier's class probabilities: a proba-<class> column per "
            "class (0 for a class a partition never held).",
        ),
    ] = False,
    json_out: JsonOpt = False,
    registry_db: RegistryDbOpt = None,
    artifacts: ArtifactsOpt = None,
) -> None:
    """Score every row of DATA with its partition's model.

    The model at ALIAS scores each row, into OUT.

    Keys with no such model (unknown, too small to train, or without the alias) are scored by
    the fallback model. OUT holds DATA's columns, in its row order, plus prediction,
    model_version, partition (the key), served_by (whose model answered) and fallback; models
    trained with [intervals] add lo-<level>/hi-<level> columns (--levels to choose), and
    --probabilities a classifier's proba-<class> columns.
    """
    from manymodels import console
    from manymodels.intervals import parse_levels
    from manymodels.labels import check_threshold
    from manymodels.scoring import score_file
    from manymodels.store_urls import out_path

    to_stdout = out == "-"  # CSV on stdout, as most commands read `-o -`
    if to_stdout and json_out:
        from manymodels.exceptions import DataError

        raise DataError(
            "-o - writes the scores to standard output, where --json would write too: give "
            "--json a file to write the scores to (-o scores.csv), or drop --json"
        )
    out = out if to_stdout else str(out_path(out))  # file:///x.csv is /x.csv, as named below
    wanted = parse_levels(levels, "--levels")
    check_threshold(threshold, "--threshold")  # before the data or the registry is read
    if registry_db is None and artifacts is None:
        summary = score_file(
            data, out, registry,
            alias=alias, backend=backend, ray_address=ray_address, skip_unknown=skip_unknown,
            signer=signer(registry), levels=wanted, threshold=threshold,
            probabilities=probabilities,
        )  # fmt: skip
    else:
        with open_checked(registry, registry_db, artifacts, models=True) as reg:
            summary = score_file(
                data, out, reg, alias=alias, backend=backend, ray_address=ray_address,
                skip_unknown=skip_unknown, levels=wanted, threshold=threshold,
                probabilities=probabilities,
            )  # fmt: skip
    if json_out:
        console.print_json({**summary.to_dict(), "out": str(out), "registry": str(registry)})
        return
    unscored = f", {summary.unscored_rows:,} unscored" if summary.unscored_rows else ""
    if summary.retired_partitions:
        unscored += f"; {summary.retired_partitions:,} retired partition(s) among them"
    echo(
        f"scored {console.counted(summary.rows, 'row')} of "
        f"{console.counted(summary.partitions, 'partition')} "
        f"({summary.fallback_rows:,} by the fallback{unscored}) at '{alias}' "
        f"in {summary.seconds:.1f}s{WHERE.get(summary.backend, '')} → "
        f"{'standard output' if to_stdout else out}",
        err=to_stdout,  # stdout holds the CSV alone
    )
