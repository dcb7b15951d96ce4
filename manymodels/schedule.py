"""Scheduled retraining: ``[schedule] cron`` in the spec, run by ``manymodels scheduler``.

The cron arithmetic (day-of-week names, ranges, daylight-saving gaps, missed firings) is
APScheduler's, not ours: ``BlockingScheduler`` fires one job on a ``CronTrigger``, never two
at once (``max_instances=1``), and folds firings missed while a long run went on into one
(``coalesce``). Each firing re-reads the spec file and the data, then trains what the
schedule's ``when`` names (changed partitions by default, as ``manymodels train …
--changed-only``), so a scheduled run is recorded like any run, with ``{"trigger":
"schedule", "cron": …}`` in its options; a change to the schedule itself applies on restart. A
firing that fails (the data file is missing, the run failed) is reported on one
line and the scheduler waits for the next one; it never stops on a run's failure. Each firing
is claimed in the registry before it trains (``registry.firings``, by its scheduled time,
``due_time``): of several schedulers of one schedule on one registry, one trains it; and a
scheduler starting after the newest firing went unrun runs it at once (``missed``).

APScheduler is an optional dependency (``pip install 'manymodels[schedule]'``): only this
module imports it, and only when a schedule is parsed or run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from manymodels.exceptions import ManyModelsError, NothingToTrain, SpecError, first_line

INSTALL = "pip install 'manymodels[schedule]'"
CRON_FIELDS = ("minute", "hour", "day", "month", "day_of_week")


def check_schedule(cron: str, timezone: str) -> None:
    """``ValueError`` naming what is wrong with ``cron`` or ``timezone`` (spec validation).

    Fields read as cron's (``crontab(5)``), except that when both the day of the month and the
    day of the week are restricted a firing needs both to match (cron needs either). Without
    APScheduler installed only the shape is checked here; ``trigger`` checks the rest when the
    scheduler starts."""
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown timezone {timezone!r} (an IANA name: 'UTC', 'Europe/Paris')"
        ) from None
    fields = cron.split()
    if len(fields) not in (5, 6):
        raise ValueError(
            f"cron {cron!r} has {len(fields)} field(s); expected 5 (minute hour day month "
            "day_of_week) or 6 (second first)"
        )
    _six_fields(cron, fields)
    with contextlib.suppress(ImportError):  # checked again when the scheduler starts
        _trigger(cron, timezone)


def trigger(cron: str, timezone: str) -> Any:
    """The ``CronTrigger`` for a spec's schedule; ``ManyModelsError`` without APScheduler."""
    try:
        return _trigger(cron, timezone)
    except ImportError:
        raise ManyModelsError(f"manymodels scheduler needs APScheduler: {INSTALL}") from None


def _trigger(cron: str, timezone: str) -> Any:
    from apscheduler.triggers.cron import CronTrigger

    fields = cron.split()
    _six_fields(cron, fields)
    names = CRON_FIELDS if len(fields) == 5 else ("second", *CRON_FIELDS)
    try:
        values = dict(zip(names, fields, strict=True))
        values["day_of_week"] = day_of_week(values["day_of_week"])
        return CronTrigger(**values, timezone=ZoneInfo(timezone))
    except ValueError as e:
        raise ValueError(f"cron {cron!r}: {first_line(e)}") from None


def _six_fields(cron: str, fields: list[str]) -> None:
    """``ValueError`` for a six-field cron whose last field is a number: six fields mean
    three things among cron tools — seconds first (Quartz, Spring, ours), seconds last
    (croniter) or a year last (AWS EventBridge) — and read seconds first, ``"0 3 * * * 5"``
    (03:00:05 daily, for croniter) fired at minute 3 of every hour on Fridays, and
    ``"0 3 * * * 2027"`` was refused as "'2027' is not a day". A day of the week by name
    (``mon-fri``) is no second or year in any tool; ``*`` and ``?`` stay the documented
    seconds-first form (``"*/5 * * * * *"``: every five seconds)."""
    if len(fields) != 6 or not any(c.isdigit() for c in fields[5]):
        return
    last = fields[5]
    try:
        named = day_of_week(last)
    except ValueError:
        named = ""
    if not named:
        raise ValueError(
            f"cron {cron!r}: '{last}' is not a day of the week: six fields are read seconds "
            "first (second minute hour day month day_of_week), with no year or seconds "
            "field at the end; use five fields (minute hour day month day_of_week)"
        )
    raise ValueError(
        f"cron {cron!r}: the sixth field '{last}' is a day of the week only when seconds come "
        f"first (a second or a year to other cron tools): write the days by name "
        f"('{' '.join([*fields[:5], named])}') or use five fields"
    )


DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def day_of_week(field: str) -> str:
    """A cron day-of-week field (0 or 7 = Sunday, 1 = Monday; names; ranges, lists, steps) as
    the day names APScheduler reads: its numbers start at Monday = 0, so ``"0 3 * * 1"`` —
    Mondays for cron, ``crontab(5)`` — would fire on Tuesdays if passed through."""
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for item in field.lower().split(","):
        part, slash, step = item.partition("/")
        every = int(step) if step.isascii() and step.isdigit() and int(step) > 0 else 0
        if slash and not every:
            raise ValueError(f"day_of_week {field!r}: bad step {step!r}")
        if part == "*":
            first, last = 0, 6
        else:
            a, dash, b = part.partition("-")
            first = _day(a, field)
            last = _day(b, field) if dash else (6 if slash else first)
        if last < first:
            raise ValueError(f"day_of_week {field!r}: range {part!r} runs backwards")
        days.update(d % 7 for d in range(first, last + 1, every or 1))
    return ",".join(DAYS[d] for d in sorted(days))


def _day(token: str, field: str) -> int:
    if token.isascii() and token.isdigit() and int(token) <= 7:
        return int(token)
    if token in DAYS:
        return DAYS.index(token)
    raise ValueError(f"day_of_week {field!r}: {token!r} is not a day (0-7, sun-sat)")


def next_times(cron: str, timezone: str, n: int, after: datetime | None = None) -> list[datetime]:
    """The next ``n`` firings after ``after`` (default: now), in the schedule's timezone."""
    when = trigger(cron, timezone)
    out: list[datetime] = []
    previous = None
    now = after or datetime.now(ZoneInfo(timezone))
    while len(out) < n:
        fire = when.get_next_fire_time(previous, now)
        if fire is None:
            break
        out.append(fire)
        previous, now = fire, fire
    return out


def due_time(when: Any, now: datetime) -> datetime | None:
    """The firing of trigger ``when`` that a job starting at ``now`` runs: the newest one not
    after ``now`` (a late or coalesced firing is the newest it stands for), so two schedulers
    name a firing alike whatever their start-up delay. Looks back twice as far each time (a
    second, two, … up to ~2 years): some 30 trigger calls at most, a few for a per-second
    cron. Compared in UTC: within one zone Python compares wall times, and the two 02:30 of
    an autumn night would be one."""
    utc_now = now.astimezone(UTC)
    span = timedelta(seconds=1)
    while span < timedelta(days=1000):
        fire = when.get_next_fire_time(None, now - span)
        if fire is not None and fire.astimezone(UTC) <= utc_now:
            for _ in range(64):  # a few at most (none later than ``now - span / 2``)
                later = when.get_next_fire_time(fire, fire + timedelta(microseconds=1))
                if later is None or not fire.astimezone(UTC) < later.astimezone(UTC) <= utc_now:
                    break
                fire = later
            return fire
        span *= 2
    return None


@dataclass(frozen=True)
class Firing:
    """One scheduled run as reported: ``run_id`` and ``summary`` (``RunSummary``) when it
    trained, ``error`` (one line) when it could not, ``taken`` when another scheduler of the
    same schedule claimed the firing first (``registry.firings``)."""

    at: datetime
    run_id: str | None = None
    summary: Any = None
    error: str | None = None
    taken: datetime | None = None
    caught_up: datetime | None = None  # a firing missed while no scheduler ran, run at start
    given_up: bool = False  # ``error`` says why: its attempts used up (``FiringGivenUp``)
    nothing: str | None = None  # nothing had changed: why no run was recorded (``NothingToTrain``)
    said: tuple[str, ...] = ()  # … and the data's warnings that run would have said
    unchanged: int = 0  # … and how many partitions it left as they were


class FiringGivenUp(ManyModelsError):
    """Raised by a ``claim`` that found the firing's attempts used up (``FIRING_ATTEMPTS``):
    reported as given up, not as a firing another scheduler ran."""


