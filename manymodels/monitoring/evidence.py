"""When a live error is evidence of a worse model, and not the noise of a few rows.

A live error on 100 actuals, and a validation error on 60 held-out rows, are both estimates:
a classifier right 80 % of the time misses 14 to 26 of 100 rows by chance alone, and its
validation error on 60 rows is as uncertain. Comparing their point values flagged 5 of 30
classifiers ``degraded`` on actuals drawn from their training distribution (live/validation
≥ 1.5, or live/naive > 1 for a model close to its naive answer). So ``degraded`` is a
one-sided test, as a careful practitioner (or Evidently's and NannyML's tests on proportions
and means) would make it: the live error exceeds ``ratio`` × the reference error by more
than ``z`` standard errors of their difference,

    live − ratio · reference ≥ z · √(se_live² + ratio² · se_reference²)

with ``z`` of the threshold's one-sided ``confidence`` (0.95: 1.645).

The standard errors come from the sums kept per day window, O(1) per partition:

- an error rate (``accuracy``): binomial, ``√(p̃(1 − p̃)/n)`` with ``p̃ = (k + 1)/(n + 2)``
  (Agresti–Caffo's added success and failure: a validation error of 0 on 60 rows is not
  known to be 0, and a live error of 1 in 100 against it is no evidence);
- a mean absolute error: the spread of |e| from Σ|e| and Σe²; the validation rows' spread
  is taken to be the live rows' relative spread (only their mean is stored);
- a mean squared error ``m``: ``m·√(2/n)``, and a root mean squared error ``r``:
  ``r/√(2n)`` — the normal errors' values (the fourth moment is not kept).

The naive answer is scored on the same rows as the model; their errors are correlated, so
treating them as independent overstates the difference's noise: the test errs towards not
flagging. A validation error whose rows are unknown is taken as exact.
"""

from __future__ import annotations

import math
from statistics import NormalDist

from manymodels.monitoring.live import ErrorSums


def z_of(confidence: float) -> float:
    """The one-sided normal quantile of ``confidence`` (0.95 → 1.645)."""
    return NormalDist().inv_cdf(confidence)


def _rate_spread(wrong: float, n: float) -> float:
    p = (wrong + 1.0) / (n + 2.0)
    return math.sqrt(p * (1.0 - p))


def live_spread(name: str, sums: ErrorSums, *, naive: bool = False) -> float | None:
    """The per-row standard deviation of the model's (or the naive answer's) error parts in
    the units of the live metric ``name``; its standard error is this over ``√rows``."""
    n = sums.rows
    if n <= 0:
        return None
    if name == "accuracy":
        return _rate_spread(sums.naive_wrong if naive else sums.wrong, n)
    sq = (sums.naive_sq_error if naive else sums.sq_error) / n
    if name == "neg_mean_squared_error":
        return sq * math.sqrt(2.0)
    if name == "neg_root_mean_squared_error":
        return math.sqrt(sq / 2.0)
    mae = (sums.naive_abs_error if naive else sums.abs_error) / n
    return math.sqrt(max(sq - mae * mae, 0.0) * n / max(n - 1, 1))


def validation_se(
    name: str, error: float | None, rows: int | None, live: ErrorSums | None
) -> float:
    """The standard error of a validation ``error`` over ``rows`` held-out rows (0 when its
    rows are unknown: taken as exact)."""
    if error is None or not rows or rows <= 0 or not math.isfinite(error):
        return 0.0
    if name == "accuracy":
        return _rate_spread(error * rows, rows) / math.sqrt(rows)
    if name == "neg_mean_squared_error":
        return error * math.sqrt(2.0 / rows)
    if name == "neg_root_mean_squared_error":
        return error / math.sqrt(2.0 * rows)
    spread = live_spread(name, live) if live is not None else None
    mae = live.abs_error / live.rows if live is not None and live.rows > 0 else 0.0
    if spread is None or mae <= 0:
        return 0.0
    return error * (spread / mae) / math.sqrt(rows)


def worse(
    error: float | None,
    se: float | None,
    reference: float | None,
    reference_se: float | None,
    *,
    ratio: float,
    z: float,
    strict: bool = False,
) -> bool:
    """Whether ``error`` exceeds ``ratio`` × ``reference`` by ``z`` standard errors of their
    difference (``strict``: by more than that); with both errors exact (standard errors 0)
    this is the plain ratio rule, ``error / reference ≥ ratio`` (``>`` when ``strict``)."""
    if error is None or reference is None or not math.isfinite(error):
        return False
    if not math.isfinite(reference) or error <= 0:  # no error is never worse
        return False
    excess = error - ratio * reference
    bound = z * math.sqrt((se or 0.0) ** 2 + (ratio * (reference_se or 0.0)) ** 2)
    return excess > bound if strict else excess >= bound
