"""The forecast route's ``last_time`` (``serving.routes.forecast``): a partition whose series
stopped (a delisted item) is forecast from its own last day, and the answer now says which
day that is, as ``manymodels forecast`` notes such partitions (``forecast_ends``)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from test_forecast_ends import SPEC, panel

import manymodels as mm
from serving.local import running_server
from serving.settings import Settings


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Daily sales of items a and c (60 days, to 2025-03-01) and b (stopped after 40 days,
    on 2025-02-09): test_forecast_ends' panel, served by uvicorn."""
    root = tmp_path_factory.mktemp("ends") / "registry"
    mm.train(SPEC, panel({"b": 40}), registry=root, backend="local")
    with running_server(Settings(registry=root)) as url:
        yield url


def test_a_stopped_series_answers_the_last_time_its_steps_continue(server: str) -> None:
    """The answer of item=b had steps from 2025-02-10 beside item=a's from 2025-03-02 and
    nothing to say that b's data ended three weeks earlier; ``last_time`` says it, written as
    the steps are (dates alone), read from the version's schema the router loaded."""
    answers = {}
    for item in ("a", "b"):
        r = httpx.post(f"{server}/v1/partitions/item={item}/forecast", json={"horizon": 2})
        assert r.status_code == 200, r.text
        answers[item] = r.json()
    assert answers["a"]["last_time"] == "2025-03-01"
    assert [p["time"] for p in answers["a"]["forecast"]] == ["2025-03-02", "2025-03-03"]
    assert answers["b"]["last_time"] == "2025-02-09"
    assert [p["time"] for p in answers["b"]["forecast"]] == ["2025-02-10", "2025-02-11"]


def test_the_schema_documents_last_time(server: str) -> None:
    """Where the route is documented (its OpenAPI schema, which ``/docs`` shows)."""
    doc = httpx.get(f"{server}/openapi.json").json()
    field = doc["components"]["schemas"]["PartitionForecast"]["properties"]["last_time"]
    assert "delisted" in field["description"]
