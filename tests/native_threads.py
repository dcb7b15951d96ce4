"""One native thread per pool in the test processes and in every process they start.

The default run is two xdist workers on two cores, and each worker's OpenMP (scikit-learn's
HistGradientBoosting, LightGBM) and BLAS took every core, as did each router, CLI and
interpreter a test starts: a HistGradientBoosting fit outside a backend's limit took 20.7 s at
the default threads under load 7, 1.06 s with ``OMP_NUM_THREADS=1``. The root conftest calls
``limit_native_threads`` before anything loads numpy (this module imports nothing that does),
so the limit is each library's default from its start, and children inherit it.

What the package decides itself stays testable: a variable the user set is kept, and
``host_env`` is the environment without the limits set here, for a test of the package's own
thread choices (``tests/test_execution.py``) in a fresh interpreter.
"""

from __future__ import annotations

import os

NATIVE_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_SET_HERE: list[str] = []


def limit_native_threads() -> None:
    """One thread for each native pool the user's environment does not size already."""
    for name in NATIVE_THREAD_VARS:
        if name not in os.environ:
            os.environ[name] = "1"
            _SET_HERE.append(name)


def host_env() -> dict[str, str]:
    """This process's environment without the limits ``limit_native_threads`` added: a child
    started with it sizes its pools as it would outside the tests."""
    return {k: v for k, v in os.environ.items() if k not in _SET_HERE}
