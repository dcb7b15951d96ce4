"""``/docs`` and ``/redoc`` in a real headless Chromium that cannot reach the internet
(``serving.docs_pages``): every name but the router's fails to resolve, as on a machine
offline or in an air-gapped cluster."""

from __future__ import annotations

import html
from pathlib import Path

import httpx
import pytest
from browserkit import browse

from serving.local import running_server
from serving.settings import Settings

OFFLINE = ("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",)


@pytest.mark.slow
@pytest.mark.parametrize(("path", "viewer"), [("/docs", "Swagger UI"), ("/redoc", "ReDoc")])
def test_offline_the_docs_pages_say_why_they_are_empty_and_where_to_go(
    chromium: str, settings: Settings, tmp_path: Path, path: str, viewer: str
) -> None:
    """Offline, /docs (which ``manymodels serve`` names as it starts) and /redoc were blank
    pages: their scripts come from a CDN. Now they say so, and link /openapi.json and /ui."""
    with running_server(settings) as base:
        dom = browse(chromium, f"{base}{path}", tmp_path, flags=OFFLINE)
        assert httpx.get(f"{base}/openapi.json").status_code == 200
    assert 'id="docs-unavailable"' in dom, dom[-1500:]
    text = html.unescape(dom)
    assert "The API documentation could not load" in text
    assert f"{viewer} loads its script from cdn.jsdelivr.net" in text
    assert '<a href="/openapi.json">/openapi.json</a>' in dom
    assert '<a href="/ui">/ui</a>' in dom


def test_the_docs_pages_still_draw_the_api_with_its_viewer(settings: Settings) -> None:
    """With network, the pages are FastAPI's: the viewer's script, pointed at /openapi.json;
    the note is only drawn when that script did not define its viewer."""
    with running_server(settings) as base:
        docs = httpx.get(f"{base}/docs")
        redoc = httpx.get(f"{base}/redoc")
    assert docs.status_code == 200 and redoc.status_code == 200
    assert "swagger-ui-bundle.js" in docs.text and "url: '/openapi.json'" in docs.text
    assert "redoc.standalone.js" in redoc.text and 'spec-url="/openapi.json"' in redoc.text
    assert 'typeof window["SwaggerUIBundle"] === "undefined"' in docs.text
    assert 'typeof window["Redoc"] === "undefined"' in redoc.text
