"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc): FastAPI's pages, which say so when the
browser cannot load their scripts.

Both pages load their JavaScript from a CDN (cdn.jsdelivr.net). A router on a machine without
internet access — an air-gapped cluster, a laptop offline — served a blank page at ``/docs``,
with nothing saying why, where the router's startup line had just pointed. Bundling the assets
(FastAPI's "self-hosting JavaScript and CSS for docs") needs them from a package of ~10 MB
(``swagger-ui-bundle``, ``fastapi-offline``) in every install, a dependency to keep current
for a page most deployments reach with network; and the API's description needs no script at
all: ``/openapi.json``, and the dashboard at ``/ui`` ships its own files. So the pages stay
FastAPI's, and when their script did not load they say so, and where to go instead.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

# runs after the page's CDN script tag (a parser-blocking load, failed or not): ``global`` is
# what the script defines; ``name`` the viewer
_UNLOADED = """
<script>
if (typeof window[%(global)s] === "undefined") {
  const box = document.createElement("div");
  box.id = "docs-unavailable";
  box.style.cssText = "font: 16px/1.5 sans-serif; max-width: 46em; margin: 2em auto;";
  const say = (tag, text) => {
    const e = document.createElement(tag);
    e.textContent = text;
    box.append(e);
    return e;
  };
  say("h1", "The API documentation could not load");
  say("p", %(name)s + " loads its script from " + %(host)s + ", which this browser could not "
    + "reach (no internet access?). The router itself works.");
  const p = say("p", "The API's description: ");
  const link = document.createElement("a");
  link.href = %(openapi)s;
  link.textContent = %(openapi)s;
  p.append(link, " (OpenAPI JSON: open it in any OpenAPI viewer or editor). The dashboard at ");
  const ui = document.createElement("a");
  ui.href = %(ui)s;
  ui.textContent = "/ui";
  p.append(ui, " needs no internet access.");
  document.body.prepend(box);
}
</script>
"""

CDN_HOST = "cdn.jsdelivr.net"


def _page(html: HTMLResponse, *, global_name: str, name: str, root: str, openapi: str) -> str:
    import json

    fallback = _UNLOADED % {
        "global": json.dumps(global_name),
        "name": json.dumps(name),
        "host": json.dumps(CDN_HOST),
        "openapi": json.dumps(openapi),
        "ui": json.dumps(f"{root}/ui"),
    }
    body = bytes(html.body).decode()
    at = body.rindex("</body>")
    return body[:at] + fallback + body[at:]


def install_docs(app: FastAPI) -> None:
    """Add ``/docs`` and ``/redoc`` to ``app`` (made with ``docs_url=None, redoc_url=None``)."""
    assert app.openapi_url is not None

    async def swagger(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        openapi = root + str(app.openapi_url)
        page = get_swagger_ui_html(openapi_url=openapi, title=f"{app.title} - Swagger UI")
        text = _page(page, global_name="SwaggerUIBundle", name="Swagger UI", root=root,
                     openapi=openapi)  # fmt: skip
        return HTMLResponse(text)

    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        openapi = root + str(app.openapi_url)
        page = get_redoc_html(openapi_url=openapi, title=f"{app.title} - ReDoc")
        text = _page(page, global_name="Redoc", name="ReDoc", root=root, openapi=openapi)
        return HTMLResponse(text)

    app.add_route("/docs", swagger, include_in_schema=False)
    app.add_route("/redoc", redoc, include_in_schema=False)
