"""One partition's model: every candidate × grid point and the naive baseline scored on the
same validation rows, the best refitted on all rows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Literal

import numpy as np
import pandas as pd

from manymodels import candidates as cands
from manymodels.classes import ClassPrior, class_prior
from manymodels.registry.entities import CandidateResult
from manymodels.spec import Candidate, Spec
from manymodels.targetunits import RawTarget
from manymodels.training import (
    classify,
    constant_fits,
    heldout,
    ridge_grid,
    ridge_refit,
    thresholds,
)
from manymodels.training.compare import Comparison, compare, holds_global
from manymodels.training.external import External
from manymodels.training.folds import Folds
from manymodels.training.metrics import Metric, beats, metric
from manymodels.training.options import (
    ENSEMBLE,
    Board,
    refitted_recipe,
    score_global,
    score_local,
    score_top2,
)
from manymodels.training.shifted import Shifted, score_shifted, shifted_recipe
from manymodels.training.splits import (
    PartitionSkipped,
    SplitsByCount,
    count_rows,
    take,
    validation_splits,
)
from manymodels.warning_capture import captured

Chosen = Literal[
    "candidate", "naive", "single_class", "global", "ensemble", "too_few_rows", "prior_shifted"
]


@dataclass(frozen=True)
class Fitted:
    """A partition's chosen model and everything known about how it was chosen."""

    model: Any
    estimator: str
    params: dict[str, Any]
    score: float
    naive_score: float | None
    candidates: list[CandidateResult]
    validation: dict[str, Any]
    warnings: list[str]
    comparison: Comparison | None = None
    chosen: Chosen = "candidate"
    metric: str | None = None  # the metric that decided, when not the spec's
    single_class: dict[str, Any] | None = None  # where the rows hold one class, and which
    decision: dict[str, Any] | None = None  # the decision threshold, with a [decision] rule
    artifact: External | None = None  # the global model chosen: stored already, by sha256
    intervals: dict[str, Any] | None = None  # validation error quantiles (manymodels.intervals)
    held_out: heldout.HeldOutErrors | None = None  # the errors they came from (``heldout``)
    pending: bool = False  # ``model`` awaits its fit on all rows (``refit=False``, ``refitted``)


def estimator_path(model: Any) -> str:
    """The import path a version records for a model built here (the naive baselines)."""
    return f"{type(model).__module__}.{type(model).__qualname__}"


def _check_target(y: np.ndarray, spec: Spec) -> None:
    if y.dtype.kind == "f":
        n_nan = int(np.isnan(y).sum())
        if n_nan:
            raise ValueError(
                f"target '{spec.target}' has {n_nan} missing value(s) of {len(y)} "
                '(missing_target = "error"; "drop" leaves those rows out)'
            )
    elif y.dtype == object and pd.isna(y).any():
        raise ValueError(
            f'target \'{spec.target}\' has missing values (missing_target = "error"; "drop" '
            "leaves those rows out)"
        )


