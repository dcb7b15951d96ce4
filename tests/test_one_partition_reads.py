"""Naming one partition costs O(1) registry work at any number of partitions: the SQLite
virtual machine's instructions (``set_progress_handler``, counted on the registry's own
connections) for one partition's forecast, or scoring its rows, are the same with 3,000 more
partitions in the registry as without — no timing, and nothing of ours replaced."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from factories import RIDGE, linear_frame, make_run, new_version, spec_dict
from sqlalchemy import event

from manymodels.exceptions import DataError
from manymodels.forecasting import forecast
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.scoring import score

PADDING = 3000


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Three trained, forecastable partitions (``pid`` 0, 1, 2) and the fallback."""
    root = tmp_path / "registry"
    spec = spec_dict(candidates=[{"estimator": RIDGE}], min_rows=10)
    summary = train(spec, linear_frame(3, rows=30), root, backend="local")
    assert summary.run.n_trained == 3
    return root


def pad(root: Path, n: int) -> None:
    """``n`` more partitions in production (``pid=1000…``), written as the pipeline would
    record them, 1,000 to a transaction."""
    with Registry.open(root) as reg:
        before = reg.count_partitions()
        sha, size = reg.artifacts.put(b"padding")
        for start in range(0, n, 1000):
            run_id = f"pad{start}"
            reg.store.create_run(make_run(run_id, n_partitions=1000))
            batch = [
                new_version(f"pid={1000 + i}", sha, size, key_values={"pid": 1000 + i})
                for i in range(start, min(n, start + 1000))
            ]
            reg.store.record(run_id, batch, [], libraries={}, promote=lambda v: "padding")
        assert reg.count_partitions() == before + n


def instructions(root: Path, work: Callable[[Registry], Any]) -> int:
    """SQLite VM instructions ``work`` executes on the registry's connections."""
    count = [0]

    def step() -> int:
        count[0] += 1
        return 0  # go on

    with Registry.open(root) as reg:
        reg.partition_by  # noqa: B018 - read once, as any earlier command would have

        @event.listens_for(reg.store.engine, "checkout")
        def _counted(dbapi: Any, record: Any, proxy: Any) -> None:
            assert isinstance(dbapi, sqlite3.Connection)
            dbapi.set_progress_handler(step, 1)

        work(reg)
        event.remove(reg.store.engine, "checkout", _counted)
    return count[0]


@pytest.fixture
def grows(root: Path) -> Iterator[Callable[[Callable[[Registry], Any]], tuple[int, int]]]:
    """Measures ``work`` on the registry, then again after ``PADDING`` partitions more."""
    measured: list[int] = []

    def measure(work: Callable[[Registry], Any]) -> tuple[int, int]:
        before = instructions(root, work)
        if not measured:
            pad(root, PADDING)
        measured.append(before)
        return before, instructions(root, work)

    yield measure


def test_forecast_of_one_named_partition_reads_its_rows_not_the_alias_table(
    grows: Callable[[Callable[[Registry], Any]], tuple[int, int]],
) -> None:
    # before: the whole production alias table was read (~10 instructions a partition)
    small, large = grows(lambda reg: forecast(reg, keys=["pid=1"], horizon=2))
    assert large < small * 1.1, (small, large)


def test_a_named_key_written_as_a_float_is_still_found(root: Path) -> None:
    pad(root, 10)
    with Registry.open(root) as reg:
        out = forecast(reg, keys=[{"pid": 1.0}, "pid=2.0"], horizon=1)
    assert sorted(out["pid"].unique()) == [1, 2]


def test_a_future_table_of_other_partitions_only_is_still_taken(root: Path) -> None:
    """The future table's keys are looked up on their own: a table of partitions not
    forecast (pid=0) is fine, as with every partition forecast; one of keys the registry
    does not have is refused."""
    with Registry.open(root) as reg:
        others = pd.DataFrame({"pid": [0], "t": [30], "x0": [0.5], "x1": [0.5]})  # t: 0…29
        out = forecast(reg, keys=["pid=1"], horizon=1, future=others)
        assert list(out["pid"]) == [1]
        strangers = others.assign(pid=[77])
        with pytest.raises(DataError, match="none of its 1 partition"):
            forecast(reg, keys=["pid=1"], horizon=1, future=strangers)


def test_scoring_one_partitions_rows_reads_its_rows_not_the_alias_table(
    grows: Callable[[Callable[[Registry], Any]], tuple[int, int]],
) -> None:
    rows = linear_frame(3, rows=30).query("pid == 1").drop(columns="y")
    # before: the whole alias table was read (18,000 instructions more with 3,000 partitions)
    small, large = grows(lambda reg: score(rows, reg, backend="local"))
    assert large < small * 1.1, (small, large)


