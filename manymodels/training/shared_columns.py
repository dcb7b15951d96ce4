"""A partition's column preprocessing fitted once per fold and shape, not once per fit.

A partition with text features fits every built-in candidate as ``Pipeline(ColumnTransformer(
one-hot, scaler or passthrough), estimator)`` (``candidates.build``). Selection fitted that
pipeline for every candidate × grid point × fold: the same one-hot encoder, and the same
scaler for every ``scale = true`` candidate, fitted again on the same rows each time, and the
same validation rows transformed again for each fit's predictions. On an M5-like panel that
was ~90 % of a partition's fitting (``ColumnTransformer.fit_transform`` / ``transform``: pandas
and encoder checks on a few hundred rows), and ``train`` used ~8× the CPU of a pandas hand loop.

Here the ``ColumnTransformer`` of one shape (its parameters and blocks: ``preprocessing_key``)
is fitted once per fold's training rows, the transformed matrix kept, and each candidate's
estimator fitted on a copy of it — what ``Pipeline.fit`` does, in the same order, so the fits
and their predictions are the same bits. A fold fit is a ``Pipeline`` of the shared fitted
transformer (behind ``Remembered``, which transforms each frame it is shown once) and the
fitted estimator. Anything else (a factory's own pipeline, another layout, a pipeline with a
memory) is fitted by its own ``fit`` as before. The model a version stores stays a whole
fitted Pipeline: a top-2 mean's two members of one shape share the refit's transform on all
rows (``in_place``), each keeping its own copy of the fitted transformer. That copy's strings
are the first member's own objects, which pickle writes once: such a mean's artifact is ~200
bytes smaller (another sha256), its every attribute and prediction the same.
"""

from __future__ import annotations

import copy
from typing import Any

from sklearn.base import BaseEstimator

from manymodels.training.splits import take

KEEP_BYTES = 256 * 2**20
"""Transformed training matrices one partition's ``SharedColumns`` keeps (all folds and
shapes together) before a further shape or fold is fitted whole instead, as before sharing.
Selection runs candidate by candidate, so sharing keeps every fold's matrix alive for the
whole partition, where a whole ``Pipeline.fit`` freed each after its fit: one 60,000-row
partition of two 300-level text features, 10 folds, a dense shape peaked at 3.66 GB of
memory against 0.84 GB before sharing (the same CPU); 1.42 GB with this budget, its 3
candidates' scores equal to both. Past the budget the bits are the same (a whole fit is what
sharing reproduces) and the memory is the old path's."""

_REMEMBERED = 4
"""Frames a ``Remembered`` keeps the transform of: a fold's validation rows (``Folds``) are
the one that counts; a few more costs nothing and misses nothing in the order scoring asks."""


class Remembered(BaseEstimator):
    """A fitted ``ColumnTransformer`` whose ``transform`` of the same frame object is done once
    and handed to every fit of the fold (estimators read their input, never write it). An
    estimator for ``Pipeline``'s sake (``get_params``, ``repr``); never fitted again."""

    def __init__(self, fitted: Any = None) -> None:
        self.fitted = fitted
        self._seen: list[tuple[Any, Any]] = []  # (frame, its transform): the frame kept alive

    def fit(self, X: Any, y: Any = None) -> Remembered:
        """Its transformer fitted anew (a clone of a fold fit, refitted): never the shared one
        in selection, which is fitted once before any fit of the fold uses it."""
        self.fitted.fit(X, y)
        self._seen = []
        return self

    def transform(self, X: Any) -> Any:
        for frame, Z in self._seen:
            if frame is X:
                return Z
        Z = self.fitted.transform(X)
        self._seen = [*self._seen[-(_REMEMBERED - 1) :], (X, Z)]
        return Z

    def get_feature_names_out(self, input_features: Any = None) -> Any:
        return self.fitted.get_feature_names_out(input_features)

    def __sklearn_is_fitted__(self) -> bool:
        return True


