"""Taking back the SQLite database a writer made and then refused to use.

``train --registry-db sqlite:///new.db`` makes ``new.db`` (its tables, the registry's id) when
it opens it, once the data is read and checked; a refusal after that — an artifact store it
cannot mark as this registry's (a path under a file, a read-only mount), a read-only store
refused by the writer's opening — left ``new.db`` behind with its tables and no run, and
the next command took it for a registry. What the opening made (``SqlStore.made``: a file that
was not there, whose tables this opening made) is removed again, with the directories made for
it, only while it records nothing (no run, version or job) and no other connection has it open
(SQLite removes its ``-wal`` and ``-shm`` files when the last one closes): a database that
existed before the command, or that another process has started to use, is never removed.
A file the opening created but refused before making its tables (``SqlStore``'s
``before_create``: the store's bucket missing) is removed by the opening itself
(``remove_unused_file``), on the same terms.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from manymodels.registry.store import SqlStore

SIDECARS = ("-wal", "-shm", "-journal")  # present while a connection has the file open


def take_back(store: SqlStore, made_root: Path | None = None) -> None:
    """Close ``store``; remove the SQLite file its opening made if it still records nothing,
    then the directories made for it (``made_root``: the registry directory's first one made,
    ``locate``'s) where they are empty. Anything it cannot tell or remove stays: a refusal
    must still say its own error, not this one's."""
    made = store.made
    try:
        untouched = made is not None and not store.records_anything()
    except Exception:  # unreadable now: not known to be unused, so it stays
        untouched = False
    store.close()
    if made is None or not untouched:
        return
    path = str(made.file)
    if any(os.path.lexists(path + end) for end in SIDECARS):  # another connection is open
        return
    try:
        os.unlink(path)
    except OSError:
        return
    if made.directories is not None:
        remove_empty(*made.directories)
    if made_root is not None and made.file.parent.is_relative_to(made_root):
        remove_empty(made.file.parent, made_root)


def remove_empty(directory: Path, first: Path) -> None:
    """Remove ``directory`` and its parents up to ``first`` (the first one made), each only if
    empty: a directory something else was put in meanwhile stays, and so do its parents."""
    with contextlib.suppress(OSError):
        for made in [directory, *directory.parents]:
            made.rmdir()
            if made == first:
                break


def holds_no_tables(engine: Engine) -> bool:
    """Whether the database holds no table; ``False`` when that cannot be read (kept)."""
    from sqlalchemy import inspect

    try:
        return not inspect(engine).get_table_names()
    except Exception:
        return False


def remove_unused_file(path: str) -> None:
    """Remove the SQLite file an opening created and refused before making its tables,
    unless another connection has it open (its ``-wal`` / ``-shm`` are there: another
    process may be making a registry in it). Called once the opening's engine is closed."""
    if any(os.path.lexists(path + end) for end in SIDECARS):
        return
    with contextlib.suppress(OSError):
        os.unlink(path)
