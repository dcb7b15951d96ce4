"""The classes of a classification table, and how often each occurs over the whole table.

Known once, when the table is prepared, so that every partition's model answers with the same
classes (a partition that holds one class still gives a probability for the other) and a
partition whose rows hold one class can borrow the table's class rates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from manymodels.exceptions import DataError
from manymodels.written_columns import PROBA_PREFIX


@dataclass(frozen=True)
class ClassPrior:
    """Every class of the table (sorted) and its share of the rows with a target."""

    classes: np.ndarray
    rates: np.ndarray
    strength: float | None = None
    """How many pseudo-rows of the table's rates a partition's own counts are smoothed with,
    estimated from the partitions (``prior_strength``); ``None`` when not estimated."""
    strengths: tuple[float, ...] | None = None
    """Of a table of three or more classes, each class's own strength (``class_strengths``:
    one-vs-rest, in ``classes``' order), which a constant model smooths with instead of the
    pooled ``strength``; ``None`` for two classes (both would be ``strength``) or when not
    estimated."""

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


def as_labels(y: Any) -> np.ndarray:
    """Class labels as the table meant them: a float column of whole numbers as ``int64``, an
    object column of bools as ``bool`` and of integers (or whole floats) as ``int64``;
    anything else as it is.

    A CSV target of 0/1 with empty cells (unlabelled rows, common in click or churn tables)
    is read as float to hold NaN, and once those rows were left out the models learnt
    classes 0.0/1.0: ``proba-0.0`` columns, ``"predictions": [0.0]`` from the router, and a
    later retrain on a complete file renamed every probability column. Called on the rows a
    model is fitted on (missing targets left out) and on the table's known classes; a float
    that holds a NaN or a fraction is left float (such a target is refused before, see
    ``manymodels.data``).

    Dates and times are ISO text (``"2024-01-01T00:00:00"``, the form the API answers times
    in): kept as ``datetime64``, a version listed its classes as ``"2024-01-01 00:00:00"``,
    ``predict`` answered ``numpy.datetime64`` values and the router failed with a 500 (no JSON
    for a datetime)."""
    y = np.asarray(y)
    if not len(y):
        return y
    if y.dtype.kind == "M" or (
        y.dtype == object
        and isinstance(y[0], datetime)  # text labels: one look, not a copy of the column
        and all(isinstance(v, datetime) for v in y.tolist())
    ):
        return _iso_times(y)
    if (
        y.dtype == object
        and isinstance(y[0], date)
        and all(isinstance(v, date) and not isinstance(v, datetime) for v in y.tolist())
    ):  # a Parquet date32 column, read as datetime.date: "Unknown label type" before
        return _iso_times(y.astype("datetime64[D]"))
    if y.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            whole = np.isfinite(y).all() and bool((y % 1 == 0).all())
        return y.astype(np.int64) if whole and float(np.abs(y).max()) < 2**53 else y
    if y.dtype == object:
        values = y.tolist()
        if all(isinstance(v, bool | np.bool_) for v in values):
            return y.astype(bool)
        if all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in values):
            try:
                return y.astype(np.int64)
            except OverflowError:  # beyond int64: left as Python ints
                return y
        if all(  # 0.0/1.0 and None; 0 and 1.0 mixed (JSON rows, a frame built by hand)
            isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)
            for v in values
        ):
            numbers = y.astype(np.float64)
            whole = as_labels(numbers)
            return whole if whole.dtype.kind == "i" else y
    return y


def _iso_times(y: np.ndarray) -> np.ndarray:
    """``y``'s dates and times as ISO text, each distinct value formatted once."""
    values, which = np.unique(y, return_inverse=True)
    text = np.asarray([pd.Timestamp(v).isoformat() for v in values.tolist()], dtype=object)
    return text[which.reshape(-1)]


