"""Helpers for the core tests: an estimator factory a spec can name, and small builders.

``factories:scaled_ridge`` is importable from a spec because pytest puts ``tests/`` on
``sys.path`` (the directory has no ``__init__.py``). Only in-process backends may use it: Ray
workers do not have ``tests/`` on their path.
"""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from manymodels.registry.entities import ModelVersion, NewVersion, Run
from manymodels.registry.store import now

if TYPE_CHECKING:
    import pytest
    from sqlalchemy import Engine

RIDGE = "sklearn.linear_model.Ridge"

# The store-sales sample's spec the router and explain tests train: one scaled Ridge, the
# last 8 weeks validate. A test that needs another name writes ``{**SALES_SPEC, "name": …}``.
SALES_SPEC: dict[str, Any] = {
    "name": "router-test",
    "partition_by": ["store", "brand"],
    "target": "units",
    "time_column": "week",
    "features": ["price", "deal", "feat"],
    "min_rows": 20,
    "validation": {"strategy": "last", "size": 8},
    "candidates": [{"estimator": RIDGE, "scale": True, "params": {"alpha": [1.0]}}],
}


def scaled_ridge(alpha: float = 1.0) -> Pipeline:
    """A user factory (``package.module:function``) returning a Pipeline."""
    return Pipeline([("scale", StandardScaler()), ("ridge", Ridge(alpha=alpha))])


class _RidgeUpTo(Ridge):
    """A Ridge that refuses more than ``limit`` rows: a candidate that fits every partition
    but not the pooled fallback."""

    def __init__(self, alpha: float = 1.0, limit: int = 40) -> None:
        super().__init__(alpha=alpha)
        self.limit = limit

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> _RidgeUpTo:
        if len(X) > self.limit:
            raise ValueError(f"{len(X)} rows is more than this estimator takes ({self.limit})")
        return super().fit(X, y, sample_weight)


def fails_on_many_rows(limit: int = 40) -> Ridge:
    """A user factory (``factories:fails_on_many_rows``)."""
    return _RidgeUpTo(limit=limit)


class RowCountingRidge(Ridge):
    """A Ridge that notes the rows and mean target of every fit in ``fits`` (a class list:
    in-process runs only), so a test can tell validation fits from fits on all rows."""

    fits: ClassVar[list[tuple[int, float]]] = []

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> RowCountingRidge:
        RowCountingRidge.fits.append((len(X), float(np.mean(y))))
        return super().fit(X, y, sample_weight)


class Float32Ridge(Ridge):
    """A Ridge answering in float32, as some libraries' regressors do (XGBoost's)."""

    def predict(self, X: Any) -> Any:
        return np.asarray(super().predict(X), dtype=np.float32)


class _LevelsUpTo(Ridge):
    """A Ridge that refuses more than ``limit`` rows of a target whose mean is above 10: a
    model of a partition's level that fits its folds but not all its rows, while its model of
    changes (mean near 0) fits both."""

    def __init__(self, alpha: float = 1.0, limit: int = 33) -> None:
        super().__init__(alpha=alpha)
        self.limit = limit

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> _LevelsUpTo:
        if len(X) > self.limit and float(np.mean(y)) > 10:
            raise ValueError(f"{len(X)} rows of levels is more than this takes ({self.limit})")
        return super().fit(X, y, sample_weight)


def levels_fail_on_all_rows(limit: int = 33) -> Ridge:
    """A user factory (``factories:levels_fail_on_all_rows``)."""
    return _LevelsUpTo(limit=limit)


def synthetic_ridge_toml(name: str) -> str:
    """A spec file's text over ``samples.synthetic()`` columns: a Ridge alpha grid, as the
    command-line trials (kill -9, SIGSTOP) train it."""
    return f"""
name = "{name}"
partition_by = ["pid"]
target = "y"
time_column = "t"
[[candidates]]
estimator = "sklearn.linear_model.Ridge"
params = {{ alpha = [0.1, 1.0, 10.0] }}
"""


