"""``--json`` output: strict JSON on stdout, with nothing but the standard library.

Apart from ``manymodels.console`` (rich: ~40 ms to import) so that a read-only command asked
for JSON (``manymodels.cli.fastpath``) does not load a table renderer it never uses.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any


def print_json(value: Any) -> None:
    """Strict JSON: NaN and infinities (an improvement over a zero score…) become null."""
    text = json.dumps(finite(value), indent=2, default=_fallback, allow_nan=False)
    sys.stdout.write(text + "\n")


def print_json_line(value: Any) -> None:
    """One JSON object on one line, flushed: a stream of events (``scheduler --json``) that
    a pipe's reader takes line by line as each happens, not when the buffer fills."""
    text = json.dumps(finite(value), default=_fallback, allow_nan=False)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def finite(value: Any) -> Any:
    """``value`` with every non-finite float, however deeply nested, as ``None``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def _fallback(value: Any) -> Any:
    """What json cannot encode by itself: numpy numbers as numbers, the rest as text."""
    import numpy as np

    if isinstance(value, np.generic):
        return finite(value.item())
    if type(value).__name__ == "NAType":  # pandas' missing value of a typed column: null
        return None
    return str(value)
