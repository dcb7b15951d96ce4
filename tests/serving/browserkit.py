"""Chromium for the dashboard's browser tests (``test_dashboard``, ``test_ui_browser``):
``browse`` (one headless run: the DOM after the page's scripts ran, or a screenshot) and
readers of what the page shows. The ``chromium`` and ``shots`` fixtures are in ``conftest.py``;
how Chromium is found, and why a missing one fails under CI, is in ``test_dashboard``'s
docstring.
"""

from __future__ import annotations

import html
import re
import subprocess
from pathlib import Path
from urllib.parse import quote

BROWSER_TIMEOUT = 60  # seconds for one Chromium run; a run takes 1–3 s


def browse(
    chromium: str,
    url: str,
    tmp_path: Path,
    *,
    screenshot: Path | None = None,
    flags: tuple[str, ...] = (),
) -> str:
    """The page's DOM after its scripts ran (or, with ``screenshot``, a PNG of it): one fresh
    headless Chromium with its own profile, so runs never share a session or a cache.
    ``flags`` are Chromium's own (``--host-resolver-rules=MAP name 127.0.0.1``: a DNS name
    pointed at this machine)."""
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    args = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=5000",
        *flags,
    ]
    if screenshot is not None:
        args += [f"--screenshot={screenshot}", "--window-size=1280,900"]
    else:
        args += ["--dump-dom"]
    done = subprocess.run(
        [*args, url], capture_output=True, text=True, timeout=BROWSER_TIMEOUT, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    if screenshot is not None:
        assert screenshot.stat().st_size > 10_000, "an empty screenshot"
    return done.stdout


def page_state(dom: str) -> str:
    found = re.search(r'<body[^>]*\bdata-state="([a-z]+)"', dom)
    return found.group(1) if found else "none"


def row_keys(dom: str) -> list[str]:
    return [html.unescape(k) for k in re.findall(r'<tr data-key="([^"]*)"', dom)]


def text_of(dom: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"[^>]*>([^<]*)<', dom)
    return html.unescape(found.group(1)) if found else ""


def view(base: str, **params: str) -> str:
    """The dashboard's URL for a view: its state lives in the hash (never sent to the server)."""
    return f"{base}/ui#" + "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())


class Driven:
    """One headless Chromium driven over the DevTools protocol (its pipe-free websocket), for
    what ``browse`` cannot do: click a button, let the test change the registry between two
    clicks, and read the page again. ``flags`` are Chromium's own (``--window-size=780,900``:
    a narrow window). Close it (a context manager)."""

    def __init__(
        self, chromium: str, url: str, tmp_path: Path, *, flags: tuple[str, ...] = ()
    ) -> None:
        import json
        import time
        import urllib.request
        from contextlib import ExitStack

        from websockets.sync.client import connect

        profile = tmp_path / f"driven-{len(list(tmp_path.glob('driven-*')))}"
        self._browser = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-extensions", f"--user-data-dir={profile}", "--remote-debugging-port=0",
             *flags, url],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            port_file = profile / "DevToolsActivePort"
            deadline = time.monotonic() + BROWSER_TIMEOUT
            while not (port_file.exists() and port_file.read_text().strip()):
                assert time.monotonic() < deadline, "Chromium opened no DevTools port"
                time.sleep(0.1)
            port = port_file.read_text().split()[0]
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as answer:
                targets = json.load(answer)
            page = next(t for t in targets if t["type"] == "page")
            self._stack = ExitStack()
            self._socket = self._stack.enter_context(
                connect(page["webSocketDebuggerUrl"], max_size=None)
            )
        except BaseException:
            self.close()
            raise
        self._id = 0

    def evaluate(self, expression: str) -> object:
        """The value of a JavaScript expression in the page (awaited when a promise)."""
        import json

        self._id += 1
        self._socket.send(json.dumps({"id": self._id, "method": "Runtime.evaluate", "params": {
            "expression": expression, "awaitPromise": True, "returnByValue": True}}))  # fmt: skip
        while True:
            message = json.loads(self._socket.recv(timeout=BROWSER_TIMEOUT))
            if message.get("id") == self._id:
                result = message["result"]
                assert "exceptionDetails" not in result, result
                return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30.0) -> object:
        """Poll ``expression`` until it is truthy (its value), or fail after ``timeout`` s."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            assert time.monotonic() < deadline, f"never true: {expression}"
            time.sleep(0.1)

    def close(self) -> None:
        stack = getattr(self, "_stack", None)
        if stack is not None:
            stack.close()
        self._browser.terminate()
        self._browser.wait(timeout=BROWSER_TIMEOUT)

    def __enter__(self) -> Driven:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