def sales_toml(
    name: str,
    more: str = "",
    *,
    estimator: str = RIDGE,
    features: Sequence[str] | None = ("price", "deal", "feat"),
    **top: str | float,
) -> str:
    """A spec file's text over ``samples.store_sales()`` columns, as ``SALES_SPEC`` (a Ridge per
    store and brand, the last 8 weeks validate) without its scaling and grid; ``more`` follows
    the candidate's ``estimator`` line: its ``params``, then further tables (``[promotion]``,
    ``[schedule]`` …). ``features=None`` writes no features list (every other column is one);
    ``top`` adds top-level keys (``bad_rows="drop"``). Has no braces, so a caller may
    ``.format`` its own into ``more``."""
    listed = f"features = {json.dumps(list(features))}\n" if features is not None else ""
    keys = "".join(f"{key} = {json.dumps(value)}\n" for key, value in top.items())
    return (
        f'\nname = "{name}"\n'
        """partition_by = ["store", "brand"]
target = "units"
time_column = "week"
"""
        + listed
        + "min_rows = 20\n"
        + keys
        + f"""[validation]
strategy = "last"
size = 8
[[candidates]]
estimator = "{estimator}"
"""
        + more
    )


def sales_files(
    tmp_path: Path, spec_text: str, *, n_stores: int = 2, index: bool = False
) -> tuple[Path, Path, Path]:
    """``tmp_path``'s ``spec.toml`` (``spec_text``, a ``sales_toml``), ``sales.csv`` (the
    ``store_sales`` sample of ``n_stores`` stores; ``index=True`` writes pandas' index as an
    unnamed first column) and ``registry`` (not made): what a command-line run is given."""
    from manymodels.samples import store_sales

    spec, data = tmp_path / "spec.toml", tmp_path / "sales.csv"
    spec.write_text(spec_text)
    store_sales(n_stores=n_stores).to_csv(data, index=index)
    return spec, data, tmp_path / "registry"


def spec_dict(**overrides: Any) -> dict[str, Any]:
    """A minimal, valid regression spec over ``synthetic()`` columns, Ridge only."""
    spec: dict[str, Any] = {
        "name": "test",
        "partition_by": ["pid"],
        "target": "y",
        "time_column": "t",
        "candidates": [{"estimator": RIDGE}],
    }
    spec.update(overrides)
    return spec


DECIDED = {"threshold": "cost", "cost": {"fp": 1, "fn": 1000}}  # a missed failure costs more


def pumps_spec(**overrides: Any) -> dict[str, Any]:
    """The ``sensor_readings`` sample's pumps as a binary classifier per asset (will it fail
    within 24 h?): two features, a LogisticRegression, the last quarter validates."""
    return {
        "name": "pumps",
        "task": "classification",
        "partition_by": ["asset"],
        "target": "failure_within_24h",
        "time_column": "ts",
        "features": ["temperature", "vibration"],
        "metric": "neg_log_loss",
        "validation": {"strategy": "last", "size": 0.25},
        "candidates": [{"estimator": "sklearn.linear_model.LogisticRegression"}],
        **overrides,
    }


