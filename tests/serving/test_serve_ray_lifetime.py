"""A router that started embedded Ray for a retrain stops it when it stops.

``manymodels serve --retrain-backend ray`` runs as a user starts it; one retrain goes through
Ray (which the router starts on that first retrain), then the router gets SIGTERM as a service
manager would send it. Every process under it, Ray's included, must be gone 10 s after it
exits, and Ray's token notice must not appear in its output.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from proctree import TOKEN_NOTICE, alive, descendants, ray_processes, wait_gone
from routerkit import KEY, SALES_SPEC, TOKEN, admin, sales

from manymodels.pipeline import train

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _later_rows() -> list[dict[str, Any]]:
    """The partition's next weeks, units doubled: rows a retrain can be judged on."""
    df = sales()
    part = df[(df["store"] == 2) & (df["brand"] == "tropicana")].reset_index(drop=True)
    later = part["week"] + pd.Timedelta(weeks=len(part))
    part = part.assign(units=part["units"] * 2, week=later.dt.strftime("%Y-%m-%d"))
    rows: list[dict[str, Any]] = part.drop(columns=["store", "brand"]).to_dict("records")
    return rows


def _wait_job(url: str, job_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = httpx.get(
            f"{url}/v1/jobs/{job_id}", headers=admin(), timeout=30
        ).json()
        if job["status"] in ("succeeded", "failed"):
            return job
        assert time.monotonic() < deadline, f"job still {job['status']}"
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process tree from /proc")
def test_sigterm_stops_the_ray_a_retrain_started(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    assert train(SALES_SPEC, sales(), root, backend="local").run.n_failed == 0
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    cmd: list[str | Path] = [BIN / "manymodels", "serve", "--registry", root, "--port", str(port),
                             "--retrain-backend", "ray", "--no-access-log"]  # fmt: skip
    env = {**os.environ, "MANYMODELS_ADMIN_TOKEN": TOKEN}
    with (tmp_path / "serve.log").open("w+") as log:
        server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + 60
            while not _ready(url):
                assert server.poll() is None and time.monotonic() < deadline, "never ready"
                time.sleep(0.1)
            r = httpx.post(f"{url}/v1/partitions/{KEY}/retrain", json={"rows": _later_rows()},
                           headers=admin(), timeout=30)  # fmt: skip
            assert r.status_code == 202, r.text
            job = _wait_job(url, r.json()["job_id"], timeout=150)  # Ray starts in 5-40 s
            assert job["status"] == "succeeded" and job["backend"] == "ray", job
            tree = descendants(server.pid)
            assert len(ray_processes(tree)) >= 4, alive(tree)
        finally:
            server.send_signal(signal.SIGTERM)
            code = server.wait(60)
        left = wait_gone(tree, timeout=10)
        log.seek(0)
        text = log.read()
    # uvicorn shuts down gracefully, then re-raises the signal it caught
    assert code in (0, -signal.SIGTERM), text[-3000:]
    assert "Application shutdown complete" in text, text[-3000:]
    assert left == {}, f"still running 10 s after the router exited: {left}"
    assert TOKEN_NOTICE not in text


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False
