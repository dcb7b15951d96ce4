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
from typing import TypeVar

T = TypeVar("T")

_LOADERS: list[Callable[[], object]] = []
_LOCK = threading.Lock()

IMPORTING = threading.RLock()
"""Held while a thread may import model libraries for the first time: a loader's first run
(the warm-up's, or a request's) and an artifact's unpickling (``serialization.loads``).
Python breaks a deadlock between two threads importing a cycle of modules at once by handing
one of them the other's partially initialised module: a router's cold load beside its
warm-up failed "partially initialized module 'manymodels.candidates' has no attribute
'MeanOf'" (CI, ``serve.py --smoke`` on a loaded machine), the model refused. Taking turns
costs a cold load the rest of the import it would have run itself; once a loader has run,
its calls skip the lock, and an unpickle takes it uncontended."""


def deferred(loader: Callable[[], T]) -> Callable[[], T]:
    """``loader`` (no arguments: it imports and returns what its module defers), cached — a
    call after the first is a look-up — and registered for ``load_all``. Its first run
    holds ``IMPORTING``; a call that waited for it there finds its value."""
    slot: list[T] = []  # empty until the loader returns, then its value: an error is not kept

    def call() -> T:
        if not slot:
            with IMPORTING:
                if not slot:
                    slot.append(loader())
        return slot[0]

    with _LOCK:
        _LOADERS.append(call)
    return call


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
