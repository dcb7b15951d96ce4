"""Imports a module defers to its first use, each kept in one registered function.

A router's start leaves scikit-learn and SciPy out (~2 s of CPU before ``/readyz``): the
modules that need them at a model's load or a retrain import them inside a function. The
router's warm-up (``serving.warm_up``) imports them on a thread once the router is ready, and
it must import exactly what those functions would. A hand-kept list of module names beside
them drifted silently (a new deferred import was missed until someone noticed a p99 blip), so
each deferring module puts its deferred imports in one function decorated ``@deferred``,
which its code calls for the objects it needs and the warm-up calls through ``load_all``: the
one place that imports them is the one the warm-up runs. tests/serving/test_warm_up.py fails
on a function-level import of scikit-learn or SciPy that bypasses this.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cache
from typing import TypeVar

T = TypeVar("T")

_LOADERS: list[Callable[[], object]] = []
_LOCK = threading.Lock()


def deferred(loader: Callable[[], T]) -> Callable[[], T]:
    """``loader`` (no arguments: it imports and returns what its module defers), cached — a
    call after the first is a look-up — and registered for ``load_all``."""
    cached = cache(loader)
    with _LOCK:
        _LOADERS.append(cached)
    return cached


def load_all() -> int:
    """Runs every registered loader, and those the loaders' own imports register, until no
    new one appears; the number run. A loader that raises stops it (a broken install: the
    caller reports it)."""
    done = 0
    while True:
        with _LOCK:
            if done == len(_LOADERS):
                return done
            loader = _LOADERS[done]
        loader()
        done += 1
