"""Interval residuals of the selection, not of its winner.

The chosen model is the one whose validation errors were smallest, so its own errors on those
folds are the luckiest draw among all the candidates' (the winner's curse), and bands cut from
them are too narrow. In the accuracy benchmark at b4bb07a, 74 % (us_employment) and 50 %
(Cigar) of held-out values fell inside "80 %" bands after a selection among a dozen options;
the global model alone, chosen by nothing, covered 83 % and 82 %. statsforecast avoids this
for AutoARIMA by rerunning the whole order search in every conformal window, which costs one
selection per window.

Here each fold's errors come from the option the same rule would have chosen *without that
fold*: best mean score over the other folds, the top-2 mean, the global margin, the naive
margin. Those scores and predictions already exist (selection made them), so nothing is
refitted: a ``Trail`` keeps every option's per-fold scores and predictions while selection
runs, and ``Trail.held_out`` replays the rule once per left-out fold. With
``target_transform = [...]`` the choice of transform is replayed the same way
(``across_transforms``, called by ``transform_choice.best_transform``). With one fold there
is nothing to choose by, and the winner's own errors are used as before.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Literal

import numpy as np

from manymodels import intervals as conformal
from manymodels.candidates import MeanOf
from manymodels.lagfeatures import LagPlan
from manymodels.spec import Spec
from manymodels.targetunits import RawTarget
from manymodels.training.metrics import Metric, Predicted, beats, mean_of

Kind = Literal["local", "global", "naive"]


@dataclass(frozen=True)
class Rule:
    """How ``select.fit_partition`` decides, as far as the replay needs it."""

    top2: bool  # ``[selection] ensemble = "top2"``
    global_margin: float
    naive_margin: float | None  # None: naive does not compete (``naive_candidate = false``)


@dataclass(frozen=True)
class HeldOut:
    """What selection chose without one fold: its mean score on the other folds (what a
    further choice — between target transforms — compares), and its predictions of the fold
    beside the fold's true targets."""

    score: float
    truth: np.ndarray
    prediction: np.ndarray


@dataclass(frozen=True)
class HeldOutErrors:
    """One ``HeldOut`` per validation fold, and what the interval record needs besides."""

    folds: tuple[HeldOut, ...]
    levels: tuple[float, ...]
    ordered: bool  # folds in time order: per-step quantiles may be recorded
    chained: int | None = None  # each fold's errors are of forecasts this many steps long
    pool_partitions: bool = False  # ``[intervals] pool_partitions``: the record's scores too
    rows: tuple[Any, ...] | None = None  # each fold's rows, where folds may share them

    def record(self) -> dict[str, Any] | None:
        """The interval record of these errors (``manymodels.intervals.record``)."""
        pairs = [(h.truth, h.prediction) for h in self.folds]
        try:
            out = conformal.record(
                pairs,
                self.levels,
                ordered=self.ordered,
                pool_partitions=self.pool_partitions,
                rows=self.rows,
            )
        except (ValueError, TypeError):  # predictions of another shape: no record
            return None
        if out is not None:
            out["held_out"] = True
        return out


@dataclass(frozen=True)
class Option:
    """One scored option (a local grid point, a global model or naive): its score and its
    predictions (in the target's units) on each validation fold."""

    kind: Kind
    scores: tuple[float, ...]
    predictions: tuple[np.ndarray, ...]


