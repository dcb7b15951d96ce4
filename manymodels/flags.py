"""The yes/no arguments of the public functions (and the few others a wrong type of failed
far inside), checked before any work.

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


def require_callable(name: str, value: object, takes: str) -> None:
    """``DataError`` unless ``value`` is ``None`` or can be called: ``train(progress=True)``
    recorded a run and failed it with "TypeError: 'bool' object is not callable"."""
    if value is not None and not callable(value):
        raise DataError(
            f"{name} must be a function called with {takes}, or None, not "
            f"{type(value).__name__} {reprlib.repr(value)}"
        )


def require_mapping(name: str, value: object) -> None:
    """``DataError`` unless ``value`` is ``None`` or a mapping (``notes=["a"]`` was
    "AttributeError: 'list' object has no attribute 'get'")."""
    from collections.abc import Mapping

    if value is not None and not isinstance(value, Mapping):
        raise DataError(
            f"{name} must be a dict, or None, not {type(value).__name__} {reprlib.repr(value)}"
        )
