"""Compact statistics of what a version was trained on, and the rows scored since binned
alike (``live_counts``): what ``monitoring.drift`` compares.

At training time each version records a **profile** in its feature schema (``"profile"``):
per feature, fixed bins and the share of training rows in each — numeric features get the
training deciles as bin edges (at most 9 interior edges, so at most 10 bins; missing values
are not counted), text features their 8 commonest values and one bin for every other value
(and the full list of values they had, up to ``SEEN_VALUES``: ``monitoring.unseen``) —
plus the target's, the newest training time (data age) and the naive baseline's answer. It is
a few hundred bytes per version (a text feature of many values adds its list: ~0.8 KB for
50 promo codes, 4 KB at most: 0.4 GB a run of 100,000 partitions at worst), so it travels
with the version and costs no extra table.
How drift is scored from these counts is ``monitoring.drift``'s job, kept apart: the router's
flush and the monitoring store call it, training never does.

Derived features are profiled like the others: training's matrix holds the target lags,
rolling statistics and calendar parts, so each version's profile has their bins. A request may
leave them out and give its time; the router's sample then gets them as the router computed
them to score the row (``with_lags``, ``with_calendar``), so they drift like any other feature.
Rows concentrated in time read as drift of these features by nature: every row of the period
after training has the same lags from the version's history, and the same month.
"""

from __future__ import annotations

import json
import math
from bisect import bisect_right
from collections.abc import Container, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from manymodels.feature_schema import FeatureSchema

QUANTILES = np.linspace(0.1, 0.9, 9)
TOP_VALUES = 8
OTHER = "__other__"
SEEN_VALUES = 256
"""A text feature's training values a profile lists in full (``seen``, beyond its ``top``), so
the monitor can tell a value no training row had (``monitoring.unseen``) from a rare one."""
SEEN_CHARS = 4_096
"""… and the most characters they may hold as the registry stores them (JSON, non-ASCII
escaped): a feature of long free text, or of many values in another script, is ``capped``
too."""


