"""The dashboard at /ui, driven by a real headless Chromium against a real router.

Chromium is Debian's ``chromium`` (``apt-get install chromium``; ``.ci/run`` installs it). On a
developer's machine without it the browser tests are skipped, saying why; under ``CI=true`` a
missing browser fails them, so CI never passes by skipping. Each browser run loads the page with
``--dump-dom`` (the DOM after the page's scripts ran) or ``--screenshot``; screenshots go to
``$MANYMODELS_SCREENSHOTS`` (CI keeps that directory) or to the test's tmp directory.

The page says when it is done: ``<body data-state="ready">`` (or ``"error"``), rows carry
``data-key``, the partition view's production version is ``#production-version``.
"""

from __future__ import annotations

import html
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
import pandas as pd
import pytest
from browserkit import browse, page_state, row_keys, text_of, view
from factories import executed, sqlite_plan
from fastapi.responses import HTMLResponse
from routerkit import (
    KEY,
    SLASH_BRAND,
    SLASH_KEY,
    TOKEN,
    TWO_VERSIONS,
    admin,
    doubled_rows,
    job_ended,
    open_client,
    sales,
)
from sqlalchemy import text

from manymodels.registry import Registry
from manymodels.registry.reads import prefix_upper
from serving.app import create_app
from serving.local import running_server
from serving.settings import Settings

READER = "dashboard-read-token"


def api_keys(base: str, prefix: str) -> list[str]:
    page = httpx.get(f"{base}/v1/partitions", params={"prefix": prefix, "limit": 1000}).json()
    return [p["partition"] for p in page["partitions"]]


# ---------------------------------------------------------------------------- in the browser
@pytest.mark.slow
def test_a_search_in_the_url_lists_the_matching_partitions(
    chromium: str, server: str, tmp_path: Path, shots: Path
) -> None:
    everything = browse(chromium, f"{server}/ui", tmp_path)
    assert page_state(everything) == "ready"
    assert sorted(row_keys(everything)) == sorted(api_keys(server, ""))

    url = view(server, q="store=3,", sort="skill")
    dom = browse(chromium, url, tmp_path)
    assert page_state(dom) == "ready"
    found = row_keys(dom)
    assert found and sorted(found) == sorted(api_keys(server, "store=3,"))
    assert all(k.startswith("store=3,") for k in found)
    skills = [
        p["production"]["skill"]
        for k in found
        for p in httpx.get(f"{server}/v1/partitions", params={"prefix": k}).json()["partitions"]
        if p["partition"] == k
    ]
    assert skills == sorted(skills)  # "skill vs naive", worst first
    browse(chromium, url, tmp_path, screenshot=shots / "dashboard-search.png")

    # Typed as the value reads, found by its canonical (percent-encoded) key.
    typed = browse(chromium, view(server, q=f"store=1,brand={SLASH_BRAND[:10]}"), tmp_path)
    assert row_keys(typed) == [SLASH_KEY]


@pytest.mark.slow
def test_a_promotion_shows_up_on_the_partition_view(
    chromium: str, server: str, tmp_path: Path, shots: Path
) -> None:
    key = TWO_VERSIONS[0]
    url = view(server, p=key)
    before = browse(chromium, url, tmp_path)
    assert page_state(before) == "ready"
    assert text_of(before, "production-version") == "v1"
    assert re.findall(r'<tr data-version="(\d+)"', before) == ["2", "1"]
    assert "Why this model" in before and 'id="forecast"' in before

    reason = "dashboard test: v2 after review"
    promoted = httpx.post(
        f"{server}/v1/partitions/{key}/promote",
        json={"version": 2, "reason": reason},
        headers=admin(),
    )
    assert promoted.status_code == 200, promoted.text

    after = browse(chromium, url, tmp_path)
    assert text_of(after, "production-version") == "v2"
    assert reason in html.unescape(after)  # the alias history, with the reason
    browse(chromium, url, tmp_path, screenshot=shots / "dashboard-partition.png")


