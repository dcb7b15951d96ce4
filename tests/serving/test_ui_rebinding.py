"""Another site's page in the user's browser, against a router on 127.0.0.1 (``serving.hosts``).

Reading is open by default because only this machine reaches 127.0.0.1; the browser on this
machine does too, for any page it shows. In a real headless Chromium: a page whose DNS name
was pointed at 127.0.0.1 (DNS rebinding, done here by ``--host-resolver-rules``) loaded the
dashboard and read every partition as its own origin's, and a page of another origin POSTed a
plain-text V2 inference (no CORS preflight) that the router scored and sampled as traffic.
Both are refused now; the dashboard on localhost, 127.0.0.1 or an ``--allowed-host`` works.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from browserkit import browse, page_state, row_keys, text_of, view
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from routerkit import KEY

from serving.local import running_server
from serving.settings import Settings

REBOUND = "rebound.attacker.test"


def _port(base: str) -> str:
    return base.rsplit(":", 1)[1]


@pytest.mark.slow
def test_a_page_whose_name_points_at_127_0_0_1_cannot_read_the_router(
    chromium: str, settings: Settings, tmp_path: Path
) -> None:
    pointed = (f"--host-resolver-rules=MAP {REBOUND} 127.0.0.1",)
    with running_server(settings) as base:
        own = browse(chromium, view(base, q="store=2,"), tmp_path)
        assert page_state(own) == "ready", text_of(own, "status")
        assert row_keys(own)

        rebound = browse(
            chromium, view(f"http://{REBOUND}:{_port(base)}", q="store=2,"), tmp_path, flags=pointed
        )
        assert row_keys(rebound) == [], "the rebinding page read the partitions"
        assert "does not answer to the host" in rebound
        on_localhost = browse(chromium, view(f"http://localhost:{_port(base)}"), tmp_path)
        assert page_state(on_localhost) == "ready" and row_keys(on_localhost)

    with running_server(replace(settings, allowed_hosts=(REBOUND,))) as base:  # a proxy's name
        named = browse(
            chromium, view(f"http://{REBOUND}:{_port(base)}", q="store=2,"), tmp_path, flags=pointed
        )
        assert page_state(named) == "ready", text_of(named, "status")
        assert row_keys(named) == row_keys(own)


def _infer_requests(base: str, status: int) -> float:
    text = httpx.get(f"{base}/metrics").text
    found = re.search(
        r'manymodels_http_requests_total\{method="POST",route="/v2/models/\{key:path\}/infer",'
        rf'status="{status}"\}} ([0-9.]+)',
        text,
    )
    return float(found.group(1)) if found else 0.0


@pytest.mark.slow
def test_another_sites_page_cannot_post_to_the_router(
    chromium: str, settings: Settings, tmp_path: Path
) -> None:
    body = {"inputs": [
        {"name": name, "shape": [1], "datatype": "FP64", "data": [value]}
        for name, value in (("price", 2.0), ("deal", 1.0), ("feat", 0.0))
    ]}  # fmt: skip
    with running_server(settings) as router:
        assert httpx.post(f"{router}/v2/models/{KEY}/infer", json=body).status_code == 200
        assert _infer_requests(router, 200) == 1  # a program's request: answered

        other = FastAPI()

        @other.get("/page")
        async def page() -> HTMLResponse:  # a page of another origin (localhost, other port)
            target = json.dumps(f"{router}/v2/models/{KEY}/infer")
            text = json.dumps(json.dumps(body))  # a text/plain body: no CORS preflight
            return HTMLResponse(
                "<body data-state=loading><script>"
                f"fetch({target}, {{method: 'POST', mode: 'no-cors', body: {text}}})"
                ".finally(() => { document.body.dataset.state = 'ready'; });"
                "</script></body>"
            )

        with running_server(settings, app=other) as attacker:
            dom = browse(chromium, f"http://localhost:{_port(attacker)}/page", tmp_path)
            assert page_state(dom) == "ready"
        assert _infer_requests(router, 200) == 1, "another site's page had the router score rows"

        dashboard = browse(chromium, view(router, p=KEY), tmp_path)  # its own POST …/forecast
        assert page_state(dashboard) == "ready", text_of(dashboard, "status")
        assert 'id="forecast"' in dashboard and "No forecast" not in dashboard


def test_on_loopback_the_router_answers_to_loopback_names_only(
    reading_server: str, settings: Settings
) -> None:
    """Real uvicorn, a request per Host header: loopback names and this machine's name are
    answered; any other is a JSON 403 saying what to do — the flag, and the variable a
    deployment configured by its environment sets (the 403 named only the flag) — and ``*``
    turns the check off."""
    import socket

    base = reading_server  # the module's router, of ``settings``' own options
    for host in ("localhost", "LOCALHOST.", "127.0.0.1", "127.1.2.3:80", "[::1]:8000",
                 "app.localhost", socket.gethostname()):  # fmt: skip
        got = httpx.get(f"{base}/v1/partitions?limit=1", headers={"Host": host})
        assert got.status_code == 200, host
    for host in (REBOUND, "localhost.attacker.test", "127.0.0.1.attacker.test"):
        got = httpx.get(f"{base}/healthz", headers={"Host": host})
        assert got.status_code == 403, host
        assert "--allowed-host NAME" in got.json()["detail"]
        assert "MANYMODELS_ALLOWED_HOSTS=NAME" in got.json()["detail"], host
    with running_server(replace(settings, allowed_hosts=("*",))) as base:
        assert httpx.get(f"{base}/healthz", headers={"Host": REBOUND}).status_code == 200


def test_on_loopback_the_router_answers_to_an_address_as_host(reading_server: str) -> None:
    """``serve --host 0.0.0.0`` prints ``http://0.0.0.0:8000``: a browser or curl given that
    URL reaches the router on 127.0.0.1 with ``Host: 0.0.0.0:8000``, which was a 403. DNS
    rebinding needs a name; an address (0.0.0.0, [::], this machine's own) is answered."""
    base = reading_server
    port = _port(base)
    for host in (f"0.0.0.0:{port}", "0.0.0.0", f"[::]:{port}", "10.1.2.3:8000"):
        got = httpx.get(f"{base}/v1/partitions?limit=1", headers={"Host": host})
        assert got.status_code == 200, (host, got.text)
    # a name still is judged, even one that reads like an address
    for host in ("0.0.0.0.attacker.test", "0x7f.attacker.test"):
        assert httpx.get(f"{base}/healthz", headers={"Host": host}).status_code == 403


@contextlib.contextmanager
def serving_at(cmd: list[str], port: int, env: dict[str, str] | None = None) -> Iterator[str]:
    """Run ``cmd`` (a ``manymodels serve`` on ``port``) until it answers /healthz; its base
    URL; stopped on leaving."""
    with subprocess.Popen(cmd, stderr=subprocess.DEVNULL, env=env) as proc:
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert proc.poll() is None and time.monotonic() < deadline, "never served"
                time.sleep(0.2)
            yield base
        finally:
            proc.terminate()
            proc.wait(timeout=30)


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--allowed-host", "models.example.com"], {}),
        ([], {"MANYMODELS_ALLOWED_HOSTS": " other.example.org, models.example.com ,"}),
        # the flag wins over the variable, as every flag does
        (["--allowed-host", "models.example.com"], {"MANYMODELS_ALLOWED_HOSTS": REBOUND}),
        # comma-separated as the variable: was one name no Host carries, every request a 403
        (["--allowed-host", "other.example.org,models.example.com"], {}),
    ],
    ids=["flag", "variable", "flag-over-variable", "flag-comma-separated"],
)
def test_manymodels_serve_answers_the_hosts_named_by_allowed_host(
    registry_path: Path, args: list[str], env: dict[str, str]
) -> None:
    """``manymodels serve --allowed-host NAME`` (a same-machine proxy's public name) answers
    that Host on 127.0.0.1, and still refuses any other. ``MANYMODELS_ALLOWED_HOSTS``
    (comma-separated) names them too, as a container sets its other settings: there was no
    variable, so a deployment configured by its environment had to edit its command line."""
    import os
    import sys

    from raycluster import free_port

    port = free_port()
    cmd = [sys.executable, "-m", "manymodels.cli", "serve", "--registry", str(registry_path),
           "--port", str(port), *args]  # fmt: skip
    environ = {**os.environ, **env}
    with serving_at(cmd, port, environ) as base:
        named = httpx.get(f"{base}/v1/partitions", headers={"Host": "models.example.com"})
        assert named.status_code == 200 and named.json()["partitions"]
        other = httpx.get(f"{base}/v1/partitions", headers={"Host": REBOUND})
        assert other.status_code == 403


