"""Scoring the champion beside the challenger on the same validation rows.

The champion as served is judged on the validation rows it never saw (newer than its training
data). When there are none, or when it cannot be told which rows it saw (no time column),
scoring it as it is would grade it on its own training rows, so its estimator and parameters
are refitted on the challenger's training rows instead and scored on the same validation rows
(see ``manymodels.evaluate``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from manymodels.artifacts import ArtifactStore, deserialize
from manymodels.candidates import MeanOf
from manymodels.evaluate import Basis
from manymodels.exceptions import (
    ArtifactCorrupted,
    ArtifactNotFound,
    UntrustedArtifact,
    error_text,
)
from manymodels.global_members import GlobalModels, linked
from manymodels.prior_shift import PriorShifted
from manymodels.targetunits import RawTarget
from manymodels.training.external import PrecomputedRegressor
from manymodels.training.global_fit import KeyBound
from manymodels.training.metrics import Metric
from manymodels.training.splits import Frames, Split, frames_of, take

FoldFit = Callable[[Any, int, Any], Any]
"""``(model, fold, training rows) → fitted``: ``SharedColumns.fit`` of the partition's folds."""


@dataclass(frozen=True)
class Champion:
    """The production version a retrained partition is compared against; ``last_time`` is the
    newest time in its training data (JSON form), so only newer rows judge it as it is."""

    version: int
    artifact_sha256: str
    last_time: Any = None
    refused: str | None = None
    """Why it must not be loaded (its signature did not verify, checked by the driver,
    which holds the signing key): it is then never unpickled, and cannot be evaluated."""
    transform: str = "none"
    """The target transform it learnt (its history's). Beside a challenger of another, it is
    scored on the rows newer than its data from its own transform's view of them
    (``compare``'s ``champion_units``); refitted on another transform's features it cannot be."""
    recipe: tuple[str, Any] | None = None
    """Its estimator and parameters as recorded: a champion holding a global model cannot be
    refitted on one partition's rows, but a full run's global candidate of the same recipe
    is it refitted on every partition's (``Recipe``)."""
    replaced_target: str | None = None
    """The target it predicts (``'units'``), when the run was told its spec's target replaces
    that one (``train(new_target=True)``, ``--new-target``): it is neither loaded nor
    compared, and the new version replaces it whatever the policy, as a first version is."""


@dataclass(frozen=True)
class Recipe:
    """A global champion's estimator and parameters as this run's global phase refitted them:
    ``fits`` predict each validation split's rows from a fit that left them out, as a local
    champion's refits do; ``chosen`` when the challenger is that same global model (only the
    rows differ: ``Comparison.same_method``)."""

    fits: Sequence[Any]
    chosen: bool


@dataclass(frozen=True)
class Comparison:
    """Champion and challenger scored on the same validation rows."""

    challenger: float | None
    champion: float | None
    rows: int
    error: str | None = None
    basis: Basis | None = None
    same_method: bool = False
    """Refitted (basis ``refit``), the champion is the challenger's own estimator and
    parameters: only the rows differ (``evaluate.decide``)."""
    metric: str | None = None
    """The metric both were scored with when it is not the version's: the spec's is undefined
    on the rows compared (``compare``'s ``judge``)."""