@pytest.mark.slow
def test_the_health_view_lists_the_monitor_in_its_order(
    chromium: str, server: str, tmp_path: Path, shots: Path
) -> None:
    """``#health=error`` lists ``GET /v1/monitor?sort=error`` row for row, in the API's order,
    with its ratios and flags. Actuals are posted first so the order is not just the keys':
    one partition's observed values five times what it was trained on (degraded), one as
    trained; the rest have none (unknown, last)."""
    df = sales()
    posts = ((KEY, 2, "tropicana", 1.0), (TWO_VERSIONS[1], 3, "minute_maid", 5.0))
    for key, store, brand, scale in posts:
        part = df[(df["store"] == store) & (df["brand"] == brand)].tail(30)
        rows = [
            {"week": str(r.week.date()), "price": r.price, "deal": r.deal, "feat": r.feat,
             "units": r.units * scale}
            for r in part.itertuples()
        ]  # fmt: skip
        posted = httpx.post(f"{server}/v1/partitions/{key}/actuals", json={"rows": rows})
        assert posted.status_code == 200, posted.text
    api = httpx.get(f"{server}/v1/monitor", params={"sort": "error", "limit": 1000}).json()
    expected = [h["key"] for h in api["partitions"]]
    assert expected[:2] == [TWO_VERSIONS[1], KEY]  # worse live/validation ratio first
    assert "degraded" in api["partitions"][0]["flags"]

    dom = browse(chromium, view(server, health="error"), tmp_path)
    assert page_state(dom) == "ready", text_of(dom, "status")
    assert row_keys(dom) == expected
    assert "worst first by live error vs validation" in text_of(dom, "status")
    first = dom.split(f'<tr data-key="{html.escape(expected[0])}"')[1].split("</tr>")[0]
    assert f">{api['partitions'][0]['error_ratio']:#.3g}<" in first  # JS toPrecision(3)
    assert '<span class="badge flag">degraded</span>' in first
    assert text_of(dom, "health-note").startswith(f"{len(expected)} of {api['total']} ")

    by_age = browse(chromium, view(server, health="age"), tmp_path)
    age_api = httpx.get(f"{server}/v1/monitor", params={"sort": "age", "limit": 1000}).json()
    assert row_keys(by_age) == [h["key"] for h in age_api["partitions"]]
    browse(
        chromium, view(server, health="error"), tmp_path, screenshot=shots / "dashboard-health.png"
    )


@pytest.mark.slow
def test_every_view_shows_a_key_as_its_values_read(
    chromium: str, server: str, tmp_path: Path
) -> None:
    """The list and the partition's heading showed ``store=1, brand=dominick's/own label``,
    while the Health view's link, the partition page's status line (and a run's failures, the
    same cell) showed the canonical key, ``store=1,brand=dominick%27s%2Fown%20label``: with
    keys of quotes, spaces, unicode or ``<script>``, one partition read differently in each
    view. Every view shows the values as sent now; ``data-key`` stays the canonical key."""
    readable = f"store=1, brand={SLASH_BRAND}"

    def link_text(dom: str) -> str:
        row = dom.split(f'<tr data-key="{html.escape(SLASH_KEY)}"')[1].split("</tr>")[0]
        found = re.search(r"<a [^>]*>([^<]*)</a>", row)
        assert found, row
        return html.unescape(found.group(1))

    listed = browse(chromium, view(server, q="store=1,"), tmp_path)
    assert page_state(listed) == "ready" and link_text(listed) == readable
    health = browse(chromium, view(server, health="key"), tmp_path)
    assert page_state(health) == "ready", text_of(health, "status")
    assert link_text(health) == readable
    page = browse(chromium, view(server, p=SLASH_KEY), tmp_path)
    assert page_state(page) == "ready", text_of(page, "status")
    assert text_of(page, "status") == f"Partition {readable}."


