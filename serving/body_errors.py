"""The 422 of a request body FastAPI could not validate or read: what it echoes of the bad
input, what it says of a body that is no JSON object, and a JSON answer that survives what a
client sent (``EscapedJSONResponse``). ``serving.errors`` installs them among every error's
answers; these are the ones about a body.

A body that cannot be read at all is a 422 like any other invalid body, located at ``["body"]``:
FastAPI already answers JSON with a syntax error so (``json_invalid``), but answers a 400 —
which no route's OpenAPI entry declares — when the JSON is not UTF-8 or is nested too deeply,
and Starlette does for a malformed multipart upload. Nothing here chose a 400; one status for
"this body is unusable", the one the OpenAPI document lists, is what a client can rely on.
"""

from __future__ import annotations

import difflib
import json
import math
import typing
from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel

from manymodels.exceptions import MAX_REPORTED, first_line
from serving.query import ELSEWHERE, query_names


async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422, whose errors echo the bad input, with a non-finite number echoed as the
    text JSON does not have for it (``NaN``, ``Infinity``): FastAPI's own handler failed to
    encode ``{"horizon": NaN}``'s answer and the client got a 500. A body that is not JSON
    (a ``text/plain`` or form post, a file sent to a JSON route) comes back as its raw bytes,
    which are not echoed: they may be megabytes, and encoding them as UTF-8 failed (a 500)
    when they were not, as the retrain route's errors leave them out (``_located``)."""
    assert isinstance(exc, RequestValidationError)
    every = exc.errors()
    errors = [
        {k: _echoed(v) if k == "input" else v for k, v in e.items()} for e in every[:MAX_REPORTED]
    ]
    errors = [{k: v for k, v in e.items() if v is not _UNSAID} for e in errors]
    for raw, error in zip(every[:MAX_REPORTED], errors, strict=True):
        if isinstance(raw.get("input"), bytes | bytearray):  # FastAPI read no JSON: say why
            error["msg"] = _not_json(request.headers.get("content-type"))
        elif raw.get("type") == "missing" and tuple(raw.get("loc", ())) == ("body",):
            error["msg"] = _no_body(request)
        elif what := unusable_body(raw, exc.body):  # whitespace, ``null``, ``[]``: no object
            error.update(loc=["body"], msg=_no_body(request, f"body {what}"))
            error.pop("input", None)
            error.pop("ctx", None)
        elif raw.get("type") == "extra_forbidden" and len(raw.get("loc", ())) == 2:
            name = cut_text(str(raw["loc"][1]))  # the client's text: a 3 MB name was 6 MB back
            error.update(loc=["body", name], msg=unknown_member(request, name))
        elif raw.get("type") == "json_invalid":  # a syntax error: as an unreadable body
            error.clear()
            error.update(type="json_invalid", loc=["body"], msg=_syntax(raw, exc.body))
    if len(every) > MAX_REPORTED:  # one per bad row: 20,000 rows of ``5`` answered 2 MB
        errors.append(
            {
                "loc": list(every[MAX_REPORTED]["loc"][:1]),
                "msg": f"{len(every) - MAX_REPORTED} more problem(s) not listed",
                "type": "too_many_errors",
            }
        )  # as a request's cell errors are counted past the first ``MAX_REPORTED``
    return EscapedJSONResponse({"detail": _finite(jsonable_encoder(errors))}, status_code=422)


def _syntax(error: Mapping[str, Any], doc: Any) -> str:
    """The message of a body that is no JSON (``{"rows": [``): FastAPI's bare "JSON decode
    error" at ``["body", 10]``, with an ``"input": {}`` it never read, where a body that is
    not UTF-8 or nested too deeply is told "the request body cannot be read: …" at
    ``["body"]``; now it is too, saying what the parser expected and where."""
    why = str((error.get("ctx") or {}).get("error", "")) or "it is not JSON"
    pos = error.get("loc", ())[-1]
    if isinstance(doc, str) and doc and isinstance(pos, int):  # ``parse``'s own: no position
        line, column = doc.count("\n", 0, pos) + 1, pos - doc.rfind("\n", 0, pos)
        why = f"it is not valid JSON: {why.lower()} at line {line}, column {column}"
    return f"the request body cannot be read: {why}"


