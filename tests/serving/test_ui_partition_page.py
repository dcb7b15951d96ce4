"""The partition page (``serving/ui/partition.js``) in a real headless Chromium: nothing
reaches past a narrow window's right edge, its health row names its errors as they read, and
loading it asks the router for nothing it lacks."""

from __future__ import annotations

import html
import re
from pathlib import Path

import httpx
import pytest
from browserkit import Driven, browse, view
from routerkit import KEY, SALES_SPEC, admin, doubled_rows, sales

from manymodels.pipeline import train

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


def test_the_health_row_names_its_errors_as_they_read(
    chromium: str, server: str, tmp_path: Path
) -> None:
    """The errors of a neg_ scorer are positive losses: the row read
    "neg_mean_absolute_error 98.73" (a negative name for a positive number), and a classifier's
    error rate read "accuracy 0.000" for a model right every time. Now
    "mean_absolute_error 98.73"; the classifier's is "error rate" (test_dashboard)."""
    rows = doubled_rows(2, "tropicana", 20)
    posted = httpx.post(f"{server}/v1/partitions/{KEY}/actuals", json={"rows": rows})
    assert posted.status_code == 200, posted.text
    health = httpx.get(f"{server}/v1/monitor", params={"key": KEY}).json()["partitions"][0]
    assert health["live_metric"] == "neg_mean_absolute_error"
    dom = browse(chromium, view(server, p=KEY), tmp_path)
    row = html.unescape(dom.split(f'<tr data-health="{KEY}"')[1].split("</tr>")[0])
    shown = [float(v) for v in re.findall(r">mean_absolute_error ([0-9.]+)<", row)]
    wanted = [health["validation_error"], health["live_error"]]
    assert shown == pytest.approx(wanted, rel=1e-3), row
    assert "neg_" not in row, row


def test_loading_the_dashboard_asks_the_router_for_nothing_it_lacks(
    chromium: str, server: str, tmp_path: Path
) -> None:
    """The page named no icon, so every load made the browser ask for /favicon.ico: a 404 a
    view, counted as `route="unmatched",status="404"` in /metrics (and a line of
    --access-log), where an alert on a router's 4xx rate read a dashboard open as clients'
    mistakes. The page names an inline icon now: loading it is 2xx only."""
    dom = browse(chromium, view(server, p=KEY), tmp_path)
    assert 'data-state="ready"' in dom
    metrics = httpx.get(f"{server}/metrics").text
    misses = [
        line
        for line in metrics.splitlines()
        if line.startswith("manymodels_http_requests_total{") and 'status="404"' in line
    ]
    assert misses == [], misses


def test_the_alias_history_says_a_retirement_is_one(
    chromium: str, server: str, tmp_path: Path
) -> None:
    """A retirement (``POST …/retire``, ``manymodels retire``) read "v1 → –" in the alias
    history, the action the history records left out: a version gone, or production taken
    away? Each move now names its action."""
    reason = "store closed"
    retired = httpx.post(
        f"{server}/v1/partitions/{KEY}/retire", json={"reason": reason}, headers=admin()
    )
    assert retired.status_code == 200, retired.text
    dom = html.unescape(browse(chromium, view(server, p=KEY), tmp_path))
    assert 'data-state="ready"' in dom
    moves = re.findall(r'<tr class="move" data-action="(\w+)">(.*?)</tr>', dom)
    assert moves, "no row of the alias history names its action"
    cells = [(action, re.findall(r"<td[^>]*>(.*?)</td>", row)) for action, row in moves]
    newest, first = cells[0], cells[-1]  # newest first
    assert newest[0] == "retire" and newest[1][1:5] == ["production", "retire", "v1 → –", reason]
    assert first[0] == "first" and first[1][2:5] == ["first", "– → v1", "first version"], cells


@pytest.mark.slow  # three page loads and a training run of one partition: ~8 s
def test_scores_read_as_models_list_prints_them(
    chromium: str, server: str, registry_path: Path, tmp_path: Path
) -> None:
    """A neg_ scorer's score is stored higher-is-better: `manymodels models list` printed a
    classifier's "log_loss 0.4937" while the page showed "-0.494" under "score". Now the
    versions table and the list show the metric's natural sign under its plain name.

    Versions scored on different metrics (here a v2 after the spec's metric changed to RMSE;
    a constant below min_rows on log_loss beside a classifier's is another) sat under the
    first version's metric alone ("root_mean_squared_error" over v1's MAE); each names its
    own in a "metric" column now, as `manymodels models show` prints them."""
    detail = httpx.get(f"{server}/v1/partitions/{KEY}").json()
    v = detail["versions"][0]
    assert v["metric"] == "neg_mean_absolute_error" and v["score"] < 0, v
    dom = html.unescape(browse(chromium, view(server, p=KEY), tmp_path))
    versions = dom.split("<h2>Versions</h2>")[1].split("</table>")[0]
    assert "<th>mean_absolute_error</th>" in versions, versions
    row = versions.split(f'<tr data-version="{v["version"]}">')[1].split("</tr>")[0]
    cells = re.findall(r'<td class="num"[^>]*>([^<]*)</td>', row)
    assert float(cells[1]) == pytest.approx(-v["score"], rel=1e-3), row
    assert float(cells[2]) == pytest.approx(-v["naive_score"], rel=1e-3), row
    listed = html.unescape(browse(chromium, view(server, q=KEY), tmp_path))
    cell = listed.split(f'<tr data-key="{KEY}"')[1].split("</tr>")[0]
    assert re.search(r'title="mean_absolute_error">([0-9.e+]+)</td>', cell), cell

    rmse = {**SALES_SPEC, "metric": "neg_root_mean_squared_error"}
    train({**rmse, "promotion": {"policy": "manual"}}, sales(), registry_path, only={KEY})
    after = httpx.get(f"{server}/v1/partitions/{KEY}").json()["versions"]
    assert [x["metric"] for x in after] == ["neg_root_mean_squared_error", v["metric"]], after
    dom = html.unescape(browse(chromium, view(server, p=KEY), tmp_path))
    versions = dom.split("<h2>Versions</h2>")[1].split("</table>")[0]
    assert "<th>estimator</th><th>metric</th><th>score</th><th>naive</th>" in versions, versions
    for x in after:
        row = versions.split(f'<tr data-version="{x["version"]}">')[1].split("</tr>")[0]
        name = x["metric"].removeprefix("neg_")
        assert f'<td class="metric">{name}</td>' in row.replace("<wbr>", ""), row
        score = re.search(rf'<td class="num" title="{name}">([^<]*)</td>', row)
        assert score and float(score[1]) == pytest.approx(-x["score"], rel=1e-3), row