@pytest.mark.slow
def test_the_retrain_jobs_table_shows_a_key_as_its_values_read(
    chromium: str, settings: Settings, tmp_path: Path
) -> None:
    """The list page's "Retrain jobs" table showed a job's partition as its canonical key,
    ``store=1,brand=dominick%27s%2Fown%20label``, under a list that reads ``store=1,
    brand=dominick's/own label``: now the values as sent, the canonical key in its title."""
    rows = doubled_rows(1, SLASH_BRAND, 30)
    with running_server(settings, app=with_login(settings, TOKEN)) as base:
        posted = httpx.post(
            f"{base}/v1/partitions/{SLASH_KEY}/retrain", json={"rows": rows}, headers=admin()
        )
        assert posted.status_code == 202, posted.text
        job_id = posted.json()["job_id"]
        for _ in range(300):  # 30 s at most
            job = httpx.get(f"{base}/v1/jobs/{job_id}", headers=admin()).json()
            if job["status"] in ("succeeded", "failed"):
                break
            time.sleep(0.1)
        dom = browse(chromium, f"{base}/test-login#q=store%3D1%2C", tmp_path)
    assert page_state(dom) == "ready", text_of(dom, "status")
    row = re.search(rf"<tr><td><code>{job_id}</code></td><td([^>]*)>([^<]*)</td>", dom)
    assert row, dom.split('id="jobs"')[1][:1500]
    assert html.unescape(row.group(2)) == f"store=1, brand={SLASH_BRAND}"
    assert f'title="{html.escape(SLASH_KEY)}"' in row.group(1)


@pytest.mark.slow
def test_the_retrain_jobs_box_speaks_of_the_registry_whose_jobs_outlive_a_router(
    chromium: str, settings: Settings, tmp_path: Path
) -> None:
    """The box said "No retrain job since this router started", yet its list is the
    registry's: a job retrained through one router is listed by the next one started on the
    same registry. Now an empty box says so of the registry, and a restart keeps the row."""
    rows = doubled_rows(2, "tropicana", 30)
    with running_server(settings, app=with_login(settings, TOKEN)) as base:
        empty = browse(chromium, f"{base}/test-login", tmp_path)
        with httpx.Client(base_url=base) as client:
            posted = client.post(f"/v1/partitions/{KEY}/retrain", json={"rows": rows},
                                 headers=admin())  # fmt: skip
            assert posted.status_code == 202, posted.text
            job_id = posted.json()["job_id"]
            ended = job_ended(client, f"/v1/jobs/{job_id}", admin())
        assert ended["status"] == "succeeded", ended
    assert page_state(empty) == "ready", text_of(empty, "status")
    said = re.search(r'id="jobs"><p[^>]*>([^<]*)<', empty)
    assert said, empty.split('id="jobs"')[1][:500]
    assert "since this router started" not in said.group(1)
    assert said.group(1).startswith("No retrain job recorded in this registry"), said.group(1)
    with running_server(settings, app=with_login(settings, TOKEN)) as base:  # a restart
        again = browse(chromium, f"{base}/test-login", tmp_path)
    assert page_state(again) == "ready", text_of(again, "status")
    assert f"<code>{job_id}</code>" in again, again.split('id="jobs"')[1][:500]


