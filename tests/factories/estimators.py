"""Estimators a spec can name (``factories:scaled_ridge``, ``factories.RowCountingRidge``) and
the slow-fitting module a child process imports: candidates that behave in a known way.

Only in-process backends may name them: Ray workers do not have ``tests/`` on their path.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

if TYPE_CHECKING:
    pass


def scaled_ridge(alpha: float = 1.0) -> Pipeline:
    """A user factory (``package.module:function``) returning a Pipeline."""
    return Pipeline([("scale", StandardScaler()), ("ridge", Ridge(alpha=alpha))])


class _RidgeUpTo(Ridge):
    """A Ridge that refuses more than ``limit`` rows: a candidate that fits every partition
    but not the pooled fallback."""

    def __init__(self, alpha: float = 1.0, limit: int = 40) -> None:
        super().__init__(alpha=alpha)
        self.limit = limit

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> _RidgeUpTo:
        if len(X) > self.limit:
            raise ValueError(f"{len(X)} rows is more than this estimator takes ({self.limit})")
        return super().fit(X, y, sample_weight)


def fails_on_many_rows(limit: int = 40) -> Ridge:
    """A user factory (``factories:fails_on_many_rows``)."""
    return _RidgeUpTo(limit=limit)


class RowCountingRidge(Ridge):
    """A Ridge that notes the rows and mean target of every fit in ``fits`` (a class list:
    in-process runs only), so a test can tell validation fits from fits on all rows."""

    fits: ClassVar[list[tuple[int, float]]] = []

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> RowCountingRidge:
        RowCountingRidge.fits.append((len(X), float(np.mean(y))))
        return super().fit(X, y, sample_weight)


class ProbaCountingLogistic(LogisticRegression):
    """A LogisticRegression that notes the rows of every ``predict_proba`` in ``calls`` (a
    class list: in-process runs only), so a test can tell how often scoring asked for them."""

    calls: ClassVar[list[int]] = []

    def predict_proba(self, X: Any) -> Any:
        ProbaCountingLogistic.calls.append(len(X))
        return super().predict_proba(X)


class Float32Ridge(Ridge):
    """A Ridge answering in float32, as some libraries' regressors do (XGBoost's)."""

    def predict(self, X: Any) -> Any:
        return np.asarray(super().predict(X), dtype=np.float32)


class _LevelsUpTo(Ridge):
    """A Ridge that refuses more than ``limit`` rows of a target whose mean is above 10: a
    model of a partition's level that fits its folds but not all its rows, while its model of
    changes (mean near 0) fits both."""

    def __init__(self, alpha: float = 1.0, limit: int = 33) -> None:
        super().__init__(alpha=alpha)
        self.limit = limit

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> _LevelsUpTo:
        if len(X) > self.limit and float(np.mean(y)) > 10:
            raise ValueError(f"{len(X)} rows of levels is more than this takes ({self.limit})")
        return super().fit(X, y, sample_weight)


def levels_fail_on_all_rows(limit: int = 33) -> Ridge:
    """A user factory (``factories:levels_fail_on_all_rows``)."""
    return _LevelsUpTo(limit=limit)


SLOW_FIT_MODULE = """
import itertools, os, time
from sklearn.linear_model import LogisticRegression, Ridge

_fits = itertools.count(1)

class Slow(Ridge):
    def fit(self, X, y, sample_weight=None):
        where = os.environ.get("SLOWFIT_DIR")
        if where and next(_fits) > int(os.environ.get("SLOWFIT_AFTER", "0")):
            # the process to be killed: say so, then never finish
            open(os.path.join(where, "fitting"), "w").close()
            time.sleep(600)
        return super().fit(X, y, sample_weight)

def make(alpha=1.0):
    return Slow(alpha=alpha)
"""
"""A module (``slowfit.py`` on a child's ``PYTHONPATH``, named ``slowfit:make`` in a spec)
whose fits, in a process given ``SLOWFIT_DIR``, past ``SLOWFIT_AFTER`` of them (default 0),
write ``SLOWFIT_DIR/fitting`` and sleep: a kill or a Ctrl-C lands at a point reached
deterministically, once that file exists."""


def slowfit_env(tmp_path: Path) -> dict[str, str]:
    """``SLOW_FIT_MODULE`` written as ``tmp_path/mods/slowfit.py`` (a spec names it
    ``slowfit:make``) and the environment of a command that imports it: ``PYTHONPATH`` with
    that directory first, and no ``SLOWFIT_DIR`` (fits are quick until a process is given one)."""
    import os

    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "slowfit.py").write_text(SLOW_FIT_MODULE)
    path = os.pathsep.join([str(tmp_path / "mods"), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    env.pop("SLOWFIT_DIR", None)
    return env
