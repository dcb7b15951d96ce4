"""Training, promotion, rollback and gc while a real router serves under load: no 5xx, and no
answer from a version that was already deleted or that production never pointed at.

``manymodels serve`` runs as a user starts it (its own process, uvicorn, an admin token, a
cache smaller than the registry so cold keys load), over a registry of 120 partitions. Three
client threads send single-partition predicts (mostly to a few hot keys), batch predicts over
many partitions and predicts for unknown keys (the fallback). Meanwhile one thread runs
``manymodels train`` on subsets (new versions, promoted by the spec), one promotes random
versions and rolls back through the admin API and the CLI in turn, one moves production many
times a second through the library (as another router or a script would: this router sees
those moves only at its next refresh), and one runs ``manymodels gc --keep 1`` in a loop with
the shipped graces.

The registry's versions are made to look two hours old (their alias moves and
artifact files), so the shipped graces let gc delete that history while the test runs — that is
what gives a router something to trip over. Every answer names the version that served it; a
version counts as *stale* when the registry no longer holds it once the answer has arrived.
"""

from __future__ import annotations

import json
import os
import random
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from factories import wait_ready

from manymodels.exceptions import NothingToRollBack, VersionNotFound
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.samples import synthetic

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

BIN = Path(sys.executable).parent
TOKEN = "churn-admin-token"
PARTITIONS = 120
ROWS = 30
HOT = [f"pid={i}" for i in range(5)]
CHURN_SECONDS = 30.0
CHURN_LIMIT = 120.0  # seconds: the churn goes on at most this long
CLIENTS = 3
SPEC = """
name = "churn"
partition_by = ["pid"]
target = "y"
features = ["x0", "x1", "x2", "x3", "x4"]
min_rows = 10
[validation]
strategy = "holdout"
size = 0.25
[[candidates]]
estimator = "sklearn.linear_model.Ridge"
params = { alpha = [1.0] }
[fallback]
enabled = true
[promotion]
policy = "always"
"""


@dataclass
class Tally:
    """What the clients saw; appended to from several threads (list.append is atomic)."""

    answers: list[tuple[int, list[tuple[str, int]]]] = field(default_factory=list)
    stale: list[tuple[str, int]] = field(default_factory=list)  # gone when the answer came
    connection_errors: list[str] = field(default_factory=list)


@dataclass
class Operations:
    deleted: set[tuple[str, int]] = field(default_factory=set)
    gc_runs: int = 0
    trains: int = 0
    moves: Counter[str] = field(default_factory=Counter)  # by how and with what outcome
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, what: str, expected: bool, said: str = "") -> None:
        with self.lock:
            self.moves[what] += 1
            if not expected:
                self.problems.append(f"{what}: {said[-500:]}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _age(root: Path, hours: float = 2.0) -> None:
    """Make the registry's history look ``hours`` old: its alias moves and artifact files."""
    then = datetime.now(UTC) - timedelta(hours=hours)
    with closing(sqlite3.connect(root / "registry.db")) as conn, conn:
        conn.execute("update alias_history set at = ?", (then.isoformat(timespec="microseconds"),))
    stamp = then.timestamp()
    for path in (root / "artifacts").rglob("*"):
        if path.is_file():
            os.utime(path, (stamp, stamp))


def _versions(root: Path, key: str) -> list[int]:
    db = f"file:{root / 'registry.db'}?mode=ro"
    with closing(sqlite3.connect(db, uri=True, timeout=10)) as conn:
        rows = conn.execute("select version from model_versions where key = ?", (key,)).fetchall()
    return [int(v) for (v,) in rows]


def _production_ever(root: Path) -> set[tuple[str, int]]:
    """Every (key, version) production pointed at, from the alias history."""
    with closing(sqlite3.connect(root / "registry.db")) as conn:
        rows = conn.execute(
            "select key, to_version from alias_history "
            "where alias = 'production' and to_version is not null"
        ).fetchall()
    return {(k, int(v)) for k, v in rows}


def _client(root: Path, url: str, seed: int, stop: threading.Event, tally: Tally) -> None:
    """Send predicts until stopped; after each answer, ask the registry whether every version
    that served it still exists (it was deleted before the answer arrived if not)."""
    rng = random.Random(seed)
    rows = [{"x0": 0.1, "x1": -0.2, "x2": 0.3, "x3": 1.0, "x4": 0.0}]
    db = sqlite3.connect(f"file:{root / 'registry.db'}?mode=ro", uri=True, timeout=30)
    with httpx.Client(base_url=url, timeout=30) as http, closing(db):
        while not stop.is_set():
            draw = rng.random()
            try:
                if draw < 0.6:
                    key = (
                        rng.choice(HOT)
                        if rng.random() < 0.7
                        else f"pid={rng.randrange(PARTITIONS)}"
                    )
                    r = http.post(f"/v1/partitions/{key}/predict", json={"rows": rows * 2})
                    served = [(r.json()["served_by"], r.json()["version"])] if r.is_success else []
                elif draw < 0.9:
                    pids = [*rng.sample(range(PARTITIONS), 8), PARTITIONS + 7]  # + an unknown key
                    batch = [{"pid": p, **rows[0]} for p in pids]
                    r = http.post("/v1/predict", json={"rows": batch})
                    answers = r.json()["predictions"] if r.is_success else []
                    served = [(a["served_by"], a["version"]) for a in answers]
                else:
                    r = http.post(
                        f"/v1/partitions/pid={PARTITIONS + 1}/predict", json={"rows": rows}
                    )
                    served = [(r.json()["served_by"], r.json()["version"])] if r.is_success else []
            except httpx.TransportError as e:
                tally.connection_errors.append(f"{type(e).__name__}: {e}")
                continue
            tally.answers.append((r.status_code, served))
            for key, version in set(served):
                q = "select 1 from model_versions where key = ? and version = ?"
                if db.execute(q, (key, version)).fetchone() is None:
                    tally.stale.append((key, version))


def _run(*args: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BIN / "manymodels", *map(str, args)], capture_output=True, text=True, timeout=180
    )