def numeric_stats(values: np.ndarray) -> dict[str, Any]:
    """Decile edges of the finite values (nearest rank: a sort, not ``np.quantile``, which
    costs ten times more on a partition's hundred rows) and the count of training rows in
    each bin. A value that spans several deciles (a constant, a 0/1 flag, a count mostly 0)
    gets a bin of its own, ``[v, next float after v)``: in the bin ``[v, ∞)`` it shared with
    every larger value, a flag always 0 in training and always 1 since, or 3 % ones become
    80 %, moved no row between bins and drifted 0. Still at most 9 edges: each added one
    stands for a repeated decile."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return {"edges": [], "counts": [0]}
    deciles = x[(QUANTILES * (len(x) - 1)).round().astype(np.intp)]
    tied = deciles[1:][deciles[1:] == deciles[:-1]]  # a value spanning deciles: its own bin
    edges = np.unique(np.concatenate((deciles, np.nextafter(tied, np.inf))))
    bounds = np.searchsorted(x, edges, side="left")  # bin i: edges[i-1] <= x < edges[i]
    counts = np.diff(bounds, prepend=0, append=len(x))
    return {"edges": edges.tolist(), "counts": counts.tolist()}


def text_stats(values: Iterable[Any], *, every: bool = False) -> dict[str, Any]:
    """The commonest values (as text) and their counts, plus one count for all others.

    With ``every`` (a feature's, not the target's), the values beyond the top ones are listed
    too (``seen``, sorted) while there are at most ``SEEN_VALUES`` of them in ``SEEN_CHARS``
    characters, else the stats say ``capped``: the monitor never calls a value unseen that a
    capped list may have left out. A column of at most ``TOP_VALUES`` values needs no list:
    its ``top`` holds them all (its other count is 0)."""
    found: dict[str, int] = {}
    for v in values:
        if _missing(v):
            continue
        s = str(v)
        found[s] = found.get(s, 0) + 1
    top = sorted(found, key=lambda k: (-found[k], k))[:TOP_VALUES]
    other = sum(found.values()) - sum(found[k] for k in top)
    out: dict[str, Any] = {"top": top, "counts": [found[k] for k in top] + [other]}
    if every and other:
        shown = set(top)
        rest = sorted(k for k in found if k not in shown)
        # measured as stored: the registry writes JSON with non-ASCII escaped, so a value of
        # 10 CJK characters takes 62 (10 × \uXXXX and its quotes), a 4-byte one 12 a char
        if len(found) <= SEEN_VALUES and len(json.dumps(rest, separators=(",", ":"))) <= SEEN_CHARS:
            out["seen"] = rest
        else:
            out["capped"] = True
    return out


def column_stats(values: Any, *, numeric: bool, every: bool = False) -> dict[str, Any]:
    """``numeric_stats``, or ``text_stats`` (``every``: with its ``seen`` values)."""
    if numeric:
        try:
            return numeric_stats(np.asarray(values, dtype=np.float64))
        except (TypeError, ValueError):  # a "numeric" column holding text: profile it as text
            pass
    return text_stats(list(values), every=every)


def build_profile(
    columns: Mapping[str, Any],
    categorical: Sequence[str],
    y: np.ndarray,
    *,
    task: str,
    last_time: str | int | float | None,
    naive: Any,
) -> dict[str, Any]:
    """The profile of one version's training rows: ``columns`` maps each feature name to
    its values (a numpy column or a pandas Series)."""
    features = {
        name: column_stats(values, numeric=name not in categorical, every=True)
        for name, values in columns.items()
    }
    target = column_stats(y, numeric=task != "classification")
    return {
        "rows": len(y),
        "last_time": last_time,
        "naive": naive,
        "features": features,
        "target": target,
    }


def naive_answer(y: np.ndarray, *, task: str, time_ordered: bool) -> Any:
    """What the naive baseline, refitted on every training row, answers (as training defines
    it, ``candidates.naive_baseline``): the majority class, the last value (time-ordered) or
    the mean."""
    if len(y) == 0:
        return None
    if task == "classification":
        values, counts = np.unique(np.asarray(y), return_counts=True)
        return _json(values[int(np.argmax(counts))])
    if time_ordered:
        return _json(y[-1])
    return float(np.mean(np.asarray(y, dtype=np.float64)))


def _json(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def bin_counts(stats: Mapping[str, Any], values: Sequence[Any]) -> list[int]:
    """Counts of ``values`` in the bins of ``stats`` (a feature's training profile).

    A router's flush bins a few sampled rows per partition for thousands of partitions, so
    this is a bisection per value in plain Python: numpy's ``searchsorted`` and ``bincount``
    cost ~25 µs a call in set-up alone, most of a flush under cold traffic (#17)."""
    n_bins = len(stats["counts"])
    counts = [0] * n_bins
    if "edges" in stats:
        edges = stats["edges"]
        for v in values:
            x = _float(v)
            if math.isfinite(x):
                i = bisect_right(edges, x)  # numpy's searchsorted(side="right")
                if i < n_bins:
                    counts[i] += 1
        return counts
    index = {v: i for i, v in enumerate(stats["top"])}
    for v in values:
        if _missing(v):  # counted by ``live_counts``' missing bin, not as another value
            continue
        counts[index.get(text_of(v, index), n_bins - 1)] += 1
    return counts


def text_of(value: Any, known: Container[str]) -> str:
    """``value`` as a text feature's profile spells it. A number sent for a categorical
    feature of numbers (or booleans) is read as float64 by the router, so the model sees
    ``1``, ``1.0``, ``np.int64(1)`` and ``true`` alike: the spelling ``known`` holds is
    taken (``str`` of the int, float or bool the training column had), else ``str(value)``.
    Text is never reread as a number: a text feature's model tells ``"1"`` from ``"1.0"``."""
    s = str(value)
    if s in known or isinstance(value, str):
        return s
    if isinstance(value, int | float | np.integer | np.floating | np.bool_):
        x = float(value)
        whole = str(int(x)) if x.is_integer() else None
        truth = {0.0: "False", 1.0: "True"}.get(x)  # a column of booleans is numbers too
        for form in (whole, repr(x), truth):
            if form is not None and form in known:
                return form
    return s


def live_counts(stats: Mapping[str, Any], values: Sequence[Any]) -> list[int]:
    """A feature's sampled values binned as ``bin_counts`` does, plus one last count: the
    values that are missing (``None`` or NaN), so a feature whose feed broke (every row sent
    null, which a model that takes missing values scores) drifts as its missing share grows
    — binned alone, its rows counted nowhere and it drifted 0."""
    return [*bin_counts(stats, values), sum(1 for v in values if _missing(v))]


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float | np.floating) and math.isnan(v))


