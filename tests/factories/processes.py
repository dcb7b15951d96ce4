"""Other processes and servers a test starts or waits on: a fresh interpreter, a router's
client, a job or a server that becomes ready, ``manymodels serve --ray-serve`` until its replicas
run, a child that takes Ctrl-C, a scheduler's output.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass


def imported_by(statement: str, modules: Iterable[str]) -> list[str]:
    """Which of ``modules`` a fresh interpreter has imported after running ``statement``:
    what keeps a light command light is asserted in a process of its own."""
    wanted = json.dumps(sorted(modules))
    found = f"sorted(set({wanted}) & set(sys.modules))"
    code = f"import json, sys\n{statement}\nprint(json.dumps({found}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


def job_ended(client: Any, location: str, headers: dict[str, str], timeout: float = 60) -> Any:
    """The job at ``location`` (a retrain's 202 ``Location``; ``client`` a router's
    ``TestClient`` or an ``httpx.Client`` on a running one) once it has succeeded or failed,
    polled until ``timeout`` seconds pass ("does not hang", not a timing)."""
    deadline = time.monotonic() + timeout
    while (job := client.get(location, headers=headers).json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
    return job


def open_client(settings: Any, **kwargs: Any) -> Any:
    """A ``fastapi.testclient.TestClient`` over a new router app of ``settings`` (use it as a
    context manager so the lifespan runs). Imported here without Starlette's notice that it
    prefers ``httpx2`` to ``httpx``: warnings are errors in this suite."""
    import warnings

    from serving.app import create_app

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*starlette.testclient.*httpx2")
        from fastapi.testclient import TestClient
    return TestClient(create_app(settings), **kwargs)


def wait_ready(
    url: str, server: subprocess.Popen[Any], *, timeout: float = 120, log: Path | None = None
) -> None:
    """Until ``manymodels serve`` at ``url`` answers ``/readyz`` 200; fails at once if its
    process ``server`` exits (with the end of its ``log`` if given), or after ``timeout``.
    One client for every probe: ``httpx.get`` builds one per call, and with it an SSL context
    (the CA bundle parsed: ~30 ms of CPU, ~0.2 s on a loaded machine), ten a second beside
    the starting server."""
    import httpx

    deadline = time.monotonic() + timeout
    with httpx.Client() as client:
        while True:
            try:
                if client.get(f"{url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert server.poll() is None, log.read_text()[-2000:] if log else "the router exited"
            assert time.monotonic() < deadline, "the router never became ready"
            time.sleep(0.1)


@contextmanager
def interruptible() -> Iterator[None]:
    """A child started inside takes Ctrl-C as a terminal would deliver it: SIGINT neither
    ignored nor blocked in this thread, which a child would inherit across exec (a test
    worker's libraries may have left either; CI once saw the child ignore the interrupt and
    finish its run)."""
    mask = signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    handler = signal.getsignal(signal.SIGINT)
    if handler == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        if handler == signal.SIG_IGN:
            signal.signal(signal.SIGINT, handler)


def forked_child_tag() -> tuple[int, str]:
    """A forked child's pid and the writer tag its temp files carry
    (``durable_files._TMP_TAG``), read from the child, which then leaves without any cleanup
    (``os._exit``); it has ended when this returns."""
    import os

    from manymodels import durable_files

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its tag, leave without running any cleanup
        try:
            os.write(write, durable_files._TMP_TAG.encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        child_tag = f.read()
    os.waitpid(pid, 0)
    return pid, child_tag


def firing_lines(out: str) -> list[str]:
    """The scheduler's stdout, one line per firing run, less those of firings skipped while the
    previous run still went (a slow run on a loaded machine): those are said on stdout too."""
    return [line for line in out.strip().splitlines() if "previous run is still going" not in line]


def wait_for(
    done: Path | Callable[[], object],
    what: str,
    *,
    timeout: float = 120,
    process: subprocess.Popen[Any] | None = None,
    output: Callable[[], str] | None = None,
    every: float = 0.05,
) -> None:
    """Until ``done`` holds: a file that exists (``SLOW_FIT_MODULE``'s ``fitting``) or a
    predicate that returns true, polled every ``every`` seconds, so that a test goes on from a
    state reached rather than from a sleep. Fails with an ``AssertionError`` naming ``what``
    (and ``output()``, a log's end, if given) once ``process`` has exited without it, or after
    ``timeout`` seconds: a bound for "does not hang", not a timing."""
    holds = done.exists if isinstance(done, Path) else done
    shown = (lambda: "\n" + output()) if output is not None else (lambda: "")
    deadline = time.monotonic() + timeout
    while not holds():
        if process is not None and process.poll() is not None:
            raise AssertionError(
                f"the process exited ({process.returncode}) before {what}{shown()}"
            )
        if time.monotonic() >= deadline:
            raise AssertionError(f"waited {timeout:g} s in vain for {what}{shown()}")
        time.sleep(every)


MANYMODELS = Path(sys.executable).parent / "manymodels"  # the console script, as users run it


def run_manymodels(env: dict[str, str], *args: object) -> subprocess.CompletedProcess[str]:
    """``manymodels`` with ``args`` (paths and numbers made strings) in a process of its own
    with ``env``, its output captured; ten minutes bound a hang, not a timing."""
    return subprocess.run(
        [MANYMODELS, *map(str, args)], capture_output=True, text=True, env=env, timeout=600
    )


def killed_in_a_fit(env: dict[str, str], blocked: Path, after: int, *args: object) -> None:
    """``manymodels`` with ``args`` (a run of ``slowfit:make`` models, ``env`` from
    ``slowfit_env``) killed with SIGKILL once it is held in its fit number ``after + 1``
    (``SLOW_FIT_MODULE``, ``blocked`` its ``SLOWFIT_DIR``): a run cut off mid-way at a point
    reached deterministically, the partitions before it committed, those after not."""
    blocked.mkdir()
    slow = {**env, "SLOWFIT_DIR": str(blocked), "SLOWFIT_AFTER": str(after)}
    process = subprocess.Popen(
        [MANYMODELS, *map(str, args)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=slow,
    )
    try:
        wait_for(blocked / "fitting", f"manymodels {args[0]} held in a fit", timeout=300,
                 process=process)  # fmt: skip
    finally:
        process.kill()
        process.wait(30)


def versions_numbered(registry: Path, version: int) -> int:
    """How many partitions of the SQLite registry at ``registry`` have a version
    ``version``: what a killed run committed."""
    import sqlite3

    with sqlite3.connect(registry / "registry.db") as conn:
        query = "select count(*) from model_versions where version = ?"
        (n,) = conn.execute(query, (version,)).fetchone()
    conn.close()  # the context manager commits, it does not close
    return int(n)


LOAD_STRETCH_MAX = 4.0


def loaded_bound(seconds: float) -> float:
    """``seconds``, a bound for "does not hang" that holds on a quiet machine, stretched by how
    loaded this one is: the 1-minute load average per core, at least 1, at most
    ``LOAD_STRETCH_MAX`` times. A wait ends on its signal, so the quiet path is as quick as
    before; on a 2-core CI machine at load ~16 starting an embedded Ray and two Serve replicas
    took more than 240 s, and a first request to a replica more than 30 s (the bounds those
    had), where nothing hung."""
    import os

    per_core = os.getloadavg()[0] / (os.cpu_count() or 1)
    return seconds * min(LOAD_STRETCH_MAX, max(1.0, per_core))


RAY_SERVE_STARTED = "router replica(s) at"  # serving/serve_run.py's line once every replica runs
RAY_OWN_BOUNDS = ("node timed out during startup", "HTTP proxies not available after")
"""What an embedded Ray says when a wait it hard-codes ran out on a loaded 2-core machine,
where nothing was wrong: its raylet not registered 30 s after it started
(``ray._private.node``), Serve's HTTP proxy not ready 60 s after ``serve.start`` asked for it
(``HTTP_PROXY_TIMEOUT``). The command exits 1; ``ray_serve_command`` starts it again, as
``raycluster.RayCluster`` starts a node again (``RAY_STARTS`` tries in all)."""
RAY_STARTS = 3


@dataclass
class RayServeCommand:
    """A ``manymodels serve --ray-serve`` that ``ray_serve_command`` started: its process, its
    output, and once it has stopped, its exit status and what of its process tree was left."""

    process: subprocess.Popen[bytes]
    log_path: Path
    tree: set[int] = field(default_factory=set)  # its descendants, seen while it ran (/proc)
    code: int | None = None  # its exit status, once stopped
    left: dict[int, str] = field(default_factory=dict)  # of ``tree``, alive 15 s+ after it

    def log(self) -> str:
        return self.log_path.read_text()


@contextmanager
def ray_serve_command(
    cmd: list[str | Path],
    *,
    env: dict[str, str],
    url: str,
    log_path: Path,
    timeout: float = 240,
    stop_timeout: float = 90,
) -> Iterator[RayServeCommand]:
    """``cmd`` (a ``manymodels serve --ray-serve`` serving at ``url``) as a user runs it, its
    output in ``log_path``, entered once every replica runs: the command says so in one line,
    and Serve's proxy answers ``/readyz`` (it may lag the line). Starting Ray and Serve takes
    20-60 s on a busy 2-core machine, so ``timeout`` bounds a hang, not a timing (stretched
    on a loaded one: ``loaded_bound``); a command that exits as a wait of Ray's own ran out
    is started again (``RAY_OWN_BOUNDS``). On leaving, SIGTERM as a user's Ctrl-C or systemd
    sends, then ``code`` and ``left`` are set (the caller asserts on them: a start-up
    failure's tests need other checks); its process tree is read from ``/proc`` when there is
    one, both once started and when the body ends, as processes are told apart only while
    their parent lives."""
    from proctree import descendants, wait_gone

    has_proc = Path("/proc").is_dir()
    timeout = loaded_bound(timeout)
    with log_path.open("w+") as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        started = RayServeCommand(process, log_path)
        try:
            for attempt in range(1, RAY_STARTS + 1):
                try:
                    wait_for(
                        lambda: RAY_SERVE_STARTED in log_path.read_text() and _answers_ready(url),
                        f"{url} to run every router replica",
                        timeout=timeout,
                        process=process,
                        output=lambda: log_path.read_text()[-3000:],
                        every=0.5,
                    )
                    break
                except AssertionError:
                    text = log_path.read_text()
                    missed = any(words in text for words in RAY_OWN_BOUNDS)
                    if attempt == RAY_STARTS or process.poll() is None or not missed:
                        raise
                log.seek(0)
                log.truncate()  # the next start's output alone, as the caller reads it
                process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
                started.process = process
            if has_proc:
                started.tree = descendants(process.pid)
            yield started
        finally:
            if has_proc and process.poll() is None:
                started.tree |= descendants(process.pid)
            process.send_signal(signal.SIGTERM)
            try:
                started.code = process.wait(loaded_bound(stop_timeout))
            except subprocess.TimeoutExpired:
                process.kill()  # leave no command behind a failed test
                process.wait()
                raise
    started.left = wait_gone(started.tree, timeout=loaded_bound(15))


def _answers_ready(url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False