@pytest.mark.slow
def test_with_read_tokens_the_page_asks_for_one_and_sends_it(
    chromium: str, registry_path: Path, tmp_path: Path
) -> None:
    """The shell is open, its data is not: without a token the page says what to do; with one
    in the tab's sessionStorage (set here by a test-only page in the same tab, as the token
    form does) every fetch carries it. The token never appears in a URL the page builds."""
    settings = Settings(registry=registry_path, admin_token=TOKEN, read_token=READER)
    with running_server(settings, app=with_login(settings, READER)) as base:
        assert httpx.get(f"{base}/ui").status_code == 200
        assert httpx.get(f"{base}/v1/partitions").status_code == 401
        locked = browse(chromium, view(base, q="store=2,"), tmp_path)
        assert page_state(locked) == "error"
        assert "needs a read token" in text_of(locked, "status")
        assert row_keys(locked) == []

        dom = browse(chromium, f"{base}/test-login#q=store%3D2%2C", tmp_path)
        assert page_state(dom) == "ready", text_of(dom, "status")
        assert sorted(row_keys(dom)) == sorted(
            k for k in _keys(registry_path) if k.startswith("store=2,")
        )
        assert READER not in dom


@pytest.mark.slow
def test_a_crafted_link_cannot_turn_the_pages_calls_into_an_admin_action(
    chromium: str, settings: Settings, tmp_path: Path
) -> None:
    """The partition in the URL is one path segment of every call the page makes: a link
    ``#p=<key>/rollback?`` opened by an admin must not POST to ``…/rollback`` (the page's
    ``POST …/forecast`` would, were the key pasted into the path as it is; today the detail
    GET before it fails first, and this keeps it so whatever the order of the calls)."""
    key = TWO_VERSIONS[0]
    with running_server(settings, app=with_login(settings, TOKEN)) as base:
        promoted = httpx.post(
            f"{base}/v1/partitions/{key}/promote", json={"version": 2}, headers=admin()
        )
        assert promoted.status_code == 200
        moves = httpx.get(f"{base}/v1/partitions/{key}").json()["alias_history"]
        for crafted in (f"{key}/rollback?", "%2e%2E"):
            dom = browse(chromium, f"{base}/test-login#p={quote(crafted, safe='')}", tmp_path)
            assert page_state(dom) == "error"
            detail = httpx.get(f"{base}/v1/partitions/{key}").json()
            assert detail["aliases"]["production"] == 2, crafted
            assert detail["alias_history"] == moves, crafted  # no move since the promotion


def with_login(settings: Settings, token: str) -> Any:
    """A router with a test-only page that puts ``token`` in the tab's sessionStorage, as the
    page's token form does, then opens the dashboard with the same hash."""
    app = create_app(settings)

    @app.get("/test-login", include_in_schema=False)
    async def login() -> HTMLResponse:
        return HTMLResponse(
            f"<script>sessionStorage.setItem('manymodels.token', '{token}');"
            "location.replace('/ui' + location.hash);</script>"
        )

    return app


def _keys(root: Path) -> list[str]:
    with Registry.open(root) as reg:
        return [p.key for p in reg.list_partitions(limit=1000)]


# ---------------------------------------------------------------------------- no browser
def test_the_shell_is_open_static_and_not_api(settings: Settings) -> None:
    guarded = replace(settings, read_token=READER)
    with open_client(guarded) as client:
        page = client.get("/ui")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert "http" not in re.sub(r"https?://www\.w3\.org/\S+", "", page.text)  # no CDN
        for asset, media in (("app.js", "text/javascript"), ("app.css", "text/css")):
            got = client.get(f"/ui/{asset}")
            assert got.status_code == 200 and got.headers["content-type"].startswith(media)
        script = client.get("/ui/app.js").text
        assert "innerHTML" not in script  # data goes in as text nodes
        assert client.get("/v1/partitions").status_code == 401  # the data is not open
        assert client.get("/ui/secrets.txt").status_code == 404
        assert not [p for p in client.get("/openapi.json", headers=admin()).json()["paths"]
                    if p.startswith("/ui")]  # fmt: skip