class Trail:
    """Every option selection scores, fold by fold: ``start`` before an option's folds,
    ``score`` for each (it predicts once, keeps the predictions and returns the score),
    ``keep`` once the option scored on every fold. An option that fails between ``start``
    and ``keep`` is forgotten at the next ``start``."""

    def __init__(self, score_fn: Metric) -> None:
        self.score_fn = score_fn
        self.options: list[Option] = []
        self.broken = False  # a metric that cannot score given predictions: no replay
        self._scores: list[float] = []
        self._predictions: list[np.ndarray] = []

    def start(self) -> None:
        self._scores, self._predictions = [], []

    def score(self, model: Any, X: Any, y: np.ndarray) -> float:
        pred = np.asarray(model.predict(X))
        try:
            value = self.score_fn.of_predictions(y, pred, X)
        except Exception:
            value = self.score_fn(model, X, y)  # raises where the predictions are wrong
            self.broken = True  # a scorer that needs the estimator itself: no replay
            return value
        self._scores.append(value)
        self._predictions.append(pred)
        return value

    def keep(self, kind: Kind) -> None:
        self.options.append(Option(kind, tuple(self._scores), tuple(self._predictions)))
        self.start()

    def held_out(
        self, truth: Sequence[np.ndarray], rule: Rule, rows: Sequence[Any] | None = None
    ) -> list[HeldOut] | None:
        """Per fold, what ``rule`` chooses on the other folds; ``None`` when there is no
        replay (one fold, no model option, a metric that needs an estimator, or an option
        that missed a fold). ``rows``: each fold's validation rows, where folds may share
        rows (``[validation] step_size``): the other folds are then judged on their rows
        outside the held-out fold only."""
        k = len(truth)
        models = [o for o in self.options if o.kind != "naive"]
        if self.broken or k < 2 or not models:
            return None
        if any(len(o.scores) != k for o in self.options):
            return None
        outside = _outside(rows) if rows is not None else None
        return _replay(self.options, truth, rule, self._score, outside)

    def _score(self, y: np.ndarray, pred: np.ndarray) -> float:
        return self.score_fn.of_predictions(y, pred)


Outside = list[list[tuple[int, np.ndarray | None]]]


def _outside(rows: Sequence[Any]) -> Outside | None:
    """Per fold ``j``, the other folds with rows outside it: ``(i, mask)``, ``mask`` the rows
    of fold ``i`` not in fold ``j`` (``None``: all of them). ``None`` when no two folds share
    a row (disjoint folds: every other fold whole, the plain mean of the others).

    Worked out once per set of folds (``_outside_of``): partitions of one length share their
    splits, and the folds² ``np.isin`` calls were a third of the replay's time on Cigar."""
    index = [np.arange(r.start, r.stop) if isinstance(r, slice) else np.asarray(r) for r in rows]
    return _outside_of(tuple((i.dtype.str, i.tobytes()) for i in index))


@lru_cache(maxsize=256)
def _outside_of(folds: tuple[tuple[str, bytes], ...]) -> Outside | None:
    """``_outside`` of the folds' row indexes given as ``(dtype, bytes)``; its masks are
    read-only, being shared by every partition with these folds."""
    index = [np.frombuffer(data, dtype=np.dtype(dtype)) for dtype, data in folds]
    out: Outside = []
    shared = False
    for j, mine in enumerate(index):
        others: list[tuple[int, np.ndarray | None]] = []
        for i, theirs in enumerate(index):
            if i == j:
                continue
            keep = ~np.isin(theirs, mine)
            keep.flags.writeable = False
            shared = shared or not keep.all()
            if keep.any():
                others.append((i, None if keep.all() else keep))
        out.append(others)
    return out if shared else None


