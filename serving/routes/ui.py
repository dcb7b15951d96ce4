"""The dashboard at ``/ui``: static files shipped in ``serving/ui/`` (a page, ES modules, CSS).

The page is a shell: it holds no data, so it is served without a token even when reads need
one (``create_app`` includes this router without the read dependency). Every number it shows
comes from the JSON API, fetched by the page with the token the user entered (kept in the
tab's ``sessionStorage``). The files are read once, at import, from the installed package —
no CDN, no build step — and the routes are left out of the OpenAPI document: they are not API.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse, Response

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
MEDIA = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
# Every script module and style sheet in the directory, by name: nothing else is served.
ASSETS = {
    f.name: (f.read_bytes(), MEDIA[suffix])
    for f in _FILES.iterdir()
    if (suffix := "." + f.name.rpartition(".")[2]) in MEDIA
}


@router.get("/ui", response_class=HTMLResponse)
async def index() -> Response:
    """The dashboard's page; its state (search, sort, partition) lives in the URL's hash."""
    return HTMLResponse(INDEX, headers=HEADERS)


@router.get("/ui/{name}")
async def asset(name: str) -> Response:
    """One of the page's ES modules (``app.js`` imports the others) or its style sheet."""
    found = ASSETS.get(name)
    if found is None:
        return JSONResponse({"detail": f"no file '{name}' in the dashboard"}, status_code=404)
    body, media = found
    return Response(body, media_type=media, headers=HEADERS)