def fit_partition(
    X: Any,
    y: np.ndarray,
    spec: Spec,
    *,
    key: str,
    categorical: Sequence[str] = (),
    numeric: Sequence[str] = (),
    time_ordered: bool | None = None,
    champion: Any | None = None,
    champion_recipe: tuple[str, Any] | None = None,
    champion_units: Callable[[np.ndarray], np.ndarray] | None = None,
    unseen: np.ndarray | None = None,
    prior: ClassPrior | None = None,
    external: Sequence[External] = (),
    raw: RawTarget | None = None,
    refit: bool = True,
    splits_of: SplitsByCount | None = None,
    rows: Any = None,
) -> Fitted:
    """Select the best candidate on validation rows and refit it on all rows.

    With ``spec.selection.naive_candidate`` the naive baseline competes too and wins when it
    beats the best candidate by ``[selection] naive_margin`` (``beats``); a local candidate
    (or the top-2 mean) replaces the best global candidate only when it beats it by
    ``global_margin``. ``champion`` (a fitted model) is scored on the
    same validation rows, for the promotion decision. Raises ``PartitionSkipped`` when there
    are too few rows and ``ValueError`` when no candidate could be fitted; any exception an
    estimator raises propagates for the caller.

    Classification (see ``manymodels.training.classify``): ``prior`` holds the table's classes
    and their rates (this partition's own when not given). A partition whose training rows
    hold one class serves constant probabilities; one whose validation rows hold one class is
    decided by ``[selection] fallback_metric``; ``[decision]`` adds a threshold.

    ``external`` are the run's global models (``training.global_fit``), each with its
    predictions of this partition's rows: scored on the same validation rows, and chosen like
    a candidate — but never refitted here (``Fitted.artifact`` names the stored model).

    ``raw`` (a ``target_transform``: ``y`` is transformed) holds the rows' target as given:
    every fit is then scored, and interval residuals taken, on its predictions turned back to
    the target's units (``manymodels.targetunits``), so metrics compare across transforms.

    ``refit=False`` leaves the chosen model unfitted (``Fitted.pending``) for ``refitted``.
    ``splits_of`` (a chunk's) computes each row count's time-ordered splits once.
    ``rows`` (the kept rows' indexes in their table) tells whether a fold is a run of
    consecutive periods (``heldout.direct_steps``).
    """
    n = len(y)
    if n < spec.min_rows and spec.task == "classification" and classify.gets_constant(spec, n):
        from manymodels.training.small import few_rows_constant  # it builds a ``Fitted``

        return few_rows_constant(X, y, spec, _prior(prior, y), external)
    if n < spec.min_rows:
        raise PartitionSkipped(f"{n} rows < min_rows {spec.min_rows}")
    _check_target(y, spec)

    ordered = bool(spec.time_column) if time_ordered is None else time_ordered
    if splits_of is None:
        splits = validation_splits(n, spec, key=key, time_ordered=time_ordered)
    else:
        splits = splits_of(n, key=key, time_ordered=time_ordered)
    score_fn: Metric = metric(spec.metric_name)
    fallback: Metric | None = None  # classification's ``[selection] fallback_metric``
    one_class: str | None = None
    if spec.task == "classification":
        prior = _prior(prior, y)
        one_class = classify.single_class(y, splits)
        fallback = classify.ProbaMetric(spec.selection.fallback_metric, prior.classes)
        score_fn = classify.spec_metric(spec, prior)
        if not classify.metric_defined(spec.metric_name, y, splits, spec.selection.min_class_rows):
            score_fn = fallback

    def judge(compared: Sequence[np.ndarray]) -> Metric:
        """The metric for the champion's unseen rows: the spec's fallback where the spec's
        metric cannot decide those rows, as it does a partition's whole windows, or where
        they hold a class the champion was trained without (one new since it)."""
        if fallback is None or score_fn is fallback:
            return score_fn
        windows = [(rows, rows) for rows in compared if len(rows)]
        known = getattr(champion, "classes_", None)
        if known is not None:  # the champion's classes stand for its training rows
            windows = [(np.flatnonzero(np.isin(y, known)), rows) for _, rows in windows]
        if classify.metric_defined(spec.metric_name, y, windows, spec.selection.min_class_rows):
            return score_fn
        return fallback

    # every option's fold predictions, for interval residuals of the selection (``heldout``)
    trail = heldout.Trail(score_fn) if spec.intervals and spec.task == "regression" else None
    folds = Folds(X, y, splits, score_fn, raw=raw, trail=trail)

    def built(c: Candidate, p: dict[str, Any]) -> Any:
        """A fresh estimator of one local candidate's grid point, for this partition."""
        return cands.build(c, p, categorical=categorical, numeric=numeric, seed=spec.seed)

    def sklearn_fits(c: Candidate, p: dict[str, Any]) -> list[Any]:
        """A local candidate's validation fits made by its estimator itself."""
        return [built(c, p).fit(take(X, tr), y[tr]) for tr, _ in splits]

    def naive() -> Any:  # for classification, the smoothed constant: never a certain 0 or 1
        if prior is not None:
            return constant()
        differenced = raw is not None and raw.transform.kind == "difference"
        return cands.naive_baseline(spec.task, time_ordered=ordered, differenced=differenced)

    def naive_fold_fits() -> list[Any] | None:
        """The naive baseline's fold fits made without scikit-learn, where that gives the
        same predictions: the no-change baseline of a differenced target."""
        if prior is None and raw is not None and raw.transform.kind == "difference":
            return constant_fits.no_change_fits(y, splits)
        return None

    def constant() -> Any:
        assert prior is not None
        return classify.smoothed_constant(spec, prior)

    board = Board(top2=spec.selection.ensemble == "top2")
    with captured() as caught:  # this thread's warnings only (``warning_capture``)
        if not one_class:
            local = [c for c in spec.candidates if c.scope == "local"]  # global: ``external``
            score_local(
                board, folds, local, built, spec, categorical=bool(categorical), names=numeric
            )
        score_global(board, folds, external, prior)  # fitted on every partition: one class too
        if prior is not None and spec.selection.prior_shifted:  # and shifted (``shifted``)
            score_shifted(board, folds, external, spec, prior)
        try:
            naive_score: float | None = folds.cross_score(
                naive, naive_fold_fits(), "naive" if spec.selection.naive_candidate else None
            )
        except Exception:
            naive_score = None
        top2 = score_top2(board, folds)
        board.prefer_global(spec.selection.global_margin)
        results = board.results
        best, best_fits = board.best, board.best_fits
        if one_class:  # nothing to fit locally: constant probabilities, or a global model
            why = f"not fitted: its {one_class.removeprefix('all ')} hold one class"
            results = [
                CandidateResult(c.label, c.estimator, {}, None, why)
                for c in spec.candidates
                if c.scope == "local"
            ] + list(board.results)  # the global models' scores, to choose among
            m = classify.prior_rows(spec, _prior(prior, y))
            flat = (folds.cross_score(constant), None, {"prior_rows": m})
            pooled = isinstance(best[1], (External, Shifted)) if best is not None else False
            if best is None or not pooled or best[0] <= flat[0]:
                best, best_fits = flat, list(folds.last)
        if best is None:
            first = next((r.error for r in results if r.error), "no model to fit")
            raise ValueError(f"all {len(results)} candidate fit(s) failed; first: {first}")
        score, cand, params = best
        chosen: Chosen = "candidate"
        if one_class and not isinstance(cand, (External, Shifted)):
            chosen, model = "single_class", constant()
            estimator = estimator_path(model)
        elif (
            spec.selection.naive_candidate
            and naive_score is not None
            and beats(naive_score, score, 0.0 if prior else spec.selection.naive_margin)
        ):
            chosen, score, best_fits = "naive", naive_score, list(folds.last)
            model = naive()
            estimator, params = estimator_path(model), {}
        elif isinstance(cand, Shifted):  # the global model by reference, and the shift
            chosen, model, estimator = "prior_shifted", cand.model(X, y), cand.estimator
            params = {"member": cand.ext.label, "shift": list(model.shift)}
        elif isinstance(cand, External):
            chosen, model, estimator = "global", None, cand.estimator
        elif cand == "top2":  # the mean of the two best: a local one refitted, a global as is
            chosen, estimator = "ensemble", ENSEMBLE
            model = cands.MeanOf(
                [c.bound() if isinstance(c, External) else built(c, p) for _, c, p, _ in top2]
            )
        else:
            model = built(cand, params)
            estimator = cand.estimator
        calibration: dict[str, Any] = {}
        if spec.calibration is not None and chosen == "candidate" and prior is not None:
            wrapped, fits, calibration = classify.calibrate(
                partial(built, cand, params), X, y, splits, spec.calibration
            )
            if wrapped is not None:
                model = wrapped
                best_fits = fits or best_fits
        if model is not None and refit:
            ridge_refit.fit(model, X, y)
        comparison: Comparison | None = None
        if champion is not None:
            # where ``compare`` refits the champion (no time column, or no row newer than
            # its data) scikit-learn fits it: so the challenger's fits come from scikit-learn
            # too, or a tie of the same model twice would fall to rounding (ridge_grid)
            if chosen == "candidate" and ridge_grid.made(best_fits):
                best_fits = sklearn_fits(cand, params)
            elif chosen == "ensemble" and any(ridge_grid.made(f) for *_, f in top2):
                refits = [sklearn_fits(c, p) if ridge_grid.made(f) else f for _, c, p, f in top2]
                best_fits = [cands.MeanOf(list(pair)) for pair in zip(*refits, strict=True)]
            same = cand if chosen in ("global", "prior_shifted") else None
            recipe = (
                refitted_recipe(external, champion_recipe, folds, prior, chosen=same)
                or shifted_recipe(external, champion_recipe, folds, spec, prior, chosen=same)
                if holds_global(champion) and champion_units is None else None
            )  # fmt: skip
            comparison = compare(
                champion, best_fits, splits, X, y, score_fn, n=n, unseen=unseen, raw=raw,
                recipe=recipe, judge=judge, champion_units=champion_units, frames=folds.rows,
                fold_fit=folds.shared.fit,
            )  # fmt: skip
        probability: dict[str, float] = {}
        if prior is not None and all(hasattr(f, "predict_proba") for f in best_fits):
            probability = classify.quality(
                best_fits, splits, X, y, prior.classes, frames=folds.rows
            )
        elif prior is not None and best_fits:  # labels only: their error rate, the monitor's bar
            rate = classify.label_error_rate(best_fits, splits, X, y, frames=folds.rows)
            probability = {} if rate is None else {"error_rate": rate}
        decision = None
        if spec.decision is not None and prior is not None and prior.binary:
            decision = thresholds.threshold(
                spec.decision, prior, best_fits, splits, X, y,
                constant=chosen == "single_class", frames=folds.rows,
            )  # fmt: skip
        truth = y if raw is None else raw.y
        chained = None  # folds of forecast errors already: how many steps
        if raw is not None and raw.transform.kind == "difference":
            if all(raw.chained(va) for _, va in splits):
                chained = min(count_rows(va, n) for _, va in splits)
        elif trail is not None:  # of the level: forecasts too if every lag is past the fold
            chained = heldout.direct_steps(spec, splits, rows, ordered=ordered)
        held = heldout.replay(spec, trail, splits, truth, ordered=ordered, chained=chained)
        recorded = heldout.interval_record(
            spec, held, best_fits, splits, X, truth, raw, ordered=ordered, frames=folds.rows
        )
        if recorded is not None and raw is not None:
            recorded["units"] = "target"  # not transformed: forecast widths need no spread
            if chained:
                recorded["chained"] = chained

    n_valid = sum(count_rows(va, n) for _, va in splits)
    return Fitted(
        model=model,
        estimator=estimator,
        params=params,
        score=score,
        naive_score=naive_score,
        candidates=results,
        validation={
            "strategy": spec.validation_strategy,
            "folds": len(splits),
            "rows": n_valid,
            **probability,
            **({"calibration": calibration} if calibration else {}),
        },
        warnings=sorted({f"{w.category.__name__}: {w.message}" for w in caught})[:5],
        comparison=comparison,
        chosen=chosen,
        metric=score_fn.name if score_fn.name != spec.metric_name else None,
        single_class=_single_class(one_class, y, spec, prior) if one_class else None,
        artifact=cand if chosen == "global" else None,
        decision=decision,
        intervals=recorded,
        held_out=held,
        pending=model is not None and not refit,
    )


