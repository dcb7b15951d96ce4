"""``manymodels.deferred``: the registered loaders the router's warm-up runs."""

from __future__ import annotations

from manymodels import deferred


def test_load_all_runs_loaders_that_loading_registered_and_each_once() -> None:
    """A loader's import may bring a module with loaders of its own (``serving.retrain``'s
    brings the pipeline): ``load_all`` runs those too, and a loader already run is a cached
    answer, not a second import."""
    calls: list[str] = []

    @deferred.deferred
    def inner() -> str:
        calls.append("inner")
        return "inner"

    def outer_body() -> str:
        calls.append("outer")

        @deferred.deferred
        def late() -> str:
            calls.append("late")
            return "late"

        return "outer"

    outer = deferred.deferred(outer_body)
    first = deferred.load_all()
    assert calls.count("inner") == 1 and calls.count("outer") == 1 and calls.count("late") == 1
    assert deferred.load_all() == first  # nothing new: every loader cached, none run again
    assert (inner(), outer()) == ("inner", "outer") and len(calls) == 3


def test_an_unpickle_waits_for_a_loader_importing_on_another_thread() -> None:
    """Two threads importing a cycle of modules at once get each other's half-made module
    (Python's way out of the deadlock): a router's cold load beside its warm-up failed
    "partially initialized module 'manymodels.candidates' has no attribute 'MeanOf'". A
    loader's first run and an unpickle take turns: the unpickle below starts while the
    loader runs on another thread, and ends only after it."""
    import pickle
    import threading

    from manymodels.serialization import loads

    events: list[str] = []
    running, release = threading.Event(), threading.Event()

    @deferred.deferred
    def importing() -> str:
        running.set()
        release.wait(10)
        events.append("loader done")
        return "loaded"

    warm = threading.Thread(target=importing)
    warm.start()
    assert running.wait(10)
    unpickled = threading.Thread(
        target=lambda: events.append(f"unpickled {loads(pickle.dumps([1, 2]))}")
    )
    unpickled.start()
    unpickled.join(0.5)
    assert unpickled.is_alive() and events == []  # waiting for the loader, not beside it
    release.set()
    warm.join(10)
    unpickled.join(10)
    assert events == ["loader done", "unpickled [1, 2]"]
    # once run, a loader is a look-up that takes no turn: called while another thread holds
    # the lock, it answers at once
    with deferred.IMPORTING:
        answered: list[str] = []
        caller = threading.Thread(target=lambda: answered.append(importing()))
        caller.start()
        caller.join(10)
        assert answered == ["loaded"]