def test_allowed_host_help_names_what_is_answered_without_it() -> None:
    """The help said only localhost, 127.0.0.1 and [::1] are answered; any IP address, any
    ``*.localhost`` and this machine's name are too (``serving.hosts``), and the variable."""
    from typer.testing import CliRunner

    from manymodels.cli import app

    shown = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0
    text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", shown.output).split())
    assert "besides localhost, *.localhost, any IP address and this machine's name" in text, text
    assert "MANYMODELS_ALLOWED_HOSTS" in text


def test_no_answer_can_be_framed_by_another_site_or_sniffed(reading_server: str) -> None:
    """/docs (Swagger's "Try it out" and "Execute", same-origin calls) and every JSON answer
    could be framed by any site under a decoy, and carried no ``nosniff``; only /ui did."""
    base = reading_server
    paths = ("/docs", "/redoc", "/openapi.json", "/v1/partitions", f"/v1/partitions/{KEY}",
             "/v1/partitions/nothing=1", "/healthz", "/metrics", "/v2", "/nowhere")  # fmt: skip
    for path in paths:
        got = httpx.get(f"{base}{path}")
        assert got.headers.get("x-content-type-options") == "nosniff", path
        assert got.headers.get("x-frame-options") == "DENY", path
        assert "frame-ancestors 'none'" in got.headers.get("content-security-policy", ""), path
    page = httpx.get(f"{base}/ui").headers  # its own policy, kept whole and sent once
    assert page.get_list("content-security-policy") == [page["content-security-policy"]]
    assert "default-src 'none'" in page["content-security-policy"]


