"""schemathesis over the router's own OpenAPI document: generated requests, valid and invalid,
against a real uvicorn router on a small registry, with the admin token and without one.

Every answer must be a non-5xx whose status, content type and body the document declares for
the operation: the document is the contract a client is generated from, so an undeclared status
(a 400 for an unreadable body, say) is as much a failure as a 500. Examples per operation are
bounded (``MAX_EXAMPLES``) so the whole run stays within about a minute on 2 cores; an attack
without the bound sent ~46,000 cases with 0 5xx (RELIABILITY.md).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from factories import linear_frame, spec_dict
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from manymodels.pipeline import train
from manymodels.registry import Registry
from serving.local import running_server
from serving.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

TOKEN = "schemathesis-admin-token"
MAX_EXAMPLES = 10
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three partitions and the fallback: enough for every route to have something to find."""
    root = tmp_path_factory.mktemp("schemathesis") / "registry"
    with Registry(root) as reg:
        assert train(spec_dict(), linear_frame(3, 40), reg, backend="local").run.n_failed == 0
    return root


@pytest.fixture(scope="module", params=["admin", "anonymous"])
def router(request: pytest.FixtureRequest, registry: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A router with an admin token (requests carry it) or without one (admin routes are
    disabled: 403)."""
    admin = request.param == "admin"
    settings = Settings(
        registry=registry, admin_token=TOKEN if admin else None, retrain_backend="local"
    )
    headers = {"Authorization": f"Bearer {TOKEN}"} if admin else {}
    with running_server(settings) as url:
        yield url, headers


def _document() -> dict[str, Any]:
    """The OpenAPI document, from the app itself: the test cases must exist when pytest
    collects them, before any router runs (``test_the_router_serves_this_document`` checks a
    running router publishes the same one). schemathesis's loader from a fixture
    (``schemathesis.pytest.from_fixture``) would fetch it from the router, but fails under
    pytest 9 (it sets ``node._nodeid``, gone from pytest's ``Function``)."""
    from serving.app import create_app

    return create_app(Settings(registry=Path("unused"))).openapi()


DOCUMENT = _document()
SENT: Counter[str] = Counter()  # requests by "METHOD /path", across both routers
_OPERATIONS = {
    (path, method) for path, operations in DOCUMENT["paths"].items() for method in operations
}


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    yield
    documented = sum(
        n for op, n in SENT.items() if (op.split()[1], op.split()[0].lower()) in _OPERATIONS
    )
    print(
        f"\nschemathesis: {sum(SENT.values())} requests ({documented} to documented operations, "
        f"the rest probing undocumented methods) over {len(DOCUMENT['paths'])} paths"
    )


schema = schemathesis.openapi.from_dict(DOCUMENT)


def test_the_router_serves_this_document(router: tuple[str, dict[str, str]]) -> None:
    url, _ = router
    assert httpx.get(f"{url}/openapi.json").json() == DOCUMENT


@schema.parametrize()
@hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_the_router_answers_as_its_openapi_document_says(
    case: schemathesis.Case, router: tuple[str, dict[str, str]]
) -> None:
    url, headers = router
    SENT[f"{case.method} {case.path}"] += 1
    case.call_and_validate(base_url=url, headers=headers, checks=CHECKS)