def compare(
    champion: Any,
    challenger_fits: Sequence[Any],
    splits: Sequence[Split],
    X: Any,
    y: np.ndarray,
    score_fn: Metric,
    *,
    n: int,
    unseen: np.ndarray | None,
    raw: RawTarget | None = None,
    recipe: Recipe | None = None,
    judge: Callable[[Sequence[np.ndarray]], Metric] | None = None,
    champion_units: Callable[[np.ndarray], np.ndarray] | None = None,
    frames: Frames | None = None,
    fold_fit: FoldFit | None = None,
) -> Comparison:
    """``challenger_fits`` are the challenger's fits on each split's training rows;
    ``unseen`` marks rows newer than the champion's training data. ``None`` (no time column,
    the pooled fallback) means it cannot be told which rows the champion saw: it is refitted.
    ``raw`` (a ``target_transform``): both are scored in the target's units, turned back with
    this version's transform — the champion is fed this version's features too.
    ``recipe``: a global champion's estimator and parameters refitted by this run (``Recipe``).
    ``judge`` gives the metric for the unseen rows compared (each split's): a classifier's
    spec metric may be undefined on them though defined on its whole windows (a day of
    appended rows of one class: ``roc_auc`` was NaN for both, and never promoted).
    ``champion_units`` (a champion of another target transform) predicts rows — this
    version's positions — in the target's units from the champion's own features: it is
    judged on them as served, and cannot be refitted on this version's features.
    ``frames`` and ``fold_fit`` (``Folds.rows``, ``Folds.shared.fit``): the validation frames
    selection scored, and a fold fit that takes the fold's preprocessing selection fitted
    when the champion's is of the same shape (``shared_columns``: the same bits)."""
    if unseen is None and champion_units is not None:
        return _other_transform(splits, y, raw)
    if unseen is None:
        return _refit(
            champion, challenger_fits, splits, X, y, score_fn, raw, recipe, frames, fold_fit
        )
    compared = [np.arange(n)[va] for _, va in splits]
    compared = [idx[unseen[idx]] for idx in compared]
    used = judge(compared) if judge is not None and any(len(i) for i in compared) else score_fn
    score_fn, metric = used, (used.name if used is not score_fn else None)
    ours, theirs, rows = [], [], 0
    for idx, est in zip(compared, challenger_fits, strict=True):
        if len(idx) == 0:
            continue
        rows += len(idx)
        at = getattr(est, "at", None)  # a global model's predictions (external.Precomputed)
        yva = (y if raw is None else raw.y)[idx]
        ours.append(score_fn(_judged(raw, at(idx) if at else est, idx), take(X, idx), yva))
        try:
            if champion_units is not None:
                fit: Any = PrecomputedRegressor(champion_units(idx), np.arange(len(idx)))
            else:
                fit = _judged(raw, champion, idx)
            theirs.append(score_fn(fit, take(X, idx), yva))
        except Exception as e:  # e.g. the features changed since the champion was trained
            return Comparison(None, None, rows, error_text(e), "unseen")
    if rows:
        scores = float(np.mean(ours)), float(np.mean(theirs))
        return Comparison(*scores, rows, basis="unseen", metric=metric)
    if champion_units is not None:
        return _other_transform(splits, y, raw)
    return _refit(champion, challenger_fits, splits, X, y, score_fn, raw, recipe, frames, fold_fit)


def _other_transform(splits: Sequence[Split], y: np.ndarray, raw: RawTarget | None) -> Comparison:
    """No row is newer than a champion of another target transform's data: refitted, it would
    need its own features, which this version's rows are not."""
    rows = sum(len((y if raw is None else raw.y)[va]) for _, va in splits)
    why = (
        "it learnt another target transform, and no validation row is newer than its data: "
        "refitted, it could be scored only on its own transform's features"
    )
    return Comparison(None, None, rows, why, "refit")


def _judged(raw: RawTarget | None, fit: Any, rows: Any) -> Any:
    return fit if raw is None else raw.judged(fit, rows)


