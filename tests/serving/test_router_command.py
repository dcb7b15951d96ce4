"""``manymodels serve`` (the command function), the in-process server helper, and logs."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from factories import imported_by, wait_ready
from routerkit import KEY, feature_rows, ready_line
from typer.testing import CliRunner

from manymodels.cli.lines import ERROR_CHARS
from manymodels.exceptions import NoRegistry
from serving.command import serve
from serving.local import running_server
from serving.settings import Settings


def cli() -> typer.Typer:
    app = typer.Typer()
    app.command()(serve)
    return app


def test_importing_the_command_stays_light() -> None:
    assert imported_by("import serving.command", ["fastapi", "uvicorn", "sklearn", "pandas"]) == []


def test_help_comes_from_the_signature() -> None:
    result = CliRunner().invoke(cli(), ["--help"])
    assert result.exit_code == 0
    for option in ("--registry", "--host", "--port", "--cache-size", "--preload"):
        assert option in result.output
    assert "--refresh-seconds" in result.output


def test_a_missing_registry_fails_before_serving(tmp_path: Path) -> None:
    from manymodels.exceptions import RegistryError

    result = CliRunner().invoke(cli(), ["--registry", str(tmp_path / "nope"), "--port", "0"])
    assert result.exit_code != 0
    assert isinstance(result.exception, RegistryError)


class Served:
    """A ``manymodels serve`` of default options on ``port``, and the lines it has written to
    stderr so far (read by a thread), for the tests that only read what it prints and serves."""

    def __init__(self, proc: subprocess.Popen[str], port: int) -> None:
        self.proc, self.port, self.lines = proc, port, list[str]()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        """Every line as written, the pipe drained so the router never blocks on it."""
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def line(self, text: str, *, start: bool = False, timeout: float = 60) -> int:
        """The index of the first line holding ``text`` (or starting with it), once written:
        fails if the router exits first, or after ``timeout`` ("does not hang")."""
        deadline = time.monotonic() + timeout
        while True:
            held = [ln.startswith(text) if start else text in ln for ln in self.lines]
            found = held.index(True) if True in held else None
            if found is not None:
                return found
            assert self.proc.poll() is None, "".join(self.lines)[-3000:]
            assert time.monotonic() < deadline, "".join(self.lines)[-3000:]
            time.sleep(0.05)


@pytest.fixture(scope="module")
def default_serve(shared_registry: Path) -> Iterator[Served]:
    """One ``manymodels serve --registry R --port P`` (no other option) for the module: its
    start-up lines and its dashboard are read by two tests, a process start each before."""
    from raycluster import free_port

    port = free_port()
    cmd = [sys.executable, "-m", "manymodels.cli", "serve", "--registry", str(shared_registry),
           "--port", str(port)]  # fmt: skip
    with subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True) as proc:
        try:
            yield Served(proc, port)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


@pytest.mark.parametrize("flag,inline", [([], True), (["--thread-loads"], False)])
def test_serve_says_where_cache_misses_load(
    request: pytest.FixtureRequest, flag: list[str], inline: bool
) -> None:
    """A local registry loads misses on the event loop unless told otherwise; the start-up
    log line says which. Without the flag: the module's ``serve`` of default options."""
    if flag:
        registry = request.getfixturevalue("registry_path")
        cmd = [sys.executable, "-m", "manymodels.cli", "serve", "--registry", str(registry),
               "--port", "0", *flag]  # fmt: skip
        fields = ready_line(cmd)
    else:
        served: Served = request.getfixturevalue("default_serve")
        ready = served.lines[served.line("router ready")]
        fields = json.loads(ready[ready.index("{") :])
    assert fields["inline_loads"] is inline


def serve_exits(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``manymodels serve ARGS`` run to its end: a start that should have been refused fails
    the test (the router would serve until killed)."""
    cmd = [sys.executable, "-m", "manymodels.cli", "serve", "--port", "0", *args]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"serve started instead of refusing: {e.stderr!r}")


def test_serve_refuses_a_store_without_the_registrys_models(
    registry_path: Path, tmp_path: Path
) -> None:
    """``--artifacts`` naming a directory without the registry's models (a misspelt path)
    started a router whose /readyz said ready and whose every model answered 409 "artifact …
    missing": now one ``error:`` line naming the store, exit 1, before it listens."""
    wrong = tmp_path / "artifact"  # the registry's is …/registry/artifacts
    wrong.mkdir()
    done = serve_exits("--registry", str(registry_path), "--artifacts", str(wrong))
    assert done.returncode == 1, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"error: the artifact store {wrong} holds none of this registry's")