def test_a_prefix_search_pages_through_matching_keys_only(client: Any) -> None:
    every = [p["partition"] for p in client.get("/v1/partitions?limit=1000").json()["partitions"]]
    wanted = [k for k in every if k.startswith("store=1,")]
    assert len(wanted) >= 2

    first = client.get("/v1/partitions", params={"prefix": "store=1,", "limit": 1}).json()
    assert [p["partition"] for p in first["partitions"]] == wanted[:1]
    rest = client.get(
        "/v1/partitions", params={"prefix": "store=1,", "limit": 1000, "after": first["next_after"]}
    ).json()
    assert [p["partition"] for p in rest["partitions"]] == wanted[1:]
    assert rest["next_after"] is None

    assert client.get("/v1/partitions", params={"prefix": KEY}).json()["partitions"][0][
        "partition"
    ] == KEY  # fmt: skip
    for nothing in ("store=9", "zzz", "\U0010ffff", "é"):
        got = client.get("/v1/partitions", params={"prefix": nothing})
        assert got.status_code == 200 and got.json()["partitions"] == []
    assert client.get("/v1/partitions", params={"prefix": "x" * 513}).status_code == 422


def test_prefix_upper_bounds_every_key_that_starts_with_the_prefix() -> None:
    assert prefix_upper("store=1,") == "store=1-"
    assert prefix_upper("a\U0010ffff") == "b"
    assert prefix_upper("\U0010ffff") is None
    assert prefix_upper("a\ud7ff") == "a\ue000"  # never a surrogate: not encodable as UTF-8
    for key in ("store=1,brand=x", "store=1,\U0010ffff", "store=1,"):
        assert "store=1," <= key < "store=1-"


def test_a_prefix_search_reads_a_range_of_the_key_index(trained: Path) -> None:
    """SQLite's plan for the search: a SEARCH of the key's index bounded on both sides, never
    a SCAN of the partitions table (the page of 100,000 partitions costs one page)."""
    with Registry.open(trained) as reg:
        engine = reg.store.engine
        with executed(engine) as seen:
            assert [p.key for p in reg.list_partitions(prefix="store=2,")]
        statement, params = next(
            (s, p) for s, p in seen if "FROM partitions" in s and "substr" in s
        )
        plan = sqlite_plan(engine, statement, params)
        assert "SEARCH partitions USING INDEX" in plan and "key>? AND key<?" in plan, plan
        assert "SCAN partitions" not in plan, plan
        with engine.connect() as conn:  # the same answer as a full scan would give
            every = [r[0] for r in conn.execute(text("SELECT key FROM partitions ORDER BY key"))]
        assert [p.key for p in reg.list_partitions(prefix="store=2,", limit=1000)] == [
            k for k in every if k.startswith("store=2,")
        ]


def _classifier_of_x(**spec: Any) -> dict[str, Any]:
    """A spec of text classes from one feature ``x``: a LogisticRegression, the last 10 rows
    validate, no fallback (each partition its own); ``spec`` gives its name, key, target and
    time column."""
    return {
        "task": "classification",
        "features": ["x"],
        "metric": "neg_log_loss",
        "validation": {"strategy": "last", "size": 10},
        "candidates": [{"estimator": "sklearn.linear_model.LogisticRegression"}],
        "fallback": {"enabled": False},
        **spec,
    }


