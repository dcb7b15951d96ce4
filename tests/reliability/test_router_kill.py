"""kill -9 of ``manymodels serve`` while a retrain job it runs is fitting, then a new router:
the job reads failed ("router restarted"), and so does the run it had started, rather than
"running (process gone)" for ever with ``doctor`` exiting 1 on it.

The kill lands at a point reached deterministically: the spec's estimator (a factory on the
routers' ``PYTHONPATH``) writes a file as it starts fitting and then sleeps, but only in the
router given ``SLOWFIT_DIR``; the test kills that router once the file is there.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from factories import slowfit_env, wait_for, wait_ready

from manymodels.samples import synthetic

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
TOKEN = "router-kill-token"
SPEC = """
name = "slowfit"
partition_by = ["pid"]
target = "y"
time_column = "t"
[[candidates]]
estimator = "slowfit:make"
params = { alpha = [1.0] }
"""


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cli(env: dict[str, str], *args: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BIN / "manymodels", *args], capture_output=True, text=True, env=env, timeout=300
    )


DIES_AT_RUN_END = """
import os, signal, sys
from manymodels.registry.runs import RunsMixin

def finish_run(*args, **kwargs):  # the run's version is committed; its end is never written
    os.kill(os.getpid(), signal.SIGKILL)

RunsMixin.finish_run = finish_run
from manymodels.cli import main
sys.argv[0] = "manymodels"
main()
"""


def _serve(
    reg: Path, env: dict[str, str], log: Path, *, dies_at_run_end: bool = False
) -> tuple[subprocess.Popen[bytes], str]:
    port = _port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-c", DIES_AT_RUN_END] if dies_at_run_end else [BIN / "manymodels"]
    with open(log, "ab") as out:
        server = subprocess.Popen(
            [*command, "serve", "--registry", reg, "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    wait_ready(url, server, log=log)
    return server, url


ROWS = [{"t": 40 + i, "x0": 0.5, "x1": 0.2, "x2": 0.1, "x3": 0.0, "x4": 0.0, "y": 3.0}
        for i in range(5)]  # fmt: skip


def _trained(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A registry of the slow-fitting spec (fast here: no ``SLOWFIT_DIR``), and the
    environment its commands and routers run in."""
    (tmp_path / "spec.toml").write_text(SPEC)
    synthetic(6, 40).to_parquet(tmp_path / "data.parquet")
    reg = tmp_path / "reg"
    env = {**slowfit_env(tmp_path), "MANYMODELS_ADMIN_TOKEN": TOKEN}
    trained = _cli(env, "train", tmp_path / "spec.toml", tmp_path / "data.parquet",
                   "--registry", reg, "--backend", "local")  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    return reg, env


def _job_after_restart(reg: Path, env: dict[str, str], log: Path, job_id: str) -> Any:
    """The job as a new router on the same host reads it (it ends a dead router's jobs)."""
    server, url = _serve(reg, env, log)
    try:
        return httpx.get(
            f"{url}/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        ).json()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)


def ended_by_restart(reg: Path, env: dict[str, str], log: Path, job_id: str) -> Any:
    """The job of a router that stopped mid-fit, as the next router reads it: failed as a
    gone router's ("router restarted"), and so is the run it had started (not "running" for
    ever)."""
    from manymodels.registry import Registry

    job = _job_after_restart(reg, env, log, job_id)
    assert job["status"] == "failed" and job["error"].startswith("router restarted"), job
    assert job["run_id"] is not None, job
    with Registry.open(reg) as registry:
        run = registry.get_run(job["run_id"])
    assert run.status == "failed", run
    return job


def retrain_until_fitting(
    url: str, server: subprocess.Popen[bytes], blocked: Path, log: Path
) -> str:
    """POST a retrain of ``pid=3`` and wait until its slow fit has begun (its run exists and
    is fitting, ``SLOWFIT_DIR`` = ``blocked``): the job's id."""
    posted = httpx.post(
        f"{url}/v1/partitions/pid=3/retrain", json={"rows": ROWS},
        headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30,
    )  # fmt: skip
    assert posted.status_code == 202, posted.text
    wait_for(blocked / "fitting", "the retrain's fit", process=server,
             output=lambda: log.read_text()[-2000:])  # fmt: skip
    return str(posted.json()["job_id"])


def test_a_router_killed_mid_retrain_leaves_its_job_and_run_failed(tmp_path: Path) -> None:
    reg, env = _trained(tmp_path)
    log = tmp_path / "serve.log"

    blocked = tmp_path / "blocked"
    blocked.mkdir()
    server, url = _serve(reg, {**env, "SLOWFIT_DIR": str(blocked)}, log)
    try:
        job_id = retrain_until_fitting(url, server, blocked, log)
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(30)

    run_id = ended_by_restart(reg, env, log, job_id)["run_id"]
    runs = json.loads(_cli(env, "runs", "list", "--registry", reg, "--json").stdout)["items"]
    run = next(r for r in runs if r["run_id"] == run_id)
    assert run["status"] == "failed", run  # before: running (its process gone) for ever
    assert (run["n_trained"], run["n_failed"]) == (0, 1), run
    shown = json.loads(_cli(env, "runs", "show", run_id, "--registry", reg, "--json").stdout)
    assert "router restarted" in json.dumps(shown), shown
    doctor = _cli(env, "doctor", "--registry", reg)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr  # before: exit 1, "--resume"
    assert not list(reg.rglob(".tmp-*")), list(reg.rglob(".tmp-*"))


def test_a_router_killed_as_its_retrain_ends_leaves_the_run_completed(tmp_path: Path) -> None:
    """Killed after the run committed the partition's version (and moved production) but
    before it wrote the run's end: the job reads succeeded with the version, and its run
    completed, not "running (process gone)" for ever."""
    reg, env = _trained(tmp_path)
    log = tmp_path / "serve.log"
    server, url = _serve(reg, env, log, dies_at_run_end=True)
    try:
        posted = httpx.post(
            f"{url}/v1/partitions/pid=3/retrain", json={"rows": ROWS},
            headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30,
        )  # fmt: skip
        assert posted.status_code == 202, posted.text
        job_id = posted.json()["job_id"]
        assert server.wait(120) == -signal.SIGKILL  # it killed itself at the run's end
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(30)

    job = _job_after_restart(reg, env, log, job_id)
    assert (job["status"], job["version"]) == ("succeeded", 2), job
    runs = json.loads(_cli(env, "runs", "list", "--registry", reg, "--json").stdout)["items"]
    run = next(r for r in runs if r["run_id"] == job["run_id"])
    assert (run["status"], run["n_trained"], run["n_failed"]) == ("completed", 1, 0), run
    doctor = _cli(env, "doctor", "--registry", reg)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr  # before: exit 1, "--resume"