_UNSAID = object()
ECHO_CHARS = 200  # of a string echoed in a 422
ECHO_ITEMS = 100  # values of a row or body echoed whole; more: left out (``loc`` says where)


def cut_text(text: str) -> str:
    """A client's string as a 422 repeats it: its first ``ECHO_CHARS`` characters."""
    return text if len(text) <= ECHO_CHARS else text[:ECHO_CHARS] + "…"


def _echoed(value: Any) -> Any:
    """What a 422 echoes of a bad input: a string cut to ``ECHO_CHARS``, a list or object of
    up to ``ECHO_ITEMS`` values (strings cut) whole, anything bigger not at all. A body of 5
    MB without its ``horizon`` was echoed whole (FastAPI's "missing" error's input is the
    object that lacks the field): 5 MB of answer, and a promote's 5 MB ``reason`` 10 MB."""
    if isinstance(value, bytes | bytearray):  # a body that is not JSON (see above)
        return _UNSAID
    budget = [ECHO_ITEMS]

    def cut(v: Any) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise OverflowError
        if isinstance(v, str):
            return cut_text(v)
        if isinstance(v, dict):
            return {cut(k): cut(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [cut(x) for x in v]
        return v

    try:
        return cut(value)
    except OverflowError:
        return _UNSAID


def _not_json(content_type: str | None) -> str:
    """``curl -d '{"rows": …}'`` sends a form's content type, and the JSON in it was read as
    bytes: "Input should be a valid dictionary" named neither the header nor the fix."""
    sent = f"as {content_type!r}" if content_type else "without a Content-Type"
    return (
        f"the body was sent {sent}, not as JSON: send a JSON object with the header "
        "Content-Type: application/json (curl: -H 'content-type: application/json')"
    )


def unknown_member(request: Request, name: str) -> str:
    """What a body's member the route does not take is told (pydantic's bare "Extra inputs
    are not permitted" named neither the members it takes nor the one meant), as an unknown
    query parameter is (``serving.query``); one of the route's query parameters sent in the
    body (``"fallback": false``) is told where it goes, and one the route sends elsewhere
    (``serving.query.elsewhere``: ``/v1/predict``'s ``"version"``) where to ask."""
    fields = getattr(request.state, "body_fields", None)  # a form's (retrain's upload)
    if fields is None:
        fields = list(getattr(_body_model(request), "model_fields", {}))
    route = request.scope.get("route")
    elsewhere: dict[str, str] = getattr(getattr(route, "endpoint", None), ELSEWHERE, {})
    if name in elsewhere:  # as its query parameter is told (``/v1/predict``'s "version")
        meant = f" ({elsewhere[name]})"
    elif isinstance(route, APIRoute) and name in query_names(route):
        meant = f" (a query parameter: send it as ?{name}=…)"
    else:
        close = difflib.get_close_matches(name, fields, n=1, cutoff=0.6)
        meant = f" (did you mean {close[0]!r}?)" if close else ""
    takes = ", ".join(repr(f) for f in fields) or "no member"
    return f"the body holds {name!r}, which this route does not take{meant}: it takes {takes}"


def _body_model(request: Request) -> Any:
    """The model of the JSON body the request's route reads: the one it names in
    ``request.state.body_model`` (a route that reads its body itself, as retrain does), or
    its body field's (an optional body's too: ``RollbackRequest | None``)."""
    named = getattr(request.state, "body_model", None)
    if named is not None:
        return named
    route = request.scope.get("route")
    field = getattr(route, "body_field", None)
    model = getattr(getattr(field, "field_info", None), "annotation", None)
    for arg in (model, *typing.get_args(model)):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _no_body(request: Request, why: str = "has no body") -> str:
    """A POST without a body (``curl -X POST …/promote``) was FastAPI's bare "Field
    required" at ``["body"]``, naming neither that a JSON object was expected nor its fields;
    a body of whitespace, ``null`` or ``[]`` (``unusable_body``) is told the same. The header
    is named only when it is missing or not JSON's."""
    fields = getattr(_body_model(request), "model_fields", {})
    required = [name for name, info in fields.items() if info.is_required()]
    wanted = f" holding {', '.join(repr(n) for n in required)}" if required else ""
    sent = request.headers.get("content-type", "")
    header = "" if _json_type(sent) else ", with the header Content-Type: application/json"
    return f"the request {why}: send a JSON object{wanted}{header} (its fields: /docs)"


def unusable_body(error: Mapping[str, Any], body: Any) -> str | None:
    """What a JSON body that holds no object is ("is null, not a JSON object"), from one of
    FastAPI's validation errors and the body it read (``RequestValidationError.body``), or
    ``None`` for any other error. A body of only whitespace was FastAPI's bare "JSON decode
    error" at ``["body", 3]``, and ``null`` or ``[]`` pydantic's "Input should be a valid
    dictionary or object to extract fields from": neither said a JSON object was wanted. A
    body of only a byte-order mark (an empty file saved as "UTF-8 with BOM") was "the request
    body cannot be read: Expecting value", saying neither what nor where."""
    if error.get("type") == "json_invalid":
        # ``jsonbody.parse``'s own refusals carry no body (``""``); an empty one is "missing"
        if body == "" and (error.get("ctx") or {}).get("error") == "Expecting value":
            return "is empty (only a byte-order mark)"  # read past its BOM, json.loads met none
        blank = isinstance(body, str | bytes | bytearray) and body and not body.strip()
        return "is empty (only whitespace)" if blank else None
    if tuple(error.get("loc", ())) != ("body",) or error.get("type") == "missing":
        return None
    value = error.get("input", {})
    if isinstance(value, dict | bytes | bytearray):  # an object, or no JSON at all
        return None
    if value is None or isinstance(value, bool):
        kind = json.dumps(value)
    else:
        kind = "a list" if isinstance(value, list) else ("a string" if isinstance(value, str)
                                                         else "a number")  # fmt: skip
    return f"is {kind}, not a JSON object"


def _json_type(content_type: str) -> bool:
    """Whether a ``Content-Type`` is JSON's (``application/json; charset=utf-8`` too): a
    request that sent it was told to send it all the same, as if the header were its fault."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class EscapedJSONResponse(JSONResponse):
    """An error's JSON, which echoes what the client sent: a string that is not text (a lone
    surrogate, which UTF-8 cannot encode) is written as JSON's ``\\ud800`` escape, the way
    it came, rather than failing the answer (a 500)."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            text = json.dumps(content, allow_nan=False, separators=(",", ":"))  # ASCII
            return text.encode("ascii")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def unreadable_body(request: Request, exc: BaseException) -> dict[str, Any]:
    """The validation error of a body that could not be parsed, shaped like FastAPI's own."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    cause = exc.__cause__  # FastAPI raises its 400 "from" what failed; Starlette does not
    if isinstance(cause, UnicodeDecodeError):
        why = "it is not UTF-8 text"
    elif isinstance(cause, RecursionError):
        why = "it is nested too deeply"
    elif cause is not None:
        why = first_line(cause)
    else:
        why = str(getattr(exc, "detail", exc))  # e.g. the multipart parser's "Missing boundary"
    return {
        "type": "multipart_invalid" if kind.startswith("multipart/") else "json_invalid",
        "loc": ["body"],
        "msg": f"the request body cannot be read: {why}",
    }
