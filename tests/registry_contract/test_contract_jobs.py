"""The routers' retrain jobs (``manymodels.registry.jobs``) behave the same on every database:
one active job per partition, a bounded history, and the jobs of a stopped router failed."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from manymodels.registry import Registry
from manymodels.registry import schema as t
from manymodels.registry.db_clock import db_now
from manymodels.registry.engine import now
from manymodels.registry.jobs import RESTARTED, JobBusy, JobRecord, router_id

OLD = "2026-01-01T00:00:00.000000+00:00"


def job(
    job_id: str, partition: str, owner: str | None = None, beat: str | None = None
) -> JobRecord:
    at = now()
    return JobRecord(job_id, partition, "queued", "local", owner or router_id(), at, beat or at)


def stamp(reg: Registry, job_id: str, beat: str) -> None:
    """The job's last heartbeat as its router left it: a beat from before beats took the
    database's clock, or the last of a router that stopped."""
    with reg.store.engine.begin() as conn:
        conn.execute(update(t.jobs).where(t.jobs.c.job_id == job_id).values(heartbeat_at=beat))


def shifted(seconds: float) -> str:
    """This clock's time moved by ``seconds``: what a host whose clock runs that far ahead
    (or, negative, behind) stamps."""
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat(timespec="microseconds")


def test_one_active_job_per_partition_and_a_bounded_history(reg: Registry) -> None:
    jobs = reg.jobs
    jobs.submit(job("a", "k=1"), lease=60)
    with pytest.raises(JobBusy) as busy:
        jobs.submit(job("b", "k=1"), lease=60)
    assert busy.value.job.job_id == "a" and busy.value.job.status == "queued"
    jobs.submit(job("c", "k=2"), lease=60)  # another partition is free
    started = jobs.start("a")
    assert started is not None and started.status == "running" and started.started_at
    assert jobs.start("a") is None  # started once
    done = jobs.finish("a", "succeeded", history=2, run_id="r1", version=2, production=2)
    assert done is not None and (done.status, done.version, done.production) == ("succeeded", 2, 2)
    assert jobs.active("k=1") is None
    assert jobs.finish("a", "failed", history=2, error="late") is None  # an ended job stays
    for i in range(3):  # free again: three more, each ended, leave the newest two
        jobs.submit(job(f"n{i}", "k=1"), lease=60)
        jobs.finish(f"n{i}", "failed", history=2, error="x")
    assert [j.job_id for j in jobs.recent()] == ["n2", "n1", "c"]  # c is still queued
    assert jobs.get("a") is None


def test_a_job_whose_beat_is_stamped_ahead_frees_its_partition(reg: Registry) -> None:
    """A router killed on a machine whose clock runs 3 h ahead: its job's last heartbeat is
    stamped 3 h ahead of this clock. Such a beat proves nothing (as a run's: ``run_busy``),
    yet the job held its partition (``JobBusy``) until this clock caught up; it is a stopped
    router's now. A beat 30 s ahead (clocks a little apart) is still a live router's. (Beats
    take the database's clock now: such stamps are those written before.)"""
    jobs = reg.jobs
    jobs.submit(job("ahead", "k=1", owner="elsewhere:1:x"), lease=60)
    jobs.submit(job("near", "k=2", owner="elsewhere:2:x"), lease=60)
    stamp(reg, "ahead", shifted(3 * 3600))
    stamp(reg, "near", shifted(30))
    ended = jobs.get("ahead", lease=60)
    assert ended is not None and ended.status == "failed" and ended.error
    assert ended.error.startswith(RESTARTED) and "elsewhere:1:x" in ended.error
    assert jobs.active("k=1", lease=60) is None
    jobs.submit(job("next", "k=1"), lease=60)  # the partition is free: no JobBusy
    assert jobs.get("near", lease=60).status == "queued"  # type: ignore[union-attr]
    with pytest.raises(JobBusy):
        jobs.submit(job("beside", "k=2"), lease=60)


def test_jobs_of_a_stopped_router_are_failed_and_free_their_partition(reg: Registry) -> None:
    jobs = reg.jobs
    jobs.submit(job("stale", "k=1", owner="elsewhere:1:x"), lease=60)
    stamp(reg, "stale", OLD)
    jobs.submit(job("fresh", "k=2", owner="elsewhere:2:x"), lease=60)
    assert jobs.get("stale") is not None and jobs.get("stale").active  # type: ignore[union-attr]
    ended = jobs.get("stale", lease=60)
    assert ended is not None and ended.status == "failed" and ended.error
    assert ended.error.startswith(RESTARTED) and "elsewhere:1:x" in ended.error
    assert jobs.active("k=1") is None
    assert jobs.get("fresh", lease=60).status == "queued"  # type: ignore[union-attr]
    jobs.heartbeat(["fresh"])
    jobs.submit(job("next", "k=1"), lease=60)
    assert [j.job_id for j in jobs.fail_queued("elsewhere:2:x", "shut down")] == ["fresh"]


