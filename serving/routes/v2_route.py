"""How a V2 request is read and how its errors are answered, for every route of
``serving.routes.v2``: the body FastAPI sees is only its JSON part (Triton's binary tensors set
aside, a compressed body inflated), and every error — FastAPI's validation, ours, a bug — is
the protocol's ``{"error": "..."}`` with ``/v1``'s statuses, a 422 answered as 400. Kept apart
from the routes themselves, which only say what each answers."""

import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from manymodels.exceptions import InvalidRows, ManyModelsError
from serving.auth import carries_admin_token
from serving.body_errors import unreadable_body, unusable_body
from serving.errors import detail_for, retry_after, status_for
from serving.jsonbody import FastJSONRequest
from serving.jsonhead import Head, buried
from serving.query import QueryCheckedRoute
from serving.redact import local_roots, redact_text
from serving.v2_schemas import WANTED, TensorError, invalid_request, row_problem
from serving.v2_tensors import refuse_tall_inputs, split_binary

logger = logging.getLogger("manymodels.serving")

BINARY_SCOPE = "manymodels.v2.binary"  # where a request's binary tensor data waits for the route


class V2Request(FastJSONRequest):
    """A request whose body, for FastAPI, is only its JSON part: with Triton's binary tensor
    extension (``Inference-Header-Content-Length``) the raw tensors after it are set aside in
    the scope for ``to_rows``; a gzip or deflate body is inflated first (``v2_compression``).
    Read by ``jsonbody.parse``, as ``/v1``'s bodies are."""

    def refuse_from_head(self, head: Head, limit: int) -> None:
        """As ``/v1``'s, and inputs taller than ``max_batch_rows`` first
        (``v2_tensors.refuse_tall_inputs``), from the one partial read of a big body's head:
        it was read twice, once here and once for ``/v1``'s caps (~10-40 ms a MiB, on the
        event loop)."""
        if head.buried is not None:
            raise TensorError(buried(head.buried))
        refuse_tall_inputs(head, limit)
        super().refuse_from_head(head, limit)

    async def body(self) -> bytes:
        if not hasattr(self, "_json_part"):
            raw = await super().body()  # inflated (``FastJSONRequest.body``)
            length = self.headers.get("inference-header-content-length")
            self._json_part, self.scope[BINARY_SCOPE] = split_binary(raw, length)
        return self._json_part


class V2Route(QueryCheckedRoute):
    """A route whose every error is the protocol's ``{"error": "..."}`` (FastAPI's own
    validation errors and ours alike); statuses as ``/v1``'s, but a 422 is the protocol's
    400, and a 5xx never shows more than a line."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                return await handler(V2Request(_as_json(request.scope), request.receive))
            except RequestValidationError as e:
                return error(400, _invalid(e.errors(), e.body))
            except (TensorError, ValidationError) as e:
                text = _invalid(e.errors(), None) if isinstance(e, ValidationError) else str(e)
                return error(400, text)
            except StarletteHTTPException as e:
                if isinstance(e.__cause__, TensorError):  # from V2Request.json, wrapped
                    return error(400, str(e.__cause__))
                if e.status_code == 400:  # FastAPI's for a body it cannot read (not UTF-8 …)
                    return error(400, unreadable_body(request, e)["msg"])
                return error(e.status_code, str(e.detail), e.headers)
            except ManyModelsError as e:
                status, message = _ours(request, e)
                return error(status, message, retry_after(status))
            except Exception:
                logger.exception("%s %s failed", request.method, request.url.path)
                return error(500, "internal server error (see the server log)")

        return run


def _as_json(scope: Scope) -> Scope:
    """``scope`` with a JSON content type: a V2 body is a JSON object whatever its
    ``Content-Type`` says (tritonclient sends none that FastAPI reads as JSON)."""
    headers = scope.get("headers", [])
    if scope.get("method") != "POST" or (b"content-type", b"application/json") in headers:
        return scope
    kept = [(k, v) for k, v in headers if k.lower() != b"content-type"]
    return {**scope, "headers": [*kept, (b"content-type", b"application/json")]}


def _invalid(errors: Sequence[Any], body: Any) -> str:
    """``invalid_request``'s line, but for a body of whitespace, ``null`` or ``[]``: what it is
    and what body is wanted, as for no body (``body_errors.unusable_body``)."""
    what = next((w for err in errors[:1] if (w := unusable_body(err, body))), None)
    return f"the request body {what}: {WANTED}" if what else invalid_request(errors)


def error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _ours(request: Request, e: ManyModelsError) -> tuple[int, str]:
    status = status_for(e)
    if status >= 500:
        logger.error("%s %s: %s: %s", request.method, request.url.path, type(e).__name__, e)
    if isinstance(e, InvalidRows):
        message = "; ".join(row_problem(err) for err in e.detail()[:5])
    else:
        message = str(detail_for(e))
    if not carries_admin_token(request):
        service = getattr(request.app.state, "service", None)
        message = redact_text(message, local_roots(service.registry if service else None))
    return (400 if status == 422 else status), message
