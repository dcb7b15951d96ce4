"""Tests for manymodels.execution: chunk planning and the in-process and Ray backends."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from typing import Any

import numpy as np
import pytest
from native_threads import host_env

from manymodels.exceptions import TrainingError
from manymodels.execution import (
    MAX_PARTITIONS_PER_CHUNK,
    RAY_MIN_WORK,
    SCORE_RAY_MIN_PARTITIONS,
    InProcessBackend,
    RayBackend,
    choose_backend,
    choose_scoring_backend,
    make_backend,
    plan_chunks,
)


def offsets_of(sizes: list[int] | np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)


def check_cover(chunks: list[tuple[int, int]], n: int) -> None:
    """Every partition exactly once, in order, no empty chunk."""
    covered = [i for a, b in chunks for i in range(a, b)]
    assert covered == list(range(n))
    assert all(b > a for a, b in chunks)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 100, 2_500, 20_000])
@pytest.mark.parametrize("workers", [1, 2, 16])
def test_every_partition_exactly_once(n: int, workers: int) -> None:
    sizes = np.random.default_rng(n).integers(1, 50, n)
    chunks = plan_chunks(offsets_of(sizes), workers)
    check_cover(chunks, n)
    assert all(b - a <= MAX_PARTITIONS_PER_CHUNK for a, b in chunks)


def test_no_partitions_no_chunks() -> None:
    assert plan_chunks(np.array([0], dtype=np.int64), 4) == []


def test_large_n_is_not_one_task_per_partition() -> None:
    chunks = plan_chunks(offsets_of(np.full(100_000, 20)), workers=2)
    check_cover(chunks, 100_000)
    assert len(chunks) == 100  # bounded by max partitions per chunk, not by N
    assert len(plan_chunks(offsets_of(np.full(2_000, 30)), workers=2)) == 8


def test_chunks_balance_rows() -> None:
    sizes = np.random.default_rng(0).integers(5, 200, 5_000)
    offsets = offsets_of(sizes)
    chunks = plan_chunks(offsets, workers=4)
    rows = [int(offsets[b] - offsets[a]) for a, b in chunks]
    ideal = offsets[-1] / len(chunks)
    assert len(chunks) == 16
    assert max(rows) <= ideal + sizes.max()
    assert min(rows) >= ideal - sizes.max()


def test_a_huge_partition_does_not_drag_in_more_than_a_share() -> None:
    sizes = [10] * 50 + [100_000] + [10] * 50
    offsets = offsets_of(sizes)
    chunks = plan_chunks(offsets, workers=2)
    check_cover(chunks, len(sizes))
    share = offsets[-1] / (2 * 4)
    assert max(int(offsets[b] - offsets[a]) for a, b in chunks) <= 100_000 + share


@pytest.mark.parametrize("max_partitions", [1, 3, 10])
def test_respects_max_partitions_per_chunk(max_partitions: int) -> None:
    sizes = [1] * 10 + [1_000] + [1] * 40
    chunks = plan_chunks(offsets_of(sizes), workers=1, max_partitions=max_partitions)
    check_cover(chunks, len(sizes))
    assert max(b - a for a, b in chunks) <= max_partitions


# ------------------------------------------------------------------------------ backends
def collect(backend: Any, fn: Any, items: list[Any], *shared: Any) -> dict[int, Any]:
    out: dict[int, Any] = {}
    for i, result in backend.map_unordered(fn, items, *shared):
        assert i not in out
        out[i] = result
    return out


def test_in_process_backend_yields_every_result_and_errors() -> None:
    backend = InProcessBackend()
    results = collect(backend, json.loads, ["1", "not json", "[2]"])
    assert results[0] == 1
    assert isinstance(results[1], json.JSONDecodeError)
    assert results[2] == [2]
    assert collect(backend, textwrap.indent, ["a", "b"], "> ") == {0: "> a", 1: "> b"}
    backend.cancel()
    backend.close()


@pytest.mark.parametrize(
    ("name", "rows", "partitions", "address", "cpus", "chosen", "why"),
    [
        ("ray", 10, 2, None, 8, "ray", "--backend ray"),  # forced either way
        ("local", 10**9, 10**5, "10.0.0.1:6379", 8, "local", "--backend local"),
        ("auto", 10, 2, "10.0.0.1:6379", 8, "ray", "a Ray cluster was given"),
        ("auto", 10**9, 1, None, 8, "local", "one partition is one task"),
        ("auto", 10**9, 10**5, None, 1, "local", "one CPU"),
        ("auto", RAY_MIN_WORK // 2 - 1, 10**4, None, 8, "local", "small job"),
        ("auto", RAY_MIN_WORK // 2, 10**4, None, 8, "ray", "large job"),
    ],
)
def test_auto_backend_follows_the_documented_rule(
    name: str, rows: int, partitions: int, address: str | None, cpus: int, chosen: str, why: str
) -> None:
    got, reason = choose_backend(
        name, rows=rows, configurations=2, partitions=partitions, address=address, cpus=cpus
    )
    assert got == chosen and why in reason


def test_an_unknown_backend_is_refused() -> None:
    with pytest.raises(TrainingError, match="unknown backend 'spark'"):
        choose_backend("spark", rows=1, configurations=1, partitions=1)


@pytest.mark.parametrize(
    ("name", "partitions", "address", "cpus", "chosen"),
    [
        ("auto", SCORE_RAY_MIN_PARTITIONS - 1, None, 8, "local"),
        ("auto", SCORE_RAY_MIN_PARTITIONS, None, 8, "ray"),
        ("auto", SCORE_RAY_MIN_PARTITIONS, None, 1, "local"),  # one CPU: nothing in parallel
        ("auto", 1, "10.0.0.1:6379", 1, "ray"),  # a cluster given: it scores
        ("ray", 1, None, 8, "ray"),
        ("local", 10**6, "10.0.0.1:6379", 8, "local"),
    ],
)
def test_scoring_backend_follows_the_documented_rule(
    name: str, partitions: int, address: str | None, cpus: int, chosen: str
) -> None:
    got = choose_scoring_backend(name, partitions=partitions, address=address, cpus=cpus)
    assert got == chosen


def test_an_unknown_scoring_backend_is_refused() -> None:
    with pytest.raises(TrainingError, match="unknown backend 'spark'"):
        choose_scoring_backend("spark", partitions=1)


def test_make_backend() -> None:
    assert isinstance(make_backend("local"), InProcessBackend)
    with pytest.raises(TrainingError, match="unknown backend 'spark'"):
        make_backend("spark")


def test_ray_backend_yields_every_result(ray_session: Any) -> None:
    backend = RayBackend()
    assert backend.workers == 2
    items = [str(i) for i in range(20)]
    assert collect(backend, json.loads, items) == {i: i for i in range(20)}
    assert collect(backend, textwrap.indent, ["a", "b", "c"], "> ") == {
        0: "> a", 1: "> b", 2: "> c"
    }  # fmt: skip


def test_ray_backend_yields_a_raising_task_as_its_exception(ray_session: Any) -> None:
    backend = RayBackend()
    results = collect(backend, json.loads, ["1", "not json", "[2]", "{"])
    assert results[0] == 1
    assert results[2] == [2]
    for i in (1, 3):
        assert isinstance(results[i], ValueError)
        assert "Expecting" in str(results[i])


def test_ray_backend_reuses_and_leaves_an_initialised_ray(ray_session: Any) -> None:
    backend = RayBackend()
    backend.close()
    assert ray_session.is_initialized()
    assert collect(RayBackend(), json.loads, ["3"]) == {0: 3}


def _pool_threads(_item: Any) -> list[int]:
    from threadpoolctl import threadpool_info

    return [pool["num_threads"] for pool in threadpool_info()]


def test_in_process_fits_use_one_thread_per_native_pool_as_ray_workers_do() -> None:
    """The pools start at two threads whatever the tests' own limit (``native_threads``):
    one thread inside the map is then the backend's doing, two after it its restoring."""
    import sklearn.ensemble  # noqa: F401  (loads the OpenMP runtime HistGradientBoosting uses)
    from threadpoolctl import threadpool_info, threadpool_limits

    with threadpool_limits(limits=2):
        before = [pool["num_threads"] for pool in threadpool_info()]
        assert before and set(before) == {2}, before
        ((_, inside),) = list(InProcessBackend().map_unordered(_pool_threads, [0]))
        assert inside and set(inside) == {1}, inside
        assert [pool["num_threads"] for pool in threadpool_info()] == before  # restored after


