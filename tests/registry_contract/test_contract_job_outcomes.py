"""A retrain job's end is what its run did, on every database, whoever records it: a job whose
run registered a version is succeeded with that version even when its router could not record
its end (the database away, the jobs table locked, the router killed after the commit). It
was failed "router restarted … post the rows again to retrain" while production served the
version it made; following the advice retrained twice (found by the outage attack)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from typing import Any

from factories import linear_frame, spec_dict
from sqlalchemy import update

from manymodels.pipeline import RunSummary, train
from manymodels.registry import Registry
from manymodels.registry import schema as t
from manymodels.registry.engine import now
from manymodels.registry.job_outcomes import JOB_NOTE
from manymodels.registry.jobs import RESTARTED, JobRecord, router_id
from manymodels.tempnames import process

KEY = "pid=0"
OLD = "2026-01-01T00:00:00.000000+00:00"
SPEC = spec_dict(features=["x0", "x1"], promotion={"policy": "always"})


def _gone_owner() -> str:
    """A router of this host whose process has exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(30)
    return f"{socket.gethostname()}:{child.pid}:0"


def _started(
    reg: Registry, job_id: str, owner: str | None = None, partition: str = KEY
) -> JobRecord:
    at = now()
    record = JobRecord(job_id, partition, "queued", "local", owner or router_id(), at, at)
    reg.jobs.submit(record, lease=3600)
    started = reg.jobs.start(job_id)
    assert started is not None and started.status == "running"
    return started


def _retrain(reg: Registry, **notes: Any) -> RunSummary:
    """What a job's work does: one partition retrained, its run noting the job."""
    frame = linear_frame(1, 30, seed=7)
    return train(SPEC, frame, reg, backend="local", only=[KEY], notes=notes)


def _trained(reg: Registry) -> None:
    train(SPEC, linear_frame(2, 30), reg, backend="local")


def test_a_job_whose_run_committed_is_succeeded_when_its_router_is_gone(reg: Registry) -> None:
    """The router killed after the run committed, before it recorded the job's end."""
    _trained(reg)
    _started(reg, "killed", owner=_gone_owner())
    summary = _retrain(reg, **{JOB_NOTE: "killed", "warnings": ["a note of the job's run"]})
    assert summary.versions == {KEY: 2}
    _started(reg, "lost", owner=_gone_owner(), partition="pid=1")  # never reached its run
    ended = reg.jobs.get("killed", lease=60)
    assert ended is not None and ended.status == "succeeded", ended
    assert (ended.run_id, ended.version, ended.production) == (summary.run.run_id, 2, 2)
    assert ended.error is None and not ended.active
    assert ended.warnings == ("a note of the job's run",)  # the run's, kept with the job
    lost = reg.jobs.get("lost", lease=60)  # nothing names it: failed, as it was
    assert lost is not None and lost.status == "failed" and lost.run_id is None
    assert lost.error is not None and lost.error.startswith(f"{RESTARTED}: the router running")


def test_a_failure_recorded_after_the_run_committed_is_the_runs_success(reg: Registry) -> None:
    """The job's work failed after its run's commit (the database away as it read the new
    version back): the failure its router records is the success the run made."""
    _trained(reg)
    _started(reg, "late")
    summary = _retrain(reg, **{JOB_NOTE: "late"})
    error = "OperationalError: server closed the connection unexpectedly"
    ended = reg.jobs.finish("late", "failed", history=10, error=error)
    assert ended is not None and ended.status == "succeeded", ended
    assert (ended.run_id, ended.version, ended.production, ended.error) == (
        summary.run.run_id, 2, 2, None
    )  # fmt: skip
    assert reg.jobs.active(KEY) is None  # its partition is free
    _started(reg, "other")  # a run noting another job is not this one's
    _retrain(reg, **{JOB_NOTE: "another"})
    failed = reg.jobs.finish("other", "failed", history=10, error="boom")
    assert failed is not None and (failed.status, failed.version) == ("failed", None)


