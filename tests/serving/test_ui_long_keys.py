"""The dashboard's tables with a partition key far wider than the window (a 300-character
value without a space, as an id or a hash can be), in a real headless Chromium: the key wraps
in its cell, and every column stays on screen; and the Health view by key, which is no
ranking, says so."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from browserkit import Driven, browse, page_state, text_of, view
from factories import spec_dict

from manymodels.pipeline import train
from manymodels.registry import Registry
from serving.local import running_server
from serving.settings import Settings

LONG = "x" * 300

# how far the page reaches past the window's right edge (0 when everything fits)
OVERFLOW = "document.documentElement.scrollWidth - window.innerWidth"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        [
            {"pid": pid, "t": t, "x0": rng.normal(), "y": rng.normal()}
            for pid in (LONG, "short")
            for t in range(30)
        ]
    )
    spec = {**spec_dict(features=["x0"], fallback={"enabled": True}), "partition_by": ["pid"]}
    root = tmp_path_factory.mktemp("long") / "r"
    with Registry(root) as reg:
        assert train(spec, frame, reg, backend="local").run.n_failed == 0
    return root


@pytest.mark.slow  # training, a real router and a real Chromium (~10 s)
def test_a_key_wider_than_the_window_wraps_and_keeps_the_other_columns_in_view(
    chromium: str, root: Path, tmp_path: Path
) -> None:
    """Before: the list and the Health view laid the key out on one line, 2,000 px wide, and
    pushed every other column (version, skill, drift, flags…) off the right of the window;
    the partition's page ran its heading past it."""
    with running_server(Settings(registry=root)) as url:
        for table, params in (
            ("partitions", {}),
            ("health", {"health": "drift"}),
            ("partition-view", {"p": f"pid={LONG}"}),
        ):
            with Driven(chromium, view(url, **params), tmp_path) as page:
                page.wait_for("document.body?.dataset.state === 'ready'")
                if table == "partition-view":  # its heading is the key: wrapped in the window
                    heading = "document.querySelector('#partition-view h2[title]')"
                    assert page.evaluate(f"{heading}.title") == f"pid={LONG}"
                    assert page.evaluate(f"{heading}.scrollWidth <= {heading}.clientWidth")
                    assert page.evaluate(f"{heading}.getBoundingClientRect().right") <= (
                        page.evaluate("window.innerWidth")
                    )
                    continue
                assert page.evaluate(OVERFLOW) <= 0, (table, page.evaluate(OVERFLOW))
                keys = page.evaluate(
                    f"[...document.querySelectorAll('#{table} tbody tr')].map((r) => r.dataset.key)"
                )
                assert f"pid={LONG}" in keys, keys  # type: ignore[operator]
                last = page.evaluate(
                    f"document.querySelector('#{table} thead th:last-child')"
                    ".getBoundingClientRect().right <= window.innerWidth"
                )
                assert last is True, table


@pytest.mark.slow  # a real router and a real Chromium (~5 s)
def test_the_health_view_by_key_says_by_key_not_worst_first(
    chromium: str, root: Path, tmp_path: Path
) -> None:
    """Before: "Partition health, worst first by key." and "… in production, worst first":
    an order of keys ranks nothing (the CLI's title said "worst key first" likewise)."""
    with running_server(Settings(registry=root)) as url:
        dom = browse(chromium, view(url, health="key"), tmp_path)
        drift = browse(chromium, view(url, health="drift"), tmp_path)
    assert page_state(dom) == "ready", text_of(dom, "status")
    assert text_of(dom, "status") == "Partition health, by key."
    assert "by key (the router's order)" in text_of(dom, "health-note")
    assert "worst" not in text_of(dom, "health-note")
    assert text_of(drift, "status") == "Partition health, worst first by drift (PSI)."
    # the sort's own label too (it read "Worst first by [key]")
    assert text_of(dom, "health-sort-label") == "Ordered by"
    assert text_of(drift, "health-sort-label") == "Worst first by"