# Two in-process runs in a host's threads overlap: A starts, B starts, A ends, B ends. In a
# fresh interpreter: OpenBLAS honours a thread's setting only until the main thread made one.
OVERLAPPING_RUNS = r"""
import json, threading
import sklearn.ensemble  # the OpenMP runtime too
from threadpoolctl import threadpool_info
from manymodels.execution import InProcessBackend

def threads(api):
    return sorted(p["num_threads"] for p in threadpool_info() if p["user_api"] == api)
a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
seen = {"before": threads("blas")}
def fit_a(_item):
    a_in.set()
    assert b_in.wait(30)
    seen["openmp_a"] = threads("openmp")
def fit_b(_item):
    b_in.set()
    assert a_out.wait(30)
    seen["openmp_b"] = threads("openmp")
def run_a():
    list(InProcessBackend().map_unordered(fit_a, [0]))
    a_out.set()
def run_b():
    assert a_in.wait(30)
    list(InProcessBackend().map_unordered(fit_b, [0]))
runs = [threading.Thread(target=run_a), threading.Thread(target=run_b)]
[t.start() for t in runs]
[t.join() for t in runs]
seen["after"] = threads("blas")
print(json.dumps(seen))
"""


def test_overlapping_in_process_runs_in_threads_leave_blas_as_they_found_it() -> None:
    """BLAS's thread count is the process's: A saved 2 and set 1, B saved 1, A restored 2,
    B restored 1 — the host's BLAS kept one thread for the rest of the process."""
    run = subprocess.run(
        [sys.executable, "-c", OVERLAPPING_RUNS],
        capture_output=True,
        text=True,
        timeout=120,
        env=host_env(),  # the host's pool sizes, not the tests' one thread
    )
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout.splitlines()[-1])
    assert seen["after"] == seen["before"], seen
    assert set(seen["openmp_a"]) == set(seen["openmp_b"]) == {1}, seen  # each thread's own