def _can_rename_the_machine() -> bool:
    """Whether this user may run a program under another machine name and ``/etc/hosts``
    (``unshare --uts --mount``: root, as on CI; leaves the machine's own untouched)."""
    import shutil
    import subprocess

    if shutil.which("unshare") is None:
        return False
    tried = subprocess.run(["unshare", "--uts", "--mount", "true"], capture_output=True)
    return tried.returncode == 0


def test_the_router_answers_to_this_machines_fully_qualified_name(
    registry_path: Path, tmp_path: Path
) -> None:
    """``curl http://$(hostname -f):8000/…`` on the router's machine was a 403 ("does not
    answer to the host"): only the short name was accepted. Real ``manymodels serve`` on a
    machine named ``mmbox`` whose ``/etc/hosts`` gives ``mmbox.models.internal`` (its own UTS
    and mount namespace): the fully qualified name is answered, a name under it is not."""
    import os
    import sys

    from raycluster import free_port

    if not _can_rename_the_machine():
        if os.environ.get("CI") == "true":
            pytest.fail("unshare --uts --mount is needed (root)")
        pytest.skip("needs unshare --uts --mount (root)")
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n127.0.1.1 mmbox.models.internal mmbox\n")
    port = free_port()
    serve = [sys.executable, "-m", "manymodels.cli", "serve", "--registry", str(registry_path),
             "--port", str(port)]  # fmt: skip
    script = 'hostname mmbox && mount --bind "$0" /etc/hosts && exec "$@"'
    cmd = ["unshare", "--uts", "--mount", "sh", "-c", script, str(hosts), *serve]
    with serving_at(cmd, port) as base:
        for host in ("mmbox", "mmbox.models.internal", f"MMBOX.models.internal.:{port}"):
            got = httpx.get(f"{base}/v1/partitions?limit=1", headers={"Host": host})
            assert got.status_code == 200, (host, got.text)
        for host in ("x.mmbox.models.internal", "mmbox.models.internal.attacker.test"):
            got = httpx.get(f"{base}/v1/partitions?limit=1", headers={"Host": host})
            assert got.status_code == 403, host


