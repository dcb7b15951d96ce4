"""What a V2 client may ask of Triton's extensions that this server does not have, refused with
the protocol's error instead of answered in another form.

The server metadata lists ``binary_tensor_data`` alone, but ``tritonclient`` calls the others
without reading that list, and each went wrong quietly: an output asked into a shared memory
region (``shared_memory_region``) came back in the JSON body, so a client reading its region
read whatever was there before; an output asked as ``classification`` (top-k labels as
``"score:index:label"`` text) came back as the raw predictions under the same name; and the
per-model endpoints (``…/config``, ``…/stats``, ``…/trace/setting``) matched the metadata
route's ``{key:path}``, whose 400 told the client to percent-encode a ``/`` in its key, and
the server-wide ones (``/v2/repository/…``, shared memory, trace, logging) said "Not Found".
"""

from __future__ import annotations

from urllib.parse import quote

from serving.v2_schemas import InferenceRequest, TensorError

# Triton's per-model endpoints (as tritonclient's HTTP client calls them) and what they are
_ENDPOINTS = {
    "config": "model configuration extension; a model's inputs and outputs are its "
    "metadata, GET /v2/models/{name}",
    "stats": "statistics extension; the router's counts are at GET /metrics",
    "trace/setting": "trace extension",
}
_SHARED_MEMORY = ("shared_memory_region", "shared_memory_byte_size", "shared_memory_offset")
_PATH_CHARACTERS = "/:@!$&'()*+,;=-._~"  # left as they are in a path (RFC 3986's pchar)


def missing_endpoint(text: str) -> str | None:
    """The 404's message for a model path ending in one of Triton's per-model endpoints
    (``store=2,brand=x/config``, ``…/versions/1/stats``), else ``None``."""
    for suffix, what in _ENDPOINTS.items():
        if text.endswith("/" + suffix):
            return (
                f"no endpoint '{suffix}' for a model: it is Triton's {what} (a '/' of a key "
                "value's own is sent as %2F)"
            )
    return None


# Triton's server-wide endpoints under /v2 (tritonclient's load_model, register_system_shared_
# memory, update_log_settings …): their 404 said only "Not Found"
_SERVER_ENDPOINTS = {
    "/v2/repository/": "model repository extension; partitions' models are trained and "
    "promoted with manymodels, and each is served as soon as it is in production",
    "/v2/systemsharedmemory": "system shared memory extension",
    "/v2/cudasharedmemory": "CUDA shared memory extension",
    "/v2/trace/setting": "trace extension",
    "/v2/logging": "logging extension",
}


def missing_server_endpoint(path: str, status: int) -> str | None:
    """The 404's message for a path under ``/v2`` (decoded) that no route answered with
    ``status`` and is one of Triton's extension endpoints, else ``None``: a server-wide one
    (a 404), or a per-model one by another method than GET (a 405: ``update_trace_settings``
    of a model POSTs ``…/trace/setting``, which matched the metadata route). The path is
    named percent-encoded: a decoded ``%0B`` or ``%E2%80%A8`` broke the message's line."""
    if status == 405:  # the model's path after /v2/models/: that path alone is a model name
        models = "/v2/models/"
        return missing_endpoint(path.removeprefix(models)) if path.startswith(models) else None
    for prefix, what in _SERVER_ENDPOINTS.items():
        if path.startswith(prefix):
            return f"no endpoint {quote(path, safe=_PATH_CHARACTERS)}: it is Triton's {what}"
    return None


def all_models_stats(text: str) -> str | None:
    """The 404's message for ``GET /v2/models/stats`` (tritonclient's statistics of every
    model), which was answered as the metadata of a model named ``stats``: the fallback's."""
    return f"no endpoint 'stats': it is Triton's {_ENDPOINTS['stats']}" if text == "stats" else None


def refuse_unsupported(request: InferenceRequest) -> None:
    """``TensorError`` for an input or output the request puts in shared memory, or an
    output asked for as ``classification``; neither extension is served here."""
    for t in request.inputs:
        if any(p in (t.parameters or {}) for p in _SHARED_MEMORY):
            raise TensorError(
                f"input '{t.name}' is in a shared memory region: this server has no shared "
                "memory extension; send its values as 'data' or as binary data"
            )
    for o in request.outputs or ():
        params = o.parameters or {}
        if any(p in params for p in _SHARED_MEMORY):
            raise TensorError(
                f"output '{o.name}' is asked into a shared memory region: this server has no "
                "shared memory extension; it answers in the body (JSON, or binary_data)"
            )
        if "classification" in params:
            raise TensorError(
                f"output '{o.name}' is asked as classification: this server has no "
                "classification extension; ask for the outputs GET /v2/models/{name} lists (a "
                "classifier's 'predict_proba' names its columns in its 'classes' parameter)"
            )
