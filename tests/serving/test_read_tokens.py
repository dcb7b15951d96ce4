"""Read tokens (``MANYMODELS_READ_TOKEN`` / ``_FILE``): through the app (``TestClient``), and one
rotation through ``manymodels serve`` as a user starts it.

With read tokens set, every route but the probes answers 401 without a read or admin token;
without them the router is open as before. Several tokens are valid at once (rotation), a
token file is followed without a restart, and no token ever shows in a log line, a response or
a ``repr``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from routerkit import KEY, TOKEN, admin, feature_rows, open_client
from typer.testing import CliRunner

from manymodels.secrets import Tokens, parse_tokens, secret_from_env
from serving.auth import OPEN_PATHS
from serving.settings import Settings

OLD, NEW = "read-token-old-7f3a", "read-token-new-c91e"
WRONG = "not-a-token-5d2b"  # what a client sent by mistake: perhaps another service's secret
SECRETS = (OLD, NEW, TOKEN, WRONG)
PREDICT = f"/v1/partitions/{KEY}/predict"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def concrete(path: str) -> str:
    """An OpenAPI path with every parameter filled in (a partition key, a job id…)."""
    return re.sub(r"\{[^}]*\}", lambda m: "j1" if "job" in m.group(0) else KEY, path)


def data_requests() -> list[tuple[str, str, dict[str, Any] | None]]:
    """(method, url, json body) of the data endpoints a read token opens."""
    rows = feature_rows(2)
    batch = [{"store": 2, "brand": "tropicana", **row} for row in rows]
    return [
        ("POST", PREDICT, {"rows": rows}),
        ("POST", "/v1/predict", {"rows": batch}),
        ("POST", f"/v1/partitions/{KEY}/forecast", {"horizon": 2}),
        ("GET", "/v1/partitions", None),
        ("GET", f"/v1/partitions/{KEY}", None),
        ("GET", "/metrics", None),
    ]


@pytest.fixture
def guarded(settings: Settings) -> Settings:
    """The router of the other tests, with two read tokens (a rotation under way)."""
    return replace(settings, read_token=f"{OLD}, {NEW}")


# ---------------------------------------------------------------------------- through the app
def test_every_route_but_the_probes_needs_a_token(guarded: Settings) -> None:
    """Walks the OpenAPI document, so a router added later (and included by ``create_app``)
    is checked too — the Open Inference Protocol's ``/v2`` among them: missing or wrong token
    → 401 JSON saying how to authenticate."""
    with open_client(guarded) as client:
        paths = client.get("/openapi.json").json()["paths"]
        assert "/v1/predict" in paths and len(paths) > 10
        checked = 0
        for path, ops in paths.items():
            for method in ops:
                for headers in ({}, bearer(WRONG), {"Authorization": f"Basic {OLD}"}):
                    r = client.request(method.upper(), concrete(path), headers=headers)
                    if path in OPEN_PATHS:
                        assert r.status_code < 400, (method, path, r.status_code)
                        continue
                    assert r.status_code == 401, (method, path, r.status_code, r.text)
                    assert r.headers["www-authenticate"] == "Bearer"
                    said = r.json()  # /v2 answers the Open Inference Protocol's {"error": …}
                    assert "read or admin token" in said.get("detail", said.get("error")), said
                    checked += 1
        assert checked >= 3 * 12
        assert {"/healthz", "/readyz"} <= set(paths) and "/metrics" in paths
        for docs in ("/docs", "/openapi.json"):  # describe the API, not the data
            assert client.get(docs).status_code == 200


def test_read_and_admin_tokens_read_and_only_admin_tokens_write(guarded: Settings) -> None:
    with open_client(guarded) as client:
        for token in (OLD, NEW, TOKEN):  # both tokens of a rotation, and the admin's
            for method, url, body in data_requests():
                r = client.request(method, url, json=body, headers=bearer(token))
                assert r.status_code == 200, (token, url, r.status_code, r.text)
        promote = f"/v1/partitions/{KEY}/promote"
        r = client.post(promote, json={"version": 1}, headers=bearer(OLD))
        # a read token is known but not allowed to write: 403, not "authenticate again"
        assert r.status_code == 403 and "admin token" in r.json()["detail"]
        assert "WWW-Authenticate" not in r.headers
        assert client.post(promote, json={"version": 1}, headers=admin()).status_code == 200
        r = client.get("/v1/jobs", headers=bearer(NEW))  # admin's, though it changes nothing
        assert r.status_code == 403 and "read token: retrain jobs" in r.json()["detail"], r.text
        r = client.post(promote, json={"version": 1}, headers=bearer("not-a-token"))
        assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
        assert client.get("/v1/jobs", headers=admin()).status_code == 200


def test_readiness_tells_the_registrys_size_to_a_reader_only(
    guarded: Settings, settings: Settings
) -> None:
    """``/readyz`` stays open (probes send no token), but how many partitions the registry
    serves is data: ``/metrics`` has it behind a token, and ``/readyz`` told anyone."""
    with open_client(guarded) as client:
        for headers in ({}, bearer(WRONG), {"Authorization": f"Basic {OLD}"}):
            r = client.get("/readyz", headers=headers)
            assert r.status_code == 200 and r.json() == {"status": "ready"}, r.text
        for token in (OLD, TOKEN):
            said = client.get("/readyz", headers=bearer(token)).json()
            assert said["status"] == "ready" and said["partitions"] > 0, said
    with open_client(settings) as client:  # reads open: as before
        assert client.get("/readyz").json()["partitions"] > 0


def test_several_admin_tokens_each_administer(settings: Settings) -> None:
    """Rotation works for the admin scope the same way."""
    with open_client(replace(settings, admin_token=f"{TOKEN},{NEW}")) as client:
        for token in (TOKEN, NEW):
            r = client.post(
                f"/v1/partitions/{KEY}/promote", json={"version": 1}, headers=bearer(token)
            )
            assert r.status_code == 200, r.text
        r = client.post(f"/v1/partitions/{KEY}/promote", json={"version": 1}, headers=bearer(OLD))
        assert r.status_code == 401  # no read tokens on this router: OLD is unknown


def test_serve_refuses_a_token_file_it_cannot_read(registry_path: Path, tmp_path: Path) -> None:
    """One ``error:`` line naming the variable and the path, before anything starts."""
    from serving.command import serve

    app = typer.Typer()
    app.command()(serve)
    env = {"MANYMODELS_READ_TOKEN_FILE": str(tmp_path / "missing")}
    result = CliRunner().invoke(app, ["--registry", str(registry_path), "--port", "0"], env=env)
    assert result.exit_code == 2
    (line,) = [ln for ln in result.output.splitlines() if ln.strip()]
    assert line.startswith("error: MANYMODELS_READ_TOKEN_FILE=") and "cannot read it" in line


def test_without_read_tokens_reading_is_open(settings: Settings) -> None:
    with open_client(settings) as client:
        for method, url, body in data_requests():
            assert client.request(method, url, json=body).status_code == 200, url


def test_a_token_file_is_followed_without_a_restart(registry_path: Path, tmp_path: Path) -> None:
    """The rotation a secret manager performs: add the new token, then remove the old."""
    secret = tmp_path / "read-tokens"
    secret.write_text(f"# rotated monthly\n{OLD}\n\n")
    settings = Settings(registry=registry_path, read_token_file=secret)
    with open_client(settings) as client:

        def status(token: str) -> int:
            return int(client.get("/v1/partitions", headers=bearer(token)).status_code)

        assert (status(OLD), status(NEW)) == (200, 401)
        replace_file(secret, f"{OLD}\n{NEW}\n")
        assert wait_for(lambda: status(NEW) == 200) and status(OLD) == 200  # both, at once
        replace_file(secret, f"{NEW}\n")
        assert wait_for(lambda: status(OLD) == 401) and status(NEW) == 200


def test_no_token_is_ever_logged_or_answered(
    guarded: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Every kind of answer — 200, 401, 404, 405, 422 — with each token (and a wrong one)
    sent, and everything logged on the way (the access line included)."""
    caplog.set_level(logging.DEBUG)
    seen: list[str] = [repr(guarded), str(guarded), repr(guarded.read_tokens)]
    with open_client(guarded) as client:
        requests: list[tuple[str, str, dict[str, Any] | None]] = [
            *data_requests(),
            ("POST", PREDICT, {"rows": [{"price": "x"}]}),  # 422
            ("GET", "/v1/partitions/store=999,brand=x", None),  # 404
            ("DELETE", PREDICT, None),  # 405
            ("POST", f"/v1/partitions/{KEY}/promote", {"version": 99}),  # 401 or 404
            ("GET", "/openapi.json", None),
        ]
        for token in SECRETS:
            for method, url, body in requests:
                for headers in (bearer(token), {"Authorization": token}):
                    r = client.request(method, url, json=body, headers=headers)
                    seen += [r.text, json.dumps(dict(r.headers))]
    seen += [caplog.text, *(r.getMessage() for r in caplog.records)]
    access = [r for r in caplog.records if r.name == "manymodels.serving.access"]
    assert len(access) >= len(SECRETS) * 2 * 11  # a line for every request, the 401s included
    for token in SECRETS:
        assert not any(token in text for text in seen), token