# A pool brought by an import after the first in-process map (LightGBM's OpenMP after a run of
# Ridge fits), in a fresh interpreter where no OpenMP runtime is loaded yet.
POOL_LOADED_LATER = r"""
import json, sys
from threadpoolctl import threadpool_info
from manymodels import execution
from manymodels.execution import InProcessBackend

def openmp(_item):
    return sorted(p["num_threads"] for p in threadpool_info() if p["user_api"] == "openmp")
first = list(InProcessBackend().map_unordered(openmp, [0]))[0][1]
looked = execution._controller()
again = execution._controller()
import sklearn.ensemble  # loads the OpenMP runtime HistGradientBoosting uses
later = list(InProcessBackend().map_unordered(openmp, [0]))[0][1]
print(json.dumps({"first": first, "later": later, "same": looked is again,
                  "fresh": execution._controller() is not looked}))
"""


def test_in_process_maps_look_for_thread_pools_once_and_again_after_an_import() -> None:
    """Each in-process task walked every loaded library to limit the pools (~3 ms a task,
    9 ms under load: 3 % of pizzaplace's one spec in process). Now the pools are looked for
    once, and again once a module was imported since: a pool loaded later is limited too."""
    run = subprocess.run(
        [sys.executable, "-c", POOL_LOADED_LATER],
        capture_output=True,
        text=True,
        timeout=120,
        env=host_env(),  # the host's pool sizes, not the tests' one thread
    )
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout.splitlines()[-1])
    assert seen["first"] == [], seen  # no OpenMP runtime before the import
    assert seen["later"] and set(seen["later"]) == {1}, seen
    assert seen["same"] and seen["fresh"], seen


# ------------------------------------------------------------------------ a Ray with no CPU free
def _notices(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "manymodels.execution"]


