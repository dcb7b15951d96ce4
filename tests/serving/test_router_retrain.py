"""Retraining through the router: ``POST /v1/partitions/{key}/retrain`` and ``/v1/jobs``.

Registries are trained with the real pipeline; retrains run on the in-process backend except in
the Ray test. A job is held running deterministically with the job manager's ``before_run``
hook and an Event, never with sleeps.
"""

from __future__ import annotations

import io
import json
import math
import shutil
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from factories import linear_frame, spec_dict
from routerkit import KEY, SALES_SPEC, TOKEN, admin, expected, feature_rows, sales
from sqlalchemy import event, update
from typer.testing import CliRunner

from manymodels.data import prepare
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.registry import schema as t
from manymodels.registry.engine import now
from manymodels.registry.jobs import JobRecord
from manymodels.spec import Spec
from serving.app import create_app
from serving.jobs import SHUTDOWN, Job, JobManager, JobNotFound, RetrainResult
from serving.local import running_server
from serving.retrain_rows import RetrainTarget, training_frame
from serving.settings import Settings

OTHER = "store=4,brand=minute_maid"
NEIGHBOUR = "store=2,brand=minute_maid"


# ------------------------------------------------------------------------------------- helpers
def _trained(factory: pytest.TempPathFactory, policy: str) -> Path:
    root = factory.mktemp(policy) / "registry"
    with Registry(root) as reg:
        spec = {**SALES_SPEC, "promotion": {"policy": policy}}
        assert train(spec, sales(), reg, backend="local").run.n_failed == 0
    return root


@pytest.fixture(scope="session")
def always_trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _trained(tmp_path_factory, "always")


@pytest.fixture(scope="session")
def manual_trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _trained(tmp_path_factory, "manual")


def _settings(root: Path, tmp_path: Path, **kwargs: Any) -> Settings:
    copy = Path(shutil.copytree(root, tmp_path / "copy"))
    values: dict[str, Any] = {"admin_token": TOKEN, "refresh_seconds": 0.2}
    return Settings(registry=copy, **{**values, "retrain_backend": "local", **kwargs})


@pytest.fixture
def local(settings: Settings) -> Settings:
    """The shared sales registry (policy ``if_better``), retraining in this process."""
    return replace(settings, retrain_backend="local")


def open_app(settings: Settings, jobs: JobManager | None = None) -> Any:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*starlette.testclient.*httpx2")
        from fastapi.testclient import TestClient
    return TestClient(create_app(settings, jobs=jobs))


@pytest.fixture(scope="module")
def refusing(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One router (retraining in this process) on a copy of the shared sales registry, for
    the tests whose every retrain is refused before a job (422, 401, 404): each asserts that
    no job was queued, so none changes what the next one sees, and the app starts once
    (~1.5 s on a busy 2-core machine) instead of once per test."""
    root = Path(shutil.copytree(trained, tmp_path_factory.mktemp("refusing") / "registry"))
    settings = Settings(
        registry=root, admin_token=TOKEN, refresh_seconds=0.2, retrain_backend="local"
    )
    with open_app(settings) as client:
        yield client


TrainedCopy = Callable[[str, Callable[[Path], object], Path], Path]


@pytest.fixture(scope="module")
def trained_copy(tmp_path_factory: pytest.TempPathFactory) -> TrainedCopy:
    """``copy(name, build, into)``: the registry ``build(root)`` trains, built once per module
    for each ``name`` and copied to ``into`` for the test, which retrains on it. Parametrized
    tests of one spec and rows trained the same registry once per parameter (~0.5-1 s)."""
    built: dict[str, Path] = {}

    def copy(name: str, build: Callable[[Path], object], into: Path) -> Path:
        if name not in built:
            root = tmp_path_factory.mktemp("once") / "registry"
            build(root)
            built[name] = root
        return Path(shutil.copytree(built[name], into))

    return copy


def partition_rows(
    store: int = 2, brand: str = "tropicana", *, scale: float = 2.0, keys: bool = False
) -> pd.DataFrame:
    """The partition's next stretch of weeks (after the ones it was trained on, so the champion
    can be judged on weeks it never saw), units scaled so a retrained model differs; dates as
    text."""
    df = sales()
    part = df[(df["store"] == store) & (df["brand"] == brand)].reset_index(drop=True)
    later = part["week"] + pd.Timedelta(weeks=len(part))
    part = part.assign(units=part["units"] * scale, week=later.dt.strftime("%Y-%m-%d"))
    return part if keys else part.drop(columns=["store", "brand"])


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON rows: a missing value is null."""
    rows = frame.to_dict("records")
    return [{str(k): None if pd.isna(v) else v for k, v in row.items()} for row in rows]


def post_rows(client: Any, key: str, frame: pd.DataFrame, **kwargs: Any) -> Any:
    return client.post(
        f"/v1/partitions/{key}/retrain", json={"rows": records(frame)}, headers=admin(), **kwargs
    )


def post_text(client: Any, key: str, body: str | bytes) -> Any:
    """Post a JSON body as written (a 400-digit integer, ``Infinity``: what ``json=`` cannot)."""
    return client.post(
        f"/v1/partitions/{key}/retrain",
        content=body,
        headers={**admin(), "content-type": "application/json"},
    )


def refused_before_a_job(client: Any, r: Any) -> str:
    """``r``'s 422 detail, once checked that nothing was queued: a refusal comes before a job."""
    assert r.status_code == 422, r.text
    assert client.get("/v1/jobs", headers=admin()).json() == {"jobs": []}
    return r.json()["detail"]


