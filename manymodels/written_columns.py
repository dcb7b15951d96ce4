"""The columns ``score`` and ``forecast`` write beside a table's own, named once.

Scoring refuses a table that already has one (``scoring.plan.refuse_written``: it would be
overwritten), and a forecast a key or time column named as one
(``forecast_output.refuse_overwritten``). So a model that reads such a column — a feature
named ``prediction``, a key column named ``partition`` — trained and served, but its rows
could never be batch-scored: dropping the column drops a feature. Training refuses it
instead, from this list (``reserved``): the spec's named columns when the spec is validated,
the table's other columns when they are the features (``data.resolve_columns``).

No imports: the spec module reads it, and every writer of these columns reads it too.
"""

from __future__ import annotations

from collections.abc import Sequence

FORECAST_COLUMNS = ("prediction", "model_version")
"""What every forecast writes beside its key and time columns."""

SCORED_COLUMNS = (*FORECAST_COLUMNS, "partition", "served_by", "fallback")
"""What every scored table adds (``partition`` the row's key, ``served_by`` the key whose model
answered: the router's answers use the same names)."""

DECISION_COLUMNS = ("decision_label", "decision_threshold")
"""A classifier's label at its ``[decision]`` threshold (or one asked), and the threshold."""

PROBA_PREFIX = "proba-"
"""``proba-<class>``: a class's probability (``--probabilities``)."""

INTERVAL_SIDES = ("lo", "hi")
"""``lo-<level>`` / ``hi-<level>``: a prediction interval's bounds (``[intervals]``)."""


def level_name(level: float) -> str:
    """``80`` → ``"80"``, ``97.5`` → ``"97.5"``: the suffix of ``lo-`` / ``hi-``."""
    return f"{level:g}"


def interval_columns(levels: Sequence[float]) -> list[str]:
    """``lo-<level>`` and ``hi-<level>`` for each level, in the order answers carry them."""
    return [f"{side}-{level_name(lv)}" for lv in levels for side in INTERVAL_SIDES]


def reserved(name: str) -> str | None:
    """Why a column named ``name`` cannot be read by a model (``"a name scoring writes"``),
    or ``None``. A class or level is not known when a spec is read, so every
    ``proba-<anything>`` and every ``lo-``/``hi-`` of a number is one."""
    if name in FORECAST_COLUMNS:
        return "a name scoring and forecasting write"
    if name in SCORED_COLUMNS:
        return "a name scoring writes"
    if name in DECISION_COLUMNS:
        return "a name scoring and forecasting write for a classifier's [decision]"
    if name.startswith(PROBA_PREFIX):
        return "a name scoring and forecasting write for a class's probability (proba-<class>)"
    side, dash, level = name.partition("-")
    if dash and side in INTERVAL_SIDES and _number(level):
        return "a name scoring and forecasting write for a prediction interval (lo-/hi-<level>)"
    return None


def _number(text: str) -> bool:
    try:
        return level_name(float(text)) == text
    except ValueError:
        return False