def parts(model: Any) -> tuple[str, Any, str, Any] | None:
    """``(name, ColumnTransformer, name, estimator)`` of an unfitted two-step pipeline whose
    first step is exactly an unfitted ``ColumnTransformer`` and that ``Pipeline.fit`` would
    fit as transformer then estimator (no memory, no input transform), else ``None``."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if type(model) is not Pipeline or model.memory is not None:
        return None
    if getattr(model, "transform_input", None) is not None or len(model.steps) != 2:
        return None
    (first, pre), (last, estimator) = model.steps
    if type(pre) is not ColumnTransformer or hasattr(pre, "transformers_"):
        return None
    if isinstance(estimator, str) or estimator is None:
        return None
    return first, pre, last, estimator


def preprocessing_key(pre: Any) -> str:
    """What makes two unfitted ``ColumnTransformer``s fit the same: their own parameters and
    each block's name, transformer type and parameters, and columns (spelt in full: scikit-
    learn's ``repr`` elides long lists)."""
    blocks = []
    for name, transformer, columns in pre.transformers:
        if isinstance(transformer, str):
            kind = transformer
        else:
            params = sorted(transformer.get_params(deep=True).items())
            kind = f"{type(transformer).__module__}.{type(transformer).__qualname__}{params!r}"
        listed = list(columns) if isinstance(columns, list | tuple) else columns
        blocks.append(f"{name}|{kind}|{listed!r}")
    own = sorted((k, v) for k, v in pre.get_params(deep=False).items() if k != "transformers")
    return f"{own!r}||" + "||".join(blocks)


class SharedColumns:
    """One partition's fitted preprocessing: by fold and ``preprocessing_key``, the fitted
    transformer and its transform of the fold's training rows."""

    def __init__(self, X: Any, y: Any, keep_bytes: int = KEEP_BYTES) -> None:
        self.X, self.y = X, y
        self._fitted: dict[tuple[int, str], tuple[Remembered, Any]] = {}
        self.fits = 0  # ColumnTransformer fits made here (what the tests count)
        self.keep_bytes = keep_bytes  # the budget of ``kept``
        self.kept = 0  # bytes of the transformed training matrices held in ``_fitted``

    def fit(self, model: Any, fold: int, rows: Any) -> Any:
        """``model`` fitted on ``rows`` (fold ``fold``'s training rows): the shared
        preprocessing where ``parts`` finds it, else ``model.fit`` itself."""
        found = parts(model)
        if found is None:  # the model itself, whatever its ``fit`` returns (a factory's own)
            model.fit(take(self.X, rows), self.y[rows])
            return model
        first, pre, last, estimator = found
        key = (fold, preprocessing_key(pre))
        if key not in self._fitted:
            if self.kept >= self.keep_bytes:  # the budget spent: fitted whole, kept by none
                model.fit(take(self.X, rows), self.y[rows])
                return model
            y = self.y[rows]
            Z = pre.fit_transform(take(self.X, rows), y)  # as Pipeline.fit: y passed on
            self.fits += 1
            self.kept += nbytes(Z)
            self._fitted[key] = (Remembered(pre), Z)
        shared, Z = self._fitted[key]
        estimator.fit(Z.copy(), self.y[rows])
        from sklearn.pipeline import Pipeline

        return Pipeline([(first, shared), (last, estimator)], verbose=model.verbose)

    def in_place(self, model: Any) -> bool:
        """``model`` fitted on all rows in place, its transformer a copy of the one fitted for
        an earlier model of the same shape (the same state: fitted on the same rows), or
        fitted here; ``False`` (nothing done) where ``parts`` finds no shared preprocessing."""
        found = parts(model)
        if found is None:
            return False
        first, pre, _, estimator = found
        key = (-1, preprocessing_key(pre))
        if key in self._fitted:
            shared, Z = self._fitted[key]
            model.steps[0] = (first, copy.deepcopy(shared.fitted))
        else:
            Z = pre.fit_transform(self.X, self.y)
            self.fits += 1
            self._fitted[key] = (Remembered(pre), Z)
        estimator.fit(Z.copy(), self.y)
        return True


def nbytes(Z: Any) -> int:
    """The memory of a transformed matrix: a dense array's buffer, or a sparse matrix's three
    arrays (``ColumnTransformer`` hands on either)."""
    if hasattr(Z, "indptr"):
        return int(Z.data.nbytes + Z.indices.nbytes + Z.indptr.nbytes)
    return int(getattr(Z, "nbytes", 0))