def dates_as_text_classes(model: Any) -> bool:
    """Turn a loaded model's date classes (``datetime64``, or datetimes: a version trained
    before dates were text classes, or imported) into the ISO text new versions' classes
    are (``as_labels``), in place, once per load; whether it did.

    Such a version answered its probabilities under ``'2024-01-01 00:00:00'`` (its schema's
    ``str(datetime)``), or under nanosecond counts (``'1704067200000000000'``: the
    ``tolist()`` of ``datetime64[ns]``), where a retrained one answers
    ``'2024-01-01T00:00:00'``. Its ``predict`` reads the same ``classes_`` (scikit-learn's
    classifiers index them), so its predictions are that text too. A Pipeline's classes
    are its last step's; a model whose ``classes_`` is computed (no attribute of its own) is
    left as it is."""
    final = model
    while hasattr(final, "steps") and isinstance(final.steps, list) and final.steps:
        final = final.steps[-1][1]  # a Pipeline's classes_ are its last step's
    classes = vars(final).get("classes_") if hasattr(final, "__dict__") else None
    if classes is None or not isinstance(classes, np.ndarray) or not len(classes):
        return False
    dated = classes.dtype == object and isinstance(classes[0], datetime)
    if classes.dtype.kind != "M" and not dated:
        return False
    final.classes_ = as_labels(classes)
    return True


def iso_class_texts(classes: list[Any] | None) -> list[Any] | None:
    """A schema's ``classes`` of a model ``dates_as_text_classes`` turned: its
    ``str(datetime)`` texts (``'2024-01-01 00:00:00'``) as ISO text, as the model's now are."""
    if not classes:
        return classes
    out = []
    for c in classes:
        try:
            out.append(pd.Timestamp(c).isoformat() if isinstance(c, str) else c)
        except ValueError:
            out.append(c)
    return out


def class_prior(y: np.ndarray, offsets: np.ndarray | None = None) -> ClassPrior:
    """The classes of ``y`` and their rates, leaving out missing targets; with the table's
    partition ``offsets``, also the prior's ``strength`` (``prior_strength``)."""
    y = np.asarray(y)
    known_mask = ~np.asarray(pd.isna(y), dtype=bool) if y.dtype.kind in "fOUSM" else None
    known = as_labels(y if known_mask is None else y[known_mask])
    if not len(known):
        return ClassPrior(np.asarray([], dtype=y.dtype), np.asarray([], dtype=np.float64))
    classes, counts = np.unique(known, return_counts=True)
    rates = counts / counts.sum()
    if offsets is None or len(classes) < 2:
        return ClassPrior(classes, rates)
    counts = class_counts(y, offsets, classes, known_mask)
    return ClassPrior(classes, rates, strength_of_counts(counts, rates), _per_class(counts, rates))


MAX_STRENGTH = 1000.0  # partitions indistinguishable from the table: the table's rates, nearly
MIN_STRENGTH = 1.0
"""The least pseudo-rows an estimated strength gives the table's rates. Partitions that each
hold a class always or never (a class a few users always pick) make the moment estimate 0:
a partition that never held the class was then answered ~1e-18 for it, a certain 0 that one
such row in live data makes an unbounded log loss (3 classes, 40 partitions of 20 rows: per
class 4.4e-16 pseudo-rows). One pseudo-row keeps it ~rate / (n + 1), as add-one smoothing
would, and is below what any table with real spread between partitions estimates."""


def prior_strength(
    y: np.ndarray,
    offsets: np.ndarray,
    classes: np.ndarray,
    rates: np.ndarray,
    known: np.ndarray | None = None,
) -> float:
    """Empirical Bayes: the pseudo-row count ``m`` of a Dirichlet prior at the table's class
    rates that the partitions' own rates look drawn from.

    A partition of ``n`` rows drawn at rate ``p`` spreads its observed rate by ``p(1-p)/n``
    by chance alone; whatever spread there is beyond that is real difference between
    partitions. The moment estimator of the intra-partition correlation ``ρ = 1 / (m + 1)``
    from ``Σ n_i (r_i − p)² = p(1−p)·(P + ρ·(N − P))`` (``P`` partitions, ``N`` rows,
    summed over classes) gives ``m``: large when partitions differ little (every partition
    is smoothed hard toward the table), small when they differ much (their own counts
    speak). Partitions of fewer than two rows say nothing about the spread and are left out;
    ``m`` lies in ``[MIN_STRENGTH, MAX_STRENGTH]``."""
    return strength_of_counts(class_counts(y, offsets, classes, known), rates)


def class_counts(
    y: np.ndarray, offsets: np.ndarray, classes: np.ndarray, known: np.ndarray | None = None
) -> np.ndarray:
    """``counts[i, j]``: the rows of partition ``i`` (``offsets``) holding class ``j``."""
    ok = np.ones(len(y), dtype=bool) if known is None else known
    starts = np.asarray(offsets) - offsets[0]
    counts = np.empty((len(starts) - 1, len(classes)), dtype=np.int64)
    for j, c in enumerate(classes):
        counts[:, j] = np.diff(np.concatenate([[0], np.cumsum((y == c) & ok)])[starts])
    return counts


