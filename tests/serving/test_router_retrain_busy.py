"""``POST /v1/partitions/{key}/retrain`` while a run of the partition's spec trains on the
registry (``manymodels train``, a scheduler's firing): the job trained the partition beside
that run, as a manual train beside a firing did (``manymodels.run_busy``). A 409 with a JSON
body naming the run now, before the rows are stored; a run silent past the heartbeat limit
blocks nothing. The run "on another machine" is a real run of the registry whose recorded
owner names a machine id that is not this one (``factories.other_machine_tag``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from factories import ago, mark_running, other_machine_tag
from routerkit import KEY, admin, open_client, sales

from manymodels.registry import Registry
from serving.settings import Settings


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
