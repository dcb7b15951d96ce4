"""Prediction intervals at answer time: which levels a command or a request asks for (parsed,
checked against what each version recorded) and the bands ``lo-<level>`` / ``hi-<level>``
around its predictions, per forecast step.

Apart from ``manymodels.intervals`` (what training records, and why those quantiles are the
right ones) because every reader — ``score``, ``forecast``, the router — needs only this half,
and this half needs nothing of the recording's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from manymodels.exceptions import DataError
from manymodels.feature_schema import FeatureSchema
from manymodels.spec_sections import FRACTION
from manymodels.written_columns import interval_columns, level_name

MAX_LEVELS = 10
# a level as text: digits, an optional fraction and exponent (what the examples write)
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")


def parse_levels(text: str | Sequence[Any] | None, name: str = "levels") -> list[float] | None:
    """``"80,95"`` (a query or CLI value) or a list of numbers as sorted, distinct levels;
    ``None`` for ``None``. Raises ``DataError`` for anything that is not a percentage, worded
    with ``name`` as the caller's user wrote it (``--levels`` on the command line, the
    router's ``levels``)."""
    example = f"{name} 80,95" if name.startswith("--") else f"{name}=80,95"
    if text is None:
        return None
    if isinstance(text, int | float | np.number) and not isinstance(text, bool):
        text = [text]  # levels=80 from Python: one level, where list() raised a TypeError
    if not isinstance(text, str | Sequence | np.ndarray | set | frozenset):
        raise DataError(f"{name}: give levels in percent as a list, not {type(text).__name__}")
    parts = [p.strip() for p in text.split(",")] if isinstance(text, str) else list(text)
    out: list[float] = []
    for part in parts:
        try:  # text in ASCII decimals: float() also reads "8_0" and full-width "８０" as 80
            value = (
                float(part)
                if not isinstance(part, str) or _DECIMAL.match(part.strip())
                else math.nan
            )
        except (TypeError, ValueError):
            value = math.nan
        if not 0 < value < 100:
            raise DataError(
                f"{name}: {str(part)!r} is not a coverage in percent between 0 and 100 "
                f"(e.g. {example})"
            )
        if value <= 1:
            raise DataError(f"{name}: {FRACTION.format(value)}")
        if not 0 < float(level_name(value)) < 100:
            raise DataError(
                f"{name}: {str(part)!r} would be named {level_name(value)}% (lo-/hi- names "
                "keep 6 significant digits): give at most 6 significant digits"
            )
        out.append(value)
    if not out or len(out) > MAX_LEVELS:
        raise DataError(f"{name}: give 1 to {MAX_LEVELS} levels (e.g. {example})")
    return sorted(set(out))


def check_levels(schema: FeatureSchema, levels: Sequence[float], *, what: str) -> None:
    """``DataError`` naming the first level ``what`` (a partition and version) did not record,
    and the levels it did."""
    if schema.classifies:
        raise DataError(
            f"{what} is a classifier: prediction intervals are for regression models only"
        )
    rec = schema.intervals
    have = [float(v) for v in rec["levels"]] if rec else []
    missing = [lv for lv in levels if float(lv) not in have]
    if missing:
        # as asked, exactly: a recorded 99.99994 would otherwise read as the asked 99.9999
        kept = ", ".join(map(_exact, have)) or "none"
        raise DataError(
            f"{what} has no {_exact(missing[0])}% interval (levels recorded: {kept}; "
            "[intervals] levels in the spec records them when it trains)"
        )


def _exact(level: float) -> str:
    """A level as written, exactly: ``80.00000000001`` asked read "no 80% interval (levels
    recorded: 80, …)", and a recorded 99.99994 would read as an asked 99.9999."""
    return level_name(level) if float(level_name(level)) == float(level) else repr(float(level))


def widths(schema: FeatureSchema, levels: Sequence[float], steps: int | None = None) -> np.ndarray:
    """Half-widths, shape ``(len(levels), steps or 1)``: per forecast step when the version
    recorded at least ``steps`` steps, else its pooled quantile repeated. NaN for a level it
    did not record (``check_levels`` first where that is an error)."""
    rec = schema.intervals
    n = steps or 1
    out = np.full((len(levels), n), np.nan)
    if rec is None:
        return out
    have = [float(v) for v in rec["levels"]]
    by_step = rec.get("steps") if steps is not None else None
    for i, lv in enumerate(levels):
        if float(lv) not in have:
            continue
        j = have.index(float(lv))
        if by_step is not None and len(by_step) >= n:
            out[i] = [_float(by_step[s][j]) for s in range(n)]
        else:
            out[i] = _float(rec["quantiles"][j])
    return out if steps is None else out * _untransformed(schema, n)


