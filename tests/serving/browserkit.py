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


def browse(chromium: str, url: str, tmp_path: Path, *, screenshot: Path | None = None) -> str:
    """The page's DOM after its scripts ran (or, with ``screenshot``, a PNG of it): one fresh
    headless Chromium with its own profile, so runs never share a session or a cache."""
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
