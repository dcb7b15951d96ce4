"""A real multi-node Ray cluster on this machine, started with ``ray start`` as a user does.

Each node runs in its own process group, with a shared auth token (Ray ≥ 2.59 requires one for
clusters started by ``ray start``), and is torn down by signal, so no ``ray stop`` touches any
other Ray instance on the machine. Used by ``tests/test_cluster.py`` and
``benchmarks/cluster.py``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

BIN = Path(sys.executable).parent
STARTED = b"Ray runtime started."  # what ``ray start`` prints once its node is up


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a node's process group: TERM, then KILL; what is left of a group whose ``ray
    start`` already exited (a raylet, a GCS) is killed too. A head given TERM took 33 s to
    exit (a joined node 2 s); KILL of its group leaves no Ray process behind (checked by
    the descendants and the node's temp directory), so it gets 5 s."""
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 10)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


class RayCluster:
    """``ray start --head`` plus ``nodes - 1`` × ``ray start --address``, ``num_cpus`` each.

    ``env`` is what a driver (``manymodels train --ray-address``) needs to join: the token, plus
    whatever ``extra_env`` gave every node (for instance an object store's credentials, which
    the workers read). With ``temp_dirs``, each node keeps its sessions, sockets and logs under
    a directory of its own inside ``root`` (keep ``root`` short: a unix socket's path must stay
    under ~100 bytes), and the head's client-server port is a free one, not 10001: nothing is
    shared with another Ray on the machine.
    """

    def __init__(
        self,
        root: Path,
        *,
        nodes: int = 2,
        num_cpus: int = 1,
        extra_env: dict[str, str] | None = None,
        temp_dirs: bool = False,
        start_timeout: float = 90.0,
    ) -> None:
        self.root, self.nodes, self.num_cpus, self.temp_dirs = root, nodes, num_cpus, temp_dirs
        self.start_timeout = start_timeout  # per node; minutes on a loaded machine
        self.env = {
            **os.environ,
            **(extra_env or {}),
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": secrets.token_hex(32),
            "RAY_USAGE_STATS_ENABLED": "0",
        }
        self.address = f"127.0.0.1:{free_port()}"
        self._procs: list[subprocess.Popen[bytes]] = []
        self._logs: list[IO[bytes]] = []

    def _node(self, i: int, *args: str) -> None:
        common = ["--node-ip-address=127.0.0.1", f"--num-cpus={self.num_cpus}",
                  "--object-store-memory=150000000", "--block"]  # fmt: skip
        if self.temp_dirs:
            temp = self.root / f"n{i}"
            temp.mkdir(parents=True, exist_ok=True)
            common.append(f"--temp-dir={temp}")
        log = (self.root / f"node{i}.log").open("wb")
        self._logs.append(log)
        proc = subprocess.Popen(
            [BIN / "ray", "start", *args, *common],
            env=self.env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self._procs.append(proc)

    def start(self) -> None:
        """Start every node, waiting for each to join; stop what started if one fails.

        A node whose ``ray start`` exits before it joins is started again (three tries): the
        head when a port picked free was taken before Ray bound it (other Ray instances start
        on this machine at the same time), a joining raylet when a loaded machine missed the
        30 s Ray gives it (hard-coded)."""
        try:
            for i in range(self.nodes):
                for attempt in range(3):
                    if i == 0:
                        self.address = f"127.0.0.1:{free_port()}"
                        port = self.address.rsplit(":", 1)[1]
                        head = [f"--ray-client-server-port={free_port()}"] if self.temp_dirs else []
                        self._node(0, "--head", f"--port={port}", "--include-dashboard=false",
                                   "--disable-usage-stats", *head)  # fmt: skip
                    else:
                        self._node(i, f"--address={self.address}")
                    try:
                        if i < self.nodes - 1:  # the next node needs only its GCS
                            self._wait_started(i)
                        else:  # every node, as a driver joining with the token sees them
                            wait_for_nodes(self.address, self.env, i + 1, self.start_timeout,
                                           self._procs[-1])  # fmt: skip
                        break
                    except NodeExited as exc:  # stop() still signals its process group
                        if attempt == 2:
                            raise NodeExited(f"{exc}; its log ends: {self._log_tail(i)}") from exc
        except BaseException:
            self.stop()
            raise

    def _wait_started(self, i: int) -> None:
        """Until node ``i``'s ``ray start`` says "Ray runtime started." (its GCS and raylet
        are up: another node can join), raising ``NodeExited`` if it exits first. The last
        node is still waited for by a probe that counts every node, so no check is lost; a
        probe per node cost a driver's start each (5-8 s on a loaded machine)."""
        log, proc = self.root / f"node{i}.log", self._procs[-1]
        deadline = time.monotonic() + self.start_timeout
        while STARTED not in log.read_bytes():
            if proc.poll() is not None:
                raise NodeExited(f"ray start exited {proc.returncode} before its node started")
            if time.monotonic() > deadline:
                raise AssertionError(f"node {i} never started: {self._log_tail(i)}")
            time.sleep(0.1)

    def _log_tail(self, i: int) -> str:
        log = self.root / f"node{i}.log"
        return log.read_text(errors="replace")[-1500:] if log.exists() else "(no log)"

    def stop(self) -> None:
        for p in reversed(self._procs):
            _stop(p)
        for log in self._logs:
            log.close()
        self._procs, self._logs = [], []


class NodeExited(AssertionError):
    """A ``ray start`` process gave up before its node joined."""


def wait_for_nodes(
    address: str,
    env: dict[str, str],
    n: int,
    timeout: float = 90,
    node: subprocess.Popen[bytes] | None = None,
) -> None:
    """Until the cluster at ``address`` has ``n`` live nodes (a probe process joins it); raises
    ``NodeExited`` as soon as the ``node`` being waited for has exited."""
    probe = (
        "import ray,sys; ray.init(address=sys.argv[1], log_to_driver=False);"
        "print(sum(1 for x in ray.nodes() if x['Alive']))"
    )
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if node is not None and node.poll() is not None:
            raise NodeExited(f"ray start exited {node.returncode} before its node joined")
        try:
            res = subprocess.run(
                [sys.executable, "-c", probe, address], env=env, capture_output=True, text=True,
                timeout=max(1.0, min(60.0, deadline - time.monotonic())),
            )  # fmt: skip
        except subprocess.TimeoutExpired:  # a loaded machine: ask again until the deadline
            last = "the probe timed out"
            continue
        last = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else res.stderr[-500:]
        if res.returncode == 0 and last.isdigit() and int(last) >= n:
            return
        time.sleep(1)
    raise AssertionError(f"Ray cluster at {address} never had {n} nodes: {last}")