def strength_of_counts(counts: np.ndarray, rates: np.ndarray) -> float:
    """``prior_strength`` from each partition's count of each class (``counts[i, j]``: rows
    of partition ``i`` holding class ``j``): all it reads of the rows, so a table streamed in
    batches (``ClassTally``) gets the strength its rows in memory would."""
    spread = _spreads(counts, rates)
    if spread is None:
        return MAX_STRENGTH
    chance = float(np.sum(rates * (1 - rates)))
    return _strength(sum(spread[0].tolist()) / chance, spread[1], spread[2])


def class_strengths(counts: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """Each class's own ``prior_strength``: the same moment estimator on that class against
    all others (a Beta prior at its rate, ``m_j`` pseudo-rows), as ``counts`` give it.

    A Dirichlet prior has one strength: every class's rate is assumed to vary between
    partitions alike (a Dirichlet-multinomial's ``Var(k_j) = n·p_j(1−p_j)·(n+m)/(1+m)``,
    one ``m`` for every ``j``). Users who all browse about as often but differ wildly in
    whether they buy break that: the pooled ``m``, dominated by the common classes, came out
    ~37 where buying alone gives a few rows, and a user with 23 of 23 rows "buy" (a rare
    class) was answered "browse". Each class's marginal is a Beta-binomial, so its own ``m_j``
    is estimated as the binary strength is; for two classes both equal the pooled one."""
    spread = _spreads(counts, rates)
    if spread is None:
        return np.full(len(rates), MAX_STRENGTH)
    per, big_p, big_n = spread
    chance = rates * (1 - rates)
    return np.array(
        [_strength(float(s / c), big_p, big_n) for s, c in zip(per, chance, strict=True)]
    )


def _per_class(counts: np.ndarray, rates: np.ndarray) -> tuple[float, ...] | None:
    """``ClassPrior.strengths``: of three or more classes only (two: the pooled one is
    each class's, and binary tables keep their exact arithmetic)."""
    return tuple(class_strengths(counts, rates).tolist()) if len(rates) > 2 else None


def _spreads(counts: np.ndarray, rates: np.ndarray) -> tuple[np.ndarray, int, float] | None:
    """Each class's ``Σ (k_ij − n_i·p_j)² / n_i`` over the partitions of two or more rows,
    their number ``P`` and rows ``N``; ``None`` when they cannot tell spread from chance."""
    n = counts.sum(axis=1)
    use = n >= 2
    big_p, big_n = int(use.sum()), float(n[use].sum())
    if big_p < 2 or big_n <= big_p:
        return None
    spread = np.array(
        [float(np.sum((counts[use, j] - n[use] * p) ** 2 / n[use])) for j, p in enumerate(rates)]
    )
    return spread, big_p, big_n


def _strength(ratio: float, big_p: int, big_n: float) -> float:
    """``m = 1/ρ − 1`` from the spread over chance ``ratio``, ``ρ`` clipped to a strength in
    ``[MIN_STRENGTH, MAX_STRENGTH]``."""
    rho = (ratio - big_p) / (big_n - big_p)
    rho = min(max(rho, 1 / (MAX_STRENGTH + 1)), 1 / (MIN_STRENGTH + 1))
    return 1 / rho - 1


class ClassTally:
    """Each partition's count of each class, added batch by batch: the table's ``ClassPrior``
    (classes, rates and strength, as ``class_prior`` gives them for the rows in memory) without
    ever holding the target column."""

    def __init__(self, n_partitions: int) -> None:
        self._n = n_partitions
        self._ids: dict[Any, int] = {}  # class value → its column in ``_counts``
        self._counts = np.zeros((n_partitions, 0), dtype=np.int64)
        self._dtype: np.dtype[Any] | None = None

    def add(self, y: np.ndarray, partition: np.ndarray) -> None:
        """Rows of target values ``y`` in partitions ``partition`` (indexes); missing
        targets are left out, as ``class_prior`` leaves them. O(rows), whatever the classes."""
        y = np.asarray(y)  # batches of one column can differ (ints, then ints with a null)
        self._dtype = y.dtype if self._dtype is None else np.result_type(self._dtype, y.dtype)
        if y.dtype.kind in "fOUSM":
            known = ~np.asarray(pd.isna(y), dtype=bool)
            y, partition = y[known], partition[known]
        if not len(y):
            return
        values, which = np.unique(y, return_inverse=True)
        ids = np.array([self._ids.setdefault(v, len(self._ids)) for v in values.tolist()])
        if len(self._ids) > self._counts.shape[1]:  # a class not seen before: a new column
            grown = np.zeros((self._n, len(self._ids)), dtype=np.int64)
            grown[:, : self._counts.shape[1]] = self._counts
            self._counts = grown
        np.add.at(self._counts, (partition, ids[which.reshape(-1)]), 1)

    def prior(self, partitions: np.ndarray) -> ClassPrior:
        """The prior over ``partitions`` (indexes: those that kept rows), in key order."""
        dtype = self._dtype if self._dtype is not None else np.dtype(object)
        if not self._ids:
            return ClassPrior(np.asarray([], dtype=dtype), np.asarray([], dtype=np.float64))
        order = sorted(self._ids)
        classes = as_labels(np.asarray(order, dtype=dtype))
        counts = self._counts[np.asarray(partitions)][:, [self._ids[c] for c in order]]
        totals = counts.sum(axis=0)
        rates = totals / totals.sum()
        if len(classes) < 2:
            return ClassPrior(classes, rates)
        return ClassPrior(
            classes, rates, strength_of_counts(counts, rates), _per_class(counts, rates)
        )


UnitProba = tuple[list[str], np.ndarray]
"""A model's classes (as the router names them: text) and its rows' probabilities."""


def proba_column(label: str) -> str:
    """The table column of a class's probability (``score`` and ``forecast`` with
    ``--probabilities``): ``proba-yes``, ``proba-1`` — the router's ``{class: p}`` keys."""
    return f"{PROBA_PREFIX}{label}"


def over_table_classes(
    proba: np.ndarray, model_classes: Any, table_classes: list[Any] | None
) -> tuple[list[Any], np.ndarray]:
    """``(classes, proba)`` with one column per class of the table the version was trained
    from (its schema's ``classes``, in that order), 0 for a class its partition's rows never
    held: a model fitted on a partition with two of three classes answered two columns, so a
    column's place meant another class from one partition to the next. A model whose classes
    the table does not list (imported, or recorded before ``classes``) is answered as it is."""
    classes = answered_classes(model_classes, table_classes)
    labels = [str(c) for c in np.asarray(model_classes).tolist()]
    if classes is not table_classes or labels == [str(c) for c in classes]:
        return list(classes), proba
    index = {str(c): i for i, c in enumerate(classes)}
    out = np.zeros((proba.shape[0], len(classes)), dtype=np.float64)
    out[:, [index[label] for label in labels]] = proba
    return list(classes), out


def answered_classes(model_classes: Any, table_classes: list[Any] | None) -> list[Any]:
    """The classes a version's probabilities are answered over (``over_table_classes``): the
    table's when it lists every class of the model (the very list given), else the model's
    own."""
    labels = [str(c) for c in np.asarray(model_classes).tolist()]
    if table_classes and set(labels) <= {str(c) for c in table_classes}:
        return table_classes
    return labels


def model_probabilities(
    model: Any, X: Any, classes: list[Any] | None, what: str, proba: Any = None
) -> UnitProba:
    """``model``'s probabilities of ``X`` over the table's ``classes`` (its version's schema's),
    as text the router names them by; a model without any is a ``DataError`` naming ``what``.
    ``proba``: its ``predict_proba(X)``, when the caller computed it already."""
    require_probabilities(model, what)
    proba = np.asarray(model.predict_proba(X) if proba is None else proba, dtype=np.float64)
    answered, proba = over_table_classes(proba, model.classes_, classes)
    return [str(c) for c in answered], proba


def require_probabilities(model: Any, what: str) -> None:
    """A ``DataError`` naming ``what`` for a model without class probabilities: checked as
    the model loads, apart from the predictions, whose errors say "could not score" (before,
    this one read "partition 'k' v1 could not score its 150 row(s): partition 'k' v1 has no
    class probabilities")."""
    if not hasattr(model, "predict_proba"):
        raise DataError(
            f"{what} has no class probabilities (its model has no predict_proba): leave out "
            "--probabilities"
        )
