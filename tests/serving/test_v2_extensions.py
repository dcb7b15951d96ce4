"""Triton's extensions that the router does not have (``serving.v2_extensions``), called as a
Triton user calls them, with tritonclient's HTTP client against the router under uvicorn: each
is refused with the protocol's ``{"error"}`` saying which extension it is, where each was
answered quietly in another form (a 200 whose outputs were not where the client looked, or a
400 telling it to percent-encode a '/' in its key)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from routerkit import FEATURES, KEY, feature_rows


@pytest.fixture(scope="module")
def triton(reading_server: str) -> Iterator[Any]:
    import tritonclient.http as triton

    client = triton.InferenceServerClient(reading_server.removeprefix("http://"))
    yield client
    client.close()


def test_tritons_model_endpoints_are_404s_saying_which_extension(
    reading_server: str, triton: Any
) -> None:
    """``get_model_config``, ``get_inference_statistics`` and ``get_trace_settings`` were a 400
    "'…/config' is not a model name: percent-encode a '/'", and the statistics of every
    model (``GET /v2/models/stats``) a 200 with the fallback's metadata as a model "stats"."""
    from tritonclient.utils import InferenceServerException

    calls = [
        (lambda: triton.get_model_config(KEY), "model configuration extension"),
        (lambda: triton.get_model_config(KEY, model_version="1"), "model configuration"),
        (lambda: triton.get_inference_statistics(KEY), "statistics extension"),
        (lambda: triton.get_inference_statistics(KEY, "1"), "statistics extension"),
        (lambda: triton.get_inference_statistics(), "statistics extension"),
        (lambda: triton.get_trace_settings(KEY), "trace extension"),
        (lambda: triton.update_trace_settings(KEY, {"trace_rate": "1"}), "trace extension"),
    ]
    for call, said in calls:
        with pytest.raises(InferenceServerException, match=said) as raised:
            call()
        assert raised.value.status() == "404", raised.value
    for path in (f"/v2/models/{KEY}/versions/1/config", "/v2/models/stats"):
        r = httpx.get(reading_server + path)
        assert r.status_code == 404 and set(r.json()) == {"error"}, r.text
    assert httpx.get(f"{reading_server}/v2/models/{KEY}").status_code == 200  # as before


def test_tritons_server_endpoints_say_which_extension_they_are(triton: Any) -> None:
    """Under /v2, a path no route has was a 404 "Not Found": for Triton's server-wide
    extensions (tritonclient's ``load_model``, ``register_system_shared_memory``,
    ``update_log_settings`` …) the client learnt nothing of why."""
    from tritonclient.utils import InferenceServerException

    calls = [
        (lambda: triton.get_model_repository_index(), "model repository extension"),
        (lambda: triton.load_model(KEY), "model repository extension"),
        (lambda: triton.register_system_shared_memory("r", "/r", 8), "system shared memory"),
        (lambda: triton.get_cuda_shared_memory_status(), "CUDA shared memory"),
        (lambda: triton.get_trace_settings(), "trace extension"),
        (lambda: triton.get_log_settings(), "logging extension"),
    ]
    for call, said in calls:
        with pytest.raises(InferenceServerException, match=said) as raised:
            call()
        assert raised.value.status() == "404", raised.value


def test_a_server_endpoints_404_names_its_path_on_one_line(reading_server: str) -> None:
    """The 404 named the path decoded: a '%0B' or '%E2%80%A8' in it broke the message's line."""
    sent = "/v2/repository/models/a%0Bb%E2%80%A8c/load"
    r = httpx.post(reading_server + sent)
    assert r.status_code == 404 and set(r.json()) == {"error"}, r.text
    said = r.json()["error"]
    assert said.splitlines() == [said] and sent in said, said


def _columns(triton_http: Any, rows: list[dict[str, Any]]) -> list[Any]:
    columns = []
    for f in FEATURES:
        column = triton_http.InferInput(f, [len(rows)], "FP64")
        column.set_data_from_numpy(np.array([r[f] for r in rows], dtype=np.float64))
        columns.append(column)
    return columns


def test_shared_memory_and_classification_are_refused_not_answered_otherwise(
    triton: Any,
) -> None:
    """An output asked into a shared memory region came back in the body (200), so a client
    reading its region read what was there before; one asked as ``classification`` (top-k
    "score:index:label" text) came back as the raw predictions under the same name (200);
    an input in shared memory was "input 'price' has no data"."""
    import tritonclient.http as triton_http
    from tritonclient.utils import InferenceServerException

    rows = feature_rows(2)
    assert triton.infer(KEY, _columns(triton_http, rows)).as_numpy("predict").shape == (2,)
    in_shm = triton_http.InferRequestedOutput("predict")
    in_shm.set_shared_memory("region", 16)
    classified = triton_http.InferRequestedOutput("predict", class_count=1)
    for output, said in [(in_shm, "shared memory"), (classified, "classification")]:
        with pytest.raises(InferenceServerException, match=said) as raised:
            triton.infer(KEY, _columns(triton_http, rows), outputs=[output])
        assert raised.value.status() == "400", raised.value
    # KEY's model is a regressor: its predictions are no labels, and it has no probabilities
    assert "(the labels)" not in str(raised.value), raised.value
    columns = _columns(triton_http, rows)
    columns[0].set_shared_memory("region", 16)
    with pytest.raises(InferenceServerException, match="input 'price' is in a shared memory"):
        triton.infer(KEY, columns)
