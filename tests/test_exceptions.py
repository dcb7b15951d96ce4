"""Every error in ``manymodels.exceptions`` survives pickle with its message and attributes:
an error raised in a worker process (multiprocessing, ``ProcessPoolExecutor``, a Ray task)
reaches the caller as itself, so ``except InvalidRows`` still matches there (an error that
cannot be unpickled hangs ``Pool.map`` and breaks a process pool)."""

from __future__ import annotations

import inspect
import pickle
from pathlib import Path
from typing import Any

import pytest
from factories import linear_frame, spec_dict

import manymodels.exceptions as ex
from manymodels.pipeline import train

# the arguments of errors whose constructor takes more (or other) than one message
ARGUMENTS: dict[type[BaseException], tuple[Any, ...]] = {
    ex.InvalidRows: ([ex.problem(i, "price", f"bad price {i}") for i in range(25)], 30),
    ex.RunFailed: ("no partition trained", {"run": "abc123"}),
    ex.RunInterrupted: ("abc123",),
    ex.RunBusy: ("run abc123 is still training", "abc123"),
    ex.ArtifactNotFound: ("artifact gone", "deadbeef"),
    ex.AmbiguousKey: ("pid=1.0", ["pid=1", "pid=true"]),
    ex.AliasNotFound: ("partition 'pid=1' has no 'production' alias", 3),  # retired from v3
}


def errors() -> list[type[BaseException]]:
    return [
        cls
        for _, cls in inspect.getmembers(ex, inspect.isclass)
        if issubclass(cls, BaseException) and cls.__module__ == ex.__name__
    ]


@pytest.mark.parametrize("cls", errors(), ids=lambda cls: cls.__name__)
def test_every_error_round_trips_through_pickle(cls: type[BaseException]) -> None:
    error = cls(*ARGUMENTS.get(cls, (f"{cls.__name__} message",)))
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is cls
    assert (str(back), back.args, back.__dict__) == (str(error), error.args, error.__dict__)


def test_invalid_rows_keeps_its_cells_and_count() -> None:
    error = ex.InvalidRows([ex.problem(i, "price", f"bad price {i}") for i in range(25)], 30)
    back = pickle.loads(pickle.dumps(error))
    assert back.detail() == error.detail() and back.total == 30 and len(back.errors) == 20
    assert str(back) == "row 0: bad price 0 (and 29 more problems)"


def test_a_failed_run_reaches_another_process_with_its_summary(tmp_path: Path) -> None:
    spec = spec_dict(min_rows=50, fallback={"enabled": False})
    with pytest.raises(ex.RunFailed) as caught:
        train(spec, linear_frame(3, 8), tmp_path / "reg", backend="local")
    back = pickle.loads(pickle.dumps(caught.value))
    assert str(back) == str(caught.value)
    assert back.summary.run.run_id == caught.value.summary.run.run_id
    assert back.summary.run.n_skipped == 3


def test_a_full_disk_is_told_through_the_errors_that_wrap_it(tmp_path: Path) -> None:
    """``storage_full``: what the router answers 507 (``serving.errors``), found under our
    errors and SQLAlchemy's; a refusal for another reason is not a full disk."""
    import errno

    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    def wrapped(cause: BaseException) -> ex.ArtifactError:
        try:
            raise ex.ArtifactError("cannot write artifact") from cause
        except ex.ArtifactError as e:
            return e

    assert ex.storage_full(wrapped(OSError(errno.ENOSPC, "No space left on device")))
    assert ex.storage_full(wrapped(OSError(errno.EDQUOT, "Disk quota exceeded")))
    assert not ex.storage_full(wrapped(PermissionError(errno.EACCES, "Permission denied")))
    assert not ex.storage_full(ex.ArtifactCorrupted("tampered"))
    engine = create_engine(f"sqlite:///{tmp_path / 'small.db'}")  # a database that cannot grow
    with pytest.raises(OperationalError) as full, engine.begin() as conn:
        conn.execute(text("PRAGMA max_page_count = 2"))
        conn.execute(text("CREATE TABLE t (x TEXT)"))
        conn.execute(text("INSERT INTO t VALUES (:x)"), [{"x": "x" * 1000}] * 50)
    engine.dispose()
    try:
        raise ex.RegistryError("registry write failed: database or disk is full") from full.value
    except ex.RegistryError as e:
        assert ex.storage_full(e)
    assert not ex.storage_full(ex.RegistryError("registry write failed: database is locked"))


def test_the_database_errors_of_an_outage_are_listed_once_for_every_caller() -> None:
    """``database_away`` lists SQLAlchemy's and SQLite's errors of a database away (the
    router's 503, a job's retry, the CLI's one line); with ``loaded=True`` only those of
    modules already imported, importing none (a read-only command imports nothing heavy)."""
    import subprocess
    import sys

    code = (
        "import sys; from manymodels.exceptions import database_away; "
        "print(sorted(f'{c.__module__}.{c.__name__}' for c in database_away(loaded=True))); "
        "print('sqlalchemy' in sys.modules)"
    )
    listed, imported = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert "sqlalchemy" not in listed and imported == "False"
    import sqlite3

    from sqlalchemy import exc as sa

    away = ex.database_away()
    for error in (
        sa.OperationalError,
        sa.InterfaceError,
        sa.TimeoutError,
        sqlite3.OperationalError,
    ):
        assert error in away
    assert sqlite3.DatabaseError not in away  # a file that is not a database is no outage
