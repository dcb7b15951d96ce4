"""A registry named but not opened: where ``pipeline.train`` is to open (or make) it once the
data is read and checked, as it opens a registry given as a path.

``train --registry-db sqlite:///x/r.db --artifacts x/art`` opened its registry before the
library read the data, so a data error (a missing target column, an empty table, bad time
values) left x/r.db made, with its tables, before saying so. Given a ``RegistryLocation``
instead, the library opens it at the point a path is opened today (``run_input.read_input``),
and only reads it before then (``run_busy.refuse_before_reading``: nothing made).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the client imports SQLAlchemy: only once a registry is opened
    from manymodels.artifacts import ArtifactStore
    from manymodels.registry.client import Registry
    from manymodels.signing import Signer


@dataclass(frozen=True, repr=False)
class RegistryLocation:
    """``Registry(root, db_url=…, artifacts=…, signer=…)``'s arguments, kept for whoever opens
    it later; ``root`` is not used when both ``db_url`` and ``artifacts`` are named. A
    ``Registry`` made from it is the opener's to close, unlike one given to ``train``.

    ``on_open`` is told of the registry once it is opened for writing (the CLI's ``warning:``
    line for signed versions and no key, judged on that one opening); not on a reader's
    look before the data is read (``open_existing``), which would say it twice.

    Example::

        where = RegistryLocation(db_url="postgresql+psycopg://mm@db/mm", artifacts="s3://b/m")
        mm.train("spec.toml", "rows.csv", registry=where)  # a data error creates nothing
    """

    root: str | Path | None = None
    db_url: str | None = None
    artifacts: str | Path | ArtifactStore | None = None
    signer: Signer | None = None
    on_open: Callable[[Registry], None] | None = field(default=None, compare=False)

    def __repr__(self) -> str:
        # the dataclass's own showed db_url whole, password and all: a repr lands in logs
        # and tracebacks (an argument of train's), so the database is named as Registry's is
        from manymodels.registry.store import describe_url

        db = describe_url(self.db_url) if self.db_url is not None else None
        store = getattr(self.artifacts, "url", self.artifacts)
        return f"RegistryLocation(root={self.root!r}, db={db!r}, artifacts={store!r})"

    def __reduce_ex__(self, protocol: Any) -> Any:
        """Refused, in one line, as ``Registry.__reduce_ex__`` refuses: pickled, a location
        carried its signing key and its database URL's password to wherever pickles go (Ray
        spills them to disk), and nothing sends one to another process (``train`` and the
        scheduler open it in their own). Whoever needs one elsewhere builds it there."""
        from manymodels.registry.store import describe_url

        parts = []  # what it names, the password left out as repr leaves it
        if self.db_url is not None:
            parts.append(f"its database URL ({describe_url(self.db_url)})")
        if self.artifacts is not None:
            parts.append(f"its artifact store ({getattr(self.artifacts, 'url', self.artifacts)})")
        if self.root is not None and (self.db_url is None or self.artifacts is None):
            parts.append(f"its directory ({self.root})")  # not used with both named
        raise TypeError(
            "a RegistryLocation is not pickled (its signing key and database password stay in "
            f"this process): pass {' and '.join(parts)} and make it where it is used"
        )

    def __copy__(self) -> RegistryLocation:
        """A copy (the same fields), as ``copy.copy`` made before ``__reduce_ex__`` refused
        pickling, which ``copy`` goes through otherwise."""
        return replace(self)

    def open(self, signer: Signer | None = None) -> Registry:
        """The registry, made if new (a writer's opening), ``on_open`` told of it; ``signer``
        (the caller's) when the location names none."""
        from manymodels.registry.client import Registry

        key = self.signer if self.signer is not None else signer
        reg = Registry(self.root, db_url=self.db_url, artifacts=self.artifacts, signer=key)
        return self._told(reg)

    def open_if_there(self, signer: Signer | None = None) -> Registry | None:
        """``open``'s registry where one is, ``None`` where none is (nothing made). Opened
        once, as a reader opens it, then refused where this process cannot write it, as
        ``open`` refuses it: an append looked (a reader's opening, closed) and then opened it
        again to write, twice a run (~4 ms SQLite, ~18 ms PostgreSQL, and a listing of the
        artifact store). A registry made after this found none is ``open``'s to make."""
        from manymodels.exceptions import LostDatabase, NoRegistry, StoreNotFound
        from manymodels.registry.client import Registry

        key = self.signer if self.signer is not None else signer
        try:
            reg = Registry(
                self.root, db_url=self.db_url, artifacts=self.artifacts, create=False,
                signer=key,
            )  # fmt: skip
        except (LostDatabase, StoreNotFound):  # something there: never taken for a new place
            raise
        except NoRegistry:
            return None
        reg.require_writer()  # closed if refused
        return self._told(reg)

    def _told(self, reg: Registry) -> Registry:
        """``reg``, a writer's opening, once ``on_open`` was told of it (closed if it raises)."""
        if self.on_open is not None:
            try:
                self.on_open(reg)
            except BaseException:
                reg.close()
                raise
        return reg

    def open_existing(self) -> Registry:
        """A reader's opening (``Registry.open``): ``NoRegistry`` where none is, nothing made."""
        from manymodels.registry.client import Registry

        return Registry(
            self.root, db_url=self.db_url, artifacts=self.artifacts, create=False,
            signer=self.signer,
        )  # fmt: skip


def open_existing(where: str | Path | RegistryLocation) -> Registry:
    """``Registry.open`` of a registry's path or location: ``NoRegistry`` where none is."""
    return _location(where).open_existing()


def open_writer(where: str | Path | RegistryLocation, signer: Signer | None) -> Registry:
    """The registry at a path or location opened for a run, made if new (``signer``: the
    run's, when a location names none)."""
    return _location(where).open(signer)


def _location(where: str | Path | RegistryLocation) -> RegistryLocation:
    """A path is the location of a registry directory: one way to open either."""
    return where if isinstance(where, RegistryLocation) else RegistryLocation(root=where)


def open_writer_if_there(
    where: str | Path | RegistryLocation, signer: Signer | None
) -> Registry | None:
    """``open_writer`` where a registry is, ``None`` (nothing made) where none is: an append
    reads the kept rows before its table is checked, and made a new path or database first,
    so a refused append left an empty registry behind. An append to nothing trains on its new
    rows, and ``open_writer`` makes the registry once they are read and checked. A database
    lost beside its models (``LostDatabase``), or one holding a registry whose artifact store
    is not found (``StoreNotFound``), is said now, never taken for a new place."""
    return _location(where).open_if_there(signer)