def _untransformed(schema: FeatureSchema, steps: int) -> np.ndarray:
    """What turns a forecast's half-widths, learnt on a transformed target (``[lags]
    target_transform``), back into the target's units, per step: ``scale`` multiplies by the
    partition's spread, unless the record's errors are in ``"units": "target"`` already (the
    training hook turns validation predictions back); ``difference`` sums ``s`` predicted
    changes by step ``s``, whose error — of ``s`` independent one-step errors — grows as
    ``√s``; errors taken of such sums already (``"chained": k``, folds of ``k`` steps) grow
    only past the ``k``-th step, as ``√(s / k)``."""
    transform = schema.transform or {}
    kind = transform.get("kind")
    record = schema.intervals or {}
    if kind == "scale" and record.get("units") != "target":
        return np.full(steps, float(transform.get("spread", 1.0)))
    if kind == "difference":  # errors of forecasts ``chained`` steps long already grew
        known = max(int(record.get("chained") or 1), 1)
        return np.sqrt(np.maximum(np.arange(1, steps + 1, dtype=np.float64) / known, 1.0))
    return np.ones(steps)


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


def bands(
    predictions: np.ndarray, half_widths: np.ndarray, levels: Sequence[float]
) -> dict[str, np.ndarray]:
    """``{"lo-80": prediction - q, "hi-80": prediction + q, …}``; ``half_widths`` as
    ``widths`` returns them, with one column or one per prediction."""
    pred = np.asarray(predictions, dtype=np.float64)
    out: dict[str, np.ndarray] = {}
    for i, lv in enumerate(levels):
        q = half_widths[i] if half_widths.shape[1] == len(pred) else half_widths[i, 0]
        out[f"lo-{level_name(lv)}"] = pred - q
        out[f"hi-{level_name(lv)}"] = pred + q
    return out


def recorded_levels(schemas: Sequence[FeatureSchema]) -> list[float]:
    """Every level any of ``schemas`` recorded: the columns an answer carries by default."""
    found = {float(v) for s in schemas if (rec := s.intervals) for v in rec["levels"]}
    return sorted(found)


def choose_levels(
    schemas: Sequence[tuple[str, FeatureSchema]], levels: Sequence[float] | None
) -> list[float]:
    """The levels an answer over these ``(what, schema)`` pairs carries: ``levels`` when every
    version recorded them (else ``DataError`` naming the first that did not), or by default
    every level any of them recorded (columns stay NaN for a version without that level)."""
    if levels is None:
        return recorded_levels([s for _, s in schemas])
    for what, schema in schemas:
        check_levels(schema, levels, what=what)
    return list(levels)


def stacked_bands(
    schemas: Sequence[FeatureSchema],
    predictions: Sequence[np.ndarray],
    levels: Sequence[float],
    *,
    steps: int | None = None,
) -> dict[str, np.ndarray]:
    """``bands`` of several versions' predictions (one array each, ``steps`` forecast steps
    long when given), concatenated in the same order."""
    if not levels:
        return {}
    parts = [
        bands(p, widths(s, levels, steps), levels)
        for s, p in zip(schemas, predictions, strict=True)
    ]
    names = interval_columns(levels)
    if not parts:
        return {name: np.zeros(0) for name in names}
    return {name: np.concatenate([part[name] for part in parts]) for name in names}


# JSON answers (the router)
def json_bands(
    schema: FeatureSchema,
    levels: Sequence[float],
    predictions: Sequence[Any],
    *,
    what: str,
    steps: int | None = None,
) -> dict[str, list[float | None]]:
    """``{"lo-80": […], "hi-80": […]}`` around one version's JSON predictions (null where a
    bound is not finite); ``DataError`` when it did not record a level (``check_levels``).
    ``steps``: the predictions are that many forecast steps."""
    check_levels(schema, levels, what=what)
    pred = np.array([math.nan if p is None else p for p in predictions], dtype=np.float64)
    out = bands(pred, widths(schema, levels, steps), levels)
    return {name: [_json(v) for v in values.tolist()] for name, values in out.items()}


def _json(value: float) -> float | None:
    return value if math.isfinite(value) else None