def test_a_router_whose_clock_runs_behind_keeps_its_jobs_alive(reg: Registry) -> None:
    """Routers on two hosts share the database; one host's clock runs 3 min behind. Its
    router queued, started and beat its job with its own clock, so every beat read 3 min old
    to a router on a right clock, which ended the live job as a stopped router's after a
    60 s lease ("router restarted") and took a second retrain of the partition beside the
    first. Beats are the database's time now, judged by the database's time: the job is alive
    and the partition busy, however far apart the routers' clocks are."""
    jobs = reg.jobs
    behind = shifted(-180)  # the skewed router's clock, which its record carries
    queued = jobs.submit(job("live", "k=1", owner="elsewhere:1:x", beat=behind), lease=60)
    seen = jobs.get("live", lease=60)  # a router on a right clock looks
    assert seen is not None and seen.status == "queued" and seen.error is None
    assert queued.heartbeat_at > behind
    assert jobs.start("live") is not None
    jobs.heartbeat(["live"])
    assert jobs.expire(60) == []
    with pytest.raises(JobBusy):  # no second retrain beside the first
        jobs.submit(job("second", "k=1"), lease=60)
    with reg.store.engine.connect() as conn:
        beat = conn.execute(select(t.jobs.c.heartbeat_at).where(t.jobs.c.job_id == "live"))
        stored, server = beat.scalar_one(), db_now(conn)
    assert stored <= server and datetime.fromisoformat(server) - datetime.fromisoformat(
        stored
    ) < timedelta(seconds=60)  # the database's time, not the skewed router's


def test_a_job_keeps_its_runs_warnings_in_their_own_column(reg: Registry) -> None:
    """A job's run's warnings are written into its row as it ends, so that showing the job
    reads no run — in ``warnings_json`` (NULL when none), ``data_json`` holding the upload's
    fields alone: a router older than these warnings reads it as such, and failed on every
    job that warned when they were kept there. A job ended with none reads with none."""
    data = {"sha256": "ab" * 32, "size": 10, "rows": 2, "format": "json", "filename": None}
    jobs = reg.jobs
    for job_id in ("warned", "older"):
        jobs.submit(replace(job(job_id, f"k={job_id}"), data=data), lease=60)
    said = ("the week column holds more than one day of the week",)
    jobs.finish("warned", "succeeded", history=5, run_id="r1", version=2, warnings=said)
    jobs.finish("older", "succeeded", history=5, run_id="r2", version=2)
    warned, older = jobs.get("warned"), jobs.get("older")
    assert warned is not None and (warned.data, warned.warnings) == (data, said)
    assert older is not None and (older.data, older.warnings) == (data, ())
    assert [j.warnings for j in jobs.recent()] == [(), said]
    c = t.jobs.c
    with reg.store.engine.connect() as conn:
        rows = conn.execute(select(c.job_id, c.data_json, c.warnings_json).order_by(c.seq))
        stored = {i: (json.loads(d), w and json.loads(w)) for i, d, w in rows}
    assert stored == {"warned": (data, list(said)), "older": (data, None)}


def test_a_job_a_schema_14_router_ended_reads_its_warnings_from_its_data(reg: Registry) -> None:
    """A router of schema 14 that opened the registry before its upgrade runs on beside the
    upgraded ones (during a rolling upgrade) and ends its jobs as it did: the warnings in
    ``data_json``. Such a job reads as it did, its data the upload's fields alone."""
    data = {"sha256": "cd" * 32, "size": 10, "rows": 2, "format": "csv", "filename": "a.csv"}
    reg.jobs.submit(replace(job("aside", "k=1"), data=data), lease=60)
    said = ["a gap of 2 weeks before 2026-01-12"]
    with reg.store.engine.begin() as conn:  # what that router's end writes
        conn.execute(
            update(t.jobs)
            .where(t.jobs.c.job_id == "aside")
            .values(status="succeeded", active_partition=None, run_id="r1", version=1,
                    data_json=json.dumps({**data, "warnings": said}))
        )  # fmt: skip
    ended = reg.jobs.get("aside")
    assert ended is not None and (ended.data, ended.warnings) == (data, tuple(said))