def test_running_server_raises_the_reason_it_failed_to_start(tmp_path: Path) -> None:
    """A registry that does not exist was "RuntimeError: the router failed to start:
    SystemExit: 3", the reason only in uvicorn's log: now the app's own error, as
    ``Registry.open`` raises it."""
    broken = running_server(Settings(registry=tmp_path / "nope"), timeout=10)
    with pytest.raises(NoRegistry) as caught, broken:
        pass
    assert str(caught.value) == f"no registry at {tmp_path / 'nope'} (train something first)"


def test_running_server_prints_nothing_of_a_failure_it_raises(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """uvicorn printed the app's start-up traceback and "Application startup failed.
    Exiting." before ``running_server`` raised the same error typed (``NoRegistry``): a
    caller who catches it, as the demo does, still had a traceback on the terminal."""
    capfd.readouterr()
    with pytest.raises(NoRegistry), running_server(Settings(registry=tmp_path / "nope")):
        pass
    printed = capfd.readouterr()
    assert printed.err == "" and printed.out == ""


def test_one_json_log_line_per_request(reader: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="manymodels.serving.access"):
        reader.post(f"/v1/partitions/{KEY}/predict", json={"rows": feature_rows(2)})
    lines = [r.getMessage() for r in caplog.records if r.name == "manymodels.serving.access"]
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["status"] == 200 and entry["route"] == "/v1/partitions/{key:path}/predict"
    assert entry["partition"] == KEY and entry["version"] == 1 and entry["rows"] == 2


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    "flag,lines_per_request", [(["--access-log"], 1), ([], 0), (["--no-access-log"], 0)]
)
def test_serve_writes_one_access_line_per_request_from_its_log_thread(
    registry_path: Path, flag: list[str], lines_per_request: int
) -> None:
    """The command as a user starts it: the line is formatted and written by the log thread
    (the event loop only queues the record), and everything queued is written at shutdown."""
    import httpx

    port = _free_port()
    cmd = [sys.executable, "-m", "manymodels.cli", "serve", "--registry", str(registry_path),
           "--port", str(port), *flag]  # fmt: skip
    with subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True) as proc:
        try:
            wait_ready(f"http://127.0.0.1:{port}", proc, timeout=60)
            for _ in range(3):
                r = httpx.post(
                    f"http://127.0.0.1:{port}/v1/partitions/{KEY}/predict",
                    json={"rows": feature_rows(1)}, timeout=10,
                )  # fmt: skip
                assert r.status_code == 200, r.text
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=30)
    access = [ln for ln in err.splitlines() if "manymodels.serving.access" in ln]
    predicts = [ln for ln in access if '"route": "/v1/partitions/{key:path}/predict"' in ln]
    assert len(predicts) == 3 * lines_per_request, err[-3000:]
    for line in predicts:
        entry = json.loads(line[line.index("{") :])
        assert entry["status"] == 200 and entry["partition"] == KEY


def test_start_up_objects_are_frozen_out_of_the_collectors_sight(reader: Any) -> None:
    import gc

    assert gc.get_freeze_count() > 0  # the app's lifespan ran gc.freeze()


