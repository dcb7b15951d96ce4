"""SIGTERM of ``manymodels serve`` while a retrain job it runs is fitting: the rows it sampled
for drift reach the registry at once, not only once the fit ends.

The router's shutdown waits for a running retrain job (its version is worth the wait, up to
``serving.jobs.STOP_SECONDS``) and then flushed the monitor's sample: with a fit of minutes, a
supervisor's SIGKILL at the end of its grace period (Kubernetes: 30 s) lost every row sampled
since the last flush (up to ``monitor_flush_seconds``, 60 s of traffic: whatever the next
periodic flush had not stored by the kill). Now the monitor is stopped, and flushed, before
the wait. The fit's estimator writes a file and sleeps (``factories.SLOW_FIT_MODULE``), so
the SIGTERM lands mid-fit deterministically.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from factories import wait_for, wait_ready
from test_router_kill import _port, _trained, ended_by_restart, retrain_until_fitting

from manymodels.monitoring import store
from manymodels.registry import Registry

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX")]

SCORED = [{"t": 40 + i, "x0": 0.1 * i, "x1": 0.2, "x2": 0.1, "x3": 0.0, "x4": 0.0}
          for i in range(20)]  # fmt: skip


# `manymodels serve` whose periodic flush is an hour away (the shipped 60 s would store the
# sample during a long enough wait): only the flush of its stop can store the sample in time.
HOURLY_FLUSH = """
import sys
import serving.monitor as monitor
real = monitor.Monitor.__init__
def hourly(self, service, *, flush_seconds=60.0, **kwargs):
    real(self, service, flush_seconds=3600.0, **kwargs)
monitor.Monitor.__init__ = hourly
from manymodels.cli import main
sys.argv[0] = "manymodels"
main()
"""


def _serve(reg: Path, env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    url = f"http://127.0.0.1:{(port := _port())}"
    with open(log, "ab") as out:
        server = subprocess.Popen(
            [sys.executable, "-c", HOURLY_FLUSH, "serve", "--registry", reg, "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    wait_ready(url, server, log=log)
    return server, url


def _drift_keys(reg: Path) -> set[str]:
    with Registry.open(reg) as registry:
        return set(store.drift_rows(registry.store.engine))


def test_a_router_stopped_mid_retrain_flushes_its_drift_sample_at_once(tmp_path: Path) -> None:
    reg, env = _trained(tmp_path)
    log = tmp_path / "serve.log"
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    server, url = _serve(reg, {**env, "SLOWFIT_DIR": str(blocked)}, log)
    try:
        scored = httpx.post(f"{url}/v1/partitions/pid=1/predict", json={"rows": SCORED}, timeout=30)
        assert scored.status_code == 200, scored.text
        retrain_until_fitting(url, server, blocked, log)
        assert "pid=1" not in _drift_keys(reg)  # held in the router until a flush

        server.send_signal(signal.SIGTERM)
        wait_for(  # generous: a flush takes milliseconds
            lambda: "pid=1" in _drift_keys(reg),
            "the sample flushed while the router waited for the fit",
            timeout=60, output=lambda: log.read_text()[-2000:], every=0.2,
        )  # fmt: skip
        assert server.poll() is None  # still waiting for the fit, its sample already stored
    finally:
        server.send_signal(signal.SIGKILL)  # the supervisor's, once its grace is over
        server.wait(30)


def test_a_router_stopped_mid_retrain_exits_within_its_bound_leaving_the_job_to_end(
    tmp_path: Path,
) -> None:
    """SIGTERM while a retrain job's fit goes on for minutes: the router waited for the fit
    without limit (ten minutes here), until the supervisor's SIGKILL. Now it waits
    ``serving.jobs.STOP_SECONDS`` (20 s) and exits; the next router ends the job and its run
    as after a kill ("router restarted"), so the partition can be retrained again."""
    from serving.jobs import STOP_SECONDS

    reg, env = _trained(tmp_path)
    log = tmp_path / "serve.log"
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    server, url = _serve(reg, {**env, "SLOWFIT_DIR": str(blocked)}, log)
    try:
        job_id = retrain_until_fitting(url, server, blocked, log)
        server.send_signal(signal.SIGTERM)
        try:  # generous: the bound plus the writes of a stop; the fit sleeps 600 s
            server.wait(STOP_SECONDS + 60)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                "the router waited for the fit: " + log.read_text()[-2000:]
            ) from None
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGKILL)
            server.wait(30)
    assert "not waited for" in log.read_text(), log.read_text()[-2000:]

    ended_by_restart(reg, env, log, job_id)
