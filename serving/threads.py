"""One native thread per prediction in the router, as Ray gives its workers.

A router answers many small requests at once; each prediction that fans out over every core
(OpenMP in scikit-learn's HistGradientBoosting and LightGBM, BLAS in numpy) fights the other
requests and the event loop for them. Measured on 2 busy cores: one 1-row request to a
20-tree HistGradientBoosting model took ~100 ms at the default threads, 2.5 ms at one.

Ray sets ``OMP_NUM_THREADS`` to a worker's CPUs (1 when it has none) unless the user set it;
the router does the same, and a value the user set wins. OpenBLAS and MKL read
``OMP_NUM_THREADS`` when their own variable is unset, so one variable sizes all three, and a
user's ``OPENBLAS_NUM_THREADS`` / ``MKL_NUM_THREADS`` still sizes BLAS. A runtime reads the
variable when it loads: set after, it changes nothing (scikit-learn's libgomp kept 2 threads).
``manymodels serve`` sets it before anything loads numpy or scikit-learn; a pool already loaded
(a host that imported them first) is limited through threadpoolctl as well — only the calling
thread's OpenMP pool then, as ``omp_set_num_threads`` sets the caller's.
"""

from __future__ import annotations

import os

OMP_NUM_THREADS = "OMP_NUM_THREADS"


def limit_native_threads() -> bool:
    """One thread per native pool unless the user sized them (``OMP_NUM_THREADS``); whether
    this call set the limit."""
    if OMP_NUM_THREADS in os.environ:  # the user's choice, as Ray keeps it
        return False
    os.environ[OMP_NUM_THREADS] = "1"  # read by every runtime loaded from now on, and children
    from threadpoolctl import ThreadpoolController

    ThreadpoolController().limit(limits=1)  # the runtimes already loaded read it too late
    return True
