"""The retrain route's OpenAPI names every error status it answers, with its JSON body: a
client generated from /openapi.json knows a 500 (rows the store could not write) and a 507
(full storage) come back as ``{"detail": ...}``, as the 409 and 503 do."""

from __future__ import annotations

from pathlib import Path

from routerkit import TOKEN, open_client

from serving.settings import Settings

RETRAIN = "/v1/partitions/{key}/retrain"


def test_the_retrain_route_documents_its_500_and_507_with_their_json_body(
    tmp_path: Path,
) -> None:
    # the real app's own route, over real HTTP-in-ASGI; no lifespan: the schema is the
    # routes', built by create_app, and the start-up (registry, cache) would cost seconds
    client = open_client(Settings(registry=tmp_path / "registry", admin_token=TOKEN))
    got = client.get("/openapi.json")
    assert got.status_code == 200
    schema = got.json()
    responses = schema["paths"][RETRAIN]["post"]["responses"]
    error_body = responses["409"]["content"]["application/json"]["schema"]  # as 409 declares
    assert error_body == {"$ref": "#/components/schemas/ErrorOut"}
    assert "detail" in schema["components"]["schemas"]["ErrorOut"]["properties"]
    for status, words in (("500", "uploaded rows could not be stored"), ("507", "full")):
        assert status in responses, sorted(responses)
        declared = responses[status]
        assert words in declared["description"], declared
        assert declared["content"]["application/json"]["schema"] == error_body
    assert "uploaded rows" in responses["507"]["description"]  # not only the registry's disk
