"""Estimators named in a spec: resolve, expand grids, build; and the naive baselines.

A candidate is resolved and its parameter names checked when the spec is validated, so a
misspelt estimator or parameter fails before any partition trains rather than in each of them.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import inspect
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.model_selection import ParameterGrid
from sklearn.utils.metaestimators import available_if

from manymodels.exceptions import first_line

if TYPE_CHECKING:
    from manymodels.spec import Candidate


EXTRAS = {"lightgbm": "lightgbm"}
"""Estimator packages an extra of manymodels installs, by top-level module: a spec naming
``lightgbm.LGBMRegressor`` where it is missing said only "No module named 'lightgbm'", while
the README's LightGBM candidates come from ``pip install 'manymodels[lightgbm]'``."""


@functools.lru_cache(maxsize=256)
def resolve(path: str) -> Any:
    """Import ``pkg.mod.Class`` or ``pkg.mod:factory`` and return the object."""
    if ":" in path:
        module_name, _, attr = path.partition(":")
    else:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ValueError(f"'{path}' is not an import path like 'sklearn.linear_model.Ridge'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as e:
        extra = EXTRAS.get((getattr(e, "name", None) or "").partition(".")[0])
        hint = f": pip install 'manymodels[{extra}]'" if extra else ""
        raise ValueError(f"cannot import module '{module_name}' for '{path}' ({e}){hint}") from None
    except Exception as e:  # the module itself raised while importing (SyntaxError, …)
        raise ValueError(
            f"importing module '{module_name}' for '{path}' failed: {_first_line(e)}"
        ) from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"module '{module_name}' has no attribute '{attr}'") from None
        except Exception as e:  # a module-level __getattr__ that raises something else
            raise ValueError(
                f"cannot get '{attr}' from '{module_name}': {_first_line(e)}"
            ) from None
    return obj


def _first_line(error: BaseException) -> str:
    """``Type: first line`` (the type alone when the message is empty)."""
    if not str(error).strip():
        return type(error).__name__
    return f"{type(error).__name__}: {first_line(error)}"


def check_estimator_path(path: str) -> None:
    """Fail early on an estimator path that cannot work."""
    obj = resolve(path)
    if ":" in path:
        if not callable(obj):
            raise ValueError(f"factory '{path}' is not callable")
    elif not (inspect.isclass(obj) and hasattr(obj, "get_params") and hasattr(obj, "fit")):
        raise ValueError(
            f"'{path}' is not an estimator class; name a factory as 'package.module:function'"
        )
    else:
        _instantiate(obj)  # the default instance is what parameter names are checked against


def _takes_any_keyword(cls: type) -> bool:
    """Whether ``cls.__init__`` has ``**kwargs``: LightGBM and XGBoost pass extra keywords
    through to their engine (``verbose = -1`` is how LightGBM is silenced), so a name outside
    ``get_params`` is still a parameter there."""
    try:
        parameters = inspect.signature(cls).parameters.values()  # its __init__'s, less self
    except (TypeError, ValueError):
        return False
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def check_params(candidate: Candidate) -> None:
    """Fail early on a parameter name the estimator (or factory) does not take, and on a value
    scikit-learn's own parameter validation rejects (``alpha = "abc"``)."""
    obj = resolve(candidate.estimator)
    if candidate.is_factory:
        try:
            inspect.signature(obj).bind_partial(**candidate.params)
        except TypeError as e:
            raise ValueError(
                f"factory '{candidate.estimator}' does not accept params: {e}"
            ) from None
        return
    valid = set(_instantiate(obj).get_params(deep=False))
    unknown = sorted(set(candidate.params) - valid)
    if unknown and not _takes_any_keyword(obj):
        raise ValueError(
            f"{obj.__name__} has no parameter(s) {', '.join(unknown)} "
            f"(valid: {', '.join(sorted(valid))})"
        )
    for name in unknown:  # taken as any keyword (LightGBM's booster parameters): a near miss
        near = difflib.get_close_matches(name, valid, n=1, cutoff=0.9)  # of a named one is
        if near:  # a typo the estimator would pass on, and its booster ignore with a notice
            raise ValueError(
                f"{obj.__name__} has no parameter '{name}': did you mean '{near[0]}'? (it "
                "passes names it does not know on, where a misspelt one is ignored)"
            )
    # Parameters are checked one value at a time: sklearn validates each on its own, so this
    # finds every bad value without building the whole (possibly large) grid.
    for name, values in candidate.params.items():
        for value in values if isinstance(values, list) else [values]:
            try:
                estimator = obj(**{name: value})
                validate = getattr(estimator, "_validate_params", None)
                # LightGBM inherits the method but declares no constraints for it to check
                if callable(validate) and hasattr(estimator, "_parameter_constraints"):
                    validate()
            except Exception as e:
                raise ValueError(
                    f"{name} = {value!r} does not fit {obj.__name__}: {_first_line(e)}"
                ) from None


