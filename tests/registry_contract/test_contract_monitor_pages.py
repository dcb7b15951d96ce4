"""The monitor's keyset pages (``pages.keys_after``: the dashboard Health view's "Load more")
and ``degraded``'s validation rows (``report.health``), on every database: the page after any
partition is the rest of the whole-pass ranking, for drift (scored rows, then unscored by key)
and key; the validation rows are read from each version's validation record."""

from __future__ import annotations

from factories import spec_dict
from test_monitor_pages import N, samples

from manymodels.monitoring import pages, report, store
from manymodels.monitoring.live import ErrorSums
from manymodels.partition import FALLBACK_KEY
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.registry import schema as t
from manymodels.samples import synthetic


def test_pages_after_a_key_and_the_validation_rows_of_degraded(reg: Registry) -> None:
    spec = spec_dict(features=["x0", "x1", "x2"], fallback={"enabled": True})
    train(spec, synthetic(N, 30, n_features=3), reg, backend="local")
    engine = reg.store.engine
    keys = sorted(p.key for p in reg.list_partitions() if p.key != FALLBACK_KEY)
    batch = [samples(reg, k, 200, shift=i % 7) for i, k in enumerate(keys[:12])]  # ties
    batch += [samples(reg, k, 10, shift=3) for k in keys[12:15]]  # no score
    store.add_samples(engine, batch)
    for sort in ("drift", "key"):
        whole = [r.key for r in report.ranked(report.health(engine), sort)]
        for limit in (1, 5, 50):
            for i, after in enumerate(whole):
                got = pages.keys_after(engine, sort, limit, after)
                assert got == whole[i + 1 : i + 1 + limit], (sort, limit, after)

    version = reg.get_version(keys[0], alias="production")
    held_out = version.validation["rows"]
    error = -version.score  # an error metric: what validation measured
    # 100 rows of mean absolute error 4 × validation's, spread (Σe² = 1.5 × n × mean²)
    sums = ErrorSums(100, 4.0 * error * 100, 1.5 * (4.0 * error) ** 2 * 100, 0, 0.0, 0.0, 0)
    store.add_many_actuals(engine, "2026-01-01", [(keys[0], version.version, sums, None, [])])
    (row,) = report.health(engine, keys=[keys[0]])
    assert row.validation_rows == held_out > 0 and row.error_ratio == 4.0
    assert row.validation_error_se is not None and row.validation_error_se > 0
    assert "degraded" in row.flags(report.Thresholds())  # beyond the noise of 6 held-out rows


def test_the_age_order_puts_aliases_without_a_creation_time_first_on_every_database(
    reg: Registry,
) -> None:
    """An alias without its version's creation time (``version_created_at`` NULL) sorts first
    by key, then the rest oldest first, on SQLite and PostgreSQL alike — by offset, after any
    key, and in the rows a page shows. PostgreSQL sorts NULLs last where SQLite sorts them
    first: by offset they came last there, ``after=`` one of them resumed with the dated rows
    (shown twice), and the page's rows were sorted again by the version's own age, so its last
    row (``next_after``) was not its last key in the database's order."""
    from sqlalchemy import update

    spec = spec_dict(features=["x0", "x1", "x2"], fallback={"enabled": True})
    train(spec, synthetic(N, 30, n_features=3), reg, backend="local")
    engine = reg.store.engine
    a = t.aliases.c
    keys = sorted(p.key for p in reg.list_partitions() if p.key != FALLBACK_KEY)
    unknown = [keys[17], keys[2], keys[9]]
    with engine.begin() as conn:  # distinct times, newest first by key: age is not key order
        for i, k in enumerate(keys):
            created = None if k in unknown else f"2026-01-{28 - i:02d}T00:00:00+00:00"
            conn.execute(
                update(t.aliases)
                .where(a.key == k, a.alias == "production")
                .values(version_created_at=created)
            )
    dated = [k for k in reversed(keys) if k not in unknown]
    expected = sorted(unknown) + dated
    for limit, offset in [(2, 0), (3, 1), (5, 3), (50, 0), (4, 22), (10, 30)]:
        got, total = pages.page_keys(engine, "age", limit, offset)
        assert total == N and got == expected[offset : offset + limit], (limit, offset)
        rows, _ = pages.monitor_page(engine, "age", limit, offset)
        assert [r.key for r in rows] == got  # the page's own order, which next_after ends
    for limit in (1, 2, 5):
        for i, after in enumerate(expected):
            got = pages.keys_after(engine, "age", limit, after)
            assert got == expected[i + 1 : i + 1 + limit], (limit, after)