def refitted(fitted: Fitted, X: Any, y: np.ndarray) -> Fitted:
    """``fitted`` with its model fitted on all rows, when ``fit_partition(refit=False)`` left
    that for later: a partition trained under several target transforms refits only the
    transform that won, not every transform's winner (half of a "level or changes" run's
    final fits). The fit's warnings join the version's, as they would have."""
    if not fitted.pending:
        return fitted
    with captured() as caught:  # this thread's warnings only (``warning_capture``)
        ridge_refit.fit(fitted.model, X, y)
    raised = {f"{w.category.__name__}: {w.message}" for w in caught}
    return replace(fitted, pending=False, warnings=sorted({*fitted.warnings, *raised})[:5])


def _prior(prior: ClassPrior | None, y: np.ndarray) -> ClassPrior:
    """The table's classes, or this partition's own when the table's are not given."""
    return prior if prior is not None and len(prior.classes) else class_prior(y)


def _single_class(
    where: str, y: np.ndarray, spec: Spec, prior: ClassPrior | None
) -> dict[str, Any]:
    """What a version records of a partition served constant probabilities."""
    classes, counts = np.unique(y, return_counts=True)
    return {
        "where": where,
        "rows": {str(c): int(k) for c, k in zip(classes.tolist(), counts.tolist(), strict=True)},
        "prior_rows": classify.prior_rows(spec, prior) if prior else spec.selection.prior_rows,
    }