LOGISTIC = {"estimator": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": [500]}}


def labels_spec(
    name: str, key: str, target: str, features: list[str], **overrides: Any
) -> dict[str, Any]:
    """A classifier per ``key`` value for the label-reading tests (what a CSV's labels train
    as): a LogisticRegression scored by accuracy on a quarter held out, every version
    promoted, so a test sees the classes its rows were read as."""
    return {
        "name": name,
        "task": "classification",
        "partition_by": [key],
        "target": target,
        "features": features,
        "metric": "accuracy",
        "min_rows": 20,
        "candidates": [LOGISTIC],
        "validation": {"strategy": "holdout", "size": 0.25},
        "promotion": {"policy": "always"},
        **overrides,
    }


def churn_frame(
    *,
    seed: int,
    noise: float,
    users: int = 2,
    rows: int = 60,
    cut: float = 0.0,
    labels: Literal["text", "bool"] = "text",
) -> pd.DataFrame:
    """Users ``u0``, ``u1`` … of ``rows`` rows whose churn follows ``x1`` (where ``x1`` plus
    ``noise`` times a normal draw is above ``cut``), ``x2`` beside it: both labels throughout
    each user's rows, for a classifier per user. ``labels="text"``: a column ``label`` of
    "churn" / "stay"; ``"bool"``: a column ``churn`` of booleans, for a test to make labels of."""
    rng = np.random.default_rng(seed)
    parts = []
    for u in range(users):
        x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
        churn = x1 + noise * rng.normal(size=rows) > cut
        if labels == "text":
            label = {"label": np.where(churn, "churn", "stay")}
        else:
            label = {"churn": churn}
        parts.append(pd.DataFrame({"user": f"u{u}", "x1": x1, "x2": x2, **label}))
    return pd.concat(parts, ignore_index=True)


def churn_spec(**overrides: Any) -> dict[str, Any]:
    """A LogisticRegression per user of ``churn_frame``'s ``label`` from ``x1`` and ``x2``,
    scored by accuracy on 30% held out (seed 0)."""
    return {
        "name": "churn",
        "task": "classification",
        "partition_by": ["user"],
        "target": "label",
        "features": ["x1", "x2"],
        "metric": "accuracy",
        "min_rows": 20,
        "seed": 0,
        "validation": {"strategy": "holdout", "size": 0.3},
        "candidates": [
            {"estimator": "sklearn.linear_model.LogisticRegression", "params": {"C": [1.0]}}
        ],
        **overrides,
    }


# every numeric reading of the ``sensor_readings`` sample, for a pumps spec that uses them all
SENSORS = ["temperature", "vibration", "pressure", "rpm", "hours_since_service"]


def users_spec(**overrides: Any) -> dict[str, Any]:
    """The ``user_activity`` sample's minutes per user: a scaled Ridge over a categorical
    feature (``plan``) fitted on a frame, the last week validates."""
    return {
        "name": "users",
        "partition_by": ["user_id"],
        "target": "minutes_active",
        "time_column": "day",
        "features": ["plan", "sessions", "pages", "notifications", "weekend"],
        "categorical": ["plan"],
        "validation": {"strategy": "last", "size": 7},
        "candidates": [{"estimator": "sklearn.linear_model.Ridge", "scale": True}],
        **overrides,
    }


def linear_frame(
    n_partitions: int = 3, rows: int = 30, *, seed: int = 0, shuffle: bool = False
) -> pd.DataFrame:
    """Partitions ``pid`` with their own linear rule on x0, x1, time ``t``, target ``y``."""
    rng = np.random.default_rng(seed)
    frames = []
    for p in range(n_partitions):
        x = rng.normal(size=(rows, 2))
        w = rng.normal(size=2) * 3
        y = x @ w + p * 10 + rng.normal(scale=0.1, size=rows)
        frames.append(
            pd.DataFrame({"pid": p, "t": np.arange(rows), "x0": x[:, 0], "x1": x[:, 1], "y": y})
        )
    df = pd.concat(frames, ignore_index=True)
    if shuffle:
        df = df.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    return df


LATER_STEPS_UNDONE = (
    "ALTER TABLE model_versions DROP COLUMN members_json",  # schema 6's
    "ALTER TABLE runs DROP COLUMN heartbeat_at",  # schema 7's
    "DROP INDEX ix_aliases_age",  # schema 8's
    "DROP INDEX ix_run_partitions_key",  # schema 10's
    "DROP INDEX ix_runs_status",  # schema 11's
    "DROP INDEX ix_run_partitions_lost",  # schema 12's
    "ALTER TABLE aliases DROP COLUMN version_created_at",  # schema 8's
    "DROP TABLE holiday_sets",  # schema 13's
)
"""What undoes the schema steps after 5 (``schema.SCHEMA_VERSION``'s list), in SQL SQLite and
PostgreSQL both run: a schema step adds its undoing here, once, for every test of an older
registry."""


def as_older_schema(execute: Callable[[str], object], version: str) -> None:
    """Make a registry's database one an older manymodels wrote: ``LATER_STEPS_UNDONE`` run by
    ``execute`` (``sqlite3.Connection.execute``, ``Connection.exec_driver_sql``), then
    ``meta.schema_version`` set to ``version``. The caller first undoes the steps after
    ``version`` up to 5 that its test is about (a column, the monitoring tables)."""
    for statement in LATER_STEPS_UNDONE:
        execute(statement)
    execute(f"UPDATE meta SET value = '{version}' WHERE name = 'schema_version'")


def make_run(run_id: str = "run1", *, spec_hash: str = "0" * 64, n_partitions: int = 0) -> Run:
    return Run(
        run_id=run_id,
        kind="train",
        status="running",
        spec_name="test",
        spec_hash=spec_hash,
        spec={},
        data_source="<test>",
        data_fingerprint="f" * 32,
        started_at=now(),
        ended_at=None,
        n_partitions=n_partitions,
        n_trained=0,
        n_skipped=0,
        n_failed=0,
    )


def new_version(
    key: str, sha: str, size: int, *, key_values: dict[str, Any] | None = None, score: float = -1.0
) -> NewVersion:
    return NewVersion(
        key=key,
        key_values=key_values if key_values is not None else {"k": key},
        n_rows=10,
        data_fingerprint="fp-" + key,
        estimator=RIDGE,
        params={"alpha": 1.0},
        metric="neg_mean_absolute_error",
        score=score,
        naive_score=-2.0,
        candidates=[],
        feature_schema={"features": ["x"]},
        artifact_sha256=sha,
        artifact_size=size,
        train_seconds=0.01,
    )


def imported_by(statement: str, modules: Iterable[str]) -> list[str]:
    """Which of ``modules`` a fresh interpreter has imported after running ``statement``:
    what keeps a light command light is asserted in a process of its own."""
    wanted = json.dumps(sorted(modules))
    found = f"sorted(set({wanted}) & set(sys.modules))"
    code = f"import json, sys\n{statement}\nprint(json.dumps({found}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


def noisy_panel(
    make: Callable[..., tuple[np.ndarray, np.ndarray]],
    columns: list[str],
    *,
    seed: int,
    partitions: int = 6,
    rows: int = 40,
) -> pd.DataFrame:
    """``partitions`` partitions ``pid`` of ``rows`` rows each, ``make(rows, seed=k)``'s
    features and target, the target's noise growing with ``k``; a time column ``t``."""
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(partitions):
        X, y = make(rows, seed=k)
        frame = pd.DataFrame(X, columns=columns)
        frames.append(frame.assign(pid=k, t=np.arange(rows), y=y + rng.normal(size=rows) * k))
    return pd.concat(frames, ignore_index=True)


def linear_series(
    n_series: int, n_rows: int, rng: np.random.Generator, *, widest: float = 3.0
) -> pd.DataFrame:
    """``y = a + b·x + noise`` per series (``series``, time ``t``), the noise N(0, σ) with σ
    from 1 to ``widest`` across series: errors that differ in scale, and in nothing else."""
    parts = []
    for s in range(n_series):
        x = rng.normal(size=n_rows)
        sigma = 1.0 + (widest - 1.0) * s / max(1, n_series - 1)
        y = rng.normal(10, 3) + rng.normal(2, 1) * x + rng.normal(0, sigma, n_rows)
        parts.append(pd.DataFrame({"series": s, "t": np.arange(n_rows), "x": x, "y": y}))
    return pd.concat(parts, ignore_index=True)


def retrained_to_a_tie(spec: dict[str, Any], df: pd.DataFrame, root: Path) -> list[ModelVersion]:
    """Train ``spec`` on ``df`` twice into ``root`` and check that every second version scored
    exactly as its champion refitted on the same rows and was not promoted — a comparison
    must not promote or keep on rounding. Returns the second versions."""
    from manymodels.pipeline import train
    from manymodels.registry.client import Registry

    for _ in range(2):
        train(spec, df, root, backend="local")
    with Registry.open(root) as reg:
        second = [reg.get_version(p.key, 2) for p in reg.list_partitions(limit=1000)]
    for v in second:
        ev = v.evaluation
        assert ev["basis"] == "refit" and ev["challenger_score"] == ev["champion_score"], ev
        assert not ev["promote"] and ev["reason"].startswith("identical to champion v1")
    return second


def job_ended(client: Any, location: str, headers: dict[str, str], timeout: float = 60) -> Any:
    """The job at ``location`` (a retrain's 202 ``Location``; ``client`` a router's
    ``TestClient`` or an ``httpx.Client`` on a running one) once it has succeeded or failed,
    polled until ``timeout`` seconds pass ("does not hang", not a timing)."""
    deadline = time.monotonic() + timeout
    while (job := client.get(location, headers=headers).json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
    return job


def other_machine_tag(pid: int = 4242) -> str:
    """The ``writer_tag`` a process on another machine records as a run's ``owner``: this
    machine cannot look its pid up (``tempnames.owner_alive`` is ``None``)."""
    from manymodels.tempnames import MACHINE

    return f"{pid}-12345-{'f' * 12 if MACHINE != 'f' * 12 else '0' * 12}"


def dead_process_tag() -> str:
    """The ``writer_tag`` of a process that ran on this machine and has ended: a run's
    ``owner`` after its process was killed."""
    code = "from manymodels.tempnames import writer_tag; print(writer_tag())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


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
    process ``server`` exits (with the end of its ``log`` if given), or after ``timeout``."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
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


SLOW_FIT_MODULE = """
import itertools, os, time
from sklearn.linear_model import Ridge

_fits = itertools.count(1)

class Slow(Ridge):
    def fit(self, X, y, sample_weight=None):
        where = os.environ.get("SLOWFIT_DIR")
        if where and next(_fits) > int(os.environ.get("SLOWFIT_AFTER", "0")):
            # the process to be killed: say so, then never finish
            open(os.path.join(where, "fitting"), "w").close()
            time.sleep(600)
        return super().fit(X, y, sample_weight)

def make(alpha=1.0):
    return Slow(alpha=alpha)
"""
"""A module (``slowfit.py`` on a child's ``PYTHONPATH``, named ``slowfit:make`` in a spec)
whose fits, in a process given ``SLOWFIT_DIR``, past ``SLOWFIT_AFTER`` of them (default 0),
write ``SLOWFIT_DIR/fitting`` and sleep: a kill or a Ctrl-C lands at a point reached
deterministically, once that file exists."""


def small_backup(tmp_path: Path) -> Path:
    """``tmp_path/good.tar``: the backup of a registry (``tmp_path/reg``) trained on two
    partitions of ``linear_frame``."""
    from manymodels.backup import export_registry
    from manymodels.pipeline import train
    from manymodels.registry import Registry

    root = tmp_path / "reg"
    train(spec_dict(), linear_frame(2, 30), root, backend="local")
    good = tmp_path / "good.tar"
    with Registry.open(root) as reg:
        export_registry(reg, good)
    return good


def backup_plus_member(
    good: Path,
    out: Path,
    member: tuple[tarfile.TarInfo, bytes],
    *,
    listed: tuple[str, str, int],
    mode: Literal["w", "w:gz"] = "w",
    tar_format: int = tarfile.DEFAULT_FORMAT,
) -> None:
    """The backup ``good`` written again to ``out`` (``mode``: ``"w:gz"`` compresses) with
    ``member`` last, its manifest listing ``listed`` (name, sha256, size): a hostile backup
    whose every other member is true."""
    from manymodels.backup import MANIFEST

    name, digest, size = listed
    with tarfile.open(good) as old, tarfile.open(out, mode, format=tar_format) as new:
        for info in old.getmembers():
            data = old.extractfile(info).read()  # type: ignore[union-attr]
            if info.name == MANIFEST:
                manifest = json.loads(data)
                manifest["members"][name] = {"sha256": digest, "size": size}
                data = json.dumps(manifest).encode()
                info.size = len(data)
            new.addfile(info, io.BytesIO(data))
        new.addfile(member[0], io.BytesIO(member[1]))


def fsynced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the files and directories ``os.fsync`` is called on from now on (the
    calls still happen; the paths are read through ``/proc/self/fd``)."""
    import os

    seen: list[str] = []
    real = os.fsync

    def record(fd: int) -> None:
        seen.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", record)
    return seen


def directories_refuse_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    """``os.fsync`` of a directory fails with EINVAL until ``monkeypatch`` undoes it, as on
    some network and FUSE filesystems; files still sync."""
    import errno
    import os
    import stat

    real = os.fsync

    def no_directories(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "Invalid argument")
        real(fd)

    monkeypatch.setattr(os, "fsync", no_directories)


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


def slowfit_env(tmp_path: Path) -> dict[str, str]:
    """``SLOW_FIT_MODULE`` written as ``tmp_path/mods/slowfit.py`` (a spec names it
    ``slowfit:make``) and the environment of a command that imports it: ``PYTHONPATH`` with
    that directory first, and no ``SLOWFIT_DIR`` (fits are quick until a process is given one)."""
    import os

    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "slowfit.py").write_text(SLOW_FIT_MODULE)
    path = os.pathsep.join([str(tmp_path / "mods"), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    env.pop("SLOWFIT_DIR", None)
    return env


class Tripwire:
    """Unpickling this creates the file ``path``: proof that bytes were (or were not)
    unpickled — a forged artifact, an upload — wherever that happens, another process too."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return (Path.touch, (self.path,))


@contextmanager
def executed(engine: Engine | type[Engine]) -> Iterator[list[tuple[str, Any]]]:
    """The statements ``engine`` runs inside the block, with their parameters: what a test of
    a query's plan reads (``sqlite_plan``) rather than trusting how the query was written.
    ``Engine`` itself hears every engine's, those of a registry a command opens on its own."""
    from sqlalchemy import event

    seen: list[tuple[str, Any]] = []

    def keep(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", keep)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", keep)


def sqlite_plan(engine: Engine, statement: str, params: Any) -> str:
    """SQLite's ``EXPLAIN QUERY PLAN`` of one statement ``executed`` saw, its steps joined."""
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        return " ".join(str(r[-1]) for r in raw.execute(f"EXPLAIN QUERY PLAN {statement}", params))


def firing_lines(out: str) -> list[str]:
    """The scheduler's stdout, one line per firing run, less those of firings skipped while the
    previous run still went (a slow run on a loaded machine): those are said on stdout too."""
    return [line for line in out.strip().splitlines() if "previous run is still going" not in line]


def ago(seconds: float) -> str:
    """A registry timestamp ``seconds`` before now (a heartbeat that old)."""
    from datetime import UTC, datetime, timedelta

    return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat(timespec="microseconds")


def mark_running(reg: Any, run_id: str, owner: str, heartbeat_at: str | None) -> None:
    """The run ``run_id`` of ``reg`` (a ``Registry``) as its store holds it while its process
    (``owner``: ``other_machine_tag``, ``dead_process_tag``) trains it, its last heartbeat at
    ``heartbeat_at``."""
    from sqlalchemy import update

    from manymodels.registry import schema as t

    reg.store.record_run_options(run_id, {"owner": owner})
    with reg.store.engine.begin() as conn:
        conn.execute(
            update(t.runs)
            .where(t.runs.c.run_id == run_id)
            .values(status="running", ended_at=None, heartbeat_at=heartbeat_at)
        )
