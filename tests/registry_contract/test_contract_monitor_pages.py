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