def _replay(
    options: Sequence[Option],
    truth: Sequence[np.ndarray],
    rule: Rule,
    score: Callable[[np.ndarray, np.ndarray], float],
    outside: Outside | None = None,
) -> list[HeldOut]:
    """For each fold, what ``rule`` chooses from the other folds' scores — the same steps, in
    the same order, as ``select.fit_partition`` — with its mean score there and its
    predictions of the fold. Every option's mean without each fold comes from one matrix.

    Folds that share rows (``outside``, ``[validation] step_size`` below the fold's size):
    the choice without fold ``j`` is judged on the other folds' rows outside fold ``j``, each
    fold's score taken again on those rows — a fold one period later than ``j`` shares all
    but one of its rows, and judging on them would choose with fold ``j``'s own errors in view
    (the winner's curse the replay is for: the bands cover less than they say)."""
    k = len(truth)
    scores = np.array([o.scores for o in options], dtype=np.float64)  # options × folds
    if outside is None:
        without = (scores.sum(axis=1, keepdims=True) - scores) / (k - 1)
    else:
        without = np.array(
            [[_mean_outside(o.predictions, o.scores, truth, c, score) for c in outside]
             for o in options]
        )  # fmt: skip
    models = [i for i, o in enumerate(options) if o.kind != "naive"]
    globals_ = [i for i in models if options[i].kind == "global"]
    naive = next((i for i, o in enumerate(options) if o.kind == "naive"), None)
    pairs: dict[tuple[int, int], tuple[list[np.ndarray], np.ndarray]] = {}

    def pair(a: int, b: int) -> tuple[list[np.ndarray], np.ndarray]:
        """The ``top2`` ensemble of options ``a`` and ``b`` (``candidates.MeanOf``, as
        selection scores it): per-fold predictions and scores."""
        if (a, b) not in pairs:
            both = zip(options[a].predictions, options[b].predictions, strict=True)
            preds = [MeanOf([Predicted(p), Predicted(q)]).predict(None) for p, q in both]
            values = [score(t, p) for t, p in zip(truth, preds, strict=True)]
            pairs[a, b] = (preds, np.array(values))
        return pairs[a, b]

    def pair_without(preds: list[np.ndarray], pair_scores: np.ndarray, j: int) -> float:
        if outside is None:
            return float((pair_scores.sum() - pair_scores[j]) / (k - 1))
        return _mean_outside(preds, pair_scores, truth, outside[j], score)

    out = []
    for j in range(k):
        mean = without[:, j]
        ranked = sorted(models, key=lambda i: -mean[i])  # stable: the first of equals first
        value, chosen = float(mean[ranked[0]]), options[ranked[0]].predictions[j]
        kind: str = options[ranked[0]].kind
        if rule.top2 and len(ranked) >= 2:
            preds, pair_scores = pair(ranked[0], ranked[1])
            pair_value = pair_without(preds, pair_scores, j)
            if pair_value > value:
                value, chosen, kind = pair_value, preds[j], "top2"
        if globals_ and kind != "global":
            g = max(globals_, key=lambda i: mean[i])  # the first of equals
            if not beats(value, float(mean[g]), rule.global_margin):
                value, chosen = float(mean[g]), options[g].predictions[j]
        if (
            naive is not None
            and rule.naive_margin is not None
            and beats(float(mean[naive]), value, rule.naive_margin)
        ):
            value, chosen = float(mean[naive]), options[naive].predictions[j]
        out.append(HeldOut(value, truth[j], np.asarray(chosen)))
    return out


def _mean_outside(
    predictions: Sequence[np.ndarray],
    scores: Sequence[float] | np.ndarray,
    truth: Sequence[np.ndarray],
    others: Sequence[tuple[int, np.ndarray | None]],
    score: Callable[[np.ndarray, np.ndarray], float],
) -> float:
    """An option's mean score over ``others`` (``_outside``'s for one fold): a whole fold's
    score as selection took it, a part's taken again on its rows."""
    values = [
        scores[i] if keep is None else score(truth[i][keep], np.asarray(predictions[i])[keep])
        for i, keep in others
    ]
    return mean_of(values) if values else math.nan


def across_transforms(
    fits: Sequence[HeldOutErrors | None], *, first_fitted: bool, margin: float
) -> HeldOutErrors | None:
    """Each transform's held-out choices (in ``target_transform`` order, those that fitted)
    replayed through ``transform_choice.best_transform``'s rule, fold by fold: the best score
    on the other folds, the first transform (when ``first_fitted``) kept unless another beats
    it by ``margin``. ``None`` unless every transform has them over the same folds."""
    if not fits or any(f is None for f in fits):
        return None
    done = [f for f in fits if f is not None]
    k = len(done[0].folds)
    if any(len(f.folds) != k for f in done) or any(
        len(f.folds[j].truth) != len(done[0].folds[j].truth) for f in done for j in range(k)
    ):
        return None
    chosen, sources = [], []
    for j in range(k):
        best = max(done, key=lambda f: f.folds[j].score)  # the first of equals
        first = done[0].folds[j]
        if first_fitted and not beats(best.folds[j].score, first.score, margin):
            best = done[0]  # a narrow win of another transform is noise
        chosen.append(best.folds[j])
        sources.append(best.chained)
    # forecast errors ``chained`` steps long only if every fold's are: a level model's are
    # where every lag is past the fold (``direct_steps``), one-step errors with a shorter
    # lag, so such a mixed record's widths grow from the first step, wider, never narrower
    chained = None if None in sources else min(c for c in sources if c is not None)
    return replace(done[0], folds=tuple(chosen), chained=chained)