def _float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def version_profile(
    X: Any,
    y: np.ndarray,
    *,
    features: Sequence[str],
    categorical: Sequence[str],
    task: str,
    time_ordered: bool,
    times: np.ndarray | None = None,
) -> dict[str, Any]:
    """The profile training records for one version (``X`` a numpy matrix in ``features``
    order, or a DataFrame)."""
    if hasattr(X, "columns"):
        columns = {f: X[f].to_numpy() for f in features if f in X.columns}
    else:
        matrix = np.asarray(X)
        columns = {f: matrix[:, j] for j, f in enumerate(features) if j < matrix.shape[1]}
    last_time: str | int | float | None = None
    if times is not None and len(times):
        from manymodels.timefeatures import time_to_json

        last_time = time_to_json(np.max(times))
    return build_profile(
        columns,
        categorical,
        np.asarray(y),
        task=task,
        last_time=last_time,
        naive=naive_answer(np.asarray(y), task=task, time_ordered=time_ordered),
    )


def with_calendar(
    rows: Sequence[Mapping[str, Any]], schema: FeatureSchema
) -> Sequence[Mapping[str, Any]]:
    """``rows`` with the version's calendar parts (``forecast.calendar``: column → part, e.g.
    ``week_month`` → ``month``) computed from their time column where a row lacks them, so
    derived features drift like any other: a request may leave them out and give its time.
    Computed by the same ``timefeatures.calendar_values`` training uses; rows whose time
    cannot be read keep what they had (and are not counted for those features)."""
    calendar = schema.forecast.calendar if schema.forecast is not None else {}
    time_column = schema.time_column
    if not calendar or not time_column:
        return rows
    missing = [c for c in calendar if any(c not in row for row in rows)]
    dated = [i for i, row in enumerate(rows) if row.get(time_column) is not None]
    if not missing or not dated:
        return rows
    import pandas as pd

    from manymodels.timefeatures import calendar_values

    try:
        times = pd.to_datetime([rows[i][time_column] for i in dated])
        values = calendar_values(times, sorted({calendar[c] for c in missing}))
    except (ValueError, TypeError, OverflowError):
        return rows
    out = [dict(row) for row in rows]
    for column in missing:
        part = values[calendar[column]]
        for j, i in enumerate(dated):
            out[i].setdefault(column, int(part[j]))
    return out


def with_lags(
    rows: Sequence[Mapping[str, Any]], schema: FeatureSchema
) -> Sequence[Mapping[str, Any]]:
    """``rows`` with the version's target lags and rolling statistics (``forecast.lags`` and
    ``forecast.rolling``) computed from its recorded history where a row lacks them and gives
    its time — as the router computed them to score it (``rowlags.fill_rows``, the code
    training and forecasting use), so lag features drift like any other. Rows that send them
    keep what they sent.

    Sampled rows come from many requests, so each is filled from the version's history alone:
    a target that a row posts (an actual) is not used for the other rows of the sample, which
    may come from other requests. A row whose lag needed a target posted earlier in its own
    request (a lag shorter than its step), or whose time is not one of the next periods, is
    kept as it was and not counted for that feature. From the history alone a row's lags
    depend on its time only, so they are computed once per distinct time, in one call (times
    it refuses are set aside and the rest computed again). That call is the flusher's cost
    per partition and flush, off the request path: ~10–13 ms on a busy 2-core machine, most
    of it the calendar walk (``timefeatures.advance``) that each request leaving its lags
    out also pays; 64 rows at one time filled as 64 rows took ~22 ms."""
    forecast = schema.forecast
    derived = [*forecast.lags, *forecast.rolling] if forecast is not None else []
    time_column = schema.time_column
    if not derived or not time_column or schema.history is None:
        return rows
    todo = [
        i for i, row in enumerate(rows)
        if isinstance(row.get(time_column), str | int | float)
        and any(name not in row for name in derived)
    ]  # fmt: skip
    if not todo:
        return rows
    from manymodels.exceptions import InvalidRows
    from manymodels.rowlags import fill_rows

    times = list(dict.fromkeys(rows[i][time_column] for i in todo))
    found: dict[Any, Mapping[str, Any]] = {}
    for _ in range(8):  # each retry sets aside the times refused (up to MAX_REPORTED of them)
        try:
            filled = fill_rows([{time_column: t} for t in times], schema, with_changes=False)
        except InvalidRows as e:
            refused = {err["loc"][2] for err in e.errors if len(err.get("loc", ())) > 2}
            times = [t for j, t in enumerate(times) if j not in refused]
            if refused and times:
                continue
        except (ValueError, TypeError, KeyError, OverflowError):
            pass  # a history this code cannot read: nothing derived, nothing counted
        else:
            found = dict(zip(times, filled, strict=True))
        break
    out = list(rows)
    for i in todo:
        values = found.get(rows[i][time_column])
        if values is not None:
            row = rows[i]
            out[i] = {**row, **{n: values[n] for n in derived if n not in row and n in values}}
    return out
