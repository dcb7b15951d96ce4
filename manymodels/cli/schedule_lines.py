"""The lines ``manymodels scheduler`` prints (``cli.schedule``): one per firing, on stdout (one
JSON object a line with ``--json``)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from manymodels.cli.lines import echo


def report(firing: Any, following: datetime | None, why: str = "missed") -> None:
    """One line per firing, on stdout: what it did and when the next one is. A firing run at
    start names the firing it stands for and ``why`` it ran then (``missed``; a failed one run
    again, a killed run resumed: the first line's words), not always "missed"."""
    after = f" · next {when(following)}" if following is not None else ""
    late = f" (the {when(firing.caught_up)} firing, {why})" if firing.caught_up else ""
    if firing.taken is not None:
        echo(f"{when(firing.at)} skipped: another scheduler of this schedule ran the "
                   f"{when(firing.taken)} firing{after}")  # fmt: skip
        return
    if firing.given_up:
        echo(f"{when(firing.at)} given up: {firing.error}{after}")
        return
    if firing.error is not None:
        run = f" (run {firing.run_id})" if firing.run_id else ""
        echo(f"{when(firing.at)} error{run}{late}: {firing.error}{after}")
        return
    if firing.nothing is not None:  # the run it would have made changed nothing: none made
        echo(f"{when(firing.at)}{late} {firing.nothing}{after}")
        for line in firing.said:  # the data's warnings, as the run would have said them
            echo(f"warning: {line}", err=True)
        return
    if firing.summary is None:
        echo(f"{when(firing.at)} nothing to retrain: no partition is flagged{after}")
        return
    from manymodels.exceptions import data_warnings

    r = firing.summary.run
    absent = r.options.get("not_in_data")
    left = f" · {absent['count']} flagged without rows in the data" if absent else ""
    echo(
        f"{when(firing.at)} run {r.run_id}{late}: {r.n_trained} trained · {r.n_skipped} skipped · "
        f"{r.n_failed} failed{left}{after}"
    )
    for line in data_warnings(r.options):  # as a run of nothing's, and train's: on stderr
        echo(f"warning: {line}", err=True)


def when(at: datetime | None) -> str:
    return at.isoformat(timespec="seconds") if at is not None else "never"


def report_json(
    firing: Any,
    following: datetime | None,
    *,
    spec_name: str,
    cron: str,
    registry: Path,
    db_url: str | None = None,
) -> None:
    """``scheduler --json``: one JSON object a line per firing, flushed as it happens. A
    firing that trained has the members ``retrain --json`` prints (``cli.run_report.summary_json``);
    one that did not, those of ``retrain --json``'s run of nothing (``run`` null, ``trained``
    false, ``reason``, ``unchanged``, ``warnings``: the same whether nothing was flagged or
    nothing flagged had changed), or its ``error``. Each names its schedule (``schedule``: the
    spec's name as the firing read it, which its run is recorded under — the spec renamed
    while the scheduler runs, the new one; a firing not run here, the newest read — and
    ``cron``), ``event``, the firing's time (``at``), the missed firing it stood for
    (``caught_up``) and the next one (``next``)."""
    from manymodels.jsonout import print_json_line

    head: dict[str, Any] = {
        "schedule": spec_name, "cron": cron, "at": when(firing.at),
        "caught_up": when(firing.caught_up) if firing.caught_up else None,
        "next": when(following) if following is not None else None,
    }  # fmt: skip
    none: dict[str, Any] = {"run": None, "trained": False, "warnings": []}
    if firing.taken is not None:
        reason = f"another scheduler of this schedule ran the {when(firing.taken)} firing"
        body = {"event": "taken", **none, "reason": reason, "taken": when(firing.taken)}
    elif firing.error is not None:
        event = "given_up" if firing.given_up else "error"
        body = {"event": event, **none, "run_id": firing.run_id, "error": firing.error}
    elif firing.nothing is not None:
        body = {"event": "nothing", **none, "unchanged": firing.unchanged,
                "reason": firing.nothing, "warnings": list(firing.said)}  # fmt: skip
    elif firing.summary is None:  # the members of the "nothing" above (this had "selected": [])
        reason = "nothing to retrain: no partition is flagged"
        body = {"event": "nothing", **none, "unchanged": 0, "reason": reason}
    else:
        from manymodels.cli.run_report import summary_json

        body = {"event": "trained", "trained": True,
                **summary_json(firing.summary, registry, db_url=db_url)}  # fmt: skip
    print_json_line({**head, **body})


def overlap_json(at: datetime, *, spec_name: str, cron: str) -> None:
    """``scheduler --json``'s line for a firing skipped while the previous run still went."""
    from manymodels.jsonout import print_json_line

    print_json_line({
        "schedule": spec_name, "cron": cron, "at": when(at), "event": "overlap",
        "run": None, "trained": False, "reason": "skipped: the previous run is still going",
        "warnings": [],
    })  # fmt: skip


def warn_if_absent(data: Path | str) -> None:
    """One ``warning:`` line on stderr when the data file is not there: a typo was told only
    at the first firing (03:00 Monday), and ``scheduler --next`` said nothing of it at all.
    Not an error: an upstream job may write the file before the firing, so the scheduler
    starts (and ``--next`` lists its times, exit 0) all the same."""
    if isinstance(data, Path) and not data.exists():
        echo(f"warning: {data}: no such file (yet): each firing fails until it is", err=True)
