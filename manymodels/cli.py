"""The ``manymodels`` command.

Heavy imports (pandas, scikit-learn, Ray) happen inside commands so ``manymodels --help`` is
instant. Every error we raise on purpose is shown as one line, ``error: …``, with exit code 2
for bad input (spec, data, unknown names) and 1 for everything else — never a traceback. A bad
command line (an option out of range, an unknown option, a missing argument) is one such line
too, with exit code 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from manymodels import __version__

_BAD_INPUT_EXIT = 2
MAX_INT = 2**31 - 1  # bound on integer options: SQLite would overflow past 2**63 - 1


class _Group(TyperGroup):
    """Turns our own exceptions, and typer's usage errors, into one clear line on stderr, at the
    outermost edge.

    Typer would show a bad option (``--limit 0``, ``--bogus``, a missing argument) as a usage
    line, a hint and a boxed message; every other error of ours is one ``error: …`` line that
    scripts and people read the same way, so these are too.
    """

    def make_context(
        self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any
    ) -> Any:
        # A group's own command line is parsed here, before ``invoke``: ``manymodels --bogus``.
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except typer.TyperException as e:
            _exit_on_usage_error(e)
            raise

    def invoke(self, ctx: Any) -> Any:  # typer vendors click: its Context type is private
        from manymodels.exceptions import DataError, ManyModelsError, SpecError

        try:
            return super().invoke(ctx)
        except ManyModelsError as e:
            typer.echo(f"error: {e}", err=True)
            bad_input = isinstance(e, SpecError | DataError | LookupError)
            ctx.exit(_BAD_INPUT_EXIT if bad_input else 1)
        except typer.TyperException as e:  # a subcommand's name, options or arguments
            _exit_on_usage_error(e)
            raise
        except KeyboardInterrupt:
            typer.echo(
                "interrupted: work already committed is kept "
                "(an interrupted training run can be finished with --resume RUN_ID)",
                err=True,
            )
            ctx.exit(130)


def _exit_on_usage_error(error: typer.TyperException) -> None:
    """Print ``error`` (click's BadParameter, NoSuchOption, UsageError… which typer ≥ 0.26
    vendors under the public base ``TyperException``) as one line and exit with its code (2 for
    usage errors). Returns only for the help shown when a group is run without arguments,
    which click signals with a usage error too; typer itself recognises it by name."""
    if type(error).__name__ == "NoArgsIsHelpError":
        return
    typer.echo(f"error: {_usage_line(error)}", err=True)
    raise typer.Exit(error.exit_code)


def _usage_line(error: typer.TyperException) -> str:
    """``--limit: input should be less than or equal to 1000 (got 5000)``: which option or
    argument, then what is wrong with it, as in our other errors; other usage errors keep
    click's message (``no such option: --bogus``, ``missing argument 'data'``)."""
    if isinstance(error, typer.BadParameter) and error.message and error.param is not None:
        where = error.param.get_error_hint().replace("'", "")
        if error.param.param_type_name == "argument":
            where = where.upper()  # as the commands' help names them: SPEC, DATA, VERSION
        text = f"{where}: {_lower_first(error.message)}"
        from pydantic import ValidationError  # what typer validates values with

        problems = error.__cause__.errors() if isinstance(error.__cause__, ValidationError) else []
        if problems and problems[0].get("input") is not None:
            text = f"{text.rstrip('.')} (got {problems[0]['input']})"
    else:
        text = _lower_first(error.format_message())
    text = " ".join(text.split())  # one line, whatever the message
    return text[:-1] if text.endswith(".") and not text.endswith("..") else text


def _lower_first(text: str) -> str:
    """``Missing option`` → ``missing option``, like our own messages; ``VERSION …`` stays."""
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