@pytest.mark.slow
def test_a_classifier_of_text_classes_lists_its_forecast_rather_than_drawing_nothing(
    chromium: str, tmp_path: Path
) -> None:
    """A per-user churn model answers "churn" or "stay": the partition page drew its forecast
    as numbers, every one NaN — empty lines under "max -Infinity … min Infinity". Its steps
    are listed now, with the label at its threshold, and its posted actuals beside what the
    version answered; a forecast of numbers is still drawn."""
    from manymodels.pipeline import train

    rng = np.random.default_rng(3)
    days, users = 40, ["it's <b>ü</b>", "u2"]
    x = rng.normal(size=(len(users), days))
    churn = rng.random((len(users), days)) < 1 / (1 + np.exp(-2.0 * x))
    frame = pd.DataFrame({
        "user": np.repeat(users, days),
        "day": np.tile(pd.date_range("2024-01-01", periods=days).strftime("%Y-%m-%d"), 2),
        "x": x.ravel(),
        "label": np.where(churn.ravel(), "churn", "stay"),
    })  # fmt: skip
    spec = _classifier_of_x(
        name="churn", partition_by=["user"], target="label", time_column="day",
        decision={"threshold": "cost", "cost": {"fp": 1, "fn": 5}, "positive": "churn"},
    )  # fmt: skip
    root = tmp_path / "registry"
    assert train(spec, frame, root, backend="local").run.n_trained == 2
    key = "user=it%27s%20%3Cb%3E%C3%BC%3C%2Fb%3E"
    with running_server(Settings(registry=root)) as base:
        rows = [{"day": "2024-02-10", "x": 1.5, "label": "churn"},
                {"day": "2024-02-11", "x": -1.5, "label": "churn"}]  # fmt: skip
        posted = httpx.post(f"{base}/v1/partitions/{key}/actuals", json={"rows": rows})
        assert posted.status_code == 200, posted.text
        dom = browse(chromium, view(base, p=key), tmp_path)
    assert page_state(dom) == "ready", text_of(dom, "status")
    box = html.unescape(dom.split('id="forecast"')[1].split("</div></div>")[0])
    assert "Infinity" not in box and "NaN" not in box
    steps = re.findall(r'<tr class="step"><td class="when">([^<]*)</td><td>([^<]*)</td>'
                       r"<td>([^<]*)</td></tr>", box)  # fmt: skip
    assert len(steps) == 8 and steps[0][0] == "2024-02-10", box
    assert {s[1] for s in steps} <= {"churn", "stay"} and {s[2] for s in steps} <= {"churn", "stay"}
    assert box.count('<tr class="actual-row">') == 2
    assert "label (threshold 0." in box
    # the health row: the most probable class's live error, the labels' beside it (2 actuals)
    answer = posted.json()
    row = html.unescape(dom.split(f'<tr data-health="{key}"')[1].split("</tr>")[0])
    assert f"error rate {answer['error']:#.4g} · labels {answer['label_error']:#.4g}" in row, row


@pytest.mark.slow
def test_an_hourly_classifier_of_text_classes_lists_each_step_at_its_hour(
    chromium: str, tmp_path: Path
) -> None:
    """The list of a text-class forecast showed each step's time cut to its date: the 8
    hourly steps of a pump's "fail"/"ok" model all read "2024-01-02", and so did its posted
    actuals. Now a step at an hour reads "2024-01-02 16:00" (a midnight still its date)."""
    from manymodels.pipeline import train

    rng = np.random.default_rng(5)
    hours = 40
    x = rng.normal(size=hours)
    frame = pd.DataFrame({
        "asset": "pump-1",
        "ts": pd.date_range("2024-01-01", periods=hours, freq="h").strftime("%Y-%m-%d %H:%M:%S"),
        "x": x,
        "state": np.where(rng.random(hours) < 1 / (1 + np.exp(-2.0 * x)), "fail", "ok"),
    })  # fmt: skip
    spec = _classifier_of_x(name="pumps", partition_by=["asset"], target="state", time_column="ts")
    root = tmp_path / "registry"
    assert train(spec, frame, root, backend="local").run.n_trained == 1
    with running_server(Settings(registry=root)) as base:
        rows = [{"ts": "2024-01-02 16:00:00", "x": 1.5, "state": "fail"},
                {"ts": "2024-01-02 17:00:00", "x": -1.5, "state": "ok"}]  # fmt: skip
        posted = httpx.post(f"{base}/v1/partitions/asset=pump-1/actuals", json={"rows": rows})
        assert posted.status_code == 200, posted.text
        dom = browse(chromium, view(base, p="asset=pump-1"), tmp_path)
    assert page_state(dom) == "ready", text_of(dom, "status")
    box = html.unescape(dom.split('id="forecast"')[1].split("</div></div>")[0])
    steps = re.findall(r'<tr class="step"><td class="when">([^<]*)</td>', box)
    assert steps == [f"2024-01-02 {h:02d}:00" for h in range(16, 24)], box
    actuals = re.findall(r'<tr class="actual-row"><td>[^<]*</td><td class="when">([^<]*)</td>', box)
    assert actuals == ["2024-01-02 16:00", "2024-01-02 17:00"], box


