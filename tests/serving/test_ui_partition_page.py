"""The partition page (``serving/ui/partition.js``) in a real headless Chromium at a narrow
window: nothing reaches past the window's right edge."""

from __future__ import annotations

from pathlib import Path

from browserkit import Driven, view
from routerkit import KEY

# how far the page reaches past the window's right edge (0 when everything fits)
OVERFLOW = "document.documentElement.scrollWidth - document.documentElement.clientWidth"


def test_the_partition_page_fits_a_780_px_window(
    chromium: str, server: str, tmp_path: Path, shots: Path
) -> None:
    """At 780 px the Health table (ten columns of headers that do not break: "live /
    validation", "model age"…) was ~100 px wider than its box, and the whole page scrolled
    sideways. Now it scrolls inside its own box; the page is as wide as the window."""
    with Driven(chromium, view(server, p=KEY), tmp_path, flags=("--window-size=780,900",)) as page:
        page.wait_for("document.body?.dataset.state === 'ready'")
        assert page.evaluate("document.documentElement.clientWidth") <= 780
        assert page.evaluate("document.querySelector('#health-row table') !== null")
        over = page.evaluate(OVERFLOW)
        box = page.evaluate(
            "(() => { const b = document.querySelector('#health-row');"
            " const t = b.querySelector('table');"
            " return { right: b.getBoundingClientRect().right, scroll: b.scrollWidth,"
            " table: t.getBoundingClientRect().width,"
            " window: document.documentElement.clientWidth }; })()"
        )
    assert over == 0, f"the page reaches {over} px past a 780 px window"
    assert isinstance(box, dict)
    assert box["right"] <= box["window"], box  # the table's box stays in the window
    assert box["scroll"] >= int(box["table"]), box  # every column reachable inside it