app = typer.Typer(
    cls=_Group,
    help="Train, version and serve one model per partition.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
models_app = typer.Typer(cls=_Group, help="Browse registered models.", no_args_is_help=True)
runs_app = typer.Typer(cls=_Group, help="Browse training runs.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(runs_app, name="runs")

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


def _open(registry: Path) -> Any:
    from manymodels.registry import Registry

    return Registry.open(registry)


@app.command()
def train(
    spec: Annotated[Path, typer.Argument(help="Spec file (TOML).")],
    data: Annotated[Path, typer.Argument(help="Data file: .csv or .parquet.")],
    registry: RegistryOpt = DEFAULT_REGISTRY,
    ray_address: Annotated[
        str | None,
        typer.Option(envvar="RAY_ADDRESS", help="Existing Ray cluster (default: embedded Ray)."),
    ] = None,
    backend: Annotated[
        str, typer.Option(help="'ray' (default) or 'local' to train in this process.")
    ] = "ray",
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
    json_out: JsonOpt = False,
) -> None:
    """Train one model per partition of DATA as SPEC says, into the registry.

    A partition that already has a production model is retrained: the new version is evaluated
    against production and the spec's promotion policy decides whether it replaces it.
    """
    from manymodels import console
    from manymodels.pipeline import train as run_train
    from manymodels.spec import Spec

    parsed = Spec.from_toml(spec)
    only = _keys_from(partitions, partitions_file)
    show_bar = not json_out and sys.stderr.isatty()
    with console.progress_bar(f"training {parsed.name}", enabled=show_bar) as bar:
        summary = run_train(
            parsed, data, registry,
            backend=backend, ray_address=ray_address, strict=strict, progress=bar, resume=resume,
            only=only, changed_only=changed_only,
        )  # fmt: skip
    if json_out:
        console.print_json(
            {
                "run": summary.run.to_dict(),
                "decisions": summary.decisions,
                "failures": [f.to_dict() for f in summary.failures],
                "seconds": summary.seconds,
                "startup_seconds": summary.startup_seconds,
                "registry": str(registry),
            }
        )
    else:
        console.run_summary(summary, str(registry))


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


@app.command()
def promote(
    key: Annotated[str, typer.Argument(help="Partition key, e.g. 'store=2,brand=tropicana'.")],
    version: Annotated[int, typer.Argument(min=1, max=MAX_INT, help="The version to serve.")],
    registry: RegistryOpt = DEFAULT_REGISTRY,
    reason: Annotated[str, typer.Option(help="Recorded in the alias history.")] = "manual",
    json_out: JsonOpt = False,
) -> None:
    """Point a partition's production alias at VERSION (routers pick it up within seconds)."""
    from manymodels import console

    with _open(registry) as reg:
        move = reg.promote(key, version, reason=f"promoted by hand: {reason}")
    _show_move(move, json_out, console)


@app.command()
def rollback(
    key: Annotated[str, typer.Argument(help="Partition key, e.g. 'store=2,brand=tropicana'.")],
    registry: RegistryOpt = DEFAULT_REGISTRY,
    json_out: JsonOpt = False,
) -> None:
    """Move a partition's production alias back to the version it served before."""
    from manymodels import console

    with _open(registry) as reg:
        move = reg.rollback(key)
    _show_move(move, json_out, console)


def _show_move(move: Any, json_out: bool, console: Any) -> None:
    if json_out:
        console.print_json(move.to_dict())
    else:
        console.out.print(
            f"{move.key}: {move.alias} v{move.from_version} → v{move.to_version} ({move.reason})"
        )


@app.command()
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
        typer.Option(min=0, help="Spare unreferenced artifacts younger than this (seconds)."),
    ] = 3600.0,
    dry_run: Annotated[bool, typer.Option(help="Report what would go; delete nothing.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Delete versions past the retention limit and artifacts no version references."""
    from manymodels import console
    from manymodels.gc import collect

    with _open(registry) as reg:
        report = collect(reg, keep=keep, grace_seconds=grace_seconds, dry_run=dry_run)
    if json_out:
        console.print_json(report.to_dict())
        return
    verb = "would delete" if dry_run else "deleted"
    console.out.print(
        f"{verb} {len(report.versions_deleted)} version(s) and {report.artifacts_deleted} "
        f"artifact(s), {report.bytes_freed:,} bytes; {report.artifacts_kept_young} unreferenced "
        f"artifact(s) younger than {grace_seconds:g}s kept"
    )


@models_app.command("list")
def models_list(
    registry: RegistryOpt = DEFAULT_REGISTRY,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Rows per page.")] = 50,
    offset: Annotated[int, typer.Option(min=0, max=MAX_INT, help="Rows to skip.")] = 0,
    json_out: JsonOpt = False,
) -> None:
    """Partitions with their production model, its metric and the naive baseline's."""
    from manymodels import console

    with _open(registry) as reg:
        items = reg.list_partitions(limit=limit, offset=offset)
        total = reg.count_partitions()
    if json_out:
        console.print_json(
            {"total": total, "offset": offset, "items": [p.to_dict() for p in items]}
        )
    else:
        console.partitions_table(items, total=total, offset=offset)


@models_app.command("show")
def models_show(
    key: Annotated[str, typer.Argument(help="Partition key, e.g. 'store=2,brand=tropicana'.")],
    registry: RegistryOpt = DEFAULT_REGISTRY,
    json_out: JsonOpt = False,
) -> None:
    """All versions of one partition, its aliases, candidates tried, and alias history."""
    from manymodels import console

    with _open(registry) as reg:
        part = reg.get_partition(key)
        versions = reg.list_versions(part.key)
        history = reg.alias_history(part.key)
    if json_out:
        console.print_json(
            {
                "partition": {k: v for k, v in part.to_dict().items() if k != "production"},
                "versions": [v.to_dict() for v in versions],
                "alias_history": [m.to_dict() for m in history],
            }
        )
        return
    console.versions_table(part.key, versions)
    prod = next((v for v in versions if "production" in v.aliases), None)
    if prod is not None:
        console.candidates_table(prod)
    console.history_table(history)


@runs_app.command("list")
def runs_list(
    registry: RegistryOpt = DEFAULT_REGISTRY,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    json_out: JsonOpt = False,
) -> None:
    """Training runs, newest first."""
    from manymodels import console

    with _open(registry) as reg:
        runs = reg.list_runs(limit=limit)
    if json_out:
        console.print_json([r.to_dict() for r in runs])
    else:
        console.runs_table(runs)


@runs_app.command("show")
def runs_show(
    run_id: Annotated[str, typer.Argument(help="Run id (from 'runs list').")],
    registry: RegistryOpt = DEFAULT_REGISTRY,
    json_out: JsonOpt = False,
) -> None:
    """One run: inputs, counts, and every failed or skipped partition with its reason."""
    from manymodels import console

    with _open(registry) as reg:
        run = reg.get_run(run_id)
        failed = reg.store.run_outcomes(run_id, status=("failed", "lost"))
        skipped = reg.store.run_outcomes(run_id, status="skipped")
    if json_out:
        console.print_json(
            {
                "run": run.to_dict(),
                "failed": [o.to_dict() for o in failed],
                "skipped": [o.to_dict() for o in skipped],
            }
        )
        return
    console.run_detail(run)
    if failed:
        console.outcomes_table(failed, title="failed partitions")
    if skipped:
        console.outcomes_table(skipped, title="skipped partitions (served by the fallback)")


def _register_serve() -> None:
    from serving.command import serve  # typer only; FastAPI loads when the command runs

    app.command("serve")(serve)


_register_serve()


@app.command()
def demo(
    registry: Annotated[
        Path, typer.Option(help="Where the demo registry goes (replaced if it exists).")
    ] = Path("mmdemo"),
    backend: Annotated[str, typer.Option(help="'ray' or 'local'.")] = "ray",
) -> None:
    """Train the per-store sales sample end to end and show what happened."""
    from manymodels.demo import run_demo

    run_demo(registry, backend=backend)


@app.command()
def version() -> None:
    """Print the manymodels version."""
    typer.echo(__version__)


@app.command()
def score(
    data: Annotated[
        Path, typer.Argument(help="Table to score (.csv or .parquet) with key and feature columns.")
    ],
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Scores file, .parquet or .csv (written on success)."),
    ],
    registry: RegistryOpt = DEFAULT_REGISTRY,
    alias: Annotated[
        str, typer.Option(help="Which version of each partition scores its rows.")
    ] = "production",
    backend: Annotated[
        str, typer.Option(help="'ray' (default) or 'local' to score in this process.")
    ] = "ray",
    ray_address: Annotated[
        str | None,
        typer.Option(envvar="RAY_ADDRESS", help="Existing Ray cluster (default: embedded Ray)."),
    ] = None,
    skip_unknown: Annotated[
        bool,
        typer.Option(help="Leave rows with no model and no fallback unscored instead of failing."),
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Score every row of DATA with its partition's model at ALIAS into OUT.

    Keys with no such model (unknown, too small to train, or without the alias) are scored by
    the fallback model. OUT holds DATA's columns, in its row order, plus prediction,
    model_version, model_partition and fallback.
    """
    from manymodels import console
    from manymodels.scoring import score_file

    summary = score_file(
        data, out, registry,
        alias=alias, backend=backend, ray_address=ray_address, skip_unknown=skip_unknown,
    )  # fmt: skip
    if json_out:
        console.print_json({**summary.to_dict(), "out": str(out), "registry": str(registry)})
        return
    unscored = f", {summary.unscored_rows:,} unscored" if summary.unscored_rows else ""
    typer.echo(
        f"scored {summary.rows:,} rows of {summary.partitions:,} partitions "
        f"({summary.fallback_rows:,} by the fallback{unscored}) at '{alias}' "
        f"in {summary.seconds:.1f}s → {out}"
    )


@app.command()
def forecast(
    horizon: Annotated[int, typer.Option(help="Periods to forecast per partition (1-1000).")],
    registry: RegistryOpt = DEFAULT_REGISTRY,
    partitions: Annotated[
        list[str] | None,
        typer.Option("--partitions", help="Forecast only these keys (repeat the option)."),
    ] = None,
    future: Annotated[
        Path | None,
        typer.Option(
            help="Exogenous features of future periods (.csv or .parquet) with the key and time "
            "columns. Partitions without rows in it carry their last known values forward."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write the forecast to this .parquet or .csv file."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Forecast the next HORIZON periods of each partition with its production model.

    Only models trained from a spec with a time_column can be forecast; the fallback is not.
    Steps continue each partition's last training time at the data's frequency. Exogenous
    features come from --future when given, else each partition's last known values are carried
    forward; with target lags in the spec, each step's prediction feeds the next step's lags.
    """
    from manymodels import console
    from manymodels.forecast import forecast as run_forecast
    from manymodels.timefeatures import time_to_json

    if out is not None:
        from manymodels.data import output_format, write_table

        output_format(out)  # a bad extension or directory fails before any work
    frame = run_forecast(registry, partitions, horizon=horizon, future=future)
    n = len(frame) // horizon  # every partition has HORIZON rows
    if out is not None:
        write_table(frame, out)
        if json_out:
            console.print_json({"horizon": horizon, "partitions": n, "rows": len(frame),
                                "out": str(out)})  # fmt: skip
        else:
            typer.echo(f"forecast {horizon} period(s) of {n:,} partition(s) → {out}")
        return
    if json_out:
        rows = frame.to_dict(orient="records")
        time_column = frame.columns[-3]
        for row in rows:
            row[time_column] = time_to_json(row[time_column])
        console.print_json({"horizon": horizon, "partitions": n, "forecast": rows})
    else:
        console.out.print(frame.to_string(index=False), markup=False)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