def finished(client: Any, job_id: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(f"/v1/jobs/{job_id}", headers=admin())
        assert r.status_code == 200, r.text
        job = r.json()
        if job["status"] in ("succeeded", "failed"):
            return job
        assert time.monotonic() < deadline, f"job still {job['status']}"
        time.sleep(0.02)


def served_version(client: Any, key: str) -> int:
    r = client.post(f"/v1/partitions/{key}/predict", json={"rows": feature_rows(1)})
    assert r.status_code == 200, r.text
    return int(r.json()["version"])


def snapshot(root: Path) -> dict[str, tuple[int, dict[str, int]]]:
    with Registry.open(root) as reg:
        return {p.key: (p.latest_version, p.aliases) for p in reg.list_partitions(limit=100)}


def retrain_counts(client: Any) -> dict[str, float]:
    prefix = "manymodels_retrain_jobs_total{outcome="
    lines = [line for line in client.get("/metrics").text.splitlines() if line.startswith(prefix)]
    return {line.split('"')[1]: float(line.rsplit(" ", 1)[1]) for line in lines}


class Gate:
    """Holds every job at its start until opened; ``started`` is set when one is held."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.open = threading.Event()

    def __call__(self, job: Job) -> None:
        self.started.set()
        assert self.open.wait(30), "the test never opened the gate"


# --------------------------------------------------------------------------------------- tests
def test_retrain_over_http_is_promoted_and_served_at_once(
    always_trained: Path, tmp_path: Path
) -> None:
    """Policy 'always': the job reports both scores, and the router answers with the new
    version as soon as the job is done, while requests keep flowing during the swap."""
    settings = _settings(always_trained, tmp_path)
    before = snapshot(settings.registry)
    frame = partition_rows()
    statuses: list[int] = []
    flowing, stop = threading.Event(), threading.Event()

    with running_server(settings) as url:

        def keep_predicting() -> None:
            with httpx.Client(base_url=url) as c:
                while not stop.is_set():
                    rows = {"rows": feature_rows(2)}
                    statuses.append(c.post(f"/v1/partitions/{KEY}/predict", json=rows).status_code)
                    flowing.set()

        traffic = threading.Thread(target=keep_predicting)
        traffic.start()
        try:
            assert flowing.wait(30)
            with httpx.Client(base_url=url, timeout=30) as client:
                r = post_rows(client, KEY, frame)
                assert r.status_code == 202, r.text
                accepted = r.json()
                assert accepted["status"] == "queued" and accepted["partition"] == KEY
                assert accepted["links"]["self"] == f"/v1/jobs/{accepted['job_id']}"
                assert r.headers["location"] == accepted["links"]["self"]
                job = finished(client, accepted["job_id"])
                served = client.post(
                    f"/v1/partitions/{KEY}/predict", json={"rows": feature_rows(3)}
                ).json()
                assert retrain_counts(client) == {"promoted": 1.0}
        finally:
            stop.set()
            traffic.join()

    assert job["status"] == "succeeded", job
    assert (job["version"], job["production_version"], job["error"]) == (2, 2, None)
    decision = job["decision"]
    assert decision["outcome"] == "promoted" and decision["promoted"] is True
    assert decision["reason"] == "policy 'always'" and decision["policy"] == "always"
    assert decision["metric"] == "neg_mean_absolute_error"
    assert decision["challenger"]["version"] == 2 and decision["champion"]["version"] == 1
    assert isinstance(decision["challenger"]["score"], float)
    assert isinstance(decision["champion"]["score"], float)
    assert served["version"] == 2
    assert served["predictions"] == pytest.approx(
        expected(settings.registry, KEY, feature_rows(3), 2)
    )
    assert statuses and set(statuses) == {200}  # nothing failed during the swap
    after = snapshot(settings.registry)
    assert after.pop(KEY) == (2, {"production": 2})
    before.pop(KEY)
    assert after == before  # other partitions untouched


def test_manual_policy_keeps_production_and_adds_a_candidate(
    manual_trained: Path, tmp_path: Path
) -> None:
    settings = _settings(manual_trained, tmp_path)
    with open_app(settings) as client:
        r = post_rows(client, KEY, partition_rows(keys=True))
        assert r.status_code == 202, r.text
        job = finished(client, r.json()["job_id"])
        assert job["status"] == "succeeded", job["error"]
        assert (job["version"], job["production_version"]) == (2, 1)
        decision = job["decision"]
        assert decision["outcome"] == "kept" and decision["promoted"] is False
        assert "manual" in decision["reason"]
        assert decision["champion"]["version"] == 1
        assert served_version(client, KEY) == 1
        assert retrain_counts(client) == {"kept": 1.0}
    with Registry.open(settings.registry) as reg:
        assert reg.get_version(KEY).version == 1
        assert reg.get_version(KEY, 2).aliases == ("candidate",)


def test_csv_upload_reports_the_policy_decision(local: Settings) -> None:
    """Policy 'if_better' (the shared registry): whichever way it goes, the job says so and
    the router serves what production points at."""
    csv = partition_rows(store=4, brand="minute_maid", scale=1.1, keys=True).to_csv(index=False)
    with open_app(local) as client:
        r = client.post(
            f"/v1/partitions/{OTHER}/retrain",
            files={"file": ("minute_maid.csv", csv.encode(), "text/csv")},
            headers=admin(),
        )
        assert r.status_code == 202, r.text
        assert r.json()["data"]["format"] == "csv"
        assert r.json()["data"]["filename"] == "minute_maid.csv"
        job = finished(client, r.json()["job_id"])
        assert job["status"] == "succeeded", job["error"]
        decision = job["decision"]
        assert decision["policy"] == "if_better" and decision["outcome"] in ("promoted", "kept")
        assert decision["champion"]["version"] == 1 and decision["challenger"]["version"] == 2
        assert "vs champion v1" in decision["reason"]
        assert job["production_version"] == (2 if decision["promoted"] else 1)
        assert served_version(client, OTHER) == job["production_version"]


def test_uploaded_rows_are_stored_and_reproduce_the_training_data(
    local: Settings, tmp_path: Path
) -> None:
    frame = partition_rows(scale=1.5)
    parquet = io.BytesIO()
    frame.to_parquet(parquet, index=False)
    with open_app(local) as client:
        r = client.post(
            f"/v1/partitions/{KEY}/retrain",
            files={"file": ("rows.bin", parquet.getvalue(), "application/octet-stream")},
            headers=admin(),
        )
        assert r.status_code == 202, r.text
        data = r.json()["data"]
        assert data["format"] == "parquet" and data["rows"] == len(frame)
        job = finished(client, r.json()["job_id"])
    assert job["status"] == "succeeded", job
    assert job["data"] == data
    with Registry.open(local.registry) as reg:
        stored = pd.read_parquet(io.BytesIO(reg.artifacts.get(data["sha256"])))  # sha256-checked
        run = reg.get_run(job["run_id"])
        version = reg.get_version(KEY, job["version"])
        trained_on = reg.training_rows(KEY, job["version"])
        kept = reg.training_rows(KEY, 1)
    # the stored table is the posted rows with the key columns filled in from the URL
    sent = frame.assign(store=2, brand="tropicana")
    pd.testing.assert_frame_equal(stored, sent, check_dtype=False)
    assert run.options["uploaded_data_sha256"] == data["sha256"]
    assert run.data_source == f"artifact:{data['sha256']}"
    # appended to what v1 was trained on, the version's rows reproduce its data to the
    # fingerprint
    assert len(trained_on) == len(kept) + len(frame)
    table, _ = prepare(Spec.coerce(run.spec), trained_on)
    assert dict(zip(table.keys, table.fingerprints, strict=True))[KEY] == version.data_fingerprint


def test_admin_token_is_required(refusing: Any, local: Settings) -> None:
    rows = {"rows": records(partition_rows())}
    client = refusing
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        r = client.post(f"/v1/partitions/{KEY}/retrain", json=rows, headers=headers)
        assert r.status_code == 401
        assert client.get("/v1/jobs", headers=headers).status_code == 401
    assert client.get("/v1/jobs", headers=admin()).json() == {"jobs": []}
    with open_app(replace(local, admin_token=None)) as client:
        r = client.post(f"/v1/partitions/{KEY}/retrain", json=rows, headers=admin())
        assert r.status_code == 403 and "disabled" in r.json()["detail"]


def test_unknown_partition_job_and_fallback(refusing: Any) -> None:
    rows = records(partition_rows())
    client = refusing
    r = post_rows(client, "store=99,brand=tropicana", partition_rows())
    assert r.status_code == 404 and "store=99" in r.json()["detail"]
    r = client.post("/v1/partitions/__fallback__/retrain", json={"rows": rows}, headers=admin())
    assert r.status_code == 422 and "fallback" in r.json()["detail"]
    assert client.get("/v1/jobs/nope", headers=admin()).status_code == 404
    assert client.get("/v1/jobs", headers=admin()).json() == {"jobs": []}  # none was queued


@pytest.mark.parametrize(
    ("drop", "named"),
    [(["units"], ["'units' (target)"]), (["week", "price"], ["'week' (time column)", "'price'"])],
)
def test_rows_missing_columns_are_422_naming_them(
    refusing: Any, drop: list[str], named: list[str]
) -> None:
    client = refusing
    detail = refused_before_a_job(
        client, post_rows(client, KEY, partition_rows().drop(columns=drop))
    )
    for text in named:
        assert text in detail


def test_rows_that_cannot_be_retrained_on_are_refused(refusing: Any) -> None:
    frame = partition_rows()
    client = refusing
    empty = client.post(f"/v1/partitions/{KEY}/retrain", json={"rows": []}, headers=admin())
    assert empty.status_code == 422
    r = client.post(
        f"/v1/partitions/{KEY}/retrain", files={"file": ("e.csv", b"", "text/csv")},
        headers=admin(),
    )  # fmt: skip
    assert r.status_code == 422 and "empty" in r.json()["detail"]
    header_only = ",".join(frame.columns).encode()
    r = client.post(
        f"/v1/partitions/{KEY}/retrain", files={"file": ("h.csv", header_only, "text/csv")},
        headers=admin(),
    )  # fmt: skip
    assert r.status_code == 422 and "no rows" in r.json()["detail"]
    # a column named twice: pandas read the second 'units' as 'units.1' and the job
    # trained on the first alone (202), where train refuses such a file
    twice = frame.assign(extra=frame["units"] * 2).to_csv(index=False)
    twice = twice.replace(",extra\n", ",units\n", 1).encode()
    r = client.post(
        f"/v1/partitions/{KEY}/retrain", files={"file": ("d.csv", twice, "text/csv")},
        headers=admin(),
    )  # fmt: skip
    assert r.status_code == 422, r.text
    assert "d.csv: column 'units' is named twice in the header row" in r.json()["detail"]
    r = post_rows(client, KEY, partition_rows(store=3, keys=True))
    assert r.status_code == 422 and "another partition" in r.json()["detail"]
    r = post_rows(client, KEY, frame.head(5), params={"mode": "replace"})
    assert r.status_code == 422 and "min_rows" in r.json()["detail"]
    unknown = frame.head(2).assign(units=None)  # JSON nulls: a column without a dtype
    r = post_rows(client, KEY, unknown)
    assert r.status_code == 422, r.text
    assert "target 'units' is missing in every one of the 2 row(s)" in r.json()["detail"]
    r = post_rows(client, KEY, frame.head(5), params={"mode": "merge"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "mode"]
    r = client.post(
        f"/v1/partitions/{KEY}/retrain", content=b"a,b\n1,2\n", headers={
            **admin(), "Content-Type": "text/csv"},
    )  # fmt: skip
    assert r.status_code == 415
    assert client.get("/v1/jobs", headers=admin()).json() == {"jobs": []}


def test_a_consumer_posts_only_the_new_weeks(local: Settings) -> None:
    """The README's story: exactly ``size`` new weeks, fewer than ``min_rows``, used to be a
    422. They are appended to the rows production was trained on; being the newest, they are
    the validation rows, which the champion never saw."""
    size = int(SALES_SPEC["validation"]["size"])
    with Registry.open(local.registry) as reg:
        before = reg.get_version(KEY)
        kept = reg.training_rows(KEY)
    new = partition_rows(scale=1.0).head(size)  # the weeks right after the kept ones
    with open_app(local) as client:
        r = post_rows(client, KEY, new)
        assert r.status_code == 202, r.text
        job = finished(client, r.json()["job_id"])
        assert job["status"] == "succeeded", job["error"]
    with Registry.open(local.registry) as reg:
        v = reg.get_version(KEY, job["version"])
        assert v.n_rows == before.n_rows + size
        assert (v.evaluation["basis"], v.evaluation["compared_rows"]) == ("unseen", size)
        rows = reg.training_rows(KEY, v.version)
        assert len(rows) == len(kept) + size
        assert rows["week"].max() == pd.Timestamp(new["week"].iloc[-1])
        run = reg.get_run(v.run_id)
        assert run.options["append"] == {
            "partitions": 1, "with_history": 1, "kept_rows": len(kept)
        }  # fmt: skip


def warned_rows(store: int, brand: str) -> pd.DataFrame:
    """Two new weeks of a partition, the second moved to a Tuesday: it trains, and warns."""
    new = partition_rows(store, brand, scale=1.0).head(2)
    off = pd.Timestamp(new["week"].iloc[-1]) + pd.Timedelta(days=1)
    new.loc[new.index[-1], "week"] = off.strftime("%Y-%m-%d")
    return new


def test_a_job_says_what_its_run_warned_of(local: Settings) -> None:
    """A posted week on a Tuesday among Mondays trains (as ``manymodels train`` does), but the
    run's warning — forecasts now step from that Tuesday, off the partition's calendar, and a
    Monday's time is refused from then on — reached only the run record: the job read
    ``succeeded``, promoted, nothing else. Now the job carries the run's warnings."""
    with open_app(local) as client:
        r = post_rows(client, KEY, warned_rows(2, "tropicana"))
        assert r.status_code == 202, r.text
        job = finished(client, r.json()["job_id"])
        assert job["status"] == "succeeded", job["error"]
        assert any("more than one day of the week" in w for w in job["warnings"]), job
        listed = client.get("/v1/jobs", headers=admin()).json()["jobs"]
    assert [j["warnings"] for j in listed if j["job_id"] == job["job_id"]] == [job["warnings"]]


def test_the_job_list_reads_the_warnings_from_the_jobs_alone(local: Settings) -> None:
    """The job list read each job's run (and, on PostgreSQL, the database's clock) for its
    warnings, and its version apart: ``GET /v1/jobs?limit=1000`` was thousands of queries.
    The warnings are written into the job as it ends, and the versions read together: the
    list's queries do not grow with its jobs, and the warnings still show with the runs' own
    gone from their rows."""
    parts = [(2, "tropicana"), (4, "minute_maid"), (2, "minute_maid")]
    with open_app(replace(local, refresh_seconds=3600.0)) as client:
        posted = [post_rows(client, f"store={s},brand={b}", warned_rows(s, b)) for s, b in parts]
        assert all(r.status_code == 202 for r in posted), [r.text for r in posted]
        jobs = [finished(client, r.json()["job_id"]) for r in posted]
        assert all(j["status"] == "succeeded" and j["warnings"] for j in jobs), jobs
        # a job's thread reads its view (its alias, its version) for the listeners after its
        # status shows: counted beside the list's own queries under load until they have run
        deadline = time.monotonic() + 60
        while sum(retrain_counts(client).values()) < len(parts):
            assert time.monotonic() < deadline, retrain_counts(client)
            time.sleep(0.05)
        engine = client.app.state.service.registry.store.engine
        runs = [j["run_id"] for j in jobs]
        with engine.begin() as conn:  # the runs' warnings, unreachable from here on
            conn.execute(update(t.runs).where(t.runs.c.run_id.in_(runs)).values(options_json="{}"))
        statements: list[str] = []

        def count(*args: Any) -> None:
            statements.append(args[2])

        first, every = "/v1/jobs?limit=1", f"/v1/jobs?limit={len(parts)}"
        single = f"/v1/jobs/{jobs[0]['job_id']}"
        queries: dict[str, list[str]] = {}
        answers: dict[str, Any] = {}
        for path in (first, every, single):
            event.listen(engine, "before_cursor_execute", count)
            try:
                r = client.get(path, headers=admin())
            finally:
                event.remove(engine, "before_cursor_execute", count)
            assert r.status_code == 200, r.text
            queries[path], statements[:] = list(statements), []
            answers[path] = r.json()
        listed = {j["job_id"]: j for j in answers[every]["jobs"]}
        one = answers[single]
    assert {i: j["warnings"] for i, j in listed.items()} == {
        j["job_id"]: j["warnings"] for j in jobs
    }
    assert len(queries[every]) == len(queries[first]), queries
    # one job's view is the list's of one (``job_views``): its version read as the list's are
    assert len(queries[single]) <= len(queries[first]), queries
    assert [j["version"] for j in listed.values()] == [j["version"] for j in reversed(jobs)]
    assert one["warnings"] == jobs[0]["warnings"] and one["decision"] == jobs[0]["decision"]


def test_replace_trains_on_the_posted_rows_alone(local: Settings) -> None:
    frame = partition_rows()
    with open_app(local) as client:
        r = post_rows(client, KEY, frame, params={"mode": "replace"})
        assert r.status_code == 202, r.text
        job = finished(client, r.json()["job_id"])
    with Registry.open(local.registry) as reg:
        assert reg.get_version(KEY, job["version"]).n_rows == len(frame)


def test_a_second_retrain_of_a_busy_partition_is_409(local: Settings) -> None:
    gate = Gate()
    with open_app(local, JobManager(before_run=gate)) as client:
        first = post_rows(client, KEY, partition_rows())
        assert first.status_code == 202, first.text
        assert gate.started.wait(30)
        busy = post_rows(client, KEY, partition_rows(scale=3.0))
        assert busy.status_code == 409
        assert first.json()["job_id"] in busy.json()["detail"]
        assert "already running" in busy.json()["detail"]
        other = post_rows(client, NEIGHBOUR, partition_rows(brand="minute_maid"))
        assert other.status_code == 202, other.text  # another partition queues behind it
        listed = client.get("/v1/jobs", headers=admin()).json()["jobs"]
        assert [j["status"] for j in listed] == ["queued", "running"]
        gate.open.set()
        done = [finished(client, r.json()["job_id"]) for r in (first, other)]
        assert [j["status"] for j in done] == ["succeeded", "succeeded"]
        again = post_rows(client, KEY, partition_rows(scale=3.0))  # free again once finished
        assert again.status_code == 202
        assert finished(client, again.json()["job_id"])["version"] == 3


def test_a_busy_partition_answers_a_malformed_request_with_its_4xx_first(
    local: Settings,
) -> None:
    """A retrain posted to a partition with a job running was a 409 whatever the request held:
    a body of the wrong media type, JSON that does not parse or rows without the target were
    told "already running", then, once the job ended, told of their own mistake. Now the
    request's 4xx comes first; a well-formed request is the 409."""
    gate = Gate()
    with open_app(local, JobManager(before_run=gate)) as client:
        first = post_rows(client, KEY, partition_rows())
        assert first.status_code == 202, first.text
        assert gate.started.wait(30)
        url = f"/v1/partitions/{KEY}/retrain"
        plain = client.post(
            url, content=b"a,b\n1,2\n", headers={**admin(), "content-type": "text/plain"}
        )
        assert plain.status_code == 415, plain.text
        broken = client.post(
            url, content=b'{"rows": [', headers={**admin(), "content-type": "application/json"}
        )
        assert broken.status_code == 422, broken.text
        lacking = post_rows(client, KEY, partition_rows().drop(columns=["units"]))
        assert lacking.status_code == 422, lacking.text
        assert "'units' (target)" in lacking.json()["detail"]
        busy = post_rows(client, KEY, partition_rows(scale=3.0))
        assert busy.status_code == 409, busy.text
        gate.open.set()
        assert finished(client, first.json()["job_id"])["status"] == "succeeded"


def test_a_partition_that_fails_to_train_fails_the_job(local: Settings) -> None:
    frame = partition_rows()
    frame.loc[3, "price"] = None  # a missing feature value: Ridge cannot fit, the job fails
    with open_app(local) as client:
        r = post_rows(client, KEY, frame)
        assert r.status_code == 202, r.text
        job = finished(client, r.json()["job_id"])
        assert job["status"] == "failed"
        assert "NaN" in job["error"] and KEY in job["error"]
        assert job["run_id"] and job["version"] is None and job["production_version"] == 1
        assert served_version(client, KEY) == 1
        assert retrain_counts(client) == {"failed": 1.0}


def test_retrain_on_ray(ray_session: Any, always_trained: Path, tmp_path: Path) -> None:
    settings = _settings(always_trained, tmp_path, retrain_backend="ray")
    with open_app(settings) as client:
        r = post_rows(client, KEY, partition_rows())
        assert r.status_code == 202, r.text
        job = finished(client, r.json()["job_id"], timeout=50)
        assert job["status"] == "succeeded", job["error"]
        assert job["backend"] == "ray" and job["decision"]["outcome"] == "promoted"
        assert served_version(client, KEY) == 2
    assert ray_session.is_initialized()  # the app did not stop a Ray it had not started


def nothing() -> RetrainResult:
    return RetrainResult("run", None, None)


def test_the_job_manager_keeps_a_bounded_history(tmp_path: Path) -> None:
    jobs = JobManager(history=2)
    reg = Registry(tmp_path / "reg")
    jobs.attach(reg)
    seen: list[str] = []
    all_done = threading.Event()

    def listener(job: Job) -> None:
        seen.append(job.status)
        if len(seen) == 4:
            all_done.set()

    jobs.add_listener(listener)
    ids = [jobs.submit(f"p={i}", nothing, backend="local").job_id for i in range(4)]
    assert all_done.wait(30)
    assert seen == ["succeeded"] * 4
    assert [j.job_id for j in jobs.recent()] == ids[:1:-1]  # the newest two
    with pytest.raises(JobNotFound):
        jobs.get(ids[0])
    jobs.close()
    reg.close()


def test_closing_the_job_manager_drops_queued_jobs_and_waits_for_running_ones(
    tmp_path: Path,
) -> None:
    gate = Gate()
    jobs = JobManager(before_run=gate)
    reg = Registry(tmp_path / "reg")
    jobs.attach(reg)
    running = jobs.submit("p=1", nothing, backend="local")
    assert gate.started.wait(30)
    queued = jobs.submit("p=2", nothing, backend="local")
    closing = threading.Thread(target=jobs.close)
    closing.start()
    deadline = time.monotonic() + 30
    while jobs.get(queued.job_id).status == "queued":  # close drops it before it waits
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert jobs.get(queued.job_id).error == SHUTDOWN
    assert closing.is_alive()  # still waiting for the running job
    gate.open.set()
    closing.join(30)
    assert jobs.get(running.job_id).status == "succeeded"
    again = jobs.submit("p=2", nothing, backend="local")  # usable after close (app restart)
    while jobs.get(again.job_id).active:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert jobs.get(again.job_id).status == "succeeded"
    jobs.close()
    reg.close()


EMBEDDED_EXIT = """
import sys, time
import httpx
from serving.app import create_app
from serving.jobs import JobManager
from serving.local import running_server
from serving.settings import Settings

never_open = lambda job: time.sleep(600)  # a fit of ten minutes
jobs = JobManager(before_run=never_open, stop_seconds=float(sys.argv[3]))
settings = Settings(registry=sys.argv[1], admin_token=sys.argv[2])
app = create_app(settings, jobs=jobs)
auth = {"Authorization": "Bearer " + sys.argv[2]}
rows = [{"week": "2030-01-0%d" % d, "price": 2.0, "deal": 0, "feat": 0, "units": 9.0}
        for d in range(1, 10)]
if sys.argv[4] == "never-closed":  # the app's shutdown leaves the jobs: the exit's own bound
    jobs.close = lambda: None
with running_server(settings, app=app) as base:
    # the request imports the spec's estimators (scikit-learn), which a busy host may take
    # past httpx's 5 s default to do
    job = httpx.post(base + "/v1/partitions/store=2,brand=tropicana/retrain",
                     json={"rows": rows}, headers=auth, timeout=60).json()
    while httpx.get(base + "/v1/jobs/" + job["job_id"], headers=auth).json()["status"] != "running":
        time.sleep(0.05)
print("left_running", jobs.left_running, flush=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("how", ["closed", "never-closed"])
def test_a_program_embedding_the_router_exits_though_a_retrain_fit_runs(
    registry_path: Path, how: str
) -> None:
    """A program that ran the router in its own process (``serving.local.running_server``)
    and left it while a retrain's fit ran waited at its exit for the whole fit (the
    interpreter joins a ``ThreadPoolExecutor``'s threads): minutes, until killed. Now it
    waits ``stop_seconds`` (20 s by default, as ``serve``'s SIGTERM): in the app's shutdown,
    or at the exit when the shutdown never ran. A real process, a fit of ten minutes, a 1 s
    bound; 60 s for "does not hang"."""
    args = [str(registry_path), TOKEN, "1.0", how]
    with subprocess.Popen(
        [sys.executable, "-c", EMBEDDED_EXIT, *args], stdout=subprocess.PIPE, text=True
    ) as proc:
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            pytest.fail("the program waited at its exit for the retrain's fit")
    assert proc.returncode == 0, out
    assert out.strip() == f"left_running {how == 'closed'}", out


def test_closing_the_job_manager_waits_for_a_running_job_only_so_long(tmp_path: Path) -> None:
    """A fit of minutes held ``close`` (and so a router's SIGTERM) for as long; now it waits
    ``stop_seconds`` and says it left the job (``left_running``: ``serve`` exits at once)."""
    gate = Gate()
    jobs = JobManager(before_run=gate, stop_seconds=0.5)
    reg = Registry(tmp_path / "reg")
    jobs.attach(reg)
    running = jobs.submit("p=1", nothing, backend="local")
    assert gate.started.wait(30)
    closing = threading.Thread(target=jobs.close)
    closing.start()
    closing.join(20)  # generous: "does not hang"
    try:
        assert not closing.is_alive(), "close waited for the running job"
        assert jobs.left_running
    finally:
        gate.open.set()
        closing.join(30)
    deadline = time.monotonic() + 30
    while jobs.get(running.job_id).active:  # the job ends on its own all the same
        assert time.monotonic() < deadline
        time.sleep(0.01)
    jobs.close()
    reg.close()


# ------------------------------------------------------------------- jobs across routers
@pytest.mark.slow  # two uvicorn routers and two retrains: ~5 s on a busy machine
def test_two_routers_share_their_jobs_and_one_retrain_per_partition(local: Settings) -> None:
    """Two real routers (uvicorn) on one SQLite registry: a job started on one is answered by
    the other, which refuses a concurrent retrain of the same partition (409)."""
    gate = Gate()
    first_app = create_app(local, jobs=JobManager(before_run=gate))
    with (
        running_server(local, app=first_app) as one,
        running_server(local) as two,
        httpx.Client(base_url=one, timeout=30) as a,
        httpx.Client(base_url=two, timeout=30) as b,
    ):
        started = post_rows(a, KEY, partition_rows())
        assert started.status_code == 202, started.text
        job_id = started.json()["job_id"]
        assert gate.started.wait(30)
        seen = b.get(f"/v1/jobs/{job_id}", headers=admin())
        assert seen.status_code == 200, seen.text
        assert seen.json()["status"] == "running" and seen.json()["partition"] == KEY
        busy = post_rows(b, KEY, partition_rows(scale=3.0))
        assert busy.status_code == 409, busy.text
        assert job_id in busy.json()["detail"] and "already running" in busy.json()["detail"]
        assert [j["job_id"] for j in b.get("/v1/jobs", headers=admin()).json()["jobs"]] == [job_id]
        gate.open.set()
        done = finished(b, job_id)
        assert done["status"] == "succeeded" and done["version"] == 2, done
        assert done["decision"] is not None and done["production_version"] is not None
        again = post_rows(b, KEY, partition_rows(scale=3.0))  # free on every router now
        assert again.status_code == 202, again.text
        assert finished(a, again.json()["job_id"])["version"] == 3


def _gone_pid() -> int:
    """The id of a process that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(30)
    return child.pid


def test_jobs_of_a_router_that_stopped_are_failed_visibly(local: Settings) -> None:
    """A router killed while running a job (here: its row, written as that router wrote it)
    leaves it to the next router: failed at once when it ran on this host and its process is
    gone, after the lease when another host's router stopped beating; the partitions are free."""
    host = socket.gethostname()
    with Registry.open(local.registry) as reg:
        for job_id, owner, beat in (
            ("restarted", f"{host}:{_gone_pid()}:0", now()),
            ("lost", "elsewhere:1:0", "2026-01-01T00:00:00.000000+00:00"),
            ("alive", "elsewhere:2:0", now()),
        ):
            partition = {"restarted": KEY, "lost": OTHER, "alive": NEIGHBOUR}[job_id]
            record = JobRecord(job_id, partition, "queued", "local", owner, beat, beat)
            reg.jobs.submit(record, lease=3600)
            assert reg.jobs.start(job_id) is not None
            with reg.store.engine.begin() as conn:  # its router's last heartbeat
                conn.execute(update(t.jobs).where(t.jobs.c.job_id == job_id).values(
                    heartbeat_at=beat
                ))  # fmt: skip
    with open_app(local, JobManager(lease_seconds=30)) as client:
        jobs = {j["job_id"]: j for j in client.get("/v1/jobs", headers=admin()).json()["jobs"]}
        assert {k: j["status"] for k, j in jobs.items()} == {
            "restarted": "failed", "lost": "failed", "alive": "running"
        }  # fmt: skip
        for job_id in ("restarted", "lost"):
            assert jobs[job_id]["error"].startswith("router restarted: the router running")
        assert retrain_counts(client) == {"failed": 2.0}  # counted by the router that saw it
        assert post_rows(client, KEY, partition_rows()).status_code == 202
        assert post_rows(client, NEIGHBOUR, partition_rows(brand="minute_maid")).status_code == 409


def test_retrain_settings_and_command_options(tmp_path: Path) -> None:
    import typer

    from serving.command import serve

    assert Settings(registry=tmp_path).retrain_backend == "auto"
    with pytest.raises(ValueError, match="retrain_backend"):
        Settings(registry=tmp_path, retrain_backend="spark")  # type: ignore[arg-type]
    app = typer.Typer()
    app.command()(serve)
    out = CliRunner().invoke(app, ["--help"]).output
    assert "--retrain-backend" in out and "--retrain-workers" in out


def test_a_posted_row_without_a_target_beside_one_with_it_retrains_as_the_cli_does(
    tmp_path: Path,
) -> None:
    """With lags, two rows of one period are refused; a row without a target beside a row
    with one at the same week is not a second row (``train --append`` reads it so), and the
    router took the same rows as a 422."""
    root = tmp_path / "registry"
    train({**SALES_SPEC, "lags": [1]}, sales(), root, backend="local")
    rows = partition_rows()
    posted = pd.concat([rows, rows.iloc[[3]].assign(units=None)], ignore_index=True)
    with open_app(Settings(registry=root, admin_token=TOKEN, retrain_backend="local")) as client:
        r = post_rows(client, KEY, posted)
        assert r.status_code == 202, r.text
        job = finished(client, r.json()["job_id"], timeout=60)
    assert job["status"] == "succeeded", job


def test_appended_rows_without_a_kept_column_are_422_when_every_column_is_a_feature(
    tmp_path: Path,
) -> None:
    """A spec without ``features`` trains on every other column, and ``train --append``
    refuses a batch that lacks one the kept rows hold: the router queued such a job, which
    could only fail. It is a 422 before a job now; ``?mode=replace`` still trains on them."""
    df = linear_frame(1, 30)
    spec = spec_dict()
    assert "features" not in spec
    train(spec, df, tmp_path / "reg", backend="local")
    settings = Settings(registry=tmp_path / "reg", admin_token=TOKEN, retrain_backend="local")
    posted = df[df.t >= 28].assign(t=lambda d: d["t"] + 2).drop(columns=["pid", "x1"])
    with open_app(settings) as client:
        detail = refused_before_a_job(client, post_rows(client, "pid=0", posted))
        assert "lack column(s) 'x1' that the kept rows of partition 'pid=0' hold" in detail
        whole = df.drop(columns=["pid", "x1"])
        r = post_rows(client, "pid=0", whole, params={"mode": "replace"})
        assert r.status_code == 202, r.text
        assert finished(client, r.json()["job_id"])["status"] == "succeeded"


def test_a_numeric_feature_posted_as_nulls_only_stays_numeric(local: Settings) -> None:
    """JSON's ``null`` in every posted row of a numeric feature: pandas makes the column text,
    and the retrain trained a version on it as a category, which then refused numbers (and
    took any text). Now it is NaN: this spec's Ridge cannot train on it, and says so."""
    size = int(SALES_SPEC["validation"]["size"])
    new = partition_rows(scale=1.0).head(size).assign(price=None)
    with Registry.open(local.registry) as reg:
        before = reg.get_partition(KEY).latest_version
    with open_app(local) as client:
        target = client.app.state.retrainer.target(KEY)  # what the route checks rows against
        table = training_frame(
            pd.DataFrame.from_records(records(new)),
            target,
            frozenset[str]().__contains__,
            kept=True,
        )
        assert table["price"].dtype == np.float64 and table["price"].isna().all()
        r = post_rows(client, KEY, new)
        assert r.status_code == 202, r.text
        job = finished(client, r.json()["job_id"])
        assert job["status"] == "failed" and "Input X contains NaN" in job["error"], job
    with Registry.open(local.registry) as reg:
        assert reg.get_partition(KEY).latest_version == before  # no version on a category


@pytest.mark.parametrize(
    ("week", "says"),
    [
        (
            20250224,
            "holds 20250224, a number, in data row 1 (counting from 1), where the "
            "partition's kept rows hold dates",
        ),
        (True, "holds True, a boolean, in data row 1"),  # was "a number", as periods 0 and 1
        ("2025-02-24T00:00:00+05:00", "holds times with a UTC offset"),
        (1e308, "a number"),
        ("9999-12-31", "holds 9999-12-31 00:00:00, in data row 1 (counting from 1): dates"),
        ("0001-01-01", "dates must fall between 1677-09-22 and 2262-04-11"),
    ],
)
def test_times_of_another_kind_than_the_kept_rows_are_a_422(
    refusing: Any, week: Any, says: str
) -> None:
    """Appended to dated rows, a number became an instant of 1970 (20250224 µs after the
    epoch) and trained; an offset or a huge number failed the job. Refused before any job.
    A date beyond nanoseconds' range (9999-12-31, 0001-01-01) was a 500 (OutOfBoundsDatetime)."""
    new = partition_rows(scale=1.0).head(3).assign(week=week)
    client = refusing
    assert says in refused_before_a_job(client, post_rows(client, KEY, new))


@pytest.mark.parametrize(
    ("week", "says"),
    [
        ("1" + "0" * 400, "time column 'week' holds inf in data row 1 (counting from 1)"),
        ("Infinity", "time column 'week' holds inf in data row 1 (counting from 1)"),
    ],
    ids=["a 400-digit integer", "Infinity"],
)
def test_a_time_no_float_holds_is_a_422(refusing: Any, week: str, says: str) -> None:
    """A 400-digit integer or ``Infinity`` as the time of posted rows: their spacing was
    inf - inf, a RuntimeWarning, a 500 under -W error (as the suite runs). Now a 422 before
    any job (the rows read a huge integer as inf, as JSON's 1e400)."""
    new = records(partition_rows(scale=1.0).head(3))
    text = json.dumps({"rows": [{**row, "week": "WEEK"} for row in new]})
    body = text.replace('"WEEK"', week).encode()
    client = refusing
    assert says in refused_before_a_job(client, post_text(client, KEY, body))


@pytest.mark.parametrize(
    ("row", "says"),
    [
        ({"t": True}, "time column 't' holds True, a boolean"),
        (
            {"t": 31.5},
            "holds 31.5 in data row 2 (counting from 1), where the partition's kept rows "
            "hold whole period numbers",
        ),
        ({"x0": "1.5"}, "feature 'x0'"),  # every column is a feature: checked all the same
    ],
)
def test_rows_of_a_spec_without_a_features_list_on_periods_are_checked_too(
    settings: Settings, tmp_path: Path, trained_copy: TrainedCopy, row: dict[str, Any], says: str
) -> None:
    """A spec without ``features`` (every column one) and integer periods: ``true`` as a
    period overwrote period 1's kept row, 31.5 failed the job, a number as text failed it,
    and a null beside ``true`` trained the feature as text (now read as 1.0, as /v1/predict
    reads it: test_an_integer_past_int64_in_a_feature_is_read_as_predict_reads_it). Each is
    a 422 before any job."""

    def build(into: Path) -> None:
        train(spec_dict(), linear_frame(2, 30), into, backend="local")

    root = trained_copy("periods", build, tmp_path / "reg")
    base = {"t": 30, "x0": 0.5, "x1": -0.5, "y": 1.0}
    rows = [{"t": 29, "x0": None, "x1": 0.1, "y": 2.0}, {**base, **row}]  # a null beside it
    with open_app(replace(settings, registry=root, retrain_backend="local")) as client:
        r = client.post("/v1/partitions/pid=1/retrain", json={"rows": rows}, headers=admin())
        assert says in refused_before_a_job(client, r)
        ok = client.post(
            "/v1/partitions/pid=1/retrain", json={"rows": [base, {**base, "t": 31.0}]},
            headers=admin(),
        )  # fmt: skip
        assert ok.status_code == 202, ok.text  # whole periods, even as floats, are taken
        assert finished(client, ok.json()["job_id"])["status"] == "succeeded"


@pytest.mark.parametrize(
    ("labels", "posted", "refused"),
    [
        (("no", "yes"), "Yes", True),  # a mistyped class
        ((0, 1), 2, True),  # a class the table never had
        ((0, 1), "1", False),  # the class 1, as /actuals reads it
        ((0, 1), None, False),  # no label: missing_target decides
        (("01", "1"), 1, True),  # two classes by value: which one is not for us to guess
    ],
)
def test_a_classifiers_posted_labels_are_the_classes_its_version_knows(
    settings: Settings,
    tmp_path: Path,
    trained_copy: TrainedCopy,
    labels: tuple[Any, Any],
    posted: Any,
    refused: bool,
) -> None:
    """One mistyped label ("Yes" beside "yes") was accepted, and the job trained a model of
    three classes on the partition's rows, answering the same probabilities for every row,
    and promoted it (the champion could not know the class it was judged on); "1" beside 1
    failed the job sorting them. A label no class is: a 422 before any job; one that is a
    class by value: trained as that class."""
    df = linear_frame(2, 40)
    df["label"] = np.where(df["y"] > df.groupby("pid")["y"].transform("median"), *labels[::-1])
    spec = spec_dict(
        target="label", task="classification", metric="neg_log_loss",
        candidates=[{"estimator": "sklearn.linear_model.LogisticRegression"}],
    )  # fmt: skip

    def build(into: Path) -> None:
        train(spec, df.drop(columns=["y"]), into, backend="local")

    root = trained_copy(f"labels {labels!r}", build, tmp_path / "reg")
    rows = [{"t": 40 + i, "x0": 0.1 * i, "x1": -0.2, "label": labels[i % 2]} for i in range(6)]
    rows[3]["label"] = posted
    with open_app(replace(settings, registry=root, retrain_backend="local")) as client:
        r = client.post("/v1/partitions/pid=1/retrain", json={"rows": rows}, headers=admin())
        if refused:
            detail = refused_before_a_job(client, r)
            which = "more than one" if posted == 1 else "not one"
            assert f"is {posted!r} in row 3, {which} of the classes" in detail, detail
            return
        assert r.status_code == 202, r.text
        job = finished(client, r.json()["job_id"])
        assert job["status"] == "succeeded", job["error"]
    with Registry.open(root) as reg:
        newest = max(reg.list_versions("pid=1"), key=lambda v: v.version)
        assert newest.version == 2
        assert newest.schema.classes == list(labels)


def test_a_nullable_label_column_posted_as_parquet_keeps_its_missing_labels(
    tmp_path: Path,
) -> None:
    """A Parquet upload from pandas' nullable integers holds ``pd.NA`` for a missing label: it
    was refused as "<NA>, not one of the classes", where missing_target = "drop" drops it."""
    from serving.retrain_rows import RetrainTarget

    df = linear_frame(2, 40)
    df["label"] = (df["y"] > df.groupby("pid")["y"].transform("median")).astype(int)
    spec = spec_dict(
        target="label", task="classification", metric="neg_log_loss",
        candidates=[{"estimator": "sklearn.linear_model.LogisticRegression"}],
    )  # fmt: skip
    train(spec, df.drop(columns=["y"]), tmp_path / "reg", backend="local")
    new = pd.DataFrame({"t": np.arange(40, 46), "x0": 0.1, "x1": -0.2})
    new["label"] = pd.array([1, 0, None, 1, 0, 1], dtype="Int64")
    with Registry.open(tmp_path / "reg") as reg:
        target = RetrainTarget("pid=1", {"pid": 1}, Spec.from_dict(spec), reg.get_version("pid=1"))
        rows = training_frame(new, target, frozenset[str]().__contains__, kept=True)
    assert rows["label"].isna().tolist() == [False, False, True, False, False, False]


def test_a_feature_past_a_floats_range_is_a_422_naming_it(refusing: Any) -> None:
    """A 400-digit JSON integer in a numeric feature made the message that names the first
    value that is no number (pandas' ``to_numeric``, ``errors="coerce"`` or not) raise
    OverflowError: a 500. Now the 422 of any column that is no number, naming that value."""
    rows = records(partition_rows())
    rows[2]["price"] = 10**400
    body = json.dumps({"rows": rows})
    client = refusing
    detail = refused_before_a_job(client, post_text(client, KEY, body))
    # in predict's words (it said "is inf … to train on")
    said = "feature 'price' is too large a number (1000000000000000000000000000000000000...)"
    assert detail == f"{said} in row 2: it does not fit a float", detail
    scored = client.post(
        f"/v1/partitions/{KEY}/predict",
        content=json.dumps({"rows": [rows[2]]}),
        headers={"content-type": "application/json"},
    )
    assert scored.status_code == 422, scored.text  # predict refuses it alike
    (error,) = scored.json()["detail"]  # the same words, its row in its loc
    assert error["msg"] == f"{said}: it does not fit a float", error
    assert error["loc"] == ["body", "rows", 0, "price"], error


_INF = "%s is too large a number (inf) in row 2: it does not fit a float"
_WEEK = "time column 'week' holds the number inf beside text"


@pytest.mark.parametrize(
    ("column", "big", "said", "said_of_inf"),
    [
        ("price", 10**400, "feature 'price' is too large a number (1000", _INF % "feature 'price'"),
        ("units", 10**400, "target 'units' is too large a number (1000", _INF % "target 'units'"),
        (
            "units",
            -(10**400),
            "target 'units' is too large a number (-100",
            "number (-inf) in row 2",
        ),
        ("week", 10**400, _WEEK, _WEEK),
    ],
    ids=["feature", "target", "negative target", "time"],
)
def test_an_integer_past_a_floats_range_is_a_422_naming_it(
    refusing: Any, column: str, big: int, said: str, said_of_inf: str
) -> None:
    """A 400-digit JSON integer reached pandas as a Python int in an object column, and every
    numeric check of it (``pd.to_numeric``, coerced or not) raised OverflowError: a 500 in the
    target's stray-text check and in the time column's (1609531 caught it in the features'
    only). A feature's or target's is refused as ``/v1/predict`` and ``/actuals`` refuse it
    (``huge_numbers``; it was read as ``inf``, "is inf … too large to train on"), and so is
    JSON's ``1e400`` now (it was that message too); a time's is read as ``inf``, the 422
    ``1e400`` gets."""
    rows = records(partition_rows())
    client = refusing
    for value, told in ((big, said), (math.inf if big > 0 else -math.inf, said_of_inf)):
        rows[2][column] = value
        body = json.dumps({"rows": rows}).replace("Infinity", "1e400")
        assert told in refused_before_a_job(client, post_text(client, KEY, body))


def test_a_csv_integer_past_a_floats_range_is_a_422(refusing: Any) -> None:
    """A CSV column of integers with one of 400 digits reads as an object column holding a
    Python int (pandas' ``read_csv``), the JSON rows' case of
    ``test_an_integer_past_a_floats_range_is_a_422_naming_it``: refused in its words."""
    frame = partition_rows()
    frame["units"] = frame["units"].round().astype(int).astype(object)
    frame.loc[2, "units"] = 10**400
    client = refusing
    r = client.post(
        f"/v1/partitions/{KEY}/retrain",
        files={"file": ("big.csv", frame.to_csv(index=False).encode(), "text/csv")},
        headers=admin(),
    )
    detail = refused_before_a_job(client, r)
    assert detail.startswith("target 'units' is too large a number (1000")
    assert detail.endswith(") in row 2: it does not fit a float")


def test_an_integer_past_int64_in_a_feature_is_read_as_predict_reads_it(
    local: Settings,
) -> None:
    """A 30-digit JSON integer in a numeric feature (pandas keeps a column of such Python
    ints as objects) was refused as "must be numeric, as the model was trained on (found
    dtype object)", naming no value or row, while /v1/predict scored the same row as a float;
    so was a JSON boolean beside numbers in a numeric feature, and such an integer as a
    regression's target. Now each is read as predict reads it: a float."""
    big = 123456789012345678901234567890
    rows = records(partition_rows())
    rows[2]["price"] = big
    rows[3]["deal"] = True  # a boolean beside numbers: objects to pandas
    rows[6]["units"] = big
    body = json.dumps({"rows": rows})
    with open_app(local) as client:
        scored = client.post(
            f"/v1/partitions/{KEY}/predict",
            content=json.dumps({"rows": [rows[2]]}),
            headers={"content-type": "application/json"},
        )
        assert scored.status_code == 200, scored.text
        r = client.post(
            f"/v1/partitions/{KEY}/retrain",
            content=body,
            headers={**admin(), "content-type": "application/json"},
        )
        assert r.status_code == 202, r.text
        job = finished(client, r.json()["job_id"])
        assert job["status"] == "succeeded", job["error"]
    with Registry.open(local.registry) as reg:
        target = RetrainTarget(KEY, {"store": 2, "brand": "tropicana"},
                               Spec.from_dict(SALES_SPEC), reg.get_version(KEY))  # fmt: skip
    frame = training_frame(pd.DataFrame.from_records(rows), target, frozenset[str]().__contains__)
    assert frame["price"].dtype == np.float64 and frame["price"][2] == float(big)
    assert frame["deal"].dtype == np.float64 and frame["deal"][3] == 1.0
    assert frame["units"].dtype == np.float64 and frame["units"][6] == float(big)


def test_a_boolean_target_of_a_regression_stays_refused_as_actuals_refuse_it(
    refusing: Any,
) -> None:
    """Reading a column of numbers beside an integer past int64 as floats (above) must not
    make ``true`` a regression's target of 1.0: ``/actuals`` refuses it as no number."""
    rows = records(partition_rows())
    rows[6]["units"] = True
    client = refusing
    r = client.post(f"/v1/partitions/{KEY}/retrain", json={"rows": rows}, headers=admin())
    assert "target 'units'" in refused_before_a_job(client, r), r.text
    actual = {**rows[6], "week": "2030-01-07"}
    a = client.post(f"/v1/partitions/{KEY}/actuals", json={"rows": [actual]})
    assert a.status_code == 422 and "target 'units' must be a number" in a.text, a.text