def pump_temps(
    tmp_path: Path, *, seed: int, periods: int, freq: str, held_out: int, **spec: Any
) -> Path:
    """A registry of one partition, ``asset=pump-1``: a Ridge of its temperature on ``x`` at
    ``periods`` steps of ``freq`` (hourly times with their hour, daily ones as dates), the
    last ``held_out`` rows validating it; ``spec`` adds to the spec."""
    from manymodels.pipeline import train

    rng = np.random.default_rng(seed)
    times = pd.date_range("2024-01-01", periods=periods, freq=freq)
    frame = pd.DataFrame({
        "asset": "pump-1",
        "ts": times.strftime("%Y-%m-%d %H:%M:%S" if freq == "h" else "%Y-%m-%d"),
        "x": rng.normal(size=periods),
        "temp": rng.normal(70, 2, size=periods),
    })  # fmt: skip
    spec = {
        "name": "temps", "task": "regression", "partition_by": ["asset"], "target": "temp",
        "time_column": "ts", "features": ["x"],
        "validation": {"strategy": "last", "size": held_out},
        "candidates": [{"estimator": "sklearn.linear_model.Ridge"}],
        "fallback": {"enabled": False}, **spec,
    }  # fmt: skip
    root = tmp_path / "registry"
    assert train(spec, frame, root, backend="local").run.n_trained == 1
    return root


@pytest.mark.slow
def test_an_hourly_forecast_chart_names_its_first_and_last_hour(
    chromium: str, tmp_path: Path
) -> None:
    """The chart's foot named its span by dates alone: 8 hourly steps read "2024-01-02 …
    2024-01-02". Now "2024-01-02 16:00 … 2024-01-02 23:00"; a daily chart keeps its dates."""
    root = pump_temps(tmp_path, seed=6, periods=40, freq="h", held_out=10)
    with running_server(Settings(registry=root)) as base:
        dom = browse(chromium, view(base, p="asset=pump-1"), tmp_path)
    assert page_state(dom) == "ready", text_of(dom, "status")
    box = html.unescape(dom.split('id="forecast"')[1])
    assert "2024-01-02 16:00 … 2024-01-02 23:00 · min " in box, box[:2000]


@pytest.mark.slow
def test_the_forecast_chart_draws_the_interval_levels_the_version_recorded(
    chromium: str, tmp_path: Path
) -> None:
    """The partition page asked every forecast for 80 and 95 % bands: a version whose spec
    recorded `[intervals] levels = [90]` answered 422, the page asked again without levels,
    and its chart said the version "recorded no prediction intervals". Now it asks for the
    levels the version recorded (the detail's `interval_levels`) and draws the 90 % band."""
    root = pump_temps(
        tmp_path, seed=7, periods=60, freq="D", held_out=20, intervals={"levels": [90]}
    )
    with running_server(Settings(registry=root)) as base:
        (version,) = httpx.get(f"{base}/v1/partitions/asset=pump-1").json()["versions"]
        dom = browse(chromium, view(base, p="asset=pump-1"), tmp_path)
    assert page_state(dom) == "ready", text_of(dom, "status")
    box = html.unescape(dom.split('id="forecast"')[1])
    assert "recorded no prediction intervals" not in box, box[:2000]
    assert box.startswith(' data-levels="90"'), box[:300]
    assert "with 90 % prediction intervals" in box, box[:2000]
    assert version["interval_levels"] == [90.0]