def run_schedule(
    spec_path: Path,
    fire: Callable[[datetime], Any],
    *,
    max_runs: int | None = None,
    report: Callable[[Firing, datetime | None], None],
    started: Callable[[datetime | None], None] = lambda missed: None,
    claim: Callable[[datetime], bool] = lambda due: True,
    missed: Callable[[datetime], bool | datetime] = lambda due: False,
    overlap: Callable[[datetime], None] | None = None,
) -> list[Firing]:
    """Fire ``fire(due)`` on the spec's schedule until stopped; returns the firings.

    ``fire`` trains once for the firing scheduled at ``due`` (``due_time``) and returns its
    ``RunSummary`` (an exception is that firing's error line). Each firing first calls
    ``claim(due)``; ``False`` (another scheduler runs it) skips it, reported as
    ``Firing.taken``. At start, ``missed(due)`` says whether the newest firing due went unrun
    (no scheduler was running then: a reboot at 03:00); if so it runs at once, as
    ``Firing.caught_up``, and ``started`` is told which — or at the instant ``missed``
    answers (a firing another scheduler may still run, looked at again then). SIGTERM or
    Ctrl-C stops the scheduler after the current run; a second one stops at once (the run
    stays resumable, as any interrupted run). ``max_runs`` stops after that many firings (for
    tests, and for a one-off "at the next 03:00"). ``overlap(at)`` says a firing skipped
    while the previous run went (default: its line on stdout)."""
    from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_SCHEDULER_STARTED
    from apscheduler.schedulers.blocking import BlockingScheduler

    from manymodels.registry.pg_connect import authentication_failed
    from manymodels.spec import Spec

    schedule = Spec.from_toml(spec_path).schedule
    if schedule is None:
        raise SpecError(f'{spec_path}: no [schedule] table (e.g. cron = "0 3 * * mon")')
    when = trigger(schedule.cron, schedule.timezone)
    scheduler = BlockingScheduler(timezone=ZoneInfo(schedule.timezone))
    fired: list[Firing] = []

    gone: list[BrokenPipeError] = []  # stdout's reader left (``reader_left``)
    idle = threading.Event()  # no firing running: a stop need not wait for one
    idle.set()

    def job() -> None:
        idle.clear()
        try:
            fired_once()
        finally:
            idle.set()

    def fired_once() -> None:
        at = datetime.now(ZoneInfo(schedule.timezone))
        late = catch_up if not fired else None
        refused = False
        try:
            due = due_time(when, at) or at
            if not claim(due):
                firing = Firing(at, taken=due)
            else:
                summary = fire(due)  # None: nothing to retrain
                run_id = summary.run.run_id if summary else None
                firing = Firing(at, run_id, summary, caught_up=late)
        except FiringGivenUp as e:
            firing = Firing(at, error=first_line(e), given_up=True)
        except NothingToTrain as e:  # not a failure: the firing found nothing changed
            firing = Firing(at, nothing=first_line(e), caught_up=late, said=tuple(e.said()),
                            unchanged=e.unchanged)  # fmt: skip
        except Exception as e:  # a firing's failure is reported; the schedule goes on
            run = getattr(getattr(e, "summary", None), "run", None)  # RunFailed keeps its run
            run_id = run.run_id if run is not None else None
            firing = Firing(at, run_id, error=first_line(e), caught_up=late)
            refused = authentication_failed(e)
        fired.append(firing)
        # …but not past a database that refuses the login: every firing would fail alike
        done = (max_runs is not None and len(fired) >= max_runs) or refused
        job_ref = scheduler.get_job("retrain")
        try:
            report(firing, None if done or job_ref is None else job_ref.next_run_time)
        except BrokenPipeError as e:  # the reader of stdout left (``| head -1``): stop
            reader_left(e)
            return
        if done and scheduler.running:
            scheduler.shutdown(wait=False)

    def reader_left(error: BrokenPipeError) -> None:
        """Stdout's reader is gone: no firing can be reported again, so the scheduler stops
        (the run that was just reported has ended); the main thread re-raises ``error``
        once the scheduler is down, where the command ends as any whose reader left
        (``cli.pipe_closed``). Raised in APScheduler's worker, it was logged and the
        schedule went on firing, every report lost."""
        gone.append(error)
        if scheduler.running:
            scheduler.shutdown(wait=False)

    def stop(signum: int, frame: FrameType | None) -> None:
        print("stopping after the current run, if one is going (again to stop now)",
              file=sys.stderr)  # fmt: skip
        signal.signal(signal.SIGINT, now)
        signal.signal(signal.SIGTERM, now)
        if scheduler.running:
            scheduler.shutdown(wait=False)

    def now(signum: int, frame: FrameType | None) -> None:
        print("stopped: `manymodels doctor` lists an interrupted run and how to resume it",
              file=sys.stderr)  # fmt: skip
        os._exit(130)

    def overlapped(event: Any) -> None:  # APScheduler would log its own multi-line warning
        # a firing's line, on stdout with the others (a log of stdout missed every skipped
        # firing), and flushed now: a pipe's buffer held it until the run ended
        try:
            if overlap is not None:
                overlap(event.scheduled_run_times[0])
                return
            late = event.scheduled_run_times[0].isoformat(timespec="seconds")
            print(f"{late} skipped: the previous run is still going", flush=True)
        except BrokenPipeError as e:  # stops after the run going on, which it cannot cut
            reader_left(e)

    start = datetime.now(ZoneInfo(schedule.timezone))
    last_due = due_time(when, start)
    found = missed(last_due) if last_due is not None else False
    catch_up = last_due if found is not False else None
    at = max(found, start) if isinstance(found, datetime) else start
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    scheduler.add_listener(overlapped, EVENT_JOB_MAX_INSTANCES)
    first = {} if catch_up is None else {"next_run_time": at}  # then on the trigger
    scheduler.add_job(job, when, id="retrain", max_instances=1, coalesce=True,
                      misfire_grace_time=None, **first)  # fmt: skip
    previous = (signal.signal(signal.SIGINT, stop), signal.signal(signal.SIGTERM, stop))
    # said once running, after the signal handlers: a SIGTERM from then on stops it gracefully
    scheduler.add_listener(lambda event: started(catch_up), EVENT_SCHEDULER_STARTED)
    try:
        scheduler.start()  # blocks until shutdown, which a stop asks without waiting
        # … for the firing under way, here, with our handlers still installed: restored
        # while it ran, a second Ctrl-C met Python's own (a traceback at exit, exit 0) and
        # a second SIGTERM killed it saying nothing
        while not idle.wait(0.2):
            pass
        if gone:  # here, in the main thread: the process ends from it (``cli.pipe_closed``)
            raise gone[0]
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])
    return fired
