"""What a version's feature schema records of its partition's history that readers ask about
by name: the target transform the model learnt (``feature_schema["history"]["transform"]``).

Kept apart from ``manymodels.targetunits`` (numpy, pandas) so that ``models show``, the run
plan and the monitor can name a version's transform without importing either; most versions
record none, and asking costs a dictionary look-up or two.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def recorded(schema: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The version's recorded target transform, or ``None`` (most versions)."""
    history = schema.get("history")
    transform = history.get("transform") if isinstance(history, Mapping) else None
    return transform if isinstance(transform, Mapping) else None


def recorded_kind(schema: Mapping[str, Any]) -> str:
    """The kind of target transform the version learnt (``scale``, ``difference``; ``none``
    when it records none — ``auto_difference`` is recorded as what it resolved to)."""
    transform = recorded(schema)
    return str(transform.get("kind", "none")) if transform is not None else "none"


def recorded_kind_json(schema_json: str | None) -> str:
    """``recorded_kind`` of a schema still in its JSON text, parsed only when it names a
    transform (the run plan reads one per partition: most need no parse)."""
    if not schema_json or '"transform"' not in schema_json:
        return "none"
    return recorded_kind(json.loads(schema_json))
