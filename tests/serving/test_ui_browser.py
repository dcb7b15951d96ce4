"""The dashboard's operating views in a real headless Chromium (#15): a run's failures searched
by key, one partition's health row, and the list sorted by skill over the whole registry.

Helpers from ``browserkit``, as ``test_dashboard`` uses them (whose docstring says how
Chromium is found, and why a missing one fails under CI): the page marks itself
``<body data-state="ready">`` when done and rows carry ``data-key``; screenshots go to
``$MANYMODELS_SCREENSHOTS`` or the tmp directory.
"""

from __future__ import annotations

import html
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from browserkit import browse, page_state, row_keys, text_of, view
from routerkit import KEY, TOKEN, sales
from test_ui_api import TINY, add_failures, skip_a_trained_partition

from serving.local import running_server
from serving.settings import Settings


@pytest.fixture
def failing_server(trained: Path, tmp_path: Path) -> Iterator[str]:
    root = add_failures(Path(shutil.copytree(trained, tmp_path / "registry")))
    with running_server(Settings(registry=root, admin_token=TOKEN)) as url:
        yield url


@pytest.mark.slow
def test_a_search_among_failures_finds_the_failed_partition(
    chromium: str, failing_server: str, tmp_path: Path, shots: Path
) -> None:
    everything = browse(chromium, view(failing_server, failures="latest"), tmp_path)
    assert page_state(everything) == "ready", text_of(everything, "status")
    api = httpx.get(f"{failing_server}/v1/failures").json()
    assert row_keys(everything) == [f["partition"] for f in api["failures"]]
    assert "1 failed, 3 skipped" in text_of(everything, "failures-note")

    dom = browse(chromium, view(failing_server, failures="latest", q="store=9,"), tmp_path)
    assert page_state(dom) == "ready"
    assert row_keys(dom) == ["store=9,brand=broken"]
    row = dom.split('<tr data-key="store=9,brand=broken"')[1].split("</tr>")[0]
    assert ">failed<" in row
    reason = next(f for f in api["failures"] if f["partition"] == "store=9,brand=broken")
    assert html.escape(reason["message"], quote=False)[:40] in row

    tiny = browse(chromium, view(failing_server, failures="latest", q="store=7,"), tmp_path)
    assert row_keys(tiny) == list(TINY[:2])
    browse(
        chromium,
        view(failing_server, failures="latest"),
        tmp_path,
        screenshot=shots / "dashboard-failures.png",
    )


@pytest.mark.slow
def test_only_a_failure_whose_partition_has_a_page_links_to_it(
    chromium: str, trained: Path, tmp_path: Path
) -> None:
    """A skipped partition that never had a version was a link to an empty page ("Error: no
    partition … in the registry"); it is its key alone now, and a skipped one with versions
    from an earlier run still opens its page."""
    root = skip_a_trained_partition(Path(shutil.copytree(trained, tmp_path / "registry")))
    with running_server(Settings(registry=root)) as base:
        dom = browse(chromium, view(base, failures="latest"), tmp_path)
        assert page_state(dom) == "ready", text_of(dom, "status")
        assert row_keys(dom) == [KEY, "store=8,brand=tiny_d"]

        def cell(key: str) -> str:
            return dom.split(f'<tr data-key="{key}"')[1].split("</td>")[0]

        assert "<a " in cell(KEY)
        new = cell("store=8,brand=tiny_d")
        assert "<a " not in new and "the fallback model" in html.unescape(new), new
        page = browse(chromium, view(base, p=KEY), tmp_path)  # where the link leads
        assert page_state(page) == "ready" and 'id="production-version"' in page


