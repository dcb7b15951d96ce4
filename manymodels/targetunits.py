"""Answers in the target's units when the model learnt a transformed target
(``target_transform``, ``manymodels.lagfeatures.TargetTransform``).

Every reader of a model's predictions — validation, ``LoadedModel.predict``, batch ``score``,
the router's ``/predict`` and ``/v1/predict``, ``forecast`` — turns them back before a person
or a metric sees them:

* ``scale`` is the partition's affine map, recorded in the version's history
  (``FeatureSchema.transform``: ``center``, ``spread``): ``p * spread + center``.
* ``difference``: the model predicts the change from the previous period, so a row's answer is
  its *previous target* plus the prediction — one step ahead from the actual previous value.
  Serving finds the previous target from the row's time (``rowlags.previous_targets``): the
  version's last recorded target for the period right after it, or a target posted by another
  row of the same request. When it cannot be known the row is refused (``InvalidRows``: a 422
  naming the row), never answered in the wrong units.

  Validation judges a fold as ``forecast`` answers it: the fold's predicted changes summed onto
  the last target before it (``chained``), so the error at its ``s``-th row is an ``s``-step
  forecast error. Judged row by row from the actual previous targets, a differenced model's
  errors were one-step errors — several times smaller than a forecast's over 12 or 14 steps —
  and it won every comparison with a model of the level (#12). The conformal intervals then
  come from those chained errors too, step by step (``intervals``).

A version without a transform costs one dictionary lookup (``recorded``) and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from manymodels.feature_schema import FeatureSchema
from manymodels.lagfeatures import TargetTransform
from manymodels.row_numbers import counted_row


def to_target_units(
    predictions: Any,
    data: Any,
    schema: FeatureSchema,
    positions: Sequence[int] | None = None,
) -> Any:
    """``predictions`` of the rows ``data`` (a DataFrame, a list of dicts or one dict) in the
    target's units; unchanged for a version without a transform. Raises ``InvalidRows`` for
    ``difference`` rows whose previous target is not known (see the module)."""
    transform = schema.transform
    if transform is None:
        return predictions
    fitted = TargetTransform.from_json(transform)
    before = None
    if fitted.kind == "difference":
        from manymodels.rowlags import previous_targets  # inputs → rowlags; keep this light

        before = previous_targets(_records(data), schema, positions)
    return invert_rows(fitted, np.asarray(predictions, dtype=np.float64), before)


def invert_rows(
    transform: TargetTransform, predictions: np.ndarray, before: np.ndarray | None
) -> np.ndarray:
    """Row-wise inversion: each row on its own (``before``: each row's previous target, for
    ``difference``), unlike ``TargetTransform.invert``, which chains consecutive steps."""
    if transform.kind == "difference":
        assert before is not None
        return np.asarray(before, dtype=np.float64) + predictions
    return transform.invert(predictions, np.nan)


def _records(data: Any) -> list[Mapping[str, Any]]:
    if isinstance(data, pd.DataFrame):
        return list(data.to_dict("records"))
    if isinstance(data, Mapping):
        return [data]
    return list(data)


class Untransformed:
    """A fitted model's validation predictions in the target's units, scored like an
    estimator: ``predict(X)`` for the rows ``rows`` of a partition (``len(X) == len(rows)``),
    each turned back with ``before[rows]`` (the previous raw targets, ``difference``) — or,
    when ``forecast`` says they are a forecast from the row before them (``chained``), as one:
    the predicted changes summed from that row's target. ``at(rows)`` answers a subset, as
    ``external.Precomputed`` does."""

    def __init__(
        self,
        model: Any,
        transform: TargetTransform,
        before: np.ndarray,
        rows: np.ndarray,
        forecast: np.ndarray | None = None,
        chain: bool | None = None,
    ) -> None:
        self.model = model
        self.transform = transform
        self.before = before
        self.rows = rows
        self.forecast = forecast  # each kept row's period in the partition; None: row by row
        self.chain = chain  # ``chained(rows, forecast)`` when known already

    def at(self, rows: np.ndarray) -> Untransformed:
        inner = getattr(self.model, "at", None)
        model = inner(rows) if inner is not None else self.model
        return Untransformed(model, self.transform, self.before, np.asarray(rows), self.forecast)

    def predict(self, X: Any) -> np.ndarray:
        pred = np.asarray(self.model.predict(X), dtype=np.float64)
        chain = self.chain
        if self.transform.kind == "difference" and (
            chained(self.rows, self.forecast) if chain is None else chain
        ):
            return self.transform.invert(pred, float(self.before[self.rows[0]]))
        return invert_rows(self.transform, pred, self.before[self.rows])


def chained(rows: np.ndarray, periods: np.ndarray | None) -> bool:
    """Whether ``rows`` (indexes of a partition's kept rows) are a forecast from the row before
    the first: ``periods`` given (folds ordered in time, ``last`` or ``kfold``) and the rows'
    periods one run with no gap — a row dropped inside it (a missing target) would leave the
    change across the gap out of the sum."""
    if periods is None or len(rows) == 0:
        return False
    at = periods[np.asarray(rows)]
    return bool((np.diff(at) == 1).all())


class RawTarget:
    """One partition's kept rows as given: ``y`` (the raw target), ``before`` (each row's
    previous raw target, NaN where none) and the partition's ``transform``. Selection scores
    every fit through ``judged``, so validation metrics, the naive comparison and interval
    residuals are in the target's units. ``periods`` (each kept row's position among the
    partition's rows) is given when validation folds are ordered in time: a differenced
    model's fold is then judged as a forecast (``chained``)."""

    def __init__(
        self,
        y: np.ndarray,
        before: np.ndarray,
        transform: TargetTransform,
        periods: np.ndarray | None = None,
    ) -> None:
        self.y = np.asarray(y, dtype=np.float64)
        self.before = np.asarray(before, dtype=np.float64)
        self.transform = transform
        self.periods = periods
        self._chains: dict[Any, tuple[Any, bool]] = {}  # each fold's rows and ``chained``

    def judged(self, fit: Any, rows: Any) -> Untransformed:
        """``fit`` answering validation ``rows`` (a slice or index array) in raw units."""
        index = self._index(rows)
        inner = getattr(fit, "at", None)
        model = inner(index) if inner else fit
        return Untransformed(
            model, self.transform, self.before, index, self.periods, self._chained(rows, index)
        )

    def _chained(self, rows: Any, index: np.ndarray) -> bool | None:
        """``chained(index, periods)`` of a fold's rows, worked out once a fold: every option
        is judged on every fold (~30 µs a call; 2 % of us_employment's one spec in process).
        Only a fold's own rows are remembered: a slice, or a read-only index array (the
        splits ``SplitsByCount`` shares), held here so that its ``id`` is not reused;
        ``None`` for any other rows (worked out where used)."""
        if self.transform.kind != "difference":
            return None
        if isinstance(rows, slice):
            at: Any = ("slice", rows.start, rows.stop, rows.step)
        elif isinstance(rows, np.ndarray) and not rows.flags.writeable:
            at = id(rows)
        else:
            return None
        known = self._chains.get(at)
        if known is None or (known[0] is not rows and not isinstance(rows, slice)):
            known = self._chains[at] = (rows, chained(index, self.periods))
        return known[1]

    def chained(self, rows: Any) -> bool:
        """Whether a differenced fit of validation ``rows`` is judged as a forecast."""
        return self.transform.kind == "difference" and chained(self._index(rows), self.periods)

    def _index(self, rows: Any) -> np.ndarray:
        """``rows`` (a slice or index array) as positions in this partition's kept rows."""
        return np.arange(len(self.y))[rows]


