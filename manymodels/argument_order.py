"""Arguments given in the wrong order, said in one sentence naming which is which.

``score("./mmregistry", frame)`` read the registry directory as a Parquet dataset and
failed on its first model artifact ("Could not read schema from …/artifacts/15/5e/…. Is this
a 'parquet' file?"), which says nothing of the swap; ``train(frame, "spec.toml")`` quoted
the whole frame in a multi-line message. Both are the first thing a notebook user types
wrong, so the argument's role is checked before anything is read.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from manymodels.exceptions import DataError

REGISTRY_DB = "registry.db"  # manymodels.registry.location.DB_FILE (not imported: SQLAlchemy)


def is_registry_dir(source: object) -> bool:
    """Whether ``source`` is the path of a registry directory (it holds its SQLite file)."""
    if not isinstance(source, str | os.PathLike):
        return False
    try:
        # "~/mmregistry": read_table and Registry.open expand it, so must this check
        return (Path(source).expanduser() / REGISTRY_DB).is_file()
    except (OSError, ValueError):  # a name too long, a NUL byte: no registry, surely
        return False


def refuse_registry_as_data(source: object) -> None:
    """``DataError`` (a ValueError) when the data given is a registry directory."""
    if is_registry_dir(source):
        raise DataError(
            f"{source} is a manymodels registry, not a table of data: the data (a DataFrame, "
            "CSV or Parquet path) comes first and the registry after it, as in "
            "score(frame, './mmregistry') and train(spec, frame, registry='./mmregistry')"
        )


def swapped_hint(source: object) -> str:
    """The words that tell a caller which argument a value given as the data belongs to: a
    ``Registry`` object (``score(reg, frame)``) is the registry argument."""
    if type(source).__name__ == "Registry" and hasattr(source, "load_model"):
        return " (a Registry is the argument after the data: score(frame, registry))"
    return ""


def index_hint(missing: Sequence[str], df: pd.DataFrame) -> str:
    """For a "missing column(s)" error: the missing columns a frame holds as its index
    (``df.set_index(["store", "brand"])``, a ``groupby(...).agg(...)`` result), which the
    message's "table has:" list does not show, so the error read as if the data lacked them."""
    levels = {str(n) for n in df.index.names if n is not None}
    held = [m for m in missing if m in levels]
    if not held:
        return ""
    verb = "is" if len(held) == 1 else "are"
    names = ", ".join(map(repr, held))
    return f"; {names} {verb} the frame's index: df.reset_index() makes columns of it"