def test_a_run_waiting_on_a_cluster_with_no_free_cpu_says_why(
    ray_session: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The host's Ray, its CPUs held by its own actor: a run waited for ever, saying nothing.
    Now one line after ``NOTICE_SECONDS``; the run goes on once a CPU frees."""
    import threading
    import time

    import manymodels.execution

    monkeypatch.setattr(manymodels.execution, "NOTICE_SECONDS", 0.5)
    caplog.set_level(logging.WARNING, logger="manymodels.execution")

    @ray_session.remote(num_cpus=2)
    class Hog:
        def ready(self) -> bool:
            return True

    hog = Hog.remote()
    assert ray_session.get(hog.ready.remote())
    backend = RayBackend()
    results: dict[int, Any] = {}
    run = threading.Thread(
        target=lambda: results.update(backend.map_unordered(json.loads, ["1", "2"])), daemon=True
    )
    try:
        run.start()
        deadline = time.monotonic() + 20
        while not _notices(caplog) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _notices(caplog) == [
            "waiting for Ray: no free CPU on the cluster (0 of 2 available) and none of the "
            "2 task(s) this run submitted has finished after 0.5 s: other work (actors, "
            "tasks) may hold them; the run goes on as they free"
        ]
        assert not results
    finally:
        ray_session.kill(hog)  # the session's Ray is every later test's
        run.join(60)
    assert results == {0: 1, 1: 2} and len(_notices(caplog)) == 1

    # CPUs free when it starts: its own tasks holding them longer is no reason to say anything
    while ray_session.available_resources().get("CPU", 0) < 2:  # Ray's view lags its tasks
        assert time.monotonic() < deadline + 60
        time.sleep(0.05)
    caplog.clear()
    nap = lambda seconds: time.sleep(seconds)  # noqa: E731 (ray.remote takes no builtin)
    assert collect(RayBackend(), nap, [1.0, 1.0, 1.0]) == {0: None, 1: None, 2: None}
    assert _notices(caplog) == []


NO_CPU = r"""
import json, logging, threading
import ray
from manymodels.exceptions import TrainingError
from manymodels.execution import RayBackend

def run_one(backend):
    "What a run of one task gives: its error, or, cancelled after 3 s of waiting, its result"
    out = {}
    def run():
        try:
            for i, result in backend.map_unordered(json.loads, ["1"]):
                out[str(i)] = type(result).__name__
        except TrainingError as e:
            out["error"] = str(e)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(3)
    backend.cancel()
    thread.join(60)
    backend.close()
    return out

logging.basicConfig(format="%(name)s: %(message)s")
print(json.dumps(run_one(RayBackend(num_cpus=0))), flush=True)  # ours: no node can join it
ray.init(address="local", num_cpus=0, include_dashboard=False, log_to_driver=False)
print(json.dumps(run_one(RayBackend())), flush=True)  # the host's: an autoscaler's node may
ray.shutdown()
"""


@pytest.mark.slow
def test_a_ray_without_cpus_is_refused_or_said_at_once() -> None:
    """A run on a Ray with no CPU at all waited for ever: refused on the Ray manymodels started
    (nothing can add one), said at once on the host's (an autoscaler may)."""
    run = subprocess.run(
        [sys.executable, "-c", NO_CPU], capture_output=True, text=True, timeout=300
    )  # two Ray start-ups: seconds each on a busy machine
    assert run.returncode == 0, run.stderr[-3000:]
    ours, hosts = (json.loads(line) for line in run.stdout.splitlines()[-2:])
    assert ours == {
        "error": "manymodels' embedded Ray has no CPU (0 in all) and each training task needs "
        "one: give it num_cpus of 1 or more, or train with backend='local'"
    }
    assert hosts == {"0": "TaskCancelledError"}  # it waited, as it should
    said = [line for line in run.stderr.splitlines() if line.startswith("manymodels.execution")]
    assert said == [
        "manymodels.execution: waiting for Ray: the Ray cluster has no CPU (0 in all) and each "
        "training task needs one: nothing runs until a node with CPUs joins (an autoscaler may "
        "add one); stop with Ctrl-C, or train with backend='local'"
    ]
