"""The option ``"<global> prior-shifted"``: a run's global classifier shifted to one
partition's class rates (``manymodels.prior_shift``), scored on the partition's validation
rows beside the global model itself, its local candidates and the naive constant.

On each fold the shift ``q_c / r_c`` comes from the fold's training rows — ``q`` the smoothed
constant the partition would get from them (``classify.smoothed_constant``: the same strengths),
``r`` the global model's own rates for the partition: the mean of its ``p(c | x)`` over those
same rows, predicted by the fit that predicts the fold (``External.own``) — and multiplies
that fit's predictions of the fold's validation rows (``External.pred``: made by a fit that
left them out). Chosen, the shift is taken again from all the partition's rows, ``r`` the
mean of the stored model's predictions of them, and the version's artifact holds the shift
and the global model by reference (``global_members``), never a copy of it.

Why the model's own rates and not the table's (Saerens et al. divide by the prior the model
assumes for the rows it is applied to): a pooled model that does not see the key assumes the
table's rate everywhere, and its mean prediction over a partition's rows is close to it; a
model that holds the key (a one-hot, a LightGBM category) learnt the partition's rate, and
dividing by the table's counted that rate twice. Divided by its own, the shift is ``q`` over
the rate it learnt: near 1 where it learnt the partition well, a pull toward the smoothed
constant where it overfit a few rows. A stored model rescored by a retrain has no predictions
of the training rows (``global_fit.rescore_global``): its folds divide by the table's rates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from manymodels.classes import ClassPrior
from manymodels.prior_shift import PriorShifted, shift_factors
from manymodels.spec import Spec
from manymodels.training import classify
from manymodels.training.classify import aligned_proba
from manymodels.training.compare import Recipe
from manymodels.training.external import External, PrecomputedClassifier
from manymodels.training.folds import Folds
from manymodels.training.global_tasks import fit_of
from manymodels.training.metrics import mean_of
from manymodels.training.options import Board

SUFFIX = " prior-shifted"
ESTIMATOR = "manymodels.prior_shift.PriorShifted"


@dataclass(frozen=True)
class Shifted:
    """A global classifier (``ext``) shifted to this partition's rates: an option on the
    board, beside the ``External`` it comes from."""

    ext: External
    spec: Spec
    prior: ClassPrior
    pooled: ClassVar[bool] = True  # ``Board.prefer_global`` does not take it for a local fit

    @property
    def label(self) -> str:
        return f"{self.ext.label}{SUFFIX}"

    @property
    def estimator(self) -> str:
        return ESTIMATOR

    def shift(self, y: np.ndarray, rates: np.ndarray | None = None) -> list[float]:
        """``q_c / r_c`` of rows ``y``: their smoothed constant over ``rates`` (the model's
        own for these rows: ``own_rates``; the table's when not given)."""
        own = classify.smoothed_constant(self.spec, self.prior).fit(None, y).proba_
        return shift_factors(own, self.prior.rates if rates is None else rates)

    def own_rates(self, fold: int, tr: np.ndarray) -> np.ndarray | None:
        """``r_p``: the mean prediction of fold ``fold``'s fit over the partition's training
        rows ``tr`` of that fold (only those: its validation rows are what it is judged on);
        ``None`` when that fit predicted none of them (a stored model, rescored)."""
        given = self.ext.own.get(fit_of(self.spec, fold))
        if given is None:
            return None
        at = given[tr]
        at = at[~np.isnan(at).any(axis=1)]
        return at.mean(axis=0) if len(at) else None

    def fold_fits(self, folds: Folds) -> list[PrecomputedClassifier]:
        """The global model's predictions of each validation fold (made by a fit that left
        it out), shifted by that fold's training rows' rates: a ``ValueError`` when some row
        has none (one the model was fitted on: NaN in ``External.pred``)."""
        rows = np.arange(len(folds.y))
        fits = []
        for fold, (tr, va) in enumerate(folds.splits):
            at = rows[va]
            given = self.ext.pred[at]
            if np.isnan(given).any():
                raise ValueError(
                    self.ext.unscored
                    or "the global model has no prediction of these validation "
                    "rows (rows it was fitted on)"
                )
            full = np.full_like(self.ext.pred, np.nan)
            rates = self.own_rates(fold, rows[tr])
            shifted = given * np.asarray(self.shift(folds.y[tr], rates))
            full[at] = shifted / shifted.sum(axis=1, keepdims=True)
            fits.append(PrecomputedClassifier(full, at, self.prior.classes))
        return fits

    def model(self, X: Any, y: np.ndarray, *, own: np.ndarray | None = None) -> PriorShifted:
        """The served model: the global model bound to the key, shifted by all of ``y`` over
        its own mean prediction of all of ``X`` (the rows it was refitted on). ``own``: ``y``'s
        smoothed constant (``proba_``) when the caller has fitted it already (a partition below
        ``min_rows``), so it is not fitted a second time."""
        member = self.ext.bound()
        rates = aligned_proba(member, X, np.asarray(self.prior.classes)).mean(axis=0)
        factors = self.shift(y, rates) if own is None else shift_factors(own, rates)
        return PriorShifted(member, factors, self.prior.labels)


def score_shifted(
    board: Board,
    folds: Folds,
    external: Sequence[External],
    spec: Spec,
    prior: ClassPrior | None,
) -> None:
    """Each global classifier of the run, shifted fold by fold, offered as one more option
    (not to the top-2 mean: its member would be a copy of the global model). It wins only by
    scoring strictly better than the best so far."""
    if prior is None:
        return
    for ext in external:
        if ext.pred.ndim != 2:
            continue
        option = Shifted(ext, spec, prior)
        try:
            fits = option.fold_fits(folds)
            value = mean_of(
                [folds.fold_score(f, va) for f, (_, va) in zip(fits, folds.splits, strict=True)]
            )
            if not math.isfinite(value):
                raise ValueError(f"{folds.score_fn.name} is not finite ({value})")
        except Exception as e:
            board.failed(option.label, option.estimator, dict(ext.params), e)
            continue
        board.offer(value, option, dict(ext.params), fits, scope="shifted", pairs=False)


def shifted_recipe(
    external: Sequence[External],
    recipe: tuple[str, Any] | None,
    folds: Folds,
    spec: Spec,
    prior: ClassPrior | None,
    *,
    chosen: Any,
) -> Recipe | None:
    """A ``PriorShifted`` champion as this run refits it, as a global champion is
    (``options.refitted_recipe``): the run's global model it names (``params["member"]``),
    each validation fold predicted by a fit that left it out and shifted by the fold's
    training rows' rates. Scoring the stored one would judge its member on rows it was fitted
    on. ``None`` when the run has no such model, or only the stored one (which saw these
    rows); ``chosen``: the option this partition chose (the same shifted model: only the rows
    differ)."""
    if recipe is None or recipe[0] != ESTIMATOR or prior is None:
        return None
    params = recipe[1] if isinstance(recipe[1], dict) else {}
    for ext in external:
        if ext.label != params.get("member") or ext.pred.ndim != 2:
            continue
        try:
            fits = Shifted(ext, spec, prior).fold_fits(folds)
        except ValueError:  # the stored model: it saw these rows
            return None
        return Recipe(fits, chosen=isinstance(chosen, Shifted) and chosen.ext is ext)
    return None
