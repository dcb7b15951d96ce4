"""One partition's model: every candidate × grid point and the naive baseline scored on the
same validation rows, the best refitted on all rows."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from manymodels import candidates as cands
from manymodels.exceptions import error_text
from manymodels.registry.entities import CandidateResult
from manymodels.spec import Spec
from manymodels.training.compare import Comparison, compare
from manymodels.training.metrics import metric
from manymodels.training.splits import PartitionSkipped, count_rows, take, validation_splits

Chosen = Literal["candidate", "naive"]


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
    unseen: np.ndarray | None = None,
) -> Fitted:
    """Select the best candidate on validation rows and refit it on all rows.

    With ``spec.selection.naive_candidate`` the naive baseline competes too and wins when it
    scores strictly better than every candidate. ``champion`` (a fitted model) is scored on the
    same validation rows, for the promotion decision. Raises ``PartitionSkipped`` when there
    are too few rows and ``ValueError`` when no candidate could be fitted; any exception an
    estimator raises propagates for the caller.
    """
    n = len(y)
    if n < spec.min_rows:
        raise PartitionSkipped(f"{n} rows < min_rows {spec.min_rows}; served by the fallback")
    _check_target(y, spec)

    ordered = bool(spec.time_column) if time_ordered is None else time_ordered
    splits = validation_splits(n, spec, key=key, time_ordered=time_ordered)
    score_fn = metric(spec.metric_name)
    results: list[CandidateResult] = []
    best: tuple[float, Any, dict[str, Any]] | None = None

    fitted_last: list[Any] = []  # the validation fits of the last cross_score call

    def cross_score(make: Callable[[], Any]) -> float:
        scores = []
        fitted_last.clear()
        for tr, va in splits:
            est = make()
            est.fit(take(X, tr), y[tr])
            scores.append(score_fn(est, take(X, va), y[va]))
            fitted_last.append(est)
        value = float(np.mean(scores))
        if not math.isfinite(value):
            raise ValueError(f"{spec.metric_name} is not finite ({value})")
        return value

    best_fits: list[Any] = []

    def naive() -> Any:
        return cands.naive_baseline(spec.task, time_ordered=ordered)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for cand in spec.candidates:
            for params in cands.grid(cand):

                def make(c: Any = cand, p: dict[str, Any] = params) -> Any:
                    return cands.build(
                        c, p, categorical=categorical, numeric=numeric, seed=spec.seed
                    )

                try:
                    value = cross_score(make)
                except Exception as e:  # an estimator's own complaint about this partition
                    results.append(
                        CandidateResult(cand.label, cand.estimator, params, None, error_text(e))
                    )
                    continue
                results.append(CandidateResult(cand.label, cand.estimator, params, value))
                if best is None or value > best[0]:
                    best = (value, cand, params)
                    best_fits = list(fitted_last)
        try:
            naive_score: float | None = cross_score(naive)
        except Exception:
            naive_score = None
        if best is None:
            first = next(r.error for r in results if r.error)
            raise ValueError(f"all {len(results)} candidate fit(s) failed; first: {first}")
        score, cand, params = best
        chosen: Chosen = "candidate"
        if spec.selection.naive_candidate and naive_score is not None and naive_score > score:
            chosen, score, best_fits = "naive", naive_score, list(fitted_last)
            model = naive()
            estimator, params = estimator_path(model), {}
        else:
            model = cands.build(
                cand, params, categorical=categorical, numeric=numeric, seed=spec.seed
            )
            estimator = cand.estimator
        model.fit(X, y)
        comparison: Comparison | None = None
        if champion is not None:
            comparison = compare(champion, best_fits, splits, X, y, score_fn, n=n, unseen=unseen)

    n_valid = sum(count_rows(va, n) for _, va in splits)
    return Fitted(
        model=model,
        estimator=estimator,
        params=params,
        score=score,
        naive_score=naive_score,
        candidates=results,
        validation={"strategy": spec.validation_strategy, "folds": len(splits), "rows": n_valid},
        warnings=sorted({f"{w.category.__name__}: {w.message}" for w in caught})[:5],
        comparison=comparison,
        chosen=chosen,
    )
