"""The plain batch of ``POST /v1/predict``, answered without ``batch.plan`` / ``batch.score``:
every key in production, every model in memory, one numeric layout, nothing added to the
answers. Its JSON text is written straight from the predictions.

Over 100 partitions the careful path cost ~20 µs of Python per partition beside one row of
arithmetic (resolve, cache lookup, per-model checks of the schema, an answer dict, labels,
target units); this one asks the alias table and the cache for all keys at once, reads one
attribute each model decided at load (``ServedModel.plain``: its layout, packed coefficients
and answer head), and joins the answers' text in one call. Same arithmetic, so the same bits
and the same bytes as ``batch.encode`` writes (tests/serving/test_batch.py compares them);
anything else — a fallback, a NaN, a model not in memory, probabilities, labels, intervals —
goes the careful way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import chain, compress, repeat
from operator import attrgetter, is_, not_
from typing import TYPE_CHECKING, Any

import numpy as np

from manymodels.partition import FALLBACK_KEY
from serving.answer_text import floats_text, one_model_text, predictions_text
from serving.batch import Pair, Row
from serving.row_matrix import affine_rows, numeric_matrix, stacked
from serving.served import ServedModel, can_score
from serving.shared_models import predicted_together

if TYPE_CHECKING:
    from serving.service import ModelService


def plain_text(
    service: ModelService, rows: Sequence[Row], groups: dict[str, list[int]]
) -> str | None:
    """The answer's JSON text (as ``encode`` writes it) when the batch is the plain case —
    every key in production, every model in memory and ``plain`` with one layout, every cell
    a finite number, every answer a finite float — else ``None`` (nothing counted): ``plan``
    and ``score`` answer then.

    Per partition this costs a lookup in the alias table and the cache and one attribute of the
    model (``plain``: its layout; a linear one's packed coefficients; its answers' text before
    the prediction). The arithmetic is
    ``score``'s: the rows of linear models stacked in one product when there are several
    (``affine_rows``, the bits of a one-row request to each key), those of partitions on one
    global LightGBM in one call (``shared_models``), every other model's rows by its own
    ``predict``; no answer dicts, and no labels or target units to add."""
    if FALLBACK_KEY in groups:
        return None
    found_pairs = service.aliases.pairs_many(groups)
    if None in found_pairs:  # a fallback, or a key as a number training wrote otherwise
        return None
    pairs: list[Pair] = found_pairs  # type: ignore[assignment]
    models = service.cache.peek_many(pairs)
    n_held = len(models) - sum(map(is_, models, repeat(None)))  # no dataclass __eq__
    if n_held < len(models):  # coefficients count where a load would run inline (``cached``)
        if not service.inline_loads:
            return None
        slim = service.coefficients.peek_many(
            [p for p, m in zip(pairs, models, strict=True) if m is None]
        )
        it = iter(slim)
        models = [m if m is not None else next(it) for m in models]
        if any(m is None for m in slim):
            return None
    plains = list(map(_PLAIN, models))
    if not all(plains):  # a model that is not plain
        return None
    layouts, stack_rows, heads = zip(*plains, strict=True)  # transposed in C
    layout = layouts[0]  # interned by ``plain_of``: ``count`` finds it by identity first
    if layouts.count(layout) != len(layouts):
        return None
    X = numeric_matrix(layout[0], rows)
    if X is None or not np.isfinite(X).all():
        return None
    rows_of = list(groups.values())
    # each row's model, where rows share models: a row per model needs none (row i's is i)
    codes = _row_models(rows_of, len(rows)) if 1 < len(models) < len(rows) else None
    try:
        y = _plain_predictions(X, models, codes, rows_of, stack_rows)  # type: ignore[arg-type]
    except (ValueError, TypeError):  # a model refusing the rows (a float32 one, 1e39): the
        return None  # general path says why, naming the partition (a 422, never a 500)
    if y is None or not np.isfinite(y).all():  # the general path refuses the rows (a 422)
        return None
    service.cache.add_hits(n_held)
    if n_held < len(models):
        service.coefficients.add_hits(len(models) - n_held)
    if service.sampler is not None:
        service.sampler.offer_groups(rows, pairs, groups)
    service.count(len(rows), 0, 0)
    floats = floats_text(y.tolist())
    if len(models) == 1:
        return one_model_text(heads[0], floats)
    # row i's head: groups are in first-seen order
    starts = heads if codes is None else list(map(heads.__getitem__, codes.tolist()))
    return predictions_text(starts, floats)


def _row_models(rows_of: list[list[int]], n: int) -> np.ndarray:
    """Each of ``n`` rows' model: the position of its group, from the groups' row indexes
    (asked only where some model has several rows: a row per group needs no codes)."""
    codes = np.empty(n, dtype=np.intp)
    sizes = list(map(len, rows_of))
    codes[list(chain.from_iterable(rows_of))] = np.repeat(np.arange(len(rows_of)), sizes)
    return codes


def _plain_predictions(
    X: np.ndarray,
    models: list[ServedModel],
    codes: np.ndarray | None,
    rows_of: list[list[int]],
    rows: Sequence[bytes | None],
) -> np.ndarray | None:
    """Each row's prediction by its model (``codes``: each row's, ``None`` for one model or a
    model per row), as ``_predict_all`` computes it; ``None`` if a model answers anything but
    one float per row. ``rows`` are the models' packed rows (``None`` for one that does not
    stack)."""
    if len(models) == 1:
        if not can_score(models[0], X):
            return None
        return _floats(models[0].predict(X), len(X))
    if all(rows):  # every model linear (a packed row is never empty): one stacked product
        packed = stacked(rows)  # type: ignore[arg-type]  # none is None
        return affine_rows(X, packed if codes is None else packed[codes])
    if codes is None:  # a model per row, in row order
        codes = np.arange(len(X))
    linear = [r is not None for r in rows]
    n_linear = sum(linear)
    y = np.empty(len(X))
    others: Iterable[int] = range(len(models))
    if n_linear > 1:  # as ``_predict_all``: one linear model alone goes through its predict
        packed = stacked([r for r in rows if r is not None])
        where = np.cumsum(linear) - 1  # a linear model's row in ``packed``
        sel = np.flatnonzero(np.array(linear)[codes])
        y[sel] = affine_rows(X[sel], packed[where[codes[sel]]])
        others = compress(range(len(models)), map(not_, linear))
    others = _shared_predictions(X, models, rows_of, list(others), y)
    for m in others:
        model, idx = models[m], rows_of[m]
        Xm = X[idx]
        if not can_score(model, Xm):  # coefficients that refuse these rows: ``score`` loads
            return None
        got = _floats(model.predict(Xm), len(idx))
        if got is None:
            return None
        y[idx] = got
    return y


def _shared_predictions(
    X: np.ndarray,
    models: list[ServedModel],
    rows_of: list[list[int]],
    others: list[int],
    y: np.ndarray,
) -> list[int]:
    """``y`` of the rows of ``others`` on one global model, a call per model for all their
    rows (``shared_models``; not a classifier's labels, which are not this path's floats);
    returns the models left to their own ``predict``."""
    done: set[int] = set()
    mine = [rows_of[m] for m in others]
    groups = predicted_together([models[m] for m in others], X, mine, classifiers=False)
    for group, got in groups:
        if _floats(got, len(got)) is not None:
            y[np.concatenate([np.asarray(mine[i], dtype=np.intp) for i in group])] = got
            done.update(others[i] for i in group)
    return [m for m in others if m not in done]


def _floats(values: Any, n: int) -> np.ndarray | None:
    """``values`` if they are ``n`` floats in a 1-d array (what ``encode`` writes as is)."""
    ok = type(values) is np.ndarray and values.dtype.kind == "f" and values.shape == (n,)
    return values if ok else None


_PLAIN = attrgetter("plain")
