"""A candidate's ``params`` as a grid of plain values: what a spec records and hashes.

A spec built in Python holds what scikit-learn users write for grids: numpy numbers
(``list(np.arange(2, 5))``) and arrays (``np.logspace(-2, 2, 5)``). They passed validation,
and the spec's hash (its JSON form) then failed inside ``train``, after the registry was
made. Here numpy numbers become Python's, a 1-D array is a list of values (as a grid of
scikit-learn's ``GridSearchCV`` takes one), and a value the spec cannot record is refused
while the spec is validated. A tuple stays one value (``hidden_layer_sizes = (100,)``).
"""

from __future__ import annotations

import sys
from typing import Any

from pydantic_core import PydanticSerializationError, to_jsonable_python


def plain_grid(params: dict[str, Any]) -> dict[str, list[Any]]:
    """Each parameter's list of values (a scalar is a grid of one), as plain values;
    ``ValueError`` naming ``params.<name>`` for an empty grid, an array of more than one
    dimension, or a value with no JSON form."""
    return {name: _values(name, value) for name, value in params.items()}


def _values(name: str, value: Any) -> list[Any]:
    np = sys.modules.get("numpy")  # none of its values without it: not imported for a spec
    if np is not None and isinstance(value, np.ndarray):
        if value.ndim > 1:
            raise ValueError(
                f"params.{name} is a {value.ndim}-D array; give a list (or 1-D array) of values"
            )
        value = value.tolist() if value.ndim == 1 else value.item()
    values = value if isinstance(value, list) else [value]
    if not values:
        raise ValueError(f"params.{name} is an empty list; give at least one value")
    out = [_plain(v) for v in values]
    for v in out:
        try:
            to_jsonable_python(v)
        except PydanticSerializationError:
            raise ValueError(
                f"params.{name}: a value of type {type(v).__name__} cannot be recorded in a "
                "spec (give numbers, text, booleans, None, lists or tables of them)"
            ) from None
    return out


def _plain(value: Any) -> Any:
    """``value`` with numpy numbers and arrays in it made Python's (an array inside a grid
    is one value: a list)."""
    np = sys.modules.get("numpy")
    if np is None:
        return value
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()  # a numpy number's tolist() is the Python number
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
