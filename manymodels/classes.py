"""The classes of a classification table, and how often each occurs over the whole table.

Known once, when the table is prepared, so that every partition's model answers with the same
classes (a partition that holds one class still gives a probability for the other) and a
partition whose rows hold one class can borrow the table's class rates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class ClassPrior:
    """Every class of the table (sorted) and its share of the rows with a target."""

    classes: np.ndarray
    rates: np.ndarray

    @property
    def labels(self) -> list[Any]:
        """The classes as JSON values, for a version's feature schema."""
        return [c.item() if isinstance(c, np.generic) else c for c in self.classes.tolist()]

    @property
    def binary(self) -> bool:
        return len(self.classes) == 2

    def rate(self, cls: Any) -> float:
        """The table's share of ``cls`` (0 for a class it never saw)."""
        hit = np.flatnonzero(self.classes == cls)
        return float(self.rates[hit[0]]) if len(hit) else 0.0


def class_prior(y: np.ndarray) -> ClassPrior:
    """The classes of ``y`` and their rates, leaving out missing targets."""
    y = np.asarray(y)
    known = y[~np.asarray(pd.isna(y), dtype=bool)] if y.dtype.kind in "fOUS" else y
    if not len(known):
        return ClassPrior(np.asarray([], dtype=y.dtype), np.asarray([], dtype=np.float64))
    classes, counts = np.unique(known, return_counts=True)
    return ClassPrior(classes, counts / counts.sum())
