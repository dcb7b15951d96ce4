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
