"""The dashboard's Health view says when sampled requests carry text values a partition's
model never saw at training (``monitoring.unseen``), in a real Chromium on a real router."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from browserkit import browse, view
from test_monitor_unseen import SPEC, frame, served

from manymodels.pipeline import train
from serving.local import running_server
from serving.settings import Settings


@pytest.mark.slow  # training, two routers and a real Chromium (10–30 s)
def test_the_health_view_shows_the_unseen_reason_under_the_flag(
    chromium: str, tmp_path: Path
) -> None:
    """pid=1's requests carry 8 new promo codes in 64 sampled rows: its flags cell holds the
    ``unseen`` badge, the reason as its title and under it, as ``manymodels monitor`` words
    it; pid=2's capped list and pid=3's known values say nothing of it."""
    root = tmp_path / "registry"
    train(SPEC, frame(), root, backend="local")
    rows = served(root)  # the requests through the router, flushed
    reason = "unseen values in 'promo': 12 % of 64 sampled rows"
    assert rows["pid=1"]["unseen_reason"] == reason
    with running_server(Settings(registry=root, monitor=False)) as url:
        dom = browse(chromium, view(url, health="key"), tmp_path)
    cells = {
        html.unescape(key): html.unescape(flags)
        for key, flags in re.findall(
            r'<tr data-key="([^"]*)">.*?<td class="flags"[^>]*>(.*?)</td>', dom, re.S
        )
    }
    assert set(cells) == {f"pid={p}" for p in range(4)}, dom[-3000:]
    assert f'title="{reason}">unseen</span>' in cells["pid=1"], cells["pid=1"]
    assert f'<span class="unseen">{reason}</span>' in cells["pid=1"], cells["pid=1"]
    assert "unseen" not in cells["pid=2"] and "unseen" not in cells["pid=3"], cells
