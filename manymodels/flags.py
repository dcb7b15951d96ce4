"""The yes/no arguments of the public functions, checked before any work.

``probabilities="no"`` (or ``"false"``, read from a config file) was taken as true, as
Python takes any non-empty text: ``mm.score(df, probabilities="no")`` added the probability
columns, ``Registry.open(path, create="no")`` made a registry. Only ``True`` and ``False``
(numpy's too, a comparison's result) are taken; anything else is a ``DataError`` naming the
argument, in one sentence.
"""

from __future__ import annotations

import reprlib
import sys

from manymodels.exceptions import DataError


def require_flags(**flags: object) -> None:
    """``DataError`` for the first of ``flags`` (argument name → value) that is not a bool."""
    for name, value in flags.items():
        if isinstance(value, bool) or _numpy_bool(value):
            continue
        raise DataError(
            f"{name} must be True or False, not {type(value).__name__} {reprlib.repr(value)}"
        )


def _numpy_bool(value: object) -> bool:
    """Whether ``value`` is numpy's boolean, without importing numpy (``manymodels models
    list`` reads a registry without it): a value of numpy's type means numpy is loaded."""
    numpy = sys.modules.get("numpy")
    return numpy is not None and isinstance(value, numpy.bool_)
