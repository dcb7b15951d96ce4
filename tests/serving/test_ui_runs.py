"""The dashboard's Runs panel (#15) in a real headless Chromium against a real router: a
finished run's counts, and a run in progress whose bar moves while the page refreshes it.

The browser, its helpers and the screenshot directory are ``test_dashboard``'s (its docstring
says how Chromium is found, and why a missing one fails under CI). The run in progress is a
real registry run: created and given outcomes with the registry's API (``create_run``,
``record``), as the pipeline does chunk by chunk — no part of the router is mocked.
"""

from __future__ import annotations

import html
import re
import shutil
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from factories import dead_process_tag
from fastapi import Request, Response
from fastapi.concurrency import run_in_threadpool
from routerkit import TOKEN
from test_dashboard import browse, page_state, text_of, view
from test_ui_api import add_failures

from manymodels.registry import Registry
from manymodels.registry.entities import PartitionOutcome, Run
from serving.app import create_app
from serving.local import running_server
from serving.settings import Settings

pytest_plugins = ["tests.serving.test_dashboard"]  # the chromium and shots fixtures

PLANNED = [f"store=70,brand=b{i}" for i in range(8)]


def run_row(dom: str, run_id: str) -> str:
    return dom.split(f'<tr data-run="{run_id}"')[1].split("</tr>")[0]


def attribute(row: str, name: str) -> str:
    found = re.search(rf'{name}="([^"]*)"', row)
    return found.group(1) if found else ""


def start_run(reg: Registry, run_id: str = "inprogress0001", owner: str = "") -> str:
    """A run the pipeline would have started two minutes ago (by process ``owner``, a
    ``writer_tag``) and beating now, with 2 of its 8 partitions recorded (one chunk: one
    skipped, one failed)."""
    started = (datetime.now(UTC) - timedelta(minutes=2)).isoformat(timespec="microseconds")
    reg.store.create_run(
        Run(run_id=run_id, kind="retrain", status="running", spec_name="router-test",
            spec_hash="0" * 64, spec={"partition_by": ["store", "brand"]},
            data_source="sales.csv", data_fingerprint="f" * 64, started_at=started,
            ended_at=None, n_partitions=len(PLANNED), n_trained=0, n_skipped=0, n_failed=0,
            options={"owner": owner} if owner else {})
    )  # fmt: skip
    reg.store.beat(run_id)  # its process is alive now, as a training process says every 30 s
    reg.store.record(run_id, [], [outcome(PLANNED[0], "skipped"), outcome(PLANNED[1], "failed")],
                     libraries={})  # fmt: skip
    return run_id


def outcome(key: str, status: str) -> PartitionOutcome:
    return PartitionOutcome(key, status, "ValueError", f"{status} in a test", 5)  # type: ignore[arg-type]


@pytest.mark.slow
def test_the_runs_panel_shows_a_finished_runs_counts(
    chromium: str, trained: Path, tmp_path: Path, shots: Path
) -> None:
    root = add_failures(Path(shutil.copytree(trained, tmp_path / "registry")))
    with Registry(root) as reg:
        running = start_run(reg)
        killed = start_run(reg, "killedrun00001", owner=dead_process_tag())
    with running_server(Settings(registry=root, admin_token=TOKEN)) as base:
        api = httpx.get(f"{base}/v1/runs").json()["runs"]
        dom = browse(chromium, view(base, runs="recent"), tmp_path)
        assert page_state(dom) == "ready", text_of(dom, "status")
        assert re.findall(r'<tr data-run="([^"]*)"', dom) == [r["run_id"] for r in api]
        finished = next(r for r in api if r["status"] == "completed" and r["planned"] == 5)
        row = html.unescape(run_row(dom, finished["run_id"]))
        assert "5 of 5 done (100 %)" in row
        assert "1 trained, 3 skipped, 1 failed" in row
        assert '<span class="seg trained" style="width: 20%">' in row
        assert '<span class="seg skipped" style="width: 60%">' in row
        assert ">completed<" in row
        assert f"{len(api)} run(s), newest first; 1 running" in text_of(dom, "runs-note")
        assert "2 of 8 done" in html.unescape(run_row(dom, running))
        gone = html.unescape(run_row(dom, killed))  # not counted as running, never polled
        assert '<td class="bad">running (process gone)<' in gone and "2 of 8 done" in gone
        browse(
            chromium, view(base, runs="recent"), tmp_path, screenshot=shots / "dashboard-runs.png"
        )


@pytest.mark.slow
def test_a_run_in_progress_moves_on_the_page_while_it_runs(
    chromium: str, trained: Path, tmp_path: Path
) -> None:
    """Each time the page polls the running run, one more partition has been recorded (with
    the registry's API, just before the router answers): the bar the page shows after its
    refreshes is the registry's, and it moved once per refresh."""
    root = Path(shutil.copytree(trained, tmp_path / "registry"))
    settings = Settings(registry=root, admin_token=TOKEN)
    with Registry(root) as reg:
        run_id = start_run(reg)
        recorded = [2]
        app = create_app(settings)

        @app.middleware("http")
        async def one_more_chunk(
            request: Request, call_next: Callable[[Request], Awaitable[Response]]
        ) -> Response:
            if request.url.path == f"/v1/runs/{run_id}" and recorded[0] < len(PLANNED) - 1:
                key = PLANNED[recorded[0]]
                await run_in_threadpool(
                    reg.store.record, run_id, [], [outcome(key, "skipped")], libraries={}
                )
                recorded[0] += 1
            return await call_next(request)

        with running_server(settings, app=app) as base:
            dom = browse(chromium, view(base, runs="recent"), tmp_path)
            assert page_state(dom) == "ready", text_of(dom, "status")
            now = httpx.get(f"{base}/v1/runs/{run_id}").json()
    polls = int(attribute(dom.split('id="runs-view"')[1], "data-polls") or 0)
    row = run_row(dom, run_id)
    shown = int(attribute(row, "data-done"))
    assert polls >= 2, "the page did not refresh the running run"
    assert shown == 2 + polls  # one partition more at each refresh, each one shown
    assert now["done"] >= shown and now["status"] == "running"
    assert f"{shown} of 8 done" in html.unescape(row)
    assert ">running<" in row