def test_scoring_at_an_alias_the_datas_keys_lack_but_others_have(root: Path) -> None:
    """Not a misspelt alias (that is refused): the rows go to the fallback, as before."""
    pad(root, 10)
    rows = linear_frame(3, rows=30).query("pid == 1").drop(columns="y")
    with Registry.open(root) as reg:
        reg.set_alias("pid=0", "nightly", 1, reason="test")
        out = score(rows, reg, alias="nightly", backend="local")
        assert out["fallback"].all()
        with pytest.raises(DataError, match="no partition in the registry has a 'nope' model"):
            score(rows, reg, alias="nope", backend="local")


def test_has_fallback_reads_the_fallbacks_row_not_the_alias_table(
    grows: Callable[[Callable[[Registry], Any]], tuple[int, int]],
) -> None:
    small, large = grows(lambda reg: reg.has_fallback())
    assert large < small * 1.1, (small, large)


def cli_rows(args: list[str]) -> int:
    """Rows a ``manymodels`` command reads from SQLite (a ``row_factory`` on every connection
    it opens counts each row handed to Python)."""
    from sqlalchemy.pool import Pool
    from typer.testing import CliRunner

    from manymodels.cli import app

    count = [0]

    def row(cursor: Any, values: tuple[Any, ...]) -> tuple[Any, ...]:
        count[0] += 1
        return values

    def counted(dbapi: Any, record: Any, proxy: Any) -> None:
        if isinstance(dbapi, sqlite3.Connection):
            dbapi.row_factory = row

    def uncounted(dbapi: Any, record: Any) -> None:
        if isinstance(dbapi, sqlite3.Connection):
            dbapi.row_factory = None

    event.listen(Pool, "checkout", counted)
    event.listen(Pool, "checkin", uncounted)
    try:
        result = CliRunner().invoke(app, args)
    finally:
        event.remove(Pool, "checkout", counted)
        event.remove(Pool, "checkin", uncounted)
    assert result.exit_code == 0, result.output
    return count[0]


@pytest.mark.parametrize("sort", ["drift", "age", "key"])
def test_monitor_limit_one_reads_one_partitions_rows_not_every_partitions(
    root: Path, sort: str
) -> None:
    """``manymodels monitor --limit 1`` read every production partition's health rows (its
    version, drift, live sums) and sorted them all to show one; now the page's keys come
    from an index (``monitoring.pages.monitor_page``, as the router's ``/v1/monitor``), and
    only that partition's rows are read. The total is still counted (along an index: SQLite
    walks it, Python gets one row)."""
    args = ["monitor", "--registry", str(root), "--limit", "1", "--json", "--sort", sort]
    small = cli_rows(args)
    pad(root, PADDING)
    large = cli_rows(args)
    assert large - small < 10, (small, large)  # before: 3,000 more (one a partition)


def test_a_skipped_partitions_lookup_does_not_grow_with_the_runs_that_skipped_it(
    tmp_path: Path,
) -> None:
    """``--changed-only`` asks whether a partition without a version was skipped on the data
    it has now; it read every run's skipped outcome of that key and compared fingerprints in
    Python: a small partition growing a row a day, skipped at every firing, cost one row more
    each time. The lookup costs the same after 300 such runs as after 3."""
    from sqlalchemy import insert

    from manymodels.registry import schema as t

    def skipped_runs(root: Path, n: int) -> None:
        with Registry.open(root) as reg:
            for i in range(n):
                reg.store.create_run(make_run(f"r{i}"))
            with reg.store.engine.begin() as conn:
                skipped = {"key": "pid=1", "status": "skipped", "n_rows": 3}
                rows = [
                    {**skipped, "run_id": f"r{i}", "data_fingerprint": f"{i:064d}"}
                    for i in range(n)
                ]
                conn.execute(insert(t.run_partitions), rows)

    def asked(reg: Registry) -> None:
        now = {"pid=1": f"{1:064d}", "pid=2": "e" * 64}
        assert reg.store.skipped_alike(now, "0" * 64) == {"pid=1"}

    few, many = tmp_path / "few", tmp_path / "many"
    for root, n in ((few, 3), (many, 300)):
        train(spec_dict(candidates=[{"estimator": RIDGE}]), linear_frame(1, rows=30), root,
              backend="local")  # fmt: skip
        skipped_runs(root, n)
    cost_few, cost_many = instructions(few, asked), instructions(many, asked)
    assert cost_many < 1.5 * cost_few, (cost_few, cost_many)