@pytest.mark.slow
def test_the_partition_page_shows_its_health_row(
    chromium: str, server: str, tmp_path: Path, shots: Path
) -> None:
    part = sales().query("store == 2 and brand == 'tropicana'").tail(30)
    rows = [
        {"week": str(r.week.date()), "price": r.price, "deal": r.deal, "feat": r.feat,
         "units": r.units * 3}
        for r in part.itertuples()
    ]  # fmt: skip
    assert httpx.post(f"{server}/v1/partitions/{KEY}/actuals", json={"rows": rows}).is_success
    health = httpx.get(f"{server}/v1/monitor", params={"key": KEY}).json()["partitions"][0]

    dom = browse(chromium, view(server, p=KEY), tmp_path)
    assert page_state(dom) == "ready", text_of(dom, "status")
    row = dom.split(f'<tr data-health="{KEY}"')[1].split("</tr>")[0]
    assert f">{health['error_ratio']:#.3g}<" in row  # live / validation, JS toPrecision(3)
    assert f">{health['live_rows']}<" in row
    assert f">{health['model_age_days']:.1f} d<" in row
    for flag in health["flags"]:
        assert f'<span class="badge flag">{flag}</span>' in row
    assert "Live error on 30 posted actual(s)." in html.unescape(dom)
    assert 'data-actuals="30"' in dom  # forecast vs actual: the posted points are drawn
    assert "the newest 30 posted actual(s)" in html.unescape(dom)
    assert 'class="actual"' in dom and 'class="answered"' in dom
    browse(
        chromium, view(server, p=KEY), tmp_path, screenshot=shots / "dashboard-partition-health.png"
    )


@pytest.mark.slow
def test_sorting_by_skill_is_over_the_whole_registry_not_the_loaded_page(
    chromium: str, server: str, tmp_path: Path, shots: Path
) -> None:
    """With pages of 3, the first page is the registry's 3 worst partitions by skill — not the
    first 3 keys sorted — and the page says the order covers every partition."""
    listed = httpx.get(f"{server}/v1/partitions", params={"limit": 1000}).json()["partitions"]
    with_skill = [p for p in listed if p["production"] and p["production"]["skill"] is not None]
    worst = [p["partition"] for p in sorted(with_skill, key=lambda p: p["production"]["skill"])]
    first_keys = sorted(
        listed[:3], key=lambda p: (p["production"] or {}).get("skill") or float("inf")
    )
    assert [p["partition"] for p in first_keys] != worst[:3]  # the test can tell them apart

    dom = browse(chromium, view(server, sort="skill", limit="3"), tmp_path)
    assert page_state(dom) == "ready", text_of(dom, "status")
    assert row_keys(dom) == worst[:3]
    assert "over every partition in production" in text_of(dom, "list-note")
    assert "more match" in text_of(dom, "list-note")
    everything = browse(chromium, view(server, sort="skill"), tmp_path)
    assert row_keys(everything)[: len(worst)] == worst
    browse(
        chromium,
        view(server, sort="skill"),
        tmp_path,
        screenshot=shots / "dashboard-partitions.png",
    )


