"""Holiday sets stored once (schema 13) on every database: two runs of the same dates keep one
set (the second insert is no conflict), and a process that has not seen the set reads it
back by hash from the database; gc deletes a set no version names, never one a writer names
while it deletes."""

from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd
from factories import spec_dict
from factories.registry import executed
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from manymodels import holiday_sets
from manymodels.cli import app
from manymodels.forecasting import forecast
from manymodels.pipeline import train
from manymodels.registry import Registry, holiday_rows
from manymodels.registry import schema as t


def test_one_set_for_two_runs_read_back_by_hash(db_url: str, tmp_path: Path) -> None:
    days = pd.bdate_range("2024-11-01", "2024-12-20")
    df = pd.concat(
        [pd.DataFrame({"shop": f"s{i}", "t": days, "y": 1.0 + i + days.day}) for i in range(3)],
        ignore_index=True,
    )
    spec = spec_dict(partition_by=["shop"], target="y", time_column="t", lags=[1])
    root = tmp_path / "registry"
    with Registry(root, db_url=db_url) as reg:
        train({**spec, "holidays": ["2024-12-25", "2025-01-01"]}, df, reg, backend="local")
        train({**spec, "holidays": ["2025-01-01", "2024-12-25"]}, df, reg, backend="local")
        with reg.store.engine.connect() as conn:
            count = select(func.count()).select_from(t.holiday_sets)
            assert conn.execute(count).scalar_one() == 1
    holiday_sets._KNOWN.clear()  # another process: the set is read from the database
    with Registry(root, db_url=db_url) as reg:
        plan = reg.get_version("shop=s0", 2).schema.forecast
        assert plan is not None and plan.holidays == ["2024-12-25", "2025-01-01"]
        steps = forecast(reg, ["shop=s0"], horizon=4)["t"].dt.strftime("%m-%d").tolist()
    assert steps == ["12-23", "12-24", "12-26", "12-27"]


def _two_calendars(reg: Registry) -> tuple[str, str]:
    """Three shops trained on one calendar, then retrained on an edited one: the hashes of
    the former set and of the current one."""
    days = pd.bdate_range("2024-11-01", "2024-12-20")
    df = pd.concat(
        [pd.DataFrame({"shop": f"s{i}", "t": days, "y": 1.0 + i + days.day}) for i in range(3)],
        ignore_index=True,
    )
    spec = spec_dict(partition_by=["shop"], target="y", time_column="t", lags=[1])
    former, current = ["2024-12-25"], ["2024-12-25", "2025-01-01"]
    train({**spec, "holidays": former}, df, reg, backend="local")
    train({**spec, "holidays": current}, df, reg, backend="local")
    for key in ("__fallback__", "shop=s0", "shop=s1", "shop=s2"):
        reg.promote(key, 2)  # production moves off the former set's versions
    return (
        holiday_sets.digest(holiday_sets.encoded(former)),
        holiday_sets.digest(holiday_sets.encoded(current)),
    )


def _stored(reg: Registry) -> set[str]:
    with reg.store.engine.connect() as conn:
        return set(conn.execute(select(t.holiday_sets.c.sha256)).scalars())


def test_gc_deletes_the_sets_no_version_names_and_keeps_the_rest(
    db_url: str, tmp_path: Path
) -> None:
    """`gc` left every holiday set ever stored (a calendar edited each year left each
    former set behind): now the sets of pruned versions go, those named stay and still
    forecast in a process that has not seen them."""
    from manymodels.gc import collect

    root = tmp_path / "registry"
    with Registry(root, db_url=db_url) as reg:
        former, current = _two_calendars(reg)
        assert collect(reg, dry_run=True).holiday_sets_deleted == 0  # both named
        assert collect(reg, keep=1, dry_run=True).holiday_sets_deleted == 0  # moved: kept
        args = ["gc", "--registry", str(root), "--registry-db", db_url, "--keep", "1"]
        # a dry run counts the sets its own pruning frees: what the real run then deletes
        dry = CliRunner().invoke(app, [*args, "--alias-grace-seconds", "0", "--dry-run"])
        assert dry.exit_code == 0, dry.output
        assert dry.output.startswith(
            "would delete 4 version(s) and 0 artifact(s) and 1 holiday set(s) no version names"
        ), dry.output
        assert _stored(reg) == {former, current}
        done = CliRunner().invoke(app, [*args, "--alias-grace-seconds", "0"])
        assert done.exit_code == 0, done.output
        assert done.output.startswith(
            "deleted 4 version(s) and 0 artifact(s) and 1 holiday set(s) no version names, "
        ), done.output
        assert _stored(reg) == {current}
        assert collect(reg, keep=1, alias_grace_seconds=0).holiday_sets_deleted == 0
    holiday_sets._KNOWN.clear()  # another process: read from the database
    with Registry(root, db_url=db_url) as reg:
        plan = reg.get_version("shop=s0", 2).schema.forecast
        assert plan is not None and plan.holidays == ["2024-12-25", "2025-01-01"]


