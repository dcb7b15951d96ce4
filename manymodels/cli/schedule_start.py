"""Ctrl-C while ``manymodels scheduler`` still starts: before its first line, no firing has
run and no run exists, so the hint every other command gets ("an interrupted training run can
be finished with --resume RUN_ID", ``manymodels.cli.errors``) points at nothing.

Until the schedule runs (``running``: its own SIGINT and SIGTERM handlers in place, its start
line said), a Ctrl-C reads the spec, looks up missed firings or imports; ``said_at_start``
wraps the command so that this one says so, exit 130. Once it runs, Ctrl-C stops it after the
current run (``manymodels.schedule.run_schedule``) and no ``KeyboardInterrupt`` comes through
here. A decorator rather than a ``try`` around the command's body, which would re-indent it all.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer

from manymodels.cli.lines import echo

P = ParamSpec("P")
R = TypeVar("R")

INTERRUPTED_AT_START = (
    "interrupted: the scheduler was still starting; no firing had run and no run was "
    "started, so there is nothing to resume"
)


class _Start:
    """Whether the scheduler command under way runs its schedule yet (one a process: the
    scheduler installs signal handlers, so it runs in the main thread only)."""

    running = False


def running() -> None:
    """The schedule runs: a ``KeyboardInterrupt`` from now on is no longer one at start."""
    _Start.running = True


def said_at_start(command: Callable[P, R]) -> Callable[P, R]:
    """``command`` (the scheduler), a Ctrl-C before ``running`` said as that: exit 130."""

    @functools.wraps(command)  # typer reads the signature and hints of ``command`` through it
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        _Start.running = False
        try:
            return command(*args, **kwargs)
        except KeyboardInterrupt:
            if _Start.running:
                raise  # after its firings, as any command's
            echo(INTERRUPTED_AT_START, err=True)
            raise typer.Exit(130) from None

    return guarded
