"""How a command that trains reports its run: the summary (or ``--json``'s members), a failed
run's resume command, and a run of nothing.

``train``, ``retrain`` and ``scheduler --json`` report the same run the same way, so the words
and the JSON members live here once rather than in the command that happened to come first.
Heavy imports stay inside the functions so ``--help`` is instant.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any, NoReturn

from manymodels.cli.lines import echo
from manymodels.cli.options import repeated_flags


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


def failed(
    error: Any, again: list[str], registry: Path, *, json_out: bool, **where: Any
) -> NoReturn:
    """Report a failed run and raise its error. A run that lost partitions says how to finish
    it with commands that name this registry (``again``: this command, without ``--resume``),
    as the summary's ``next:`` does; the library's own message cannot know them."""
    from dataclasses import replace

    from manymodels.exceptions import RunFailed
    from manymodels.run_verdict import lost_failure

    summary = error.summary
    if not summary.lost:
        report(summary, registry, json_out=json_out, **where)
        raise error
    run = summary.run
    flags = "".join(f" {shlex.quote(w)}" for w in repeated_flags(registry, **where))
    resume = shlex.join([*again, "--resume", run.run_id])
    why = lost_failure(run.run_id, summary.lost, run.n_partitions, where=flags, resume=resume)
    shown = summary if json_out else replace(summary, run=replace(run, error=why))
    report(shown, registry, json_out=json_out, **where)
    raise RunFailed(why, summary) from None


def report(
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
