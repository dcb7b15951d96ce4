"""``manymodels retrain SPEC DATA --when …``: retrain only the partitions the monitor flags
(drifted, stale, degraded) or whose data changed, through the usual champion/challenger
lifecycle; kept apart from the read-only monitoring commands (``cli.monitor``), as the one
that trains.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import typer

from manymodels.cli.lines import echo
from manymodels.cli.monitor import (
    ConfidenceOpt,
    DriftOpt,
    ErrorRatioOpt,
    MaxAgeOpt,
    MaxDataAgeOpt,
    MinActualsOpt,
    NaiveRatioOpt,
    thresholds,
)
from manymodels.cli.options import (
    DEFAULT_REGISTRY,
    ArtifactsOpt,
    Backend,
    JsonOpt,
    RegistryDbOpt,
    RegistryOpt,
    open_checked,
    open_registry,
    repeated_flags,
)

Trigger = Literal["drifted", "stale", "degraded", "changed"]


def retrain(
    spec: Annotated[Path, typer.Argument(help="Spec file (TOML).")],
    # text: a Path made file://localhost/x the relative file:/localhost/x
    data: Annotated[str, typer.Argument(help="Data file: .csv or .parquet.")],
    when: Annotated[
        list[str],
        typer.Option(
            help="drifted | stale | degraded | changed (repeat: any of them). 'changed' "
            "(data fingerprint differs) stands alone.",
        ),
    ],
    registry: RegistryOpt = DEFAULT_REGISTRY,
    drift_threshold: DriftOpt = 0.25,
    error_ratio: ErrorRatioOpt = 1.5,
    naive_ratio: NaiveRatioOpt = 1.0,
    min_actuals: MinActualsOpt = 20,
    confidence: ConfidenceOpt = 0.95,
    max_age_days: MaxAgeOpt = 30.0,
    max_data_age_days: MaxDataAgeOpt = None,
    append: Annotated[
        bool, typer.Option(help="DATA holds new rows only (as train --append).")
    ] = False,
    backend: Annotated[Backend, typer.Option(help="auto | ray | local (as train).")] = "auto",
    dry_run: Annotated[
        bool,
        typer.Option(
            help="List the partitions the run would retrain, train nothing: DATA is read, "
            "and flagged partitions it holds no row of, or whose rows are those their newest "
            "version was trained on, are left out as the run leaves them out."
        ),
    ] = False,
    json_out: JsonOpt = False,
    registry_db: RegistryDbOpt = None,
    artifacts: ArtifactsOpt = None,
    resume: Annotated[
        str | None,
        typer.Option(
            help="Finish this run, killed or interrupted: the partitions flagged "
            "now and those it finished must be those it started with."
        ),
    ] = None,
) -> None:
    """Retrain only the partitions the monitor flags.

    Through the usual lifecycle: each new version is a challenger to production under the
    spec's promotion policy, recorded as a run with its history. A flagged partition whose
    data is unchanged since its newest version is left out (the same rows would give the
    same model again), and counted."""
    from manymodels.exceptions import DataError, NothingToTrain, RunInterrupted

    kinds = get_args(Trigger)
    bad = [w for w in when if w not in kinds]
    if bad:  # as click words a bad choice, one value at a time (it printed a Python list)
        choices = ", ".join(repr(k) for k in kinds)
        raise DataError(f"--when: {bad[0]!r} is not one of {choices}")
    triggers = set(when)
    if "changed" in triggers and len(triggers) > 1:
        raise DataError("--when changed stands alone (run once per kind)")
    if dry_run and resume is not None:  # the listing ignored --resume, a run that need not exist
        raise DataError("--dry-run trains nothing and --resume finishes a run: give one of them")
    only: list[str] | None = None
    if triggers != {"changed"}:
        only = flagged_keys(registry, registry_db, artifacts, triggers, thresholds(
            drift=drift_threshold, error_ratio=error_ratio, naive_ratio=naive_ratio,
            min_actuals=min_actuals, confidence=confidence, max_age_days=max_age_days,
            max_data_age_days=max_data_age_days,
        ))  # fmt: skip
        if resume is not None and not dry_run:  # what it set out to train: flagged, or done
            with open_checked(registry, registry_db, artifacts) as reg:
                only = with_finished(reg, resume, only)
        if not only:
            _nothing([], triggers, json_out=json_out, dry_run=dry_run)
            return
        if dry_run:
            _dry_run(spec, data, registry, registry_db, artifacts, only, triggers,
                     append=append, json_out=json_out)  # fmt: skip
            return
    elif dry_run:  # every partition of DATA whose data changed, decided as the run does
        _dry_run(spec, data, registry, registry_db, artifacts, None, triggers,
                 append=append, json_out=json_out)  # fmt: skip
        return
    from manymodels.cli.run_report import nothing, report
    from manymodels.pipeline import train as run_train
    from manymodels.spec import Spec

    # opened, not created: only `train` starts a registry, so a mistyped path is an error.
    # changed_only with the flagged keys too: a flagged partition whose rows are those its
    # newest version was trained on would be trained into the same model again, a new
    # version at every retrain while it stays flagged; it is left out and counted instead,
    # unless the spec was edited since (spec_edits): then it is not the same model.
    # The flags that flag the same partitions again, which `doctor` and an interrupted run
    # name to finish it: the run records the keys' digest, not the keys.
    flags = [w for trigger in sorted(triggers) for w in ("--when", trigger)]
    for flag, value, default in [
        ("--drift-threshold", drift_threshold, 0.25), ("--error-ratio", error_ratio, 1.5),
        ("--naive-ratio", naive_ratio, 1.0), ("--min-actuals", min_actuals, 20),
        ("--confidence", confidence, 0.95),
        ("--max-age-days", max_age_days, 30.0), ("--max-data-age-days", max_data_age_days, None),
    ]:  # fmt: skip
        flags += [flag, f"{value:g}"] if value != default and value is not None else []
    flags += ["--append"] if append else []
    words = ["manymodels", "retrain", str(spec), str(data)]
    words += [*repeated_flags(registry, registry_db, artifacts), *flags]
    try:
        with open_checked(registry, registry_db, artifacts) as reg:
            summary = run_train(
                Spec.from_toml(spec), data, reg, backend=backend, only=only,
                changed_only=True, spec_edits=only is not None, append=append,
                signer=reg.signer, skip_absent=True, resume=resume,
                notes={"retrain": shlex.join(flags)}, record_nothing=False,
            )  # fmt: skip
    except NothingToTrain as e:  # every flagged partition unchanged: no run of nothing
        warn_not_in_data(e.notes, data)
        if only is not None:
            n = e.unchanged
            with_rows = _in_data(only, e.notes.get("not_in_data"))
            e = NothingToTrain(
                f"nothing to retrain: {'the' if n == 1 else f'all {n:,}'} flagged "
                f"partition{'' if n == 1 else 's'} {'has' if n == 1 else 'have'} the data "
                f"{'its' if n == 1 else 'their'} newest version was trained on, under this "
                f"spec; no run recorded"
                f"{_unserved_newest(registry, registry_db, artifacts, with_rows)}",
                unchanged=n, notes=e.notes,
            )  # fmt: skip
        extra = {"selected": only, "when": sorted(triggers)} if only is not None else {}
        nothing(e, json_out=json_out, **extra)
        return
    except RunInterrupted as e:
        echo(
            f"interrupted: run {e.run_id} keeps what it committed; finish it with: "
            f"{shlex.join([*words, '--resume', e.run_id])}",
            err=True,
        )
        raise typer.Exit(130) from None
    warn_not_in_data(summary.run.options, data)
    # the members a retrain of nothing has: a script read `selected` of that one only
    more = {"selected": only, "when": sorted(triggers)} if only is not None else None
    report(summary, registry, json_out=json_out, db_url=registry_db, artifacts=artifacts, more=more)


def warn_not_in_data(options: dict[str, Any], data: str | Path) -> None:
    """One ``warning:`` line for the flagged partitions ``data`` holds no row of: they were
    left out (a store that closed stays flagged; it no longer stops the others' retrain)."""
    absent = options.get("not_in_data")
    if absent:
        shown = ", ".join(absent["first"]) + (
            " …" if absent["count"] > len(absent["first"]) else ""
        )
        echo(
            f"warning: {absent['count']} flagged partition(s) have no rows in {data}, "
            f"not retrained: {shown}",
            err=True,
        )


def flagged_keys(
    registry: Path, db_url: str | None, artifacts: str | None, triggers: set[str], limits: Any
) -> list[str]:
    """The partitions the monitor flags for ``triggers`` (``retrain --when``, the scheduler)."""
    from manymodels.monitoring import report

    with open_registry(registry, db_url, artifacts) as reg:
        return report.flagged(reg, triggers, limits)


def with_finished(reg: Any, run_id: str, flagged: list[str]) -> list[str]:
    """The partitions a resume of run ``run_id`` sets out to train: those ``flagged`` now and
    those it recorded (the monitor no longer flags what it retrained): ``retrain --resume``
    and a scheduler resuming its killed firing's run."""
    return sorted(set(flagged) | reg.store.recorded_keys(run_id))


def _dry_run(
    spec: Path,
    data: str,
    registry: Path,
    registry_db: str | None,
    artifacts: str | None,
    flagged: list[str] | None,
    triggers: set[str],
    *,
    append: bool,
    json_out: bool,
) -> None:
    """``--dry-run``: the partitions the run would retrain, decided by the run's own code
    (``run_input.would_retrain``): it listed every flagged partition, those the run then
    leaves out (unchanged data, no rows in DATA) too. ``selected`` in JSON stays the flagged
    keys, as in the run's own JSON (null for ``--when changed``, which selects every
    partition of DATA); ``retrain`` the keys it would train."""
    from manymodels import console
    from manymodels.run_input import would_retrain
    from manymodels.spec import Spec

    with open_checked(registry, registry_db, artifacts) as reg:
        found = would_retrain(Spec.from_toml(spec), data, reg, flagged, append=append)
    if found.not_in_data:
        warn_not_in_data({"not_in_data": found.not_in_data}, data)
    if json_out:
        console.print_json({
            "selected": flagged, "retrain": found.keys, "unchanged": found.unchanged,
            "when": sorted(triggers), "trained": False,
        })  # fmt: skip
    elif found.keys:
        for key in found.keys:  # one a line: a key's own newline escaped
            echo(key)
    elif flagged is None:  # --when changed: as the run's own nothing_to_train says it
        n = found.unchanged
        echo(
            f"nothing to retrain: {'the partition' if n == 1 else f'all {n:,} partitions'} "
            f"in {data} {'has' if n == 1 else 'have'} the data "
            f"{'it was' if n == 1 else 'they were'} last trained (or skipped) on"
        )
    else:
        n = found.unchanged
        echo(
            f"nothing to retrain: {'the' if n == 1 else f'all {n:,}'} flagged partition"
            f"{'' if n == 1 else 's'} in {data} {'has' if n == 1 else 'have'} the data "
            f"{'its' if n == 1 else 'their'} newest version was trained on, under this spec"
        )


def _in_data(keys: list[str], absent: dict[str, Any] | None) -> list[str]:
    """The flagged ``keys`` the data holds rows of, as far as the run's ``not_in_data`` note
    tells: it lists the ``first`` (smallest) ten of the sorted absent keys and their
    ``count``, so when it lists fewer than all, a key after the last listed one may be
    absent too and is left out: ``_unserved_newest`` says its newest version was trained on
    these rows, untrue of a partition the data has none of."""
    if not absent:
        return keys
    listed = set(absent["first"])
    whole = absent["count"] <= len(listed)
    last = max(listed, default="")
    return [k for k in keys if k not in listed and (whole or k < last)]


def _unserved_newest(
    registry: Path, registry_db: str | None, artifacts: str | None, keys: list[str]
) -> str:
    """For a retrain of flagged partitions that found each one's rows unchanged: the first
    (of the first ten ``keys``, those the data holds rows of: ``_in_data``) whose newest
    version is not the one in production, and the command that serves it — a partition
    rolled back from the version trained on these rows stayed flagged, and the line said only
    that it had the data of its newest version. One read a key; nothing when each newest
    version serves (the spec is then what to change)."""
    with open_checked(registry, registry_db, artifacts) as reg:
        for key in keys[:10]:
            found = reg.store.get_partition(key)
            served = found.aliases.get("production")
            if served is not None and served != found.latest_version:
                words = ["manymodels", "promote", key, str(found.latest_version)]
                command = shlex.join([*words, *repeated_flags(registry, registry_db, artifacts)])
                return (
                    f"; {key}'s newest version v{found.latest_version}, trained on these rows, "
                    f"is not in production (v{served} is: rolled back, or not promoted): "
                    f"{command} serves it"
                )
    return ""


def _nothing(keys: list[str], triggers: set[str], *, json_out: bool, dry_run: bool) -> None:
    """The line of a retrain, or of its ``--dry-run``, that found no partition flagged. With
    ``--json`` the latter has the members of every other run of nothing (``"run": null``,
    ``reason``, ``unchanged``): a script reading ``["run"]`` met a KeyError only here."""
    from manymodels import console

    reason = f"nothing to retrain: no partition is {' or '.join(sorted(triggers))}"
    if json_out:
        more: dict[str, Any] = {"retrain": [], "unchanged": 0}  # as _dry_run's
        if not dry_run:
            more = {"run": None, "unchanged": 0, "reason": reason, "warnings": []}
        console.print_json({**more, "selected": keys, "when": sorted(triggers), "trained": False})
    elif keys:
        for key in keys:  # one a line: a key's own newline escaped
            echo(key)
    else:
        echo(reason)
