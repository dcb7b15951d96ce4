"""A partition's fit warnings are kept with its version, and no other thread's: training in a
thread of a host's service recorded the host's own warnings as the models' and hid them from
it, and two trains in two threads left the process's warnings going to a finished list."""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

from factories import linear_frame, spec_dict

from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.warning_capture import captured


def test_a_capture_keeps_its_threads_warnings_and_passes_the_others_on() -> None:
    inside, go_on = threading.Event(), threading.Event()
    kept: list[str] = []

    def trainer() -> None:
        with captured() as caught:
            warnings.warn("the fit's own", UserWarning, stacklevel=1)
            inside.set()
            go_on.wait(10)
            warnings.warn("the fit's own", UserWarning, stacklevel=1)  # repeated: recorded again
        kept.extend(str(w.message) for w in caught)

    with warnings.catch_warnings(record=True) as host:
        warnings.simplefilter("always")
        t = threading.Thread(target=trainer)
        t.start()
        assert inside.wait(10)
        warnings.warn("the host's", UserWarning, stacklevel=1)
        go_on.set()
        t.join(10)
    assert kept == ["the fit's own", "the fit's own"]
    assert [str(w.message) for w in host] == ["the host's"]


def test_overlapping_captures_in_two_threads_leave_the_process_as_it_was() -> None:
    before_shown, before_filters = warnings.showwarning, list(warnings.filters)
    steps = [threading.Event() for _ in range(3)]

    def first() -> None:  # enters first, leaves first
        with captured():
            steps[0].set()
            steps[1].wait(10)
        steps[2].set()

    def second() -> None:  # enters second, leaves last
        steps[0].wait(10)
        with captured():
            steps[1].set()
            steps[2].wait(10)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert warnings.showwarning is before_shown
    assert list(warnings.filters) == before_filters


def test_a_train_in_a_thread_records_none_of_the_hosts_warnings(tmp_path: Path) -> None:
    registry = tmp_path / "reg"
    t = threading.Thread(
        target=train,
        args=(spec_dict(), linear_frame(n_partitions=6)),
        kwargs={"registry": registry, "backend": "local"},
    )
    with warnings.catch_warnings(record=True) as host:
        warnings.simplefilter("always")
        t.start()
        n = 0
        while t.is_alive():
            warnings.warn(f"host warning {n}", UserWarning, stacklevel=1)
            n += 1
            t.join(0.005)
    reg = Registry.open(registry)
    stored = [
        w
        for p in reg.list_partitions(limit=100)
        for w in reg.get_version(p.key).warnings
        if "host warning" in w
    ]
    assert n > 0 and stored == []
    assert sum("host warning" in str(w.message) for w in host) == n


def test_a_dispatcher_put_back_by_anothers_restore_never_calls_itself() -> None:
    """Another thread's ``catch_warnings()`` (scikit-learn's ``check_array`` on every predict)
    saved the dispatcher during a capture and put it back after it ended; the next capture
    took it for the host's ``showwarning``, and every other thread's warning then raised
    RecursionError. Our ``always`` entry goes with the last capture, a host's stays."""
    in_capture, host_in, capture_done = threading.Event(), threading.Event(), threading.Event()

    def trainer() -> None:
        with captured():
            in_capture.set()
            host_in.wait(10)
        capture_done.set()

    with warnings.catch_warnings(record=True) as host:
        warnings.simplefilter("always")  # the host's own entry, equal to a plain "always"
        t = threading.Thread(target=trainer)
        t.start()
        assert in_capture.wait(10)
        with warnings.catch_warnings():  # spans the capture's end, then restores its state
            host_in.set()
            assert capture_done.wait(10)
        t.join(10)
        go_on = threading.Event()
        second = threading.Thread(target=lambda: _capture_until(go_on))
        second.start()
        warnings.warn("the host's, while another capture runs", UserWarning, stacklevel=1)
        go_on.set()
        second.join(10)
        assert [str(w.message) for w in host] == ["the host's, while another capture runs"]
        assert warnings.filters[0][0] == "always"  # the host's entry outlived every capture
        assert not any(f[1] is not None for f in warnings.filters if f[0] == "always")


def _capture_until(done: threading.Event) -> None:
    with captured():
        done.wait(10)