# ---------------------------------------------------------------------------- configuration
def test_settings_take_several_tokens_from_the_variable_or_the_file(tmp_path: Path) -> None:
    env = {"MANYMODELS_READ_TOKEN": f" {OLD} ,{NEW},", "MANYMODELS_ADMIN_TOKEN": TOKEN}
    s = Settings.from_env(env, registry=tmp_path)
    assert s.read_tokens is not None and len(s.read_tokens) == 2
    assert s.read_tokens.matches(OLD) and s.read_tokens.matches(NEW)
    assert not s.read_tokens.matches(f"{OLD},{NEW}") and not s.read_tokens.matches("")
    assert s.admin_tokens is not None and s.admin_tokens.matches(TOKEN)
    assert not s.read_tokens.matches(TOKEN)  # an admin also reads: serving.auth says so
    secret = tmp_path / "tokens"
    secret.write_text(f"# comment\n\n  {OLD}  \n{NEW}\n")
    s = Settings.from_env({"MANYMODELS_READ_TOKEN_FILE": str(secret)}, registry=tmp_path)
    assert s.read_token_file == secret and s.read_tokens and len(s.read_tokens) == 2
    assert repr(s.read_tokens) == f"Tokens(<2 hidden>, path={str(secret)!r})"
    assert Settings.from_env({}, registry=tmp_path).read_tokens is None
    assert Settings.from_env({"MANYMODELS_READ_TOKEN": "  "}, registry=tmp_path).read_tokens is None
    # a file saved by Notepad or PowerShell 5.1 starts with a byte-order mark: it made the
    # first token another string, and the right token a 401, silently
    secret.write_bytes(b"\xef\xbb\xbf" + f"{OLD}\r\n".encode())
    s = Settings.from_env({"MANYMODELS_ADMIN_TOKEN_FILE": str(secret)}, registry=tmp_path)
    assert s.admin_tokens is not None and s.admin_tokens.matches(OLD)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MANYMODELS_READ_TOKEN": OLD, "MANYMODELS_READ_TOKEN_FILE": "f"}, "not both"),
        ({"MANYMODELS_READ_TOKEN": " , ,"}, "holds no token"),
        ({"MANYMODELS_READ_TOKEN_FILE": "missing"}, "cannot read it"),
        ({"MANYMODELS_READ_TOKEN_FILE": "comments"}, "holds no token"),
        ({"MANYMODELS_ADMIN_TOKEN_FILE": "empty"}, "the file is empty"),
    ],
)
def test_a_token_setting_that_opens_nothing_fails_at_start(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    (tmp_path / "comments").write_text(f"# {OLD} retired\n\n")
    (tmp_path / "empty").write_text("\n")
    env = {k: str(tmp_path / v) if k.endswith("_FILE") else v for k, v in env.items()}
    with pytest.raises(ValueError, match=message) as caught:
        Settings.from_env(env, registry=tmp_path)
    assert OLD not in str(caught.value)


def test_secret_from_env_is_the_one_reader_of_variable_or_file(tmp_path: Path) -> None:
    (tmp_path / "s").write_text(" key \n")
    assert secret_from_env({}, "A", "A_FILE") is None
    direct = secret_from_env({"A": " key "}, "A", "A_FILE")
    assert direct is not None and (direct.text, direct.path) == ("key", None)
    read = secret_from_env({"A_FILE": str(tmp_path / "s")}, "A", "A_FILE")
    assert read is not None and (read.text, read.path) == ("key", tmp_path / "s")
    assert "key" not in repr(read)
    (tmp_path / "bin").write_bytes(b"\xff" + OLD.encode())
    with pytest.raises(ValueError, match="not UTF-8") as caught:
        secret_from_env({"A_FILE": str(tmp_path / "bin")}, "A", "A_FILE")
    assert "xff" not in str(caught.value)
    assert parse_tokens("a, b\n# c, d\n e \n,,") == ("a", "b", "e")


def test_a_token_file_is_looked_at_once_a_second_at_most(tmp_path: Path) -> None:
    now = [0.0]
    secret = tmp_path / "t"
    secret.write_text(OLD)
    tokens = Tokens.from_file(secret, "T_FILE", clock=lambda: now[0])
    replace_file(secret, NEW)
    assert tokens.matches(OLD) and not tokens.matches(NEW)  # not looked at yet
    now[0] = 1.0
    assert tokens.matches(NEW) and not tokens.matches(OLD)
    secret.write_text("# emptied by mistake\n")  # keeps what it had: neither open nor shut
    now[0] = 2.0
    assert tokens.matches(NEW) and not tokens.matches("") and len(tokens) == 1
    secret.unlink()  # a secret removed: likewise
    now[0] = 3.0
    assert tokens.matches(NEW)


# ---------------------------------------------------------------------------- helpers
def replace_file(path: Path, text: str) -> None:
    """Swap the file's content in at once, as a secret manager does (write, then rename)."""
    fresh = path.with_name(path.name + ".new")
    fresh.write_text(text)
    os.replace(fresh, path)


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---------------------------------------------------------------------------- real uvicorn
@pytest.mark.slow  # ~13 s on a busy machine: a process start and two file re-reads
def test_serve_rotates_read_tokens_without_a_restart(registry_path: Path, tmp_path: Path) -> None:
    """``manymodels serve`` with a token file: two tokens valid at once while clients move,
    then the old one refused — one process throughout; no token in what it wrote."""
    secret = tmp_path / "read-tokens"
    secret.write_text(f"{OLD}\n")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "MANYMODELS_READ_TOKEN_FILE": str(secret), "MANYMODELS_ADMIN_TOKEN": TOKEN}
    cmd = [sys.executable, "-m", "manymodels.cli", "serve", "--registry", str(registry_path),
           "--port", str(port), "--access-log"]  # fmt: skip
    body = {"rows": feature_rows(1)}

    def status(token: str | None) -> int:
        headers = bearer(token) if token is not None else {}
        return httpx.post(f"{url}{PREDICT}", json=body, headers=headers, timeout=10).status_code

    with subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env) as proc:
        try:
            assert wait_for(lambda: _ready(url) or proc.poll() is not None, 60), "never ready"
            assert proc.poll() is None, "serve exited"
            assert (status(OLD), status(NEW), status(None), status(TOKEN)) == (200, 401, 401, 200)
            replace_file(secret, f"{OLD}\n{NEW}\n")  # 1. add the new token
            assert wait_for(lambda: status(NEW) == 200)
            assert status(OLD) == 200  # 2. both valid while clients move over
            replace_file(secret, f"{NEW}\n")  # 3. remove the old one
            assert wait_for(lambda: status(OLD) == 401)
            assert status(NEW) == 200
            metrics = httpx.get(f"{url}/metrics", headers=bearer(NEW), timeout=10)
            assert metrics.status_code == 200 and "manymodels" in metrics.text
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=30)
    assert '"reads_need_token": true' in err, err[-2000:]
    assert "re-read: 2 token(s)" in err and "re-read: 1 token(s)" in err, err[-2000:]
    assert "open to any client" not in err  # the note is for routers without read tokens
    assert err.count('"route": "/v1/partitions/{key:path}/predict"') >= 8, err[-2000:]
    for token in SECRETS:
        assert token not in err


def _ready(url: str) -> bool:
    """``/readyz`` needs no token: load balancers probe it."""
    try:
        return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