def _trainer(root: Path, tmp: Path, stop: threading.Event, ops: Operations) -> None:
    """``manymodels train`` on two hot and ten random partitions: new versions, promoted."""
    rng = random.Random(7)
    for round_ in range(1, 10**6):
        if stop.is_set():
            return
        pids = [0, 1, *rng.sample(range(5, PARTITIONS), 10)]
        df = synthetic(PARTITIONS, ROWS, seed=100 + round_)
        data = tmp / f"round{round_}.parquet"
        df[df["pid"].isin(pids)].to_parquet(data)
        done = _run("train", tmp / "spec.toml", data, "--registry", root, "--backend", "local")
        if done.returncode != 0:
            ops.problems.append(f"train exited {done.returncode}: {done.stderr[-500:]}")
        ops.trains += 1


def _random_key(rng: random.Random) -> str:
    return rng.choice(HOT) if rng.random() < 0.7 else f"pid={rng.randrange(PARTITIONS)}"


def _commands(root: Path, url: str, stop: threading.Event, ops: Operations) -> None:
    """Promote a random version and roll back, in turn through the admin API (this router
    sees the move at once) and the CLI. A version gc deleted meanwhile is a 404 (exit 2), a
    history with nothing left to go back to a 409 (exit 1)."""
    rng = random.Random(11)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=url, timeout=30, headers=headers) as http:
        for step in range(10**6):
            if stop.is_set():
                return
            key = _random_key(rng)
            version = rng.choice(_versions(root, key))
            if step % 4 == 0:
                r = http.post(f"/v1/partitions/{key}/promote", json={"version": version})
                ops.count(f"api promote {r.status_code}", r.status_code in (200, 404), r.text)
            elif step % 4 == 1:
                r = http.post(f"/v1/partitions/{key}/rollback")
                ops.count(f"api rollback {r.status_code}", r.status_code in (200, 409), r.text)
            else:
                command = ("promote", key, version) if step % 4 == 2 else ("rollback", key)
                done = _run(*command, "--registry", root)
                said = done.stderr.strip()
                expected = done.returncode == 0 or (
                    done.returncode in (1, 2)
                    and said.count("\n") == 0
                    and ("has no version" in said or "roll back" in said)
                )
                ops.count(f"cli {command[0]} exit {done.returncode}", expected, said)


def _library(root: Path, stop: threading.Event, ops: Operations) -> None:
    """Many quick moves through ``Registry`` (what the CLI does, minus its start-up), as
    another router or a script would make them: this router sees them only at its next
    refresh, the window in which gc must not delete what it still serves. Hot keys swing
    between their versions, so the version this router still names is often one that gc
    would delete if it could."""
    rng = random.Random(13)
    with Registry.open(root) as reg:
        while not stop.wait(0.05):
            key = _random_key(rng)
            try:
                versions = _versions(root, key)
                if key in HOT:
                    reg.promote(key, rng.choice(versions), reason="swing")
                    ops.count("library promote", True)
                elif rng.random() < 0.6:
                    reg.promote(key, rng.choice(versions), reason="churn")
                    ops.count("library promote", True)
                else:
                    reg.rollback(key)
                    ops.count("library rollback", True)
            except (VersionNotFound, NothingToRollBack) as e:
                ops.count(f"library {type(e).__name__}", True)