def test_gc_holds_the_write_lock_only_for_the_sets_it_found_unused(
    db_url: str, tmp_path: Path
) -> None:
    """gc's DELETE read every set under the write lock, each back to the newest version
    naming it: a calendar only old versions name was read past every newer version of the
    other specs while every writer waited (20 such sets, 300,000 versions: 15.6 s on SQLite,
    whose writers give up after 30 s). Now a read outside the lock finds the unused sets and
    the DELETE, under it, checks again only those: the set in use is not in it; with none
    unused no DELETE runs, no lock is taken. A dry run reads to count and deletes nothing."""
    from manymodels.gc import collect

    with Registry(tmp_path / "registry", db_url=db_url) as reg:
        former, current = _two_calendars(reg)
        with executed(reg.store.engine) as seen:
            assert collect(reg).holiday_sets_deleted == 0  # both named
        assert not [s for s, _ in seen if "DELETE FROM holiday_sets" in s], seen
        reg.store.prune_versions(1)  # no version names the former calendar's set any more
        assert collect(reg, dry_run=True).holiday_sets_deleted == 1
        assert _stored(reg) == {former, current}
        with executed(reg.store.engine) as seen:
            assert collect(reg).holiday_sets_deleted == 1
        deletes = [(s, p) for s, p in seen if "DELETE FROM holiday_sets" in s]
        assert len(deletes) == 1, seen
        named = str(deletes[0][1])
        assert former in named and current not in named, deletes
        assert _stored(reg) == {current}
        assert collect(reg, dry_run=True).holiday_sets_deleted == 0


def test_a_set_a_writer_names_while_gc_deletes_is_kept(db_url: str, tmp_path: Path) -> None:
    """A writer that stores versions naming a set gc found unused (keep: the set is there,
    its insert does nothing) commits while gc deletes: gc waits for it, sees its versions,
    and keeps the set, under the write lock that writer holds: the versions never name a set
    that is gone."""
    root = tmp_path / "registry"
    with Registry(root, db_url=db_url) as reg:
        former, current = _two_calendars(reg)
        reg.store.prune_versions(1)
        assert reg.store.unused_holiday_sets() == [former]
        with Registry.open(root, db_url=db_url) as other:
            text = reg.store.holiday_set(former)
            assert text is not None
            got: list[int] = []
            c = t.model_versions.c
            with other.store._begin() as conn:  # a writer in the middle of its transaction
                holiday_rows.keep(conn, {former: text})
                q = select(c.id, c.feature_schema_json).where(c.key == "shop=s0")
                row = conn.execute(q).one()
                named = row.feature_schema_json.replace(current, former)
                conn.execute(update(t.model_versions).where(c.id == row.id).values(
                    feature_schema_json=named))  # fmt: skip
                gc = threading.Thread(target=lambda: got.append(reg.store.delete_holiday_sets()))
                gc.start()
                gc.join(1.0)
                waited = gc.is_alive()
            gc.join(30)
        assert waited, "gc did not wait for the writer of a set"
        assert got == [0]
        assert _stored(reg) == {former, current}


def test_a_set_gc_deleted_is_stored_again_by_the_next_run_naming_it(
    db_url: str, tmp_path: Path
) -> None:
    """A calendar gc deleted the set of, trained on again: the run stores the set again (its
    insert finds nothing to conflict with), and a process that has not seen it reads it."""
    days = pd.bdate_range("2024-11-01", "2024-12-20")
    df = pd.DataFrame({"shop": "s0", "t": days, "y": 1.0 + days.day})
    spec = spec_dict(partition_by=["shop"], target="y", time_column="t", lags=[1])
    root = tmp_path / "registry"
    with Registry(root, db_url=db_url) as reg:
        former, current = _two_calendars(reg)
        reg.store.prune_versions(1)
        assert reg.store.delete_holiday_sets() == 1
        assert _stored(reg) == {current}
        train({**spec, "holidays": ["2024-12-25"]}, df, reg, backend="local")
        assert _stored(reg) == {former, current}
    holiday_sets._KNOWN.clear()
    with Registry(root, db_url=db_url) as reg:
        plan = reg.get_version("shop=s0", 3).schema.forecast
        assert plan is not None and plan.holidays == ["2024-12-25"]