def test_serve_on_an_ipv6_address_prints_a_url_that_opens(registry_path: Path) -> None:
    """``serve --host ::1`` printed ``docs: http://::1:8000/docs``, which no browser or client
    parses; now ``http://[::1]:PORT/docs``, and that URL answers."""
    import socket

    from raycluster import free_port

    try:
        socket.socket(socket.AF_INET6).close()
    except OSError:
        pytest.skip("no IPv6 here")
    port = free_port()
    cmd = [sys.executable, "-m", "manymodels.cli", "serve", "--registry", str(registry_path),
           "--host", "::1", "--port", str(port)]  # fmt: skip
    with subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stderr is not None
            lines = []
            for line in proc.stderr:
                lines.append(line)
                if line.startswith("docs: ") or len(lines) > 50:
                    break
            assert lines[-1].strip() == f"docs: http://[::1]:{port}/docs", lines
            url = lines[-1].split(" ", 1)[1].strip()
            deadline = time.monotonic() + 60
            while True:
                try:
                    got = httpx.get(url)
                    break
                except httpx.TransportError:
                    assert proc.poll() is None and time.monotonic() < deadline, "never served"
                    time.sleep(0.2)
            assert got.status_code == 200 and "swagger-ui" in got.text
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def test_serve_prints_the_dashboard_s_url_and_it_opens(default_serve: Served) -> None:
    """``serve`` printed the docs' URL only, so the dashboard the README presents was found
    only by reading it; now a ``dashboard:`` line names ``/ui``, and that URL answers."""
    served, port = default_serve, default_serve.port
    docs = served.line("docs: ", start=True)  # the docs line, which serve has always printed
    assert served.lines[docs].strip() == f"docs: http://127.0.0.1:{port}/docs", served.lines
    deadline = time.monotonic() + 60
    while len(served.lines) <= docs + 1:  # the next line (uvicorn's log, were it missing)
        assert served.proc.poll() is None and time.monotonic() < deadline, served.lines
        time.sleep(0.05)
    after = served.lines[docs + 1]
    assert after.strip() == f"dashboard: http://127.0.0.1:{port}/ui", served.lines
    while True:
        try:
            got = httpx.get(f"http://127.0.0.1:{port}/ui")
            break
        except httpx.TransportError:
            assert served.proc.poll() is None and time.monotonic() < deadline, "never served"
            time.sleep(0.2)
    assert got.status_code == 200 and "<html" in got.text.lower()


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--allowed-host", "https://models.example.com"], {}),
        (["--allowed-host", "models.example.com/api"], {}),
        ([], {"MANYMODELS_ALLOWED_HOSTS": "models.example.com,https://models.example.com/"}),
    ],
    ids=["url", "path", "variable"],
)
def test_serve_refuses_an_allowed_host_that_is_not_a_host_name(
    registry_path: Path, args: list[str], env: dict[str, str]
) -> None:
    """``--allowed-host https://models.example.com`` (the proxy's URL, not its name) started a
    router that answered every request through the proxy with a 403 saying to "start it with
    --allowed-host NAME", which the user had done. Now the start is refused in one line."""
    import os

    cmd = [sys.executable, "-m", "manymodels.cli", "serve", "--port", "0",
           "--registry", str(registry_path), *args]  # fmt: skip
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=60, env={**os.environ, **env}
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"serve started instead of refusing: {e.stderr!r}")
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: allowed host '") and "is not a host name" in line, line


def test_serve_refuses_replicas_without_ray_serve(registry_path: Path) -> None:
    """``serve --replicas 4`` (``--ray-serve`` forgotten) started one plain router and said
    nothing of the 4 replicas asked for: a deploy sized for four ran on one. Now refused in one
    line, before anything starts."""
    cmd = [sys.executable, "-m", "manymodels.cli", "serve", "--port", "0",
           "--registry", str(registry_path), "--replicas", "4"]  # fmt: skip
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"serve started instead of refusing: {e.stderr!r}")
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line == (
        "error: --replicas 4 needs --ray-serve (Ray Serve runs the replicas); without it "
        "serve runs one router: add --ray-serve, or drop --replicas"
    )


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--port", "70000"], "error: --port: must be within 0..65535, not 70000"),
        (["--port", "-1"], "error: --port: must be within 0..65535, not -1"),
    ],
)
def test_serve_names_the_flag_a_setting_refuses(
    registry_path: Path, args: list[str], line: str
) -> None:
    """``serve --port 70000`` said "port must be within 0..65535": Settings' parameter, not
    the flag typed. The command says the flag; Settings keeps its own names for Python."""
    done = CliRunner().invoke(cli(), ["--registry", str(registry_path), *args])
    assert done.exit_code == 2, done.output
    assert done.output.strip().splitlines() == [line]
    with pytest.raises(ValueError, match=r"^port must be within 0\.\.65535, not 70000$"):
        Settings(registry=registry_path, port=70000)
    with pytest.raises(ValueError, match=r"^refresh_seconds must be a finite number above 0"):
        Settings(registry=registry_path, refresh_seconds=float("inf"))


def test_a_very_long_refused_setting_is_one_capped_line(registry_path: Path) -> None:
    """Settings' refusal quotes the value: a ``MANYMODELS_ALLOWED_HOSTS`` of 100,000
    characters (a URL, not a name) was printed whole, one 100 KB ``error:`` line scrolling its
    own beginning out of sight. It is one line cut to about ``ERROR_CHARS``, as every other
    command's error is, still saying what is wrong and what to do."""
    value = "https://" + "a" * 100_000
    done = CliRunner().invoke(
        cli(), ["--registry", str(registry_path)], env={"MANYMODELS_ALLOWED_HOSTS": value}
    )
    assert done.exit_code == 2, done.output[:2000]
    (line,) = done.output.strip().splitlines()
    assert len(line) < ERROR_CHARS + 100, len(line)
    assert line.startswith("error: allowed host 'https://aaaa"), line[:200]
    assert "characters cut]" in line and line.endswith("'*' for any)"), line[-200:]
