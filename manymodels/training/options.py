"""The options selection weighs for one partition, each scored on its folds (``Folds``):
every local candidate's grid points, the run's global models, and the top-2 mean. ``Board``
records each score (a ``CandidateResult``) and keeps the best with its fold fits; the naive
baseline, the choice among them and the refit stay with ``select.fit_partition``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from manymodels import candidates as cands
from manymodels.classes import ClassPrior
from manymodels.exceptions import error_text
from manymodels.registry.entities import CandidateResult
from manymodels.spec import Candidate, Spec
from manymodels.training import constant_fits, ridge_grid
from manymodels.training.compare import Recipe
from manymodels.training.external import External
from manymodels.training.folds import Folds
from manymodels.training.metrics import beats, mean_of

ENSEMBLE = "manymodels.candidates.MeanOf"
Scored = tuple[float, Any, dict[str, Any], list[Any]]
"""An option's score, candidate, parameters and fold fits (for the top-2 mean)."""


def grid_fits(
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


Option = tuple[float, Any, dict[str, Any]]
"""A scored option: its mean validation score, its candidate (a ``Candidate``, an
``External``, ``"top2"``) and its parameters."""


@dataclass
class Board:
    """Every option scored so far, as ``fit_partition`` records them, and the best one with
    its fold fits; with ``top2``, every scored option but naive, for the top-2 mean."""

    top2: bool
    results: list[CandidateResult] = field(default_factory=list)
    scored: list[Scored] = field(default_factory=list)
    best: Option | None = None
    best_fits: list[Any] = field(default_factory=list)
    best_global: tuple[Option, list[Any]] | None = None

    def failed(
        self, label: str, estimator: str, params: dict[str, Any], e: Exception, why: str = ""
    ) -> None:
        self.results.append(CandidateResult(label, estimator, params, None, error_text(e) + why))

    def offer(
        self,
        value: float,
        cand: Any,
        params: dict[str, Any],
        fits: list[Any],
        *,
        scope: str,
        pairs: bool = True,
    ) -> None:
        """A candidate or global model scored ``value`` with these fold fits; ``pairs``: one
        the top-2 mean may take as a member."""
        self.results.append(CandidateResult(cand.label, cand.estimator, params, value))
        if self.top2 and pairs:
            self.scored.append((value, cand, params, fits))
        if scope == "global" and (self.best_global is None or value > self.best_global[0][0]):
            self.best_global = ((value, cand, params), fits)
        if self.best is None or value > self.best[0]:
            self.best, self.best_fits = (value, cand, params), fits

    def prefer_global(self, margin: float) -> None:
        """The best global model, unless a local option (or the top-2 mean) beats it by
        ``margin``: a local win within the margin is noise. A global model shifted to the
        partition's rates (``training.shifted``) is no local option: it keeps a win."""
        if (
            self.best_global is not None
            and self.best is not None
            and not isinstance(self.best[1], External)
            and not getattr(self.best[1], "pooled", False)  # a global model, shifted
            and not beats(self.best[0], self.best_global[0][0], margin)
        ):
            self.best, self.best_fits = self.best_global


def score_local(
    board: Board,
    folds: Folds,
    local: Sequence[Candidate],
    built: Callable[[Candidate, dict[str, Any]], Any],
    spec: Spec,
    *,
    categorical: bool,
    names: Sequence[str] = (),
) -> None:
    """Every grid point of every local candidate, fitted on each fold (all of a grid's
    validation fits at once where ``grid_fits`` can make them). ``names``: the columns of a
    numpy ``folds.X``, to name those whose missing values a candidate failed on."""
    for cand in local:
        points = list(cands.grid(cand))
        ready = (
            grid_fits(cand, points, folds.X, folds.y, folds.splits)
            if spec.task == "regression" and not categorical
            else None
        )
        for point, params in enumerate(points):
            make = partial(built, cand, params)
            try:
                value = folds.cross_score(make, None if ready is None else ready[point], "local")
            except Exception as e:  # an estimator's own complaint about this partition
                said = str(e).lower()
                why = missing_named(folds.X, names) if "nan" in said else ""
                why = why or (infinite_named(folds.X, folds.y, names) if "infin" in said else "")
                board.failed(cand.label, cand.estimator, params, e, why)
                continue
            board.offer(value, cand, params, list(folds.last), scope="local")


def missing_named(X: Any, names: Sequence[str]) -> str:
    """`` (missing values in feature 'size': 60 of 60 rows)`` when a partition's features hold
    NaN, else ``""``: scikit-learn's "Input X contains NaN." names no column, and a feature
    empty in one partition (a store whose size nobody filled in) fails its candidates there
    alone, which then read as a partition where no candidate beat naive."""
    if isinstance(X, pd.DataFrame):
        columns = list(X.columns)
        holes = [int(n) for n in X.isna().sum().to_numpy()]
    else:
        values = np.asarray(X)
        if values.ndim != 2 or values.dtype.kind != "f" or values.shape[1] != len(names):
            return ""
        columns, holes = list(names), [int(n) for n in np.isnan(values).sum(axis=0)]
    named = [f"'{c}'" for c, n in zip(columns, holes, strict=True) if n]
    if not named:
        return ""
    worst = max(holes)
    return (
        f" (missing values in feature(s) {', '.join(named[:5])}"
        f"{' …' if len(named) > 5 else ''}: up to {worst:,} of {len(X):,} rows)"
    )


def infinite_named(X: Any, y: np.ndarray, names: Sequence[str]) -> str:
    """`` (infinite values in feature 'price': 1 of 60 rows, the first at row 6 of the
    partition)`` when a partition's features or target hold ``inf`` (a Parquet file's or a
    DataFrame's, a CSV's ``inf`` cell), else ``""``: scikit-learn's "Input X contains
    infinity or a value too large" named neither the column nor the row. The partition
    alone fails, as for a missing value (``missing_named``); its rows are counted in the
    partition's order (by time, with a time column)."""
    if isinstance(X, pd.DataFrame):
        numeric = [c for c in X.columns if ptypes.is_float_dtype(X[c])]
        columns = [str(c) for c in numeric]
        values = X[numeric].to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        values = np.asarray(X)
        if values.ndim != 2 or values.dtype.kind != "f" or values.shape[1] != len(names):
            return ""
        columns = list(names)
    found = [(f"feature '{c}'", values[:, j]) for j, c in enumerate(columns)]
    target = np.asarray(y)
    if target.dtype.kind == "f":
        found.append(("the target", target))
    said = []
    for what, column in found:
        at = np.flatnonzero(np.isinf(column))
        if len(at):
            said.append(
                f"{what}: {len(at):,} of {len(column):,} rows, the first at row "
                f"{int(at[0]) + 1} of the partition"
            )
    return f" (infinite values in {'; '.join(said[:3])})" if said else ""


def score_global(
    board: Board, folds: Folds, external: Sequence[External], prior: ClassPrior | None
) -> None:
    """Each of the run's global models, from its predictions of this partition's rows."""
    for ext in external:
        try:
            if folds.trail:
                folds.trail.start()
            value, fits = _score_external(ext, folds, prior)
            if folds.trail:
                folds.trail.keep("global")
        except Exception as e:
            board.failed(ext.label, ext.estimator, ext.params, e)
            continue
        board.offer(value, ext, ext.params, fits, scope="global")


def score_top2(board: Board, folds: Folds) -> list[Scored]:
    """With ``ensemble = "top2"``, the mean of the two best options, scored on the same folds
    and offered as one more; returns those two (empty without two)."""
    if not board.top2 or len(board.scored) < 2 or board.best is None:
        return []
    top2 = sorted(board.scored, key=lambda t: -t[0])[:2]
    members = [f"{c.label}{p or ''}" for _, c, p, _ in top2]
    pairs = [cands.MeanOf([a, b]) for a, b in zip(top2[0][3], top2[1][3], strict=True)]
    try:
        value = folds.mean_score(pairs)
    except Exception as e:
        board.failed("top2", ENSEMBLE, {"members": members}, e)
        return top2
    if math.isfinite(value):
        board.results.append(CandidateResult("top2", ENSEMBLE, {"members": members}, value))
        if value > board.best[0]:
            board.best, board.best_fits = (value, "top2", {"members": members}), pairs
    return top2


def refitted_recipe(
    external: Sequence[External],
    recipe: tuple[str, Any] | None,
    folds: Folds,
    prior: ClassPrior | None,
    *,
    chosen: Any,
) -> Recipe | None:
    """A global champion's recipe (estimator and parameters, as its version recorded them) as
    this run refitted it: the run's global model of that recipe, predicting every validation
    row from a fit that left it out. ``None`` when the run has none — or only the stored one,
    which saw these rows (a run of named partitions). ``chosen``: the option this partition
    chose (the same global model: only the rows differ). Nothing is scored here: the fold
    fits are the model's predictions, and the board's scores and residuals stay its own."""
    if recipe is None:
        return None
    from manymodels.training.records import jsonable  # as versions record params (a cycle)

    estimator, params = recipe
    for ext in external:
        if ext.estimator != estimator or jsonable(ext.params) != params:
            continue
        fits = _fold_fits(ext, folds, prior)  # ``None``: the stored model, which saw these rows
        if fits is None:
            return None
        return Recipe(fits, chosen=chosen is ext)
    return None


def _score_external(
    ext: External, folds: Folds, prior: ClassPrior | None
) -> tuple[float, list[Any]]:
    """A global model's score on this partition's validation rows, from its predictions."""
    fits = _fold_fits(ext, folds, prior)
    if fits is None:  # rows it saw, or cannot tell (``rescore_global``); an early cutoff
        raise ValueError(
            ext.unscored
            or "the stored global model is judged only on validation rows after those it was "
            "fitted on, told by the time column, and these are not all such rows (a full "
            "run refits and judges it)"
        )
    pairs = zip(fits, folds.splits, strict=True)
    value = mean_of([folds.fold_score(fit, va) for fit, (_, va) in pairs])
    if not math.isfinite(value):
        raise ValueError(f"{folds.score_fn.name} is not finite ({value})")
    return value, fits


def _fold_fits(ext: External, folds: Folds, prior: ClassPrior | None) -> list[Any] | None:
    """A global model's predictions of each validation fold's rows, as fits to score, or
    ``None`` when some row has none (one the model saw: NaN in ``External.pred``)."""
    classes = prior.classes if prior is not None else None
    rows = np.arange(len(folds.y))
    fits = []
    for _, va in folds.splits:
        at = rows[va]
        if np.isnan(ext.pred[at]).any():
            return None
        fits.append(ext.scorer(at, classes))
    return fits
