"""The lines ``manymodels scheduler`` prints (``cli.schedule``): one per firing, on stdout."""

from __future__ import annotations

from datetime import datetime
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
    r = firing.summary.run
    absent = r.options.get("not_in_data")
    left = f" · {absent['count']} flagged without rows in the data" if absent else ""
    echo(
        f"{when(firing.at)} run {r.run_id}{late}: {r.n_trained} trained · {r.n_skipped} skipped · "
        f"{r.n_failed} failed{left}{after}"
    )


def when(at: datetime | None) -> str:
    return at.isoformat(timespec="seconds") if at is not None else "never"