def test_a_success_corrects_a_job_failed_as_a_stopped_routers(reg: Registry) -> None:
    """A router cut off from the database for longer than the lease finds its job failed as
    a stopped router's when it records its end: the success it brings is recorded."""
    _started(reg, "slow", owner="elsewhere:1:x")
    with reg.store.engine.begin() as conn:  # no heartbeat since OLD
        conn.execute(update(t.jobs).where(t.jobs.c.job_id == "slow").values(heartbeat_at=OLD))
    expired = reg.jobs.get("slow", lease=60)
    assert expired is not None and expired.status == "failed"
    done = reg.jobs.finish("slow", "succeeded", history=10, run_id="r", version=2, production=2)
    assert done is not None and (done.status, done.version, done.error) == ("succeeded", 2, None)
    assert reg.jobs.finish("slow", "failed", history=10, error="late") is None  # ended stays


def test_the_list_ends_a_stopped_routers_jobs_as_reading_one_does(reg: Registry) -> None:
    """``GET /v1/jobs`` listed a job of a stopped router as queued until the job itself was
    read; the caller's own live jobs (``spare``) are never ended, whatever their heartbeat."""
    jobs = reg.jobs
    for job_id, partition in (("queued", "k=1"), ("mine", "k=2")):
        jobs.submit(JobRecord(job_id, partition, "queued", "local", "elsewhere:1:x", now(), now()),
                    lease=60)  # fmt: skip
        with reg.store.engine.begin() as conn:  # no heartbeat since OLD
            conn.execute(update(t.jobs).where(t.jobs.c.job_id == job_id).values(heartbeat_at=OLD))
    listed = {j.job_id: j for j in jobs.recent(lease=60, spare={"mine"})}
    assert listed["queued"].status == "failed" and listed["mine"].status == "queued"
    assert listed["queued"].error is not None
    assert "before it started it" in listed["queued"].error
    assert "nothing was trained" in listed["queued"].error
    assert jobs.get("queued", lease=60) == listed["queued"]
    assert jobs.get("mine", lease=60, spare={"mine"}).status == "queued"  # type: ignore[union-attr]
    assert jobs.get("mine", lease=60).status == "failed"  # type: ignore[union-attr]


def test_a_start_retried_after_its_commit_is_the_same_start(reg: Registry) -> None:
    """A start whose commit applied but whose answer was lost (a connection cut as the server
    committed) is retried by its router: the retry found the job running, not queued, said
    'ended meanwhile', and the router dropped a job that then read running until it was
    failed as a stopped router's (found by a fresh reader's review)."""
    me, at = router_id(), now()
    reg.jobs.submit(JobRecord("twice", KEY, "queued", "local", me, at, at), lease=3600)
    first = reg.jobs.start("twice", owner=me)
    again = reg.jobs.start("twice", owner=me)  # what the retry does
    assert first is not None and again is not None
    assert (again.status, again.started_at) == ("running", first.started_at)
    assert reg.jobs.start("twice", owner="another:1:0") is None  # not its start
    reg.jobs.finish("twice", "failed", history=10, error="e")
    assert reg.jobs.start("twice", owner=me) is None  # ended meanwhile


def test_a_job_of_a_router_restarted_under_the_same_pid_is_ended_at_once(reg: Registry) -> None:
    """A container's router is PID 1 on the same host name after `docker restart` or an OOM
    kill in its pod: its predecessor's job looked alive (the pid runs) until the 60 s lease
    ran out, and a retrain of the partition posted meanwhile was a 409. The router's id
    names its process's start time: a pid that runs with another start time is a later
    process, and the job is ended at once. Here the pid is this test's, the start another."""
    _trained(reg)
    found = process(os.getpid())
    assert found is not None
    reused = f"{socket.gethostname()}:{os.getpid()}:0:{int(found[1]) + 1}"
    _started(reg, "reused", owner=reused)
    ended = reg.jobs.get("reused", lease=3600)
    assert ended is not None and ended.status == "failed", ended
    assert ended.error is not None and ended.error.startswith(f"{RESTARTED}: the router running")
    mine = router_id()
    assert mine.rsplit(":", 1)[1] == found[1]  # this process, started when /proc says
    _started(reg, "alive", owner=mine, partition="pid=1")
    alive = reg.jobs.get("alive", lease=3600)
    assert alive is not None and alive.status == "running", alive