def replay(
    spec: Spec,
    trail: Trail | None,
    splits: Sequence[tuple[Any, Any]],
    truth: np.ndarray,
    *,
    ordered: bool,
    chained: int | None,
) -> HeldOutErrors | None:
    """``trail``'s held-out choices under ``spec``'s selection rule, when it asks for
    intervals; ``None`` where there is no replay, or it fails (predictions of members that
    cannot be averaged): the chosen model's own errors then serve, as with one fold."""
    if trail is None or spec.intervals is None:
        return None
    rule = Rule(
        top2=spec.selection.ensemble == "top2",
        global_margin=spec.selection.global_margin,
        naive_margin=spec.selection.naive_margin if spec.selection.naive_candidate else None,
    )
    try:
        rows = [va for _, va in splits] if spec.validation.step_size is not None else None
        folds = trail.held_out([truth[va] for _, va in splits], rule, rows)
    except (ValueError, TypeError):
        return None
    if folds is None:
        return None
    levels = tuple(spec.intervals.levels)
    pool = spec.intervals.pool_partitions
    shared = tuple(rows) if rows is not None else None
    return HeldOutErrors(tuple(folds), levels, ordered, chained, pool, shared)


def direct_steps(
    spec: Spec, splits: Sequence[tuple[Any, Any]], rows: Any, *, ordered: bool
) -> int | None:
    """How many steps long the forecasts are whose errors a model of the target's level makes
    on its validation folds, when it makes forecasts there: folds ordered in time, each a run
    of consecutive rows (``rows``: the kept rows' indexes in their table, so a row dropped
    inside a fold shows as a gap), and every lag and rolling lag at least the longest fold's
    length — a fold's ``s``-th row then reads no target of the fold, so its error is that of
    an ``s``-step forecast from the fold's origin, as a differenced model's chained one is
    (``targetunits``). Those errors need no growth up to that many steps: without this, a
    version of changes whose held-out folds came partly from a model of the level grew its
    widths as ``√step`` from the first step (us_employment: 100 % of its test values in
    "80 %" bands). ``None`` otherwise (lags shorter than a fold: one-step errors)."""
    if not ordered or rows is None or not splits:
        return None
    index = np.arange(rows.start, rows.stop) if isinstance(rows, slice) else np.asarray(rows)
    folds = [index[va] for _, va in splits]
    if any(len(f) == 0 or (np.diff(f) != 1).any() for f in folds):
        return None
    shortest = LagPlan.from_spec(spec).min_lag
    if shortest is not None and shortest < max(len(f) for f in folds):
        return None
    return min(len(f) for f in folds)


def interval_record(
    spec: Spec,
    held: HeldOutErrors | None,
    best_fits: Sequence[Any],
    splits: Sequence[tuple[Any, Any]],
    X: Any,
    truth: np.ndarray,
    raw: RawTarget | None,
    *,
    ordered: bool,
    frames: Callable[[Any], Any] | None = None,
) -> dict[str, Any] | None:
    """The version's interval record (``manymodels.intervals``): from the errors of what
    selection chose on each fold without that fold (``held``), else from the chosen model's
    own validation errors (``frames``, ``Folds.rows``: the validation frames selection scored)."""
    recorded = held.record() if held is not None else None
    if recorded is not None:
        return recorded
    judged = best_fits
    if raw is not None:  # residuals in the target's units
        judged = [raw.judged(f, va) for f, (_, va) in zip(best_fits, splits, strict=False)]
    return conformal.from_fits(spec, judged, splits, X, truth, ordered=ordered, frames=frames)


def rerecorded(record: dict[str, Any], held: HeldOutErrors) -> dict[str, Any]:
    """``record`` (a version's, with its ``units`` and ``chained``) with its quantiles taken
    again from ``held`` (``across_transforms``)."""
    fresh = held.record()
    if fresh is None:
        return record
    gone = ("rows", "quantiles", "steps", "chained", "mean_error", "scores")
    kept = {k: v for k, v in record.items() if k not in gone}
    return {**kept, **fresh, **({"chained": held.chained} if held.chained else {})}
