"""Filesystem paths in what the router shows a client that has no admin token.

A run's data source and some error messages name local paths — the file a run trained on, the
registry's artifact directory, the database file. They tell an anonymous client how the server
is laid out, so only requests carrying the admin token see them as they are. Everyone else sees
each path replaced by its **last component** (``/srv/mm/data/sales.csv`` → ``sales.csv``,
``/srv/mm/registry/artifacts`` → ``artifacts``): the file name is what a reader recognises, the
directories are what leaks. Descriptions that are not paths (``<DataFrame>``,
``artifact:<sha256>``) are kept.

Text is searched for absolute paths (``/…``, ``~/…``, ``C:\\…``), relative ones starting with
``./`` or ``../``, URLs (``sqlite:////srv/…/registry.db``), and paths under the directories the
caller names (``roots``: the registry may be opened by a relative path such as ``mmregistry``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from manymodels.registry.client import Registry

_PATH_CHARS = r"""[^\s'"`,;()<>\[\]{}]*"""
_STARTS = r"(?:[A-Za-z][A-Za-z0-9+.-]*://|[A-Za-z]:[\\/]|~?/|\.{1,2}[\\/])"
_GENERIC = re.compile(rf"(?<![\w.~/\\%=-]){_STARTS}{_PATH_CHARS}")
_NOT_A_PATH = re.compile(r"^(?:<.*>|[A-Za-z][A-Za-z0-9+.-]+:(?![/\\]).*)$", re.DOTALL)
_TRAILING = ".:"  # sentence punctuation after a path, not part of it


def last_component(path: str) -> str:
    """``/a/b/c.csv`` → ``c.csv``; Windows separators and trailing separators too."""
    parts = [p for p in re.split(r"[\\/]+", path) if p]
    return parts[-1] if parts else "<redacted>"


def redact_source(source: str) -> str:
    """A run's ``data_source`` for a client without the token: a path becomes its last
    component; ``<DataFrame>``, ``artifact:<sha256>`` and other descriptions stay."""
    if not source or _NOT_A_PATH.match(source):
        return source
    return last_component(source)


def redact_text(text: str, roots: Iterable[str] = ()) -> str:
    """``text`` with every path in it replaced by its last component."""
    known = sorted({r for r in roots if r and r != "."}, key=len, reverse=True)
    patterns = [_GENERIC.pattern]
    if known:
        alternatives = "|".join(re.escape(r) for r in known)
        patterns.insert(0, rf"(?<![\w.~/\\%=-])(?:{alternatives}){_PATH_CHARS}")
    return re.sub("|".join(patterns), _shorten, text)


def _shorten(match: re.Match[str]) -> str:
    found = match.group(0)
    path = found.rstrip(_TRAILING)
    return last_component(path) + found[len(path) :]


def local_roots(registry: Registry | None) -> list[str]:
    """The registry's directories (absolute since it was opened), for ``redact_text``."""
    if registry is None:
        return []
    roots = [registry.root, getattr(registry.artifacts, "root", None)]
    return [str(r) for r in roots if r is not None]
