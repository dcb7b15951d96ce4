"""HEAD over real uvicorn (``serving.head``): each GET route answers it as its GET, without
the body. It was a 405 ``Allow: GET`` everywhere — an uptime checker probing ``HEAD /healthz``
saw the router down, ``curl -I`` of the dashboard failed."""

from __future__ import annotations

import httpx
from routerkit import KEY

from serving.local import running_server
from serving.settings import Settings


def test_every_get_route_answers_head_without_its_body(settings: Settings) -> None:
    with running_server(settings) as base:
        for path in ("/healthz", "/readyz", "/ui", "/ui/app.js", "/v1/partitions?limit=3",
                     f"/v1/partitions/{KEY}", "/v2/health/live", "/metrics"):  # fmt: skip
            got = httpx.get(f"{base}{path}")
            head = httpx.head(f"{base}{path}")
            assert head.status_code == got.status_code == 200, path
            assert head.content == b"", path
            assert head.headers["content-type"] == got.headers["content-type"], path
            if path != "/metrics":  # its counters moved with the GET just made
                assert head.headers["content-length"] == str(len(got.content)), path
        assert httpx.head(f"{base}/ui").headers["content-security-policy"]
        assert httpx.head(f"{base}/v1/partitions/{KEY}/nothing").status_code == 404
        post_only = httpx.head(f"{base}/v1/predict")
        assert post_only.status_code == 405 and post_only.headers["allow"] == "POST"
        metrics = httpx.get(f"{base}/metrics").text  # counted by route, as any request
        assert 'method="HEAD",route="/healthz",status="200"' in metrics
