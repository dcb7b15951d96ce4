"""The dashboard at ``/ui``: three static files shipped in ``serving/ui/``.

The page is a shell: it holds no data, so it is served without a token even when reads need
one (``create_app`` includes this router without the read dependency). Every number it shows
comes from the JSON API, fetched by the page with the token the user entered (kept in the
tab's ``sessionStorage``). The files are read once, at import, from the installed package —
no CDN, no build step — and the routes are left out of the OpenAPI document: they are not API.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

router = APIRouter(tags=["dashboard"], include_in_schema=False)

_FILES = resources.files("serving") / "ui"
# A page that calls only its own origin; inline styles are the bars and the chart's attributes.
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": POLICY,
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",  # revalidated: an upgraded router serves its own page
}


def _read(name: str) -> bytes:
    return (_FILES / name).read_bytes()


INDEX = _read("index.html")
ASSETS = {
    "app.js": (_read("app.js"), "text/javascript; charset=utf-8"),
    "app.css": (_read("app.css"), "text/css; charset=utf-8"),
}


@router.get("/ui", response_class=HTMLResponse)
async def index() -> Response:
    """The dashboard's page; its state (search, sort, partition) lives in the URL's hash."""
    return HTMLResponse(INDEX, headers=HEADERS)


@router.get("/ui/app.js")
async def script() -> Response:
    body, media = ASSETS["app.js"]
    return Response(body, media_type=media, headers=HEADERS)


@router.get("/ui/app.css")
async def style() -> Response:
    body, media = ASSETS["app.css"]
    return Response(body, media_type=media, headers=HEADERS)
