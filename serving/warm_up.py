"""The model libraries, imported in the background once the router is ready.

A router's start does not import scikit-learn and SciPy (~2 s of CPU), so ``/readyz`` turns
200 sooner: the modules that need them at a model's load or a retrain keep those imports in
functions registered with ``manymodels.deferred`` (``grep -rn '@deferred'`` lists them; no
list is kept here, as one kept by hand drifted). Left at that, the first request that loads a model
or retrains would pay the import inside the request (a p99 blip per replica), and the ~65,000
objects the import makes, created after the lifespan's ``gc.freeze()``, would be walked by
every full collection again (benchmarks/README.md §2's goal: no full collection over 20 ms
under cold load). ``WarmUp`` runs every registered function (``deferred.load_all``: the same
functions the requests call, so an import added to one is warmed with no list to update; a
hand-kept list of module names drifted) on a daemon thread right after the start, then
collects and freezes once more; a request arriving meanwhile waits on Python's import lock
for the same modules, no worse than without it. The freeze also takes what requests in flight
hold at that moment: reference counting still frees them; only a cycle among them
waits for the shutdown's ``gc.unfreeze()`` (once per start).
"""

from __future__ import annotations

import gc
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable

from manymodels import deferred
from manymodels.serialization import warm_skops

logger = logging.getLogger("manymodels.serving")


class WarmUp:
    """Runs the deferred imports (``deferred.load_all``) on a daemon thread, then freezes
    what they made.

    ``stop`` (the lifespan's shutdown, before its ``gc.unfreeze()``) keeps a warm-up still
    importing from freezing afterwards: an app embedded in a longer process (tests) gets its
    objects back. It never waits for the import: an import cannot be interrupted, and the
    thread is a daemon, so a shutdown or the process's exit does not hang on it.

    ``formats`` reads the registry's trusted formats: when they are skops alone (and skops is
    installed) ``skops.io`` is imported too (``serialization.warm_skops``, which says why not
    for a registry that trusts pickles as well). It is not a ``@deferred`` loader: most
    routers serve no skops artifact and would pay its ~23,000 objects for nothing. The policy
    is read here, on the thread, not by the lifespan before ``/readyz``: the start does not
    pay a registry read for the warm-up, and a policy that cannot be read (written by a newer
    manymodels, a database gone) is this thread's logged failure, as a broken skops is, not a
    failed start. One read, no scan of the partitions; a policy narrowed to skops later leaves
    the import to the first skops load, as before."""

    def __init__(self, formats: Callable[[], Iterable[str]] | None = None) -> None:
        self._formats = formats
        self._lock = threading.Lock()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="manymodels-warm-up", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True

    def _run(self) -> None:
        started = time.perf_counter()
        try:
            deferred.load_all()  # the cached results too, built before a request needs them
        except Exception:  # a broken install: the first load or retrain reports it, as before
            logger.exception("warming the model libraries failed")
            return
        if self._stopped:  # shut down meanwhile: the registry the policy is read from closed
            return
        # apart: an unreadable policy or a broken skops install (an optional extra) must not
        # cost the freeze of what load_all imported (~65,000 objects walked by every full
        # collection again)
        skops, skops_error = False, None
        try:
            skops = self._formats is not None and warm_skops(self._formats())
        except Exception as e:  # the first skops load (or the refresher's read) reports it
            if self._stopped:  # the router stopped while it read: its registry closed under
                return  # the read, a stop's doing and no failure to log at ERROR
            logger.exception("warming skops.io failed")
            skops_error = type(e).__name__
        with self._lock:
            if self._stopped:
                return
            gc.collect()  # once: these modules' objects are tracked, not yet frozen
            gc.freeze()
        event: dict[str, object] = {
            "event": "model libraries warmed",
            "seconds": round(time.perf_counter() - started, 3),
            "skops": skops,  # whether skops.io was imported
        }
        if skops_error is not None:
            event["skops_error"] = skops_error  # it was tried and failed (the traceback above)
        logger.info(json.dumps(event))
