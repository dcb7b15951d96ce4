"""Run progress (#15): a run's recorded outcomes counted by status, read from the registry, and
``GET /v1/runs`` / ``GET /v1/runs/{run_id}`` over them — a finished run's counts, a run in
progress moving chunk by chunk, and progress that never steps back when a run is resumed."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from factories import dead_process_tag, other_machine_tag
from routerkit import TOKEN, open_client

from manymodels.registry import Registry
from manymodels.registry.entities import PartitionOutcome, Run
from manymodels.registry.progress import progress_of
from manymodels.tempnames import writer_tag
from serving.settings import Settings

pytest_plugins = ["tests.serving.test_ui_api"]


def test_a_finished_runs_progress_matches_its_outcomes(with_failures: Path) -> None:
    with Registry.open(with_failures) as reg:
        for run in reg.list_runs(limit=5):
            outcomes = reg.store.run_outcomes(run.run_id, limit=1_000_000)
            assert reg.run_progress(run.run_id) == dict(Counter(o.status for o in outcomes))
        assert reg.run_progress("no-such-run") == {}


# ---------------------------------------------------------------------------- helpers
def start_run(reg: Registry, n: int, *, minutes_ago: float = 2.0, owner: str = "") -> str:
    """A run as the pipeline creates one (``create_run``), ``n`` partitions planned, started
    ``minutes_ago`` by process ``owner`` (a ``writer_tag``): outcomes are then recorded with
    ``record``, as chunks finish."""
    started = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    run_id = f"progress{n:04d}{int(minutes_ago * 10):04d}"
    reg.store.create_run(
        Run(run_id=run_id, kind="train", status="running", spec_name="store-sales",
            spec_hash="0" * 64, spec={"partition_by": ["store", "brand"]},
            data_source="/data/private/sales.csv", data_fingerprint="f" * 64,
            started_at=started.isoformat(timespec="microseconds"), ended_at=None,
            n_partitions=n, n_trained=0, n_skipped=0, n_failed=0,
            options={"owner": owner} if owner else {})
    )  # fmt: skip
    reg.store.beat(run_id)  # its process is alive now, as a training process says every 30 s
    return run_id


def outcomes(status: str, *keys: str) -> list[PartitionOutcome]:
    return [PartitionOutcome(k, status, "ValueError" if status != "skipped" else "",  # type: ignore[arg-type]
                             f"{status} in a test", 5) for k in keys]  # fmt: skip


@pytest.fixture
def api(with_failures: Path, tmp_path: Path) -> Iterator[tuple[Any, Path]]:
    root = Path(shutil.copytree(with_failures, tmp_path / "registry"))
    with open_client(Settings(registry=root, admin_token=TOKEN)) as c:
        yield c, root


# ---------------------------------------------------------------------------- the API
def test_the_runs_list_pages_newest_first_with_each_runs_counts(api: tuple[Any, Path]) -> None:
    client, root = api
    with Registry.open(root) as reg:
        expected = reg.list_runs(limit=100)
    page = client.get("/v1/runs").json()
    assert [r["run_id"] for r in page["runs"]] == [r.run_id for r in expected]
    assert page["next_after"] is None and page["total"] == len(expected)
    newest = page["runs"][0]  # add_failures: 3 too small, 1 broken, 1 that trains
    assert newest["status"] == "completed" and newest["planned"] == 5
    assert newest["counts"] == {"trained": 1, "skipped": 3, "failed": 1, "lost": 0}
    assert (newest["done"], newest["share_done"], newest["eta_seconds"]) == (5, 1.0, None)
    assert newest["rate_per_second"] > 0 and newest["elapsed_seconds"] > 0

    first = client.get("/v1/runs", params={"limit": 1}).json()
    assert [r["run_id"] for r in first["runs"]] == [expected[0].run_id]
    rest = client.get("/v1/runs", params={"limit": 100, "after": first["next_after"]}).json()
    assert [r["run_id"] for r in rest["runs"]] == [r.run_id for r in expected[1:]]
    assert first["total"] == rest["total"] == len(expected) > 1  # every page's, not the page's

    assert client.get("/v1/runs", params={"after": "nosuchrun"}).status_code == 404
    assert client.get("/v1/runs", params={"after": "x" * 33}).status_code == 422
    assert client.get("/v1/runs", params={"limit": 0}).status_code == 422


def test_one_finished_run_counts_its_outcomes_and_the_fallback_apart(
    api: tuple[Any, Path],
) -> None:
    client, root = api
    with Registry.open(root) as reg:
        first = reg.list_runs(limit=100)[-1]  # the sales run: its partitions and the fallback
    got = client.get(f"/v1/runs/{first.run_id}")
    assert got.status_code == 200, got.text
    detail = got.json()
    assert detail["planned"] == first.n_partitions == 12  # 10 trained, 2 too small
    assert detail["counts"] == {"trained": 10, "skipped": 2, "failed": 0, "lost": 0}
    assert detail["fallback"] == "trained" and detail["done"] == 12
    assert detail["share_done"] == 1.0 and detail["eta_seconds"] is None
    assert detail["resumed_at"] is None and detail["error"] is None
    missing = client.get("/v1/runs/nosuchrun")
    assert missing.status_code == 404 and "nosuchrun" in missing.json()["detail"]
    assert client.get(f"/v1/runs/{'x' * 33}").status_code == 422
    doc = client.get("/openapi.json").json()["paths"]
    assert "404" in doc["/v1/runs/{run_id}"]["get"]["responses"]
    assert "404" in doc["/v1/runs"]["get"]["responses"]


def test_a_running_run_moves_chunk_by_chunk_with_an_eta(api: tuple[Any, Path]) -> None:
    client, root = api
    keys = [f"store=50,brand=b{i}" for i in range(8)]
    with Registry(root) as reg:
        run_id = start_run(reg, len(keys))
        seen = [client.get(f"/v1/runs/{run_id}").json()]
        for chunk in (keys[:2], keys[2:5]):
            reg.store.record(run_id, [], outcomes("skipped", *chunk[:-1]) +
                             outcomes("failed", chunk[-1]), libraries={})  # fmt: skip
            seen.append(client.get(f"/v1/runs/{run_id}").json())
    assert [s["done"] for s in seen] == [0, 2, 5]
    assert [s["share_done"] for s in seen] == [0.0, 0.25, 0.625]
    now = seen[-1]
    assert now["status"] == "running" and now["planned"] == 8
    assert now["counts"] == {"trained": 0, "skipped": 3, "failed": 2, "lost": 0}
    assert now["rate_per_second"] == pytest.approx(5 / now["elapsed_seconds"], rel=0.05)
    assert now["eta_seconds"] == pytest.approx(3 / now["rate_per_second"], rel=1e-6)
    assert seen[0]["eta_seconds"] is None  # nothing settled yet: no rate to go by
    listed = next(r for r in client.get("/v1/runs").json()["runs"] if r["run_id"] == run_id)
    assert listed["done"] == 5
    assert listed["counts"] == {"trained": 0, "skipped": 3, "failed": 2, "lost": 0}
    assert client.get(f"/v1/runs/{run_id}").json()["data_source"] == "sales.csv"
    admin = {"Authorization": f"Bearer {TOKEN}"}
    shown = client.get(f"/v1/runs/{run_id}", headers=admin).json()["data_source"]
    assert shown == "/data/private/sales.csv"


def test_a_run_whose_process_is_gone_says_so_and_has_no_eta(api: tuple[Any, Path]) -> None:
    """A run still marked running whose process ended on this machine (killed) moves no more:
    the router says so, and gives no time left."""
    client, root = api
    keys = [f"store=51,brand=b{i}" for i in range(4)]
    with Registry(root) as reg:
        gone = start_run(reg, len(keys), minutes_ago=3.0, owner=dead_process_tag())
        alive = start_run(reg, len(keys), minutes_ago=4.0, owner=writer_tag())
        for run_id in (gone, alive):
            reg.store.record(run_id, [], outcomes("skipped", *keys[:2]), libraries={})
    seen = {r: client.get(f"/v1/runs/{r}").json() for r in (gone, alive)}
    assert seen[gone]["status"] == "running" and seen[gone]["process_gone"] is True
    assert seen[gone]["eta_seconds"] is None and seen[gone]["rate_per_second"] > 0
    assert seen[alive]["process_gone"] is False and seen[alive]["eta_seconds"] > 0
    listed = {r["run_id"]: r for r in client.get("/v1/runs").json()["runs"]}
    assert listed[gone]["process_gone"] and not listed[alive]["process_gone"]


def test_progress_never_steps_back_when_a_run_with_lost_partitions_is_resumed(
    api: tuple[Any, Path],
) -> None:
    """A task died: two partitions are ``lost``. They are not done, so resuming the run —
    which forgets their outcomes to train them again — leaves ``done`` where it was; the
    retried partitions then move it on. The rate after the resume is measured from it."""
    client, root = api
    keys = [f"store=60,brand=b{i}" for i in range(6)]
    done: list[int] = []

    def look() -> dict[str, Any]:
        got = client.get(f"/v1/runs/{run_id}").json()
        listed = next(r for r in client.get("/v1/runs").json()["runs"] if r["run_id"] == run_id)
        assert (listed["done"], listed["counts"].get("lost", 0)) == (
            got["done"],
            got["counts"].get("lost", 0),
        )  # the list (the run's row) and the detail (its outcomes) agree
        done.append(got["done"])
        return got

    with Registry(root) as reg:
        run_id = start_run(reg, len(keys), minutes_ago=30)
        reg.store.record(run_id, [], outcomes("skipped", *keys[:2]) + outcomes("lost", *keys[2:4]),
                         libraries={})  # fmt: skip
        reg.store.finish_run(run_id, "failed", error="2 of 6 partition(s) were lost")
        before = look()
        assert (
            before["counts"] == {"trained": 0, "skipped": 2, "failed": 0, "lost": 2}
            and before["done"] == 2
        )

        reg.store.reopen_run(run_id, len(keys))  # what `train --resume` does first
        resumed = look()
        assert resumed["status"] == "running" and resumed["resumed_at"] is not None
        assert (
            resumed["counts"] == {"trained": 0, "skipped": 2, "failed": 0, "lost": 0}
            and resumed["planned"] == 6
        )
        assert resumed["eta_seconds"] is None  # nothing settled since the resume yet

        reg.store.record(run_id, [], outcomes("failed", *keys[2:5]), libraries={})
        moving = look()
        # 3 settled since the resume, a moment ago: not 5 over the 30 minutes since the start
        assert moving["rate_per_second"] > 5 / (30 * 60)
        assert moving["eta_seconds"] == pytest.approx(1 / moving["rate_per_second"], rel=1e-6)
        reg.store.record(run_id, [], outcomes("skipped", keys[5]), libraries={})
        reg.store.finish_run(run_id, "completed")
        assert look()["share_done"] == 1.0
    assert done == sorted(done) and done == [2, 2, 5, 6]


def test_progress_of_counts_settled_outcomes_only() -> None:
    run = Run(run_id="r", kind="train", status="running", spec_name="s", spec_hash="h",
              spec={}, data_source="", data_fingerprint="", started_at="2026-01-01T00:00:00+00:00",
              ended_at=None, n_partitions=10, n_trained=0, n_skipped=0, n_failed=0)  # fmt: skip
    p = progress_of(run, {"trained": 3, "failed": 1, "lost": 2}, at="2026-01-01T00:00:08+00:00")
    assert (p.done, p.share_done, p.elapsed_seconds) == (4, 0.4, 8.0)
    assert (p.rate_per_second, p.eta_seconds) == (0.5, 12.0)
    empty = progress_of(
        Run(**{**run.to_dict(), "n_partitions": 0, "status": "completed"}), {},
        at="2026-01-01T00:00:08+00:00",
    )  # fmt: skip
    assert (empty.share_done, empty.rate_per_second, empty.eta_seconds) == (1.0, None, None)


def test_a_run_silent_on_another_machine_says_so_and_has_no_eta(api: tuple[Any, Path]) -> None:
    """Its process is another machine's (its pid cannot be looked up here) and has written no
    heartbeat for 2 hours: the router shows the silence, and gives no time left."""
    from sqlalchemy import update

    from manymodels.registry import schema as t

    client, root = api
    keys = [f"store=52,brand=b{i}" for i in range(4)]
    with Registry(root) as reg:
        silent = start_run(reg, len(keys), minutes_ago=200.0, owner=other_machine_tag())
        reg.store.record(silent, [], outcomes("skipped", *keys[:2]), libraries={})
        beat = (datetime.now(UTC) - timedelta(hours=2, minutes=1)).isoformat()
        with reg.store.engine.begin() as conn:
            conn.execute(update(t.runs).where(t.runs.c.run_id == silent).values(heartbeat_at=beat))
    seen = client.get(f"/v1/runs/{silent}").json()
    assert seen["status"] == "running" and seen["process_gone"] is False
    assert seen["state"] == "running (no heartbeat for 2 h)"
    assert seen["silent_seconds"] > 2 * 3600 and seen["heartbeat_at"] == beat
    assert seen["eta_seconds"] is None and seen["rate_per_second"] > 0
    listed = {r["run_id"]: r for r in client.get("/v1/runs").json()["runs"]}
    assert listed[silent]["state"] == "running (no heartbeat for 2 h)"


def test_a_run_stamped_ahead_on_another_machine_has_no_eta(api: tuple[Any, Path]) -> None:
    """Its process is another machine's, whose clock runs 3 h ahead: its last heartbeat is
    stamped 3 h ahead of this clock. Such a beat proves nothing (``run_busy.training_now``:
    the run blocks nothing and can be resumed), yet the router gave it a time left as if it
    moved; it gives none now, as for a silent run."""
    from sqlalchemy import update

    from manymodels.registry import schema as t

    client, root = api
    keys = [f"store=53,brand=b{i}" for i in range(4)]
    with Registry(root) as reg:
        ahead = start_run(reg, len(keys), minutes_ago=5.0, owner=other_machine_tag())
        reg.store.record(ahead, [], outcomes("skipped", *keys[:2]), libraries={})
        beat = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
        with reg.store.engine.begin() as conn:
            conn.execute(update(t.runs).where(t.runs.c.run_id == ahead).values(heartbeat_at=beat))
    seen = client.get(f"/v1/runs/{ahead}").json()
    assert seen["status"] == "running" and seen["heartbeat_at"] == beat
    assert seen["eta_seconds"] is None and seen["rate_per_second"] > 0
    listed = {r["run_id"]: r for r in client.get("/v1/runs").json()["runs"]}
    assert listed[ahead]["eta_seconds"] is None


def test_a_run_alive_here_stamped_ahead_keeps_its_eta_as_it_blocks_runs(
    api: tuple[Any, Path],
) -> None:
    """Its process is alive on this machine, its last heartbeat stamped 3 h ahead (this clock
    set back since): a live process proves more than a stamp, so ``training_now`` takes it for
    training (``RunBusy``); its time left followed a rule of its own and judged the stamp,
    showing none for a run that refused others as training. One rule now: it has one."""
    from sqlalchemy import update

    from manymodels.registry import schema as t
    from manymodels.run_busy import training_now

    client, root = api
    keys = [f"store=54,brand=b{i}" for i in range(4)]
    with Registry(root) as reg:
        alive = start_run(reg, len(keys), minutes_ago=6.0, owner=writer_tag())
        reg.store.record(alive, [], outcomes("skipped", *keys[:2]), libraries={})
        beat = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
        with reg.store.engine.begin() as conn:
            conn.execute(update(t.runs).where(t.runs.c.run_id == alive).values(heartbeat_at=beat))
        assert training_now(reg.get_run(alive))
    seen = client.get(f"/v1/runs/{alive}").json()
    assert seen["status"] == "running" and seen["process_gone"] is False
    assert seen["eta_seconds"] == pytest.approx(2 / seen["rate_per_second"], rel=1e-6)
    listed = {r["run_id"]: r for r in client.get("/v1/runs").json()["runs"]}
    assert listed[alive]["eta_seconds"] > 0


def test_a_run_stamped_ahead_on_another_machine_says_so(api: tuple[Any, Path]) -> None:
    """Its last heartbeat stamped 3 h ahead of this clock: the run's state read "running",
    as a live run's, though it blocks no run and can be resumed; it says what its beat is."""
    from sqlalchemy import update

    from manymodels.registry import schema as t

    client, root = api
    with Registry(root) as reg:
        ahead = start_run(reg, 4, minutes_ago=5.0, owner=other_machine_tag())
        beat = (datetime.now(UTC) + timedelta(hours=3, minutes=1)).isoformat()
        with reg.store.engine.begin() as conn:
            conn.execute(update(t.runs).where(t.runs.c.run_id == ahead).values(heartbeat_at=beat))
    seen = client.get(f"/v1/runs/{ahead}").json()
    assert seen["state"] == "running (heartbeat stamped 3 h ahead)", seen
    assert seen["silent_seconds"] is None and seen["process_gone"] is False
    listed = {r["run_id"]: r for r in client.get("/v1/runs").json()["runs"]}
    assert listed[ahead]["state"] == "running (heartbeat stamped 3 h ahead)"