def _instantiate(cls: Any) -> Any:
    """``cls()``, or a ValueError saying why an estimator class cannot be named directly."""
    try:
        return cls()
    except Exception as e:
        raise ValueError(
            f"{cls.__name__}() cannot be built without arguments ({_first_line(e)}); write a "
            "factory 'package.module:function' that builds it and name that instead"
        ) from None


@functools.cache
def _takes_random_state(cls: type) -> bool:
    return "random_state" in cls().get_params(deep=False)


def takes_sparse(estimator: Any) -> bool:
    """Whether ``estimator`` fits on a sparse matrix, by scikit-learn's estimator tags (1.6 and
    later; before them, and for an estimator whose tags cannot be read: no, so it gets dense
    input, which every estimator takes)."""
    try:
        from sklearn.utils import get_tags
    except ImportError:
        return False
    try:
        return bool(get_tags(estimator).input_tags.sparse)
    except Exception:
        return False


def grid(candidate: Candidate) -> Iterator[dict[str, Any]]:
    """Every parameter combination of one candidate, in a stable order."""
    yield from ParameterGrid(candidate.params) if candidate.params else [{}]


LIGHTGBM_THREADS = {"n_jobs", "num_threads", "num_thread", "nthread", "nthreads"}
"""LightGBM's names for its thread count: a spec that sets any of them keeps its own."""


def build(
    candidate: Candidate,
    params: dict[str, Any],
    *,
    categorical: Sequence[str] = (),
    numeric: Sequence[str] = (),
    seed: int | None = None,
) -> Any:
    """A fresh, unfitted estimator for one grid point.

    Built-in estimators get a StandardScaler (``scale = true``) and a one-hot encoder for
    categorical feature columns in front; a factory is trusted to bring its own preprocessing.
    A randomised estimator gets ``random_state=seed`` unless the grid sets it, so the same spec
    and data give the same model.
    """
    obj = resolve(candidate.estimator)
    if candidate.is_factory:
        return obj(**params)
    if seed is not None and "random_state" not in params and _takes_random_state(obj):
        params = {**params, "random_state": seed}
    if candidate.estimator.startswith("lightgbm."):
        if "verbose" not in params:
            params = {**params, "verbose": -1}  # its own log lines on stdout, per fit
        if not LIGHTGBM_THREADS & set(params):
            # one thread, as every task gets one CPU: LightGBM's default takes every core
            # whatever OMP_NUM_THREADS or threadpoolctl say, and two such fits side by side
            # on 2 cores took 4-9x as long as one (benchmarks/HISTORY.md, #12's seventh pass)
            params = {**params, "n_jobs": 1}
    estimator = obj(**params)
    if categorical:
        from sklearn.compose import ColumnTransformer
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        pre = ColumnTransformer(
            [
                ("onehot", OneHotEncoder(handle_unknown="ignore"), list(categorical)),
                ("numeric", StandardScaler() if candidate.scale else "passthrough", list(numeric)),
            ],
            # mostly zeros (a global model's key columns, a feature of many levels) the one-hot
            # block is handed on as a sparse matrix, which HistGradientBoosting refuses
            sparse_threshold=0.3 if takes_sparse(estimator) else 0.0,
        )
        return make_pipeline(pre, estimator)
    if candidate.scale:
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(), estimator)
    return estimator


class LastValueRegressor(RegressorMixin, BaseEstimator):
    """The naive forecast for time series: tomorrow looks like the last value seen."""

    def fit(self, X: Any, y: Any) -> LastValueRegressor:
        self.last_ = float(np.asarray(y)[-1])
        return self

    def predict(self, X: Any) -> np.ndarray:
        return np.full(len(X), self.last_)


class ConstantProbabilityClassifier(ClassifierMixin, BaseEstimator):
    """The model of a partition whose training rows hold one class: the same probabilities
    for every row, its class counts smoothed toward the whole table's class rates.

    ``p_c = (k_c + m·prior_c) / (n + m)`` for ``k_c`` of its ``n`` rows in class ``c`` and
    ``m = prior_rows``: a user who never clicked in 20 rows, where 30 % of all rows are clicks,
    gets ``(0 + 2·0.3) / 22 ≈ 0.027`` rather than a certain 0. ``classes`` are every class of
    the table, so ``predict_proba`` has the same columns as any other version's.

    ``prior_rows`` may be one strength per class (``ClassPrior.strengths``, a table of three
    or more classes): each class is then its own Beta, ``q_c = (k_c + m_c·prior_c) / (n +
    m_c)``, and the ``q`` are renormalised to sum to 1, so a rare class whose rate differs
    much between partitions is smoothed by its own few pseudo-rows, not by the many the
    common classes call for. One number is the Dirichlet above (the same arithmetic as
    before per-class strengths existed).
    """

    def __init__(
        self,
        classes: Sequence[Any] = (),
        prior: Sequence[float] | None = None,
        prior_rows: float | Sequence[float] = 2.0,
    ) -> None:
        self.classes = classes
        self.prior = prior
        self.prior_rows = prior_rows

    def fit(self, X: Any, y: Any) -> ConstantProbabilityClassifier:
        y = np.asarray(y)
        classes = np.asarray(self.classes) if len(self.classes) else np.unique(y)
        counts = np.array([np.sum(y == c) for c in classes], dtype=np.float64)
        self.classes_ = classes
        rows = self.prior_rows
        if self.prior is None:
            self.proba_ = counts / max(len(y), 1e-12)
        elif isinstance(rows, Sequence):
            m_c = np.asarray(rows, dtype=np.float64)
            q = (counts + m_c * np.asarray(self.prior)) / np.maximum(len(y) + m_c, 1e-12)
            self.proba_ = q / q.sum()
        else:
            m = float(rows)
            self.proba_ = (counts + m * np.asarray(self.prior)) / max(len(y) + m, 1e-12)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        return np.tile(self.proba_, (len(X), 1))

    def predict(self, X: Any) -> np.ndarray:
        return np.full(len(X), self.classes_[int(np.argmax(self.proba_))])


