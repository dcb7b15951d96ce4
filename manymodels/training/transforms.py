"""A target transform chosen per partition: ``target_transform = ["none", "difference"]``.

The table arrives with the first transform applied (its target, and the lags and rolling
statistics taken of it) and the raw target beside it (``PartitionedTable.raw_y``). For each
other transform, ``alternative_views`` derives the chunk's table as it would have been built
under it — the target transformed per partition, the derived columns recomputed from it, the
other features as they are — with the spec that names it. Each partition is then fitted under
every view and keeps the one whose validation score is best (``train_one``): its scores are in
the target's units whatever the transform (``manymodels.targetunits``), so they compare.

The cost is one more fit of every local candidate per transform, for the chunk's partitions
only. Global candidates are fitted once per run *and transform* (each of ``global_tasks``
builds the whole table's view), and each competes under its own view: its
predictions are in that transform's units.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from manymodels.lagfeatures import LagPlan, fit_transforms, table_features
from manymodels.partition import PartitionedTable
from manymodels.spec import Spec


@dataclass(frozen=True)
class View:
    """The chunk as one transform sees it: its table, and the spec naming that transform."""

    table: PartitionedTable
    spec: Spec

    @property
    def transform(self) -> str:
        return self.spec.transform


def alternative_views(table: PartitionedTable, spec: Spec) -> list[View]:
    """The chunk under each transform after the first (none for a single transform)."""
    if len(spec.transforms) < 2 or table.raw_y is None:
        return []
    return [view(table, spec, kind) for kind in spec.transforms[1:]]


def view(table: PartitionedTable, spec: Spec, kind: str) -> View:
    """``table`` (built under the spec's first transform) as ``kind`` sees it; the table
    itself for the first."""
    if kind == spec.transform:
        return View(table, spec)
    assert table.raw_y is not None
    alone = spec.model_copy(update={"target_transform": kind})
    plan = LagPlan.from_spec(alone)
    y = fit_transforms(table.raw_y, table.offsets, plan.transform)[0]
    derived = table_features(y, table.offsets, plan)
    X: Any
    if isinstance(table.X, pd.DataFrame):
        X = table.X.assign(**{name: derived[:, j] for j, name in enumerate(plan.columns)})
    else:
        X = np.array(table.X, dtype=np.float64, copy=True)
        for j, name in enumerate(plan.columns):
            X[:, table.features.index(name)] = derived[:, j]
    return View(replace(table, X=X, y=y), alone)
