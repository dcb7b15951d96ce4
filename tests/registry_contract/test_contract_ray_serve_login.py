"""``manymodels serve --ray-serve`` on a PostgreSQL registry that asks a password: the
replicas are handed the registry URL without it (so the deployment Serve stores shows none:
``tests/serving/test_serve_run.py``) and log in with it all the same — an embedded Ray's
replicas inherit ``PGPASSWORD`` from the command."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import httpx
import pytest
from factories import linear_frame, ray_serve_command, spec_dict
from pgcluster import PostgresServer
from raycluster import free_port

from manymodels.pipeline import train
from manymodels.registry import Registry

BIN = Path(sys.executable).parent


@pytest.mark.slow  # an embedded Ray and Serve: 20-60 s on a busy 2-core machine
def test_replicas_log_in_with_a_password_kept_out_of_their_url(
    server: PostgresServer, tmp_path: Path
) -> None:
    """On the module's own ``server``: a password database changes how it takes logins."""
    db_url = server.password_database("mm", "s3cret")
    artifacts = str(tmp_path / "artifacts")
    with Registry(tmp_path / "reg", db_url=db_url, artifacts=artifacts) as reg:
        train(spec_dict(features=["x0", "x1"]), linear_frame(2), reg, backend="local")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd: list[str | Path] = [BIN / "manymodels", "serve", "--ray-serve", "--replicas", "1",
                             "--registry-db", db_url,
                             "--artifacts", artifacts, "--port", str(port)]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "PGPASSWORD")}
    with ray_serve_command(cmd, env=env, url=url, log_path=tmp_path / "serve.log") as command:
        row = {"t": 5, "x0": 1.0, "x1": 2.0}
        answer = httpx.post(f"{url}/v1/partitions/pid=0/predict", json={"rows": [row]}, timeout=60)
        assert answer.status_code == 200, answer.text  # the replica read the registry
    text = command.log()
    assert command.code == 0, text[-3000:]
    assert "s3cret" not in text
    logs = re.search(r"replica logs in (\S+)/serve/", text)  # this command's Ray's
    assert logs is not None, text[-3000:]
    for path in Path(logs[1], "serve").glob("*.log"):  # the replicas' and controller's
        assert "s3cret" not in path.read_text(errors="replace"), path