def test_an_allowed_host_of_a_wildcard_answers_the_names_under_it(settings: Settings) -> None:
    """``--allowed-host '*.example.com'`` (Starlette's TrustedHostMiddleware's and Django's
    form, for a proxy serving several names) was taken for one name that no Host carries:
    every request through the proxy was a 403 saying to start the router "with
    --allowed-host NAME", which the user had done. Now it answers each name under
    example.com, and no other; a ``*`` elsewhere is refused as the router starts."""
    wildcard = replace(settings, allowed_hosts=("*.Example.com",))
    with running_server(wildcard) as base:
        for host in ("models.example.com", "a.b.example.com:443", "API.example.com."):
            got = httpx.get(f"{base}/v1/partitions?limit=1", headers={"Host": host})
            assert got.status_code == 200, (host, got.text)
        for host in ("example.com.attacker.test", "badexample.com", REBOUND):
            assert httpx.get(f"{base}/healthz", headers={"Host": host}).status_code == 403, host
    with pytest.raises(ValueError, match=r"allowed host 'api\*\.example\.com' .* not a host"):
        replace(settings, allowed_hosts=("api*.example.com",))
    with pytest.raises(ValueError, match=r"allowed host 'a\.example\.com;b\.example\.com' "):
        replace(settings, allowed_hosts=("a.example.com;b.example.com",))


def test_a_foreign_host_does_not_wait_on_the_resolver(registry_path: Path, tmp_path: Path) -> None:
    """The machine's fully qualified name was looked up (``socket.getfqdn``) on the event loop
    at the first Host not answered otherwise: where DNS does not answer (an air-gapped
    machine), anyone sending a foreign Host stalled that request, and every other, for the
    resolver's timeout. Real ``manymodels serve`` on a machine whose name is in no hosts file
    and whose name server (a socket of this test) never answers, 10 s a query: the foreign
    Host is a 403 and localhost an answer, both at once."""
    import os
    import random
    import socket
    import sys
    import time

    from raycluster import free_port

    if not _can_rename_the_machine():
        if os.environ.get("CI") == "true":
            pytest.fail("unshare --uts --mount is needed (root)")
        pytest.skip("needs unshare --uts --mount (root)")
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a name server that never answers
    # an address of its own in 127/8: port 53 of one fixed address was taken by this test
    # running in another checkout's suite at the same moment (EADDRINUSE)
    silent.bind((f"127.53.{random.randrange(1, 255)}.{random.randrange(1, 255)}", 53))
    nameserver = silent.getsockname()[0]
    hosts, resolv = tmp_path / "hosts", tmp_path / "resolv.conf"
    hosts.write_text("127.0.0.1 localhost\n")
    resolv.write_text(f"nameserver {nameserver}\noptions timeout:10 attempts:1\n")
    port = free_port()
    serve = [sys.executable, "-m", "manymodels.cli", "serve", "--registry", str(registry_path),
             "--port", str(port)]  # fmt: skip
    script = (
        'hostname mmslow && mount --bind "$0" /etc/hosts && mount --bind "$1" /etc/resolv.conf'
        ' && shift && exec "$@"'
    )
    cmd = ["unshare", "--uts", "--mount", "sh", "-c", script, str(hosts), str(resolv), *serve]
    with silent, serving_at(cmd, port) as base:
        started = time.monotonic()
        foreign = httpx.get(f"{base}/healthz", headers={"Host": REBOUND}, timeout=30)
        local = httpx.get(f"{base}/healthz", headers={"Host": "localhost"}, timeout=30)
        waited = time.monotonic() - started
        assert (foreign.status_code, local.status_code) == (403, 200)
        assert waited < 5, f"the requests waited {waited:.1f} s on the resolver"