class MeanOf(BaseEstimator):
    """``[selection] ensemble = "top2"``: the mean of its members' predictions (of their
    probabilities, for classifiers). ``fit`` fits the members that can be (a global model
    bound to a partition's key has no ``fit``: it is used as it was fitted)."""

    def __init__(self, members: Sequence[Any] = ()) -> None:
        self.members = members

    def fit(self, X: Any, y: Any) -> MeanOf:
        for m in self.members:
            if hasattr(m, "fit"):
                m.fit(X, y)
        return self

    def __sklearn_is_fitted__(self) -> bool:
        """Fitted when its members are (a bound global model is, having no ``fit``): it keeps
        no fitted attribute of its own, so scikit-learn took it for unfitted, and a Pipeline
        around it (an MLflow export from a skops-only registry) refused every prediction."""
        from sklearn.exceptions import NotFittedError
        from sklearn.utils.validation import check_is_fitted

        try:
            for m in self.members:
                if isinstance(m, BaseEstimator):
                    check_is_fitted(m)
        except NotFittedError:
            return False
        return bool(self.members)

    def at(self, rows: Any) -> MeanOf:
        """Members that are precomputed predictions (``external.Precomputed``) narrowed to
        ``rows``, for scoring on a subset of a fold's validation rows."""
        return MeanOf([m.at(rows) if hasattr(m, "at") else m for m in self.members])

    @property
    def classes_(self) -> Any:
        """Every member's classes (AttributeError for regressors, as sklearn expects): a local
        member knows its partition's classes, a global one the table's — two of three, and
        three."""
        first = self.members[0].classes_
        others = [np.asarray(m.classes_) for m in self.members[1:]]
        if all(np.array_equal(first, o) for o in others):
            return first
        return np.unique(np.concatenate([np.asarray(first), *others]))

    def predict(self, X: Any) -> np.ndarray:
        if hasattr(self.members[0], "classes_"):
            return np.asarray(self.classes_)[np.argmax(self.predict_proba(X), axis=1)]
        return mean_of_members([np.asarray(m.predict(X), dtype=np.float64) for m in self.members])

    @available_if(lambda self: all(hasattr(m, "predict_proba") for m in self.members))
    def predict_proba(self, X: Any) -> np.ndarray:
        """The mean of the members' probabilities, each put in the columns of its classes
        (``classes_``): a mean of a two-column and a three-column answer was refused, and the
        ensemble of a multi-class partition's local fit and a global model never offered."""
        classes = np.asarray(self.classes_)
        total = np.zeros((len(X), len(classes)))
        for m in self.members:
            at = np.searchsorted(classes, np.asarray(m.classes_))
            total[:, at] += np.asarray(m.predict_proba(X), dtype=np.float64)
        return total / len(self.members)


def mean_of_members(predictions: list[np.ndarray]) -> np.ndarray:
    """``np.mean(predictions, axis=0)``, the same bits, without stacking them first: a top-2
    mean predicts on every fold of every partition and transform, and again for the interval
    replay (~9,000 calls in the one spec on us_employment, ~15 µs each of ``np.mean``'s
    wrapping). Its sum along the first axis starts from 0.0 (a -0.0 comes out 0.0) and adds
    the members in order; its mean divides by their count. Members of different shapes go to
    ``np.mean``, which says what is wrong."""
    first = predictions[0]
    if len(predictions) < 2 or any(p.shape != first.shape for p in predictions):
        return np.asarray(np.mean(predictions, axis=0))
    total = 0.0 + first  # a new array: the members' own are left as they are
    for p in predictions[1:]:
        total += p
    return total / len(predictions)


def naive_baseline(task: str, *, time_ordered: bool, differenced: bool = False) -> Any:
    """What a model must beat to be worth serving: last value, mean, or majority class.

    ``differenced``: the model learns each period's change (``target_transform``), and the
    naive forecast is still the last value — no change. The last *change* carried on (a
    ``LastValueRegressor`` of the changes) is a drift drawn through two noisy points, not
    the baseline a forecaster compares with; with it the naive score differed by transform."""
    if task == "classification":
        return DummyClassifier(strategy="most_frequent")
    if differenced:
        return DummyRegressor(strategy="constant", constant=0.0)
    return LastValueRegressor() if time_ordered else DummyRegressor(strategy="mean")
