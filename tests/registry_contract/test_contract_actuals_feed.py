"""``manymodels actuals`` of a file naming many partitions, on each database of the contract
suite: its registry reads are batched (the statements it runs do not grow with the number of
partitions in the file) and what it records is what recording each partition alone records.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from factories import sales_toml
from sqlalchemy import Engine, event
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.monitoring import actuals as live_actuals
from manymodels.monitoring import store
from manymodels.registry import Registry
from manymodels.samples import store_sales

SPEC = sales_toml(
    "feed",
    """[fallback]
enabled = false
""",
)
runner = CliRunner()


@contextmanager
def statements() -> Iterator[list[str]]:
    """The SQL statements every engine of this process runs meanwhile in this thread (the CLI
    opens its own engine and reads and writes in the thread that invokes it): a thread left
    by an earlier test of the same worker (a heartbeat, a flush) was counted too, under load
    two statements more in one of two files (CI: "[24, 26]")."""
    seen: list[str] = []
    mine = threading.get_ident()

    def count(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        if threading.get_ident() == mine:
            seen.append(sql)

    event.listen(Engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", count)


def actuals(path: Path, flags: list[str]) -> list[dict[str, Any]]:
    result = runner.invoke(app, ["actuals", str(path), *flags, "--json"])
    assert result.exit_code == 0, result.output
    return list(json.loads(result.stdout)["recorded"])


def expected(reg: Registry, frame: pd.DataFrame) -> dict[str, live_actuals.Measured]:
    """Each partition's rows measured alone, as ``/v1/partitions/{key}/actuals`` measures
    them: its own production read, its own read of its last recorded actual."""
    out = {}
    for (s, b), rows in frame.groupby(["store", "brand"], sort=False):
        key = reg.key({"store": s, "brand": b})
        loaded = reg.load_model(key)
        out[key] = live_actuals.measure(
            reg.store.engine, key=key, version=loaded.version.version,
            metric=loaded.version.metric, schema=loaded.version.schema,
            predict=loaded.predict, rows=rows.to_dict("records"),
        )  # fmt: skip
    return out


@pytest.mark.slow
def test_actuals_of_many_partitions_read_the_registry_in_batches(
    db_url: str, tmp_path: Path
) -> None:
    """Each partition of the file was read alone — its production alias, its version, its
    last actual — 7 statements a partition (a file of 4 partitions ran 41, one of 15 ran 118;
    44 s of reads and model loads at 20,000 partitions). Now as many statements whatever the
    file's partitions (but for the batched reads of keys spelt otherwise); and the errors
    recorded, the naive answers from the last actual the first file recorded included, are
    those of each partition measured alone."""
    spec, data = tmp_path / "spec.toml", tmp_path / "sales.csv"
    spec.write_text(SPEC)
    frame = store_sales(n_stores=7, weeks=40)
    frame.to_csv(data, index=False)
    flags = ["--registry-db", db_url, "--artifacts", str(tmp_path / "store")]
    trained = runner.invoke(app, ["train", str(spec), str(data), *flags, "--backend", "local"])
    assert trained.exit_code == 0, trained.output
    with Registry(tmp_path / "registry", db_url=db_url, artifacts=tmp_path / "store") as reg:
        production = reg.store.alias_table("production")
    keys = pd.Series(
        [f"store={s},brand={b}" for s, b in zip(frame.store, frame.brand, strict=True)]
    )
    known = frame[keys.isin(production).to_numpy()]
    first = keys.isin(sorted(production)[:4]).to_numpy()
    few, many = frame[first], frame[keys.isin(sorted(production)[4:]).to_numpy()]
    assert few.groupby(["store", "brand"]).ngroups == 4
    assert many.groupby(["store", "brand"]).ngroups >= 13

    # day one: a file of 4 partitions, then one of the others: as many statements each
    tail = [f.groupby(["store", "brand"]).tail(6) for f in (few, many)]
    paths = [tmp_path / "few.csv", tmp_path / "many.csv"]
    for part, path in zip(tail, paths, strict=True):
        part.to_csv(path, index=False)
    counted = []
    for path in paths:
        with statements() as seen:
            actuals(path, flags)
        counted.append(len(seen))
    # within the two batched reads of other spellings (trained_keys.trained_forms), made only for a
    # file holding a key another spelling may name (store=1 reads as a boolean's 1): per
    # partition it was 7 statements each
    assert abs(counted[1] - counted[0]) <= 2, counted

    # day two, every partition, three weeks no file had (rows posted before are not
    # counted again): what each partition measured alone records
    later = known.groupby(["store", "brand"]).tail(9).groupby(["store", "brand"]).head(3)
    both = tmp_path / "both.csv"
    later.to_csv(both, index=False)
    with Registry(tmp_path / "registry", db_url=db_url, artifacts=tmp_path / "store") as reg:
        want = expected(reg, later)
        before = store.live_sums(reg.store.engine)
    recorded = actuals(both, flags)
    assert {r["key"] for r in recorded} == set(want)
    with Registry(tmp_path / "registry", db_url=db_url, artifacts=tmp_path / "store") as reg:
        after = store.live_sums(reg.store.engine)
    for r in recorded:
        m = want[r["key"]]
        pair = (r["key"], m.version)
        assert r["rows"] == m.sums.rows == 3
        assert r["error"] == live_actuals.live_error(m.metric, m.task, m.sums)
        assert r["naive_error"] == live_actuals.live_error(m.metric, m.task, m.sums, naive=True)
        assert after[pair][0] == before[pair][0] + m.sums
