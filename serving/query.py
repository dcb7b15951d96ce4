"""The router's API routes refuse query parameters they do not take.

FastAPI ignores a query parameter no route declares, so a misspelt or misplaced option was
answered as if absent, with nothing to tell the client: ``POST /v1/predict?version=3``
scored with production, ``?level=80`` answered without intervals, ``?fallbak=false`` let the
fallback answer the misspelt key it was meant to refuse. Every ``/v1`` and ``/v2`` route now
answers such a request 422 (``/v2``: the protocol's 400) naming the parameter, the closest one
the route takes, and the ones it takes (``QueryCheckedRoute``); a route may say where a
parameter it does not take belongs (``elsewhere``). The probes (``/v2/health/*`` too:
``any_query``), ``/metrics``, the API's description and the dashboard's files answer whatever
the query: load balancers, scrapers and browsers add their own (a cache-buster), and nothing
there changes an answer's meaning.

What a route takes is read once, when the route is built: its declared query parameters (its
dependencies' too) and those its OpenAPI entry lists (the scoring routes read theirs without
FastAPI's machinery: ``serving.routes.options``). A request without a query string — every
plain scoring request — pays one dictionary read.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import typing
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])
ELSEWHERE = "__manymodels_query_elsewhere__"  # the endpoint attribute ``elsewhere`` sets
ANY = "__manymodels_any_query__"  # the endpoint attribute ``any_query`` sets


def elsewhere(**hints: str) -> Callable[[Endpoint], Endpoint]:
    """Say, for a query parameter this route does not take, where it belongs: refused with
    this hint instead of the list of what the route takes. Put under the route's decorator."""

    def mark(endpoint: Endpoint) -> Endpoint:
        setattr(endpoint, ELSEWHERE, hints)
        return endpoint

    return mark


def any_query(endpoint: Endpoint) -> Endpoint:
    """Let a route of a checked router answer whatever the query (a probe). Put under the
    route's decorator."""
    setattr(endpoint, ANY, True)
    return endpoint


def without(endpoint: Endpoint, name: str) -> Endpoint:
    """``endpoint`` registered without its parameter ``name`` (left at its default): one
    function serving two paths, one of which carries ``name`` as a path parameter, would
    otherwise take it as a query parameter on the other path (``…/infer?version=1``). The
    annotations are resolved here, in ``endpoint``'s module: FastAPI before 0.123.5 resolves a
    wrapper's string annotations in the wrapper's own module, where they mean nothing."""
    hints = typing.get_type_hints(endpoint, include_extras=True)
    signature = inspect.signature(endpoint)
    signature = signature.replace(
        parameters=[p.replace(annotation=hints.get(p.name, p.annotation))
                    for p in signature.parameters.values()],
        return_annotation=hints.get("return", signature.return_annotation),
    )  # fmt: skip

    @functools.wraps(endpoint)
    async def call(*args: Any, **kwargs: Any) -> Any:
        return await endpoint(*args, **kwargs)

    kept = [p for p in signature.parameters.values() if p.name != name]
    call.__signature__ = signature.replace(parameters=kept)  # type: ignore[attr-defined]
    return call  # type: ignore[return-value]


class QueryCheckedRoute(APIRoute):
    """An ``APIRoute`` whose requests are refused (422) for a query parameter it does not
    take, before its body or dependencies are read."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if getattr(self.endpoint, ANY, False):
            return handler
        taken = query_names(self)
        hints: dict[str, str] = getattr(self.endpoint, ELSEWHERE, {})

        async def checked(request: Request) -> Response:
            if request.scope.get("query_string"):
                refuse_unknown(request, taken, hints)
            return await handler(request)

        return checked


def query_names(route: APIRoute) -> frozenset[str]:
    """The query parameters ``route`` takes: declared (by it or its dependencies) or listed in
    its OpenAPI entry (``openapi_extra``)."""
    listed = (route.openapi_extra or {}).get("parameters", [])
    extra = {p["name"] for p in listed if p.get("in") == "query"}
    return frozenset({p.alias for d in _walk(route.dependant) for p in d.query_params} | extra)


def _walk(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _walk(sub)


def refuse_unknown(request: Request, taken: frozenset[str], hints: dict[str, str]) -> None:
    """A 422 (as FastAPI writes one) for each query parameter not in ``taken``."""
    params = request.query_params
    unknown = [name for name in params if name not in taken]
    if not unknown:
        return
    errors = []
    for name in unknown:
        errors.append(
            {
                "loc": ("query", name),
                "msg": hints.get(name) or _unknown(name, taken),
                "type": "unknown_parameter",
                "input": params[name],
            }
        )
    raise RequestValidationError(errors)


def _unknown(name: str, taken: frozenset[str]) -> str:
    if not taken:
        return f"unknown query parameter '{name}': this route takes none"
    close = difflib.get_close_matches(name.lower(), taken, n=1, cutoff=0.6)
    guess = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown query parameter '{name}'{guess}: this route takes {', '.join(sorted(taken))}"
