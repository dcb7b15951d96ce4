"""One partition's model: every candidate × grid point and the naive baseline scored on the
same validation rows, the best refitted on all rows."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Literal

import numpy as np
import pandas as pd

from manymodels import candidates as cands
from manymodels.classes import ClassPrior, class_prior
from manymodels.exceptions import error_text
from manymodels.registry.entities import CandidateResult
from manymodels.spec import Candidate, Spec
from manymodels.targetunits import RawTarget
from manymodels.training import classify, constant_fits, heldout, ridge_grid
from manymodels.training.compare import Comparison, compare
from manymodels.training.global_fit import External
from manymodels.training.metrics import Metric, beats, metric
from manymodels.training.splits import PartitionSkipped, count_rows, take, validation_splits

Chosen = Literal["candidate", "naive", "single_class", "global", "ensemble", "too_few_rows"]
ENSEMBLE = "manymodels.candidates.MeanOf"


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


def _grid_fits(
    cand: Candidate,
    points: list[dict[str, Any]],
    X: Any,
    y: np.ndarray,
    splits: Sequence[tuple[Any, Any]],
) -> list[list[Any]] | None:
    """Every grid point's validation fits at once where ``ridge_grid`` (a regression Ridge
    over ``alpha``) or ``constant_fits`` (a mean or median ``DummyRegressor``) can make them,
    numeric features only: ``[grid point][fold]``."""
    alpha_grid = ridge_grid.alphas(cand, points)
    if alpha_grid is not None:
        return ridge_grid.fold_fits(X, y, splits, alpha_grid, scale=cand.scale)
    strategy_grid = constant_fits.strategies(cand, points)
    if strategy_grid is not None:
        return constant_fits.fold_fits(y, splits, strategy_grid)
    return None


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
    unseen: np.ndarray | None = None,
    prior: ClassPrior | None = None,
    external: Sequence[External] = (),
    raw: RawTarget | None = None,
    refit: bool = True,
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
    """
    n = len(y)
    if n < spec.min_rows and spec.task == "classification" and classify.gets_constant(spec, n):
        from manymodels.training.small import few_rows_constant  # it builds a ``Fitted``

        return few_rows_constant(X, y, spec, _prior(prior, y))
    if n < spec.min_rows:
        raise PartitionSkipped(f"{n} rows < min_rows {spec.min_rows}; served by the fallback")
    _check_target(y, spec)

    ordered = bool(spec.time_column) if time_ordered is None else time_ordered
    splits = validation_splits(n, spec, key=key, time_ordered=time_ordered)
    score_fn: Metric = metric(spec.metric_name)
    one_class: str | None = None
    if spec.task == "classification":
        prior = _prior(prior, y)
        one_class = classify.single_class(y, splits)
        if not classify.metric_defined(spec.metric_name, y, splits, spec.selection.min_class_rows):
            score_fn = classify.ProbaMetric(spec.selection.fallback_metric, prior.classes)
    results: list[CandidateResult] = []
    best: tuple[float, Any, dict[str, Any]] | None = None

    fitted_last: list[Any] = []  # the validation fits of the last cross_score call
    # every option's fold predictions, for interval residuals of the selection (``heldout``)
    trail = heldout.Trail(score_fn) if spec.intervals and spec.task == "regression" else None

    def judge(fit: Any, va: Any) -> tuple[Any, Any, np.ndarray]:
        """What the metric sees of ``fit`` on validation rows ``va``: in the target's units."""
        if raw is None:
            return fit, take(X, va), y[va]
        return raw.judged(fit, va), take(X, va), raw.y[va]

    def fold_score(fit: Any, va: Any) -> float:
        return trail.score(*judge(fit, va)) if trail else score_fn(*judge(fit, va))

    def cross_score(
        make: Callable[[], Any],
        ready: Sequence[Any] | None = None,
        kind: heldout.Kind | None = None,
    ) -> float:
        """``make``'s mean score over the folds; ``ready`` holds its fold fits already made
        (``ridge_grid``, ``constant_fits``), one per fold. ``kind``: the trail keeps it as an
        option."""
        scores = []
        fitted_last.clear()
        if trail:
            trail.start()
        for at, (tr, va) in enumerate(splits):
            if ready is None:
                est = make()
                est.fit(take(X, tr), y[tr])
            else:
                est = ready[at]
            scores.append(fold_score(est, va))
            fitted_last.append(est)
        value = float(np.mean(scores))
        if not math.isfinite(value):
            raise ValueError(f"{spec.metric_name} is not finite ({value})")
        if trail and kind:
            trail.keep(kind)
        return value

    def built(c: Candidate, p: dict[str, Any]) -> Any:
        """A fresh estimator of one local candidate's grid point, for this partition."""
        return cands.build(c, p, categorical=categorical, numeric=numeric, seed=spec.seed)

    def sklearn_fits(c: Candidate, p: dict[str, Any]) -> list[Any]:
        """A local candidate's validation fits made by its estimator itself."""
        return [built(c, p).fit(take(X, tr), y[tr]) for tr, _ in splits]

    best_fits: list[Any] = []
    best_global: tuple[tuple[float, Any, dict[str, Any]], list[Any]] | None = None
    scored: list[tuple[float, Any, dict[str, Any], list[Any]]] = []  # for top2: all but naive

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

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        local = [c for c in spec.candidates if c.scope == "local"]  # global: ``external``
        for cand in [] if one_class else local:
            points = list(cands.grid(cand))
            ready = (
                _grid_fits(cand, points, X, y, splits)
                if spec.task == "regression" and not categorical
                else None
            )
            for point, params in enumerate(points):
                make = partial(built, cand, params)
                try:
                    value = cross_score(make, None if ready is None else ready[point], "local")
                except Exception as e:  # an estimator's own complaint about this partition
                    results.append(
                        CandidateResult(cand.label, cand.estimator, params, None, error_text(e))
                    )
                    continue
                results.append(CandidateResult(cand.label, cand.estimator, params, value))
                if spec.selection.ensemble == "top2":
                    scored.append((value, cand, params, list(fitted_last)))
                if best is None or value > best[0]:
                    best = (value, cand, params)
                    best_fits = list(fitted_last)
        for ext in [] if one_class else external:
            try:
                if trail:
                    trail.start()
                value, ext_fits = _score_external(ext, splits, fold_score, score_fn.name, prior, n)
                if trail:
                    trail.keep("global")
            except Exception as e:
                results.append(CandidateResult(ext.label, ext.estimator, ext.params, None,
                                               error_text(e)))  # fmt: skip
                continue
            results.append(CandidateResult(ext.label, ext.estimator, ext.params, value))
            if spec.selection.ensemble == "top2":
                scored.append((value, ext, ext.params, ext_fits))
            if best_global is None or value > best_global[0][0]:
                best_global = ((value, ext, ext.params), ext_fits)
            if best is None or value > best[0]:
                best, best_fits = (value, ext, ext.params), ext_fits
        try:
            naive_score: float | None = cross_score(
                naive, naive_fold_fits(), "naive" if spec.selection.naive_candidate else None
            )
        except Exception:
            naive_score = None
        top2: list[tuple[float, Any, dict[str, Any], list[Any]]] = []
        if spec.selection.ensemble == "top2" and len(scored) >= 2 and best is not None:
            top2 = sorted(scored, key=lambda t: -t[0])[:2]
            members = [f"{c.label}{p or ''}" for _, c, p, _ in top2]
            pairs = [cands.MeanOf([a, b]) for a, b in zip(top2[0][3], top2[1][3], strict=True)]
            try:
                folds = zip(pairs, splits, strict=True)
                value = float(np.mean([score_fn(*judge(f, va)) for f, (_, va) in folds]))
            except Exception as e:
                value = math.nan
                results.append(CandidateResult("top2", ENSEMBLE, {"members": members}, None,
                                               error_text(e)))  # fmt: skip
            if math.isfinite(value):
                results.append(CandidateResult("top2", ENSEMBLE, {"members": members}, value))
                if value > best[0]:
                    best, best_fits = (value, "top2", {"members": members}), pairs
        if (
            best_global is not None
            and best is not None
            and not isinstance(best[1], External)
            and not beats(best[0], best_global[0][0], spec.selection.global_margin)
        ):
            best, best_fits = best_global  # a local win within the margin is noise
        if one_class:  # nothing to fit, nothing to compare: constant probabilities
            why = f"not fitted: its {one_class} hold one class"
            results = [
                CandidateResult(c.label, c.estimator, {}, None, why) for c in spec.candidates
            ]
            m = classify.prior_rows(spec, _prior(prior, y))
            best = (cross_score(constant), None, {"prior_rows": m})
            best_fits = list(fitted_last)
        if best is None:
            first = next((r.error for r in results if r.error), "no model to fit")
            raise ValueError(f"all {len(results)} candidate fit(s) failed; first: {first}")
        score, cand, params = best
        chosen: Chosen = "candidate"
        if one_class:
            chosen, model = "single_class", constant()
            estimator = estimator_path(model)
        elif (
            spec.selection.naive_candidate
            and naive_score is not None
            and beats(naive_score, score, 0.0 if prior else spec.selection.naive_margin)
        ):
            chosen, score, best_fits = "naive", naive_score, list(fitted_last)
            model = naive()
            estimator, params = estimator_path(model), {}
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
            model.fit(X, y)
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
            comparison = compare(
                champion, best_fits, splits, X, y, score_fn, n=n, unseen=unseen, raw=raw
            )
        probability: dict[str, float] = {}
        if prior is not None and all(hasattr(f, "predict_proba") for f in best_fits):
            probability = classify.quality(best_fits, splits, X, y, prior.classes)
        decision = None
        if spec.decision is not None and prior is not None and prior.binary:
            decision = classify.threshold(
                spec.decision, prior, best_fits, splits, X, y, constant=bool(one_class)
            )
        truth = y if raw is None else raw.y
        chained = None  # folds of forecast errors already: how many steps
        if raw is not None and all(raw.chained(va) for _, va in splits):
            chained = min(count_rows(va, n) for _, va in splits)
        held = heldout.replay(spec, trail, splits, truth, ordered=ordered, chained=chained)
        recorded = heldout.interval_record(
            spec, held, best_fits, splits, X, truth, raw, ordered=ordered
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
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fitted.model.fit(X, y)
    raised = {f"{w.category.__name__}: {w.message}" for w in caught}
    return replace(fitted, pending=False, warnings=sorted({*fitted.warnings, *raised})[:5])


def _score_external(
    ext: External,
    splits: Sequence[Any],
    fold_score: Callable[[Any, Any], float],
    metric_name: str,
    prior: ClassPrior | None,
    n: int,
) -> tuple[float, list[Any]]:
    """A global model's score on this partition's validation rows, from its predictions."""
    fits, scores = [], []
    classes = prior.classes if prior is not None else None
    for _, va in splits:
        rows = np.arange(n)[va]
        if np.isnan(ext.pred[rows]).any():
            raise ValueError("the global model has no prediction of these validation rows")
        fit = ext.scorer(rows, classes)
        fits.append(fit)
        scores.append(fold_score(fit, va))
    value = float(np.mean(scores))
    if not math.isfinite(value):
        raise ValueError(f"{metric_name} is not finite ({value})")
    return value, fits


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
