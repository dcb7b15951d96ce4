"""``POST /v1/partitions/{key}/retrain`` while a run of the partition's spec trains on the
registry (``manymodels train``, a scheduler's firing): the job trained the partition beside
that run, as a manual train beside a firing did (``manymodels.run_busy``). A 409 with a JSON
body naming the run now, before the rows are stored; a run silent past the heartbeat limit
blocks nothing. The run "on another machine" is a real run of the registry whose recorded
owner names a machine id that is not this one (``factories.other_machine_tag``)."""

from __future__ import annotations

import time
import warnings
from dataclasses import replace
from pathlib import Path

from factories import ago, mark_running, other_machine_tag
from routerkit import KEY, admin, open_client, sales

from manymodels.registry import Registry
from serving.app import create_app
from serving.jobs import Job, JobManager
from serving.settings import Settings


def posted_rows() -> dict[str, list[dict[str, object]]]:
    """The rows of ``KEY`` as a retrain's JSON body."""
    part = sales().query("store == 2 and brand == 'tropicana'").drop(columns=["store", "brand"])
    return {"rows": part.assign(week=part["week"].dt.strftime("%Y-%m-%d")).to_dict("records")}


def test_a_retrain_beside_a_run_of_its_spec_is_409_until_that_run_goes_silent(
    settings: Settings, registry_path: Path
) -> None:
    with Registry(registry_path) as reg:
        (run,) = reg.list_runs(limit=1)
        mark_running(reg, run.run_id, other_machine_tag(), ago(5))
    part = sales().query("store == 2 and brand == 'tropicana'").drop(columns=["store", "brand"])
    rows = part.assign(week=part["week"].dt.strftime("%Y-%m-%d")).to_dict("records")
    body = {"rows": rows}
    url = f"/v1/partitions/{KEY}/retrain"
    with open_client(replace(settings, retrain_backend="local")) as client:
        busy = client.post(url, json=body, headers=admin())
        assert busy.status_code == 409, busy.text
        said = busy.json()["detail"]
        assert said.startswith(f"run {run.run_id} ({run.kind}, started "), said
        assert "is still training spec 'router-test' on this registry" in said, said
        assert client.get("/v1/jobs", headers=admin()).json() == {"jobs": []}
        with Registry(registry_path) as reg:
            mark_running(reg, run.run_id, other_machine_tag(), ago(2 * 3600))  # gone silent
        accepted = client.post(url, json=body, headers=admin())
        assert accepted.status_code == 202, accepted.text


def test_a_job_accepted_before_a_run_of_its_spec_started_fails_saying_busy(
    settings: Settings, registry_path: Path
) -> None:
    """Accepted (202) while nothing trained, the job met a run of its spec started before it
    ran: GET of the job said the run's CLI advice (`manymodels runs abandon …`) with no word
    that the job was refused for a busy spec. Now it is failed, its error "busy: run <id>
    …", and nothing was trained for it."""
    with Registry(registry_path) as reg:
        (run,) = reg.list_runs(limit=1)
        before = reg.get_partition(KEY).latest_version

    def train_starts(job: Job) -> None:  # a `manymodels train` starts as the job is about to
        with Registry(registry_path) as reg:
            mark_running(reg, run.run_id, other_machine_tag(), ago(1))

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*starlette.testclient.*httpx2")
        from fastapi.testclient import TestClient
    app = create_app(
        replace(settings, retrain_backend="local"), jobs=JobManager(before_run=train_starts)
    )
    with TestClient(app) as client:
        accepted = client.post(f"/v1/partitions/{KEY}/retrain", json=posted_rows(), headers=admin())
        assert accepted.status_code == 202, accepted.text
        url = f"/v1/jobs/{accepted.json()['job_id']}"
        deadline = time.monotonic() + 30
        while (job := client.get(url, headers=admin()).json())["status"] not in (
            "failed",
            "succeeded",
        ):
            assert time.monotonic() < deadline, job
            time.sleep(0.02)
    assert job["status"] == "failed", job
    assert job["error"].startswith(f"busy: run {run.run_id} "), job["error"]
    assert "\n" not in job["error"]
    with Registry(registry_path) as reg:
        assert reg.get_partition(KEY).latest_version == before