def _refit(
    champion: Any,
    challenger_fits: Sequence[Any],
    splits: Sequence[Split],
    X: Any,
    y: np.ndarray,
    score_fn: Metric,
    raw: RawTarget | None = None,
    recipe: Recipe | None = None,
    frames: Frames | None = None,
    fold_fit: FoldFit | None = None,
) -> Comparison:
    """The champion's estimator and parameters, fitted on each split's training rows. A
    champion holding a global model cannot be: that model was fitted on every partition's
    rows, these validation rows too, and only a run's global phase refits it. When this run's
    global phase fitted its recipe (``recipe``), those fold fits are the champion refitted;
    otherwise it is not scored, and the decision says why (it was a ``TypeError`` from
    ``clone``)."""
    # a shifted champion's recipe is its global model's folds shifted as it was
    # (``training.shifted.shifted_recipe``), never the global model unshifted
    given = recipe.fits if holds_global(champion) and recipe is not None else None
    if holds_global(champion) and given is None:
        rows = sum(len((y if raw is None else raw.y)[va]) for _, va in splits)
        why = (
            "it holds a global model trained on these validation rows too, which cannot be "
            "refitted on this partition's rows alone"
        )
        return Comparison(None, None, rows, why, "refit")
    ours, theirs, rows = [], [], 0
    frame = frames_of(X, frames)
    for i, ((tr, va), est) in enumerate(zip(splits, challenger_fits, strict=True)):
        Xva, yva = frame(va), (y if raw is None else raw.y)[va]
        rows += len(yva)
        ours.append(score_fn(_judged(raw, est, va), Xva, yva))
        try:
            if given is not None:
                refitted = given[i]
            elif fold_fit is not None:
                refitted = fold_fit(clone(champion), i, tr)
            else:
                refitted = clone(champion).fit(take(X, tr), y[tr])
            theirs.append(score_fn(_judged(raw, refitted, va), Xva, yva))
        except Exception as e:
            return Comparison(None, None, rows, f"refitting it failed: {error_text(e)}", "refit")
    if given is not None:
        same = bool(recipe and recipe.chosen)
    else:
        same = bool(challenger_fits) and _config(champion) == _config(challenger_fits[-1])
    return Comparison(
        float(np.mean(ours)), float(np.mean(theirs)), rows, basis="refit", same_method=same
    )


def _config(model: Any) -> Any:
    """An estimator's class and parameters, nested estimators included, as comparable values
    (numbers as floats: ``alpha=1`` is ``alpha=1.0``), fitted or not; scikit-learn's repr
    would do but shortens long lists."""
    if hasattr(model, "get_params") and not isinstance(model, type):
        try:
            params = model.get_params(deep=False)
        except Exception:  # not an estimator clone knows: never taken for the same method
            return id(model)
        return (type(model).__qualname__, tuple(sorted((k, _config(v)) for k, v in params.items())))
    if isinstance(model, list | tuple):
        return tuple(_config(v) for v in model)
    if isinstance(model, dict):
        return tuple(sorted((str(k), _config(v)) for k, v in model.items()))
    if isinstance(model, bool) or model is None or isinstance(model, str):
        return model
    if isinstance(model, int | float | np.number):
        return float(model)
    return repr(model)


def holds_global(model: Any) -> bool:
    """Whether ``model`` is, or has among its ensemble members, a global model bound to a
    partition (``global_fit.KeyBound``), or shifts one to its rates (``PriorShifted``): either
    way its member was fitted on every partition's rows, these validation rows too."""
    if isinstance(model, MeanOf):
        return any(holds_global(m) for m in model.members)
    if isinstance(model, PriorShifted):
        return holds_global(model.member)
    return isinstance(model, KeyBound)


def newer_than(times: np.ndarray | None, last: Any) -> np.ndarray | None:
    """Rows after ``last`` (a champion's newest training time, in JSON form); ``None`` when it
    cannot be told (no time column, or a champion without that record)."""
    if times is None or last is None:
        return None
    try:
        if times.dtype.kind == "M":
            bound = pd.Timestamp(last).to_datetime64().astype(times.dtype)
            return np.asarray(times > bound)
        return np.asarray(times > float(last))
    except (ValueError, TypeError):
        return None


def load_champion(
    champion: Champion | None, store: ArtifactStore
) -> tuple[Any | None, str | None, str | None]:
    """The production model to compare against; a load failure is recorded, not raised. The
    third part says why no reader can serve the champion, when none can: it is in a format
    its registry no longer loads (a pickle in a skops-only registry,
    ``manymodels.serialization``), or its artifact is missing or fails its sha256 check. Such
    a champion does not block a challenger: a retrain is how ``doctor`` says to mend it."""
    if champion is None or champion.replaced_target is not None:  # not compared: not loaded
        return None, None, None
    if champion.refused is not None:
        return None, champion.refused, None
    try:
        model = deserialize(store.get(champion.artifact_sha256), store.formats)
        return linked(model, GlobalModels(store.get, store.formats)), None, None
    except UntrustedArtifact as e:
        return None, error_text(e), "is in a format this registry no longer loads"
    except (ArtifactNotFound, ArtifactCorrupted) as e:  # the router: a 500 for both
        return None, error_text(e), "cannot be loaded"
    except Exception as e:
        return None, error_text(e), None