@pytest.mark.slow
def test_the_health_view_shows_an_infinite_ratio_over_a_perfect_validation(
    chromium: str, tmp_path: Path
) -> None:
    """A constant series predicted exactly in validation (its validation error 0), whose live
    rows now miss: degraded, worst first, and its live / validation ratio infinite, which the
    JSON writes null — the Health view showed "–", the mark of an undefined ratio, beside the
    flag. Now "∞", in red; a partition whose live error is 0 too keeps "–"."""
    import numpy as np
    import pandas as pd

    from manymodels.pipeline import train

    rng = np.random.default_rng(0)
    rows = [
        {"pid": p, "x": float(i % 5), "y": 5.0 if p == "const" else 2.0 * (i % 5) + rng.normal()}
        for p in ("const", "noisy", "still")
        for i in range(30)
    ]
    spec = {
        "name": "perfect", "partition_by": ["pid"], "target": "y", "features": ["x"],
        "min_rows": 5, "metric": "neg_mean_absolute_error", "fallback": {"enabled": False},
        "validation": {"strategy": "holdout", "size": 0.2},
        "candidates": [{"estimator": "sklearn.linear_model.Ridge"}],
    }  # fmt: skip
    frame = pd.DataFrame(rows).assign(y=lambda d: d["y"].where(d["pid"] != "still", 3.0))
    root = tmp_path / "registry"
    assert train(spec, frame, root, backend="local").run.n_trained == 3
    with running_server(Settings(registry=root)) as server:
        for key, y in (("pid=const", 6.0), ("pid=still", 3.0)):
            posted = [{"x": float(i % 5), "y": y} for i in range(20)]
            r = httpx.post(f"{server}/v1/partitions/{key}/actuals", json={"rows": posted})
            assert r.is_success, r.text
        api = httpx.get(f"{server}/v1/monitor", params={"sort": "error"}).json()["partitions"]
        const = api[0]  # worst first
        assert const["key"] == "pid=const", api
        assert const["validation_error"] == 0 and const["live_error"] > 0
        assert const["error_ratio"] is None and "degraded" in const["flags"]
        dom = browse(chromium, view(server, health="error"), tmp_path)
    assert page_state(dom) == "ready", text_of(dom, "status")
    row = dom.split('<tr data-key="pid=const"')[1].split("</tr>")[0]
    assert '<td class="num bad">∞</td>' in row, row
    still = dom.split('<tr data-key="pid=still"')[1].split("</tr>")[0]
    assert "∞" not in still and ">–<" in still, still


@pytest.mark.slow
def test_the_health_view_says_which_classifier_it_cannot_judge(
    chromium: str, tmp_path: Path
) -> None:
    """A classifier chosen by balanced accuracy, trained before its validation error rate was
    recorded, with 70 wrong of 100 actuals: never flagged degraded, and the Health view said
    nothing. Now a "not judged" badge, the reason as its title; the one with its rate
    recorded is flagged degraded, without the badge."""
    from test_monitor_unjudged import unjudged

    made = unjudged(tmp_path / "registry")
    with running_server(Settings(registry=tmp_path / "registry")) as server:
        dom = browse(chromium, view(server, health="error"), tmp_path)
    assert page_state(dom) == "ready", text_of(dom, "status")
    old = dom.split(f'<tr data-key="{made["old"]}"')[1].split("</tr>")[0]
    assert "not judged" in old and "not judged degraded: a classifier chosen by" in old, old
    assert "degraded</span>" not in old
    new = dom.split(f'<tr data-key="{made["new"]}"')[1].split("</tr>")[0]
    assert "not judged" not in new and "degraded</span>" in new, new


def test_sorting_by_raw_score_says_it_is_in_metric_units_and_points_to_skill(
    chromium: str, server: str, tmp_path: Path
) -> None:
    """The raw validation score orders partitions by the size of their errors (a large
    store's MAE ranks it first, however good its model), which the list offered as "score
    (worst first)" beside skill, with nothing saying so. Now the option, the column and the
    note say the scores are in each partition's metric units, and point to skill vs naive."""
    listed = httpx.get(f"{server}/v1/partitions", params={"limit": 1000}).json()["partitions"]
    scored = [p for p in listed if p["production"] and p["production"]["skill"] is not None]
    by_score = sorted(scored, key=lambda p: p["production"]["score"])
    by_skill = sorted(scored, key=lambda p: p["production"]["skill"])
    assert by_score[0]["partition"] != by_skill[0]["partition"]  # the orders differ here

    dom = browse(chromium, view(server, sort="score"), tmp_path)
    assert page_state(dom) == "ready", text_of(dom, "status")
    assert row_keys(dom)[0] == by_score[0]["partition"]
    note = text_of(dom, "list-note")
    assert "metric units, not comparable across partitions" in note, note
    assert "sort by skill vs naive for the worst models first" in note, note
    assert "raw score, metric units (worst first)</option>" in dom
    assert ">score (metric units)</th>" in dom
