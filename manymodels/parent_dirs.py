"""The one refusal of an output whose directory is missing, or is a file.

An output (a table, a backup, an exported model, a run's shuffled rows) is written into a
directory that must already exist: a typo'd path is refused, not made with its parents (no
``mkdir -p``; a run made /nonexistent/a/b and left it behind). Four commands said so in four
wordings, one of them "does not exist" of a parent that was a file; ``missing_parent`` is the
one line they all print now, each raising it as its own error type."""

from __future__ import annotations

import os
from pathlib import Path


def missing_parent(
    path: str | os.PathLike[str], parent: str | os.PathLike[str] | None = None
) -> str | None:
    """Why ``path`` cannot be written: its directory (``parent``, by default ``path``'s own)
    does not exist, or is not a directory; ``None`` when it is one.

    >>> missing_parent("/nonexistent/scores.csv")
    '/nonexistent/scores.csv: cannot write there (/nonexistent does not exist)'
    """
    where = Path(path).parent if parent is None else Path(parent)
    if where.is_dir():
        return None
    why = "is not a directory" if where.exists() else "does not exist"
    return f"{path}: cannot write there ({where} {why})"