def _collector(root: Path, stop: threading.Event, ops: Operations) -> None:
    """``manymodels gc --keep 1`` with the shipped graces, again and again."""
    while not stop.is_set():
        done = _run("gc", "--registry", root, "--keep", "1", "--json")
        ops.gc_runs += 1
        if done.returncode != 0:
            ops.problems.append(f"gc exited {done.returncode}: {done.stderr[-500:]}")
            continue
        for key, version in json.loads(done.stdout)["versions_deleted"]:
            ops.deleted.add((key, int(version)))
        stop.wait(0.5)


@pytest.fixture
def router(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """``manymodels serve`` over 120 partitions (and the fallback) at v2, the hot keys at v5,
    each version trained on other data, the history aged. The router starts after v1 (its
    start-up overlaps the later training, which it picks up as any promotion made elsewhere)."""
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    root = tmp_path / "registry"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    cmd: list[str | Path] = [BIN / "manymodels", "serve", "--registry", root, "--port", str(port),
           "--cache-size", "40", "--no-access-log"]  # fmt: skip
    env = {**os.environ, "MANYMODELS_ADMIN_TOKEN": TOKEN}
    with Registry(root) as reg, (tmp_path / "serve.log").open("w") as log:
        server = None
        try:
            for seed in range(1, 6):  # v1, v2 of every key; v3…v5 of the hot ones
                data = synthetic(PARTITIONS, ROWS, seed=seed)
                only = set(HOT) if seed > 2 else None
                assert train(spec, data, reg, backend="local", only=only).run.n_failed == 0
                if server is None:
                    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
            assert server is not None
            _age(root)
            wait_ready(url, server)
            yield root, url
        finally:
            if server is not None:
                server.terminate()
                try:
                    server.wait(30)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait(30)


def test_serving_through_train_promote_rollback_and_gc(
    router: tuple[Path, str], tmp_path: Path
) -> None:
    registry, url = router
    stop = threading.Event()
    tally, ops = Tally(), Operations()
    threads = [
        threading.Thread(target=_client, args=(registry, url, seed, stop, tally))
        for seed in range(CLIENTS)
    ]
    threads.append(threading.Thread(target=_trainer, args=(registry, tmp_path, stop, ops)))
    threads.append(threading.Thread(target=_commands, args=(registry, url, stop, ops)))
    threads.append(threading.Thread(target=_library, args=(registry, stop, ops)))
    threads.append(threading.Thread(target=_collector, args=(registry, stop, ops)))
    began = time.monotonic()
    for thread in threads:
        thread.start()
    # at least CHURN_SECONDS, and on a slow machine until the experiment has happened (a
    # train, a gc that deleted, answers flowing), up to CHURN_LIMIT: never a fixed window
    # whose activity depends on the machine's speed
    while not stop.wait(1.0):
        elapsed = time.monotonic() - began
        happened = ops.trains >= 1 and ops.gc_runs >= 1 and len(tally.answers) >= 100
        if elapsed >= CHURN_LIMIT or (elapsed >= CHURN_SECONDS and happened):
            break
    stop.set()
    for thread in threads:
        thread.join(240)
    churned = time.monotonic() - began
    timings = f"churn and its last command took {churned:.1f} s"
    production = _production_ever(registry)
    statuses = Counter(status for status, _ in tally.answers)
    served = [kv for _, kvs in tally.answers for kv in kvs]
    stale = tally.stale
    never = sorted({kv for kv in served if kv not in production})
    server_errors = sum(n for status, n in statuses.items() if status >= 500)
    print(
        f"\nchurn: {len(tally.answers)} requests ({len(served)} partition answers), "
        f"statuses {dict(statuses)}, {server_errors} 5xx, {len(stale)} stale, "
        f"{len(never)} never in production, {len(tally.connection_errors)} connection errors; "
        f"{ops.trains} trains, moves {dict(ops.moves)}, "
        f"{ops.gc_runs} gc runs deleting {len(ops.deleted)} versions; {timings}"
    )
    server_log = (tmp_path / "serve.log").read_text()[-3000:]
    assert server_errors == 0, server_log
    assert stale == [], (stale[:10], server_log)
    assert never == [], never[:10]
    assert tally.connection_errors == [], tally.connection_errors[:5]
    assert set(statuses) == {200}, server_log
    assert ops.problems == [], ops.problems
    # the experiment happened: versions were made, moved and deleted while answers flowed
    assert ops.trains >= 1 and ops.gc_runs >= 1 and len(ops.deleted) >= PARTITIONS // 2
    assert len(tally.answers) >= 100

    doctor = _run("doctor", "--registry", registry)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr  # nothing lost or dangling
