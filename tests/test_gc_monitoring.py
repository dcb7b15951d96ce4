"""gc and the monitoring tables: the live-error windows of the versions it deletes go with them
(``RegistryWritesMixin.prune_versions``), so a partition's actuals stay bounded by its kept
versions, not by every version it ever had."""

from __future__ import annotations

from pathlib import Path

from factories import RIDGE, linear_frame
from sqlalchemy import func, select

from manymodels.gc import collect
from manymodels.monitoring import store
from manymodels.monitoring.live import ErrorSums
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.registry import schema as t

SPEC = {
    "name": "gc-actuals",
    "partition_by": ["pid"],
    "target": "y",
    "features": ["x0", "x1"],
    "candidates": [{"estimator": RIDGE}],
    "validation": {"strategy": "holdout", "size": 0.2},
    "fallback": {"enabled": False},
    "promotion": {"policy": "always"},
}


def _windows(reg: Registry) -> dict[tuple[str, int], int]:
    a = t.monitor_actuals.c
    q = select(a.key, a.version, func.count()).group_by(a.key, a.version)
    with reg.store.engine.connect() as conn:
        return {(k, v): n for k, v, n in conn.execute(q)}


def test_gc_deletes_the_actuals_windows_of_the_versions_it_deletes(tmp_path: Path) -> None:
    """Three versions of each partition, each with days of actuals; ``gc --keep 1`` deletes
    v1 and v2 and their windows, and keeps v3's. Before, the windows of every deleted version
    stayed for ever (14 day rows per version: a partition retrained weekly with daily actuals
    kept ~360 rows a year whatever gc kept)."""
    root = tmp_path / "registry"
    frame = linear_frame(n_partitions=3, rows=60)
    one = ErrorSums(2, 1.0, 0.5, 0, 2.0, 2.5, 0)
    for version in (1, 2, 3):
        train(SPEC, frame.assign(y=frame["y"] + version), root, backend="local")
        with Registry.open(root) as reg:
            keys = sorted(p.key for p in reg.list_partitions())
            for day in (1, 2):
                batch = [(k, version, one, 1.0, [(None, 1.0, 2.0)]) for k in keys]
                store.add_many_actuals(reg.store.engine, f"2026-11-{version}{day}", batch)
    with Registry.open(root) as reg:
        assert set(_windows(reg).values()) == {2} and len(_windows(reg)) == 3 * len(keys)
        report = collect(reg, keep=1, alias_grace_seconds=0.0)
        assert sorted(report.versions_deleted) == sorted((k, v) for k in keys for v in (1, 2))
        assert _windows(reg) == {(k, 3): 2 for k in keys}
        assert store.live_sums(reg.store.engine)[keys[0], 3][0].rows == 4