# --------------------------------------------------------------------------------------------
# batch scoring (``manymodels.scoring``): checked with the plan, applied to the results
# --------------------------------------------------------------------------------------------
Inverses = dict[int, tuple[TargetTransform, np.ndarray | None]]


def plan_inverses(df: pd.DataFrame, plan: Any, *, source: str) -> Inverses:
    """How each scoring unit with a target transform turns its predictions back, by unit
    index; found before any model loads, so a ``difference`` row whose previous target is not
    known (no time column, or a period whose predecessor the table does not carry) is a
    ``DataError`` naming that row up front, not after the work."""
    from manymodels.exceptions import DataError, InvalidRows
    from manymodels.rowlags import previous_targets

    out: Inverses = {}
    for u, ref in enumerate(plan.units):
        schema = plan.transformed.get((ref.key, ref.version))  # its own, not the shared one
        transform = schema.transform if schema is not None else None
        if schema is None or transform is None:
            continue
        fitted = TargetTransform.from_json(transform)
        before = None
        if fitted.kind == "difference":
            positions = plan.positions[plan.offsets[u] : plan.offsets[u + 1]]
            wanted = [c for c in (schema.time_column, schema.target) if c in df]
            rows = df.iloc[positions][wanted].to_dict("records")
            try:
                before = previous_targets(rows, schema, positions.tolist())
            except InvalidRows as e:
                first = e.errors[0]  # its place in the table; named from 1, as train names rows
                raise DataError(
                    f"{source}: {counted_row(first['loc'][2] + 1)} (partition '{ref.key}' "
                    f"v{ref.version}): {first['msg']}"
                ) from None
        out[u] = (fitted, before)
    return out


def apply_inverses(
    inverses: Inverses, offsets: np.ndarray, done: list[tuple[int, list[np.ndarray]]]
) -> None:
    """Each finished chunk's predictions (``(its first row in the plan's order, one array per
    unit)``) turned back in place; ``offsets`` are the plan's unit offsets. (A chunk that starts
    inside the fallback's rows holds fallback pieces only: no transform.)"""
    if not inverses:
        return
    first_unit = {int(lo): u for u, lo in enumerate(offsets[:-1].tolist())}
    for start, arrays in done:
        u0 = first_unit.get(int(start))
        for j, pred in enumerate(arrays):
            if u0 is not None and u0 + j in inverses:
                fitted, before = inverses[u0 + j]
                arrays[j] = invert_rows(fitted, np.asarray(pred, dtype=np.float64), before)
