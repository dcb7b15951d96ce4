"""Which Ridge, which rows and which arithmetic the two Ridge shortcuts stand in for: one
answer, asked by both.

``ridge_grid`` scores a spec's Ridge candidate over its ``alpha`` grid from one decomposition
per fold; ``ridge_refit`` refits the chosen one on all rows. Each replaces scikit-learn's
``fit`` only where that fit is the arithmetic it does itself, and each had asked so in its
own words, which had drifted apart: an ``alpha`` of any ``int`` or ``float`` subclass took
the grid's path but only exact types the refit's, and a caller's ``np.errstate(under=
"raise")`` sent the refit to scikit-learn (whose arithmetic then raises) while the grid
went on quietly. What they share is here:

- ``plain_alpha``: the Ridge's one parameter either reads — a positive finite number;
- ``finite_rows``: a table of finite float64 features, one finite target per row;
- ``solved``: the arithmetic run where it says nothing scikit-learn's would have said.

What genuinely differs stays with each, said there. ``ridge_grid`` reads a spec's
candidate — the class path, a grid over nothing but ``alpha``, so the rest of the Ridge is
its defaults (which ``ridge_refit`` accepts) — and makes any numeric rows float64, since its
fits only score (``options`` keeps categorical features away); its eigendecomposition
handles up to ``_WIDE`` features beyond the rows. ``ridge_refit`` reads a built estimator,
every parameter of it and of its pipeline, and takes float64 rows only as given and no more
features than rows: scikit-learn's own cholesky path, for the same bits.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")


def plain_alpha(alpha: Any) -> bool:
    """Whether ``alpha`` is one positive finite ``int``, ``float`` or ``np.float64``: what
    scikit-learn's Ridge accepts (``[0, inf)``) less 0 (no ridge: a singular system is
    solved otherwise), and less a subclass (its own ``__float__`` need not be the value
    numpy reads), a bool, an array (an alpha per target), or an int past the largest float
    (``10**400``: ``float()`` of it overflows, in scikit-learn's fit as it would here)."""
    return type(alpha) in (int, float, np.float64) and 0 < alpha <= sys.float_info.max


def finite_rows(values: np.ndarray, target: np.ndarray) -> bool:
    """Whether float64 ``values`` are a table of at least one feature column, ``target`` a
    1-D array of one value per row, and every number in both finite: scikit-learn refuses
    NaN and infinity in its own words, which the run keeps (``options.missing_named``)."""
    return (
        values.ndim == 2
        and values.shape[1] > 0
        and target.ndim == 1
        and len(target) == len(values)
        and bool(np.isfinite(values).all())
        and bool(np.isfinite(target).all())
    )


def solved(solve: Callable[[], T | None]) -> T | None:
    """``solve()``, or None where scikit-learn's fit would say something ours does not: an
    overflow, a division by zero or a NaN on the way (it warns or raises, or takes another
    solver), or a caller whose ``np.errstate`` asks to hear of underflow (its arithmetic
    tells; ours ignores underflow, as numpy does by default)."""
    if np.geterr()["under"] != "ignore":
        return None
    try:
        with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
            return solve()
    except (ArithmeticError, ValueError, np.linalg.LinAlgError):
        return None
