"""Which model answers for a requested key: the alias table, the key columns, a key given as
text put in canonical form.

Resolution: a canonical key that production points at is served by that version; anything
else (a partition trained after the last refresh excepted) — an unknown key, text that is not
``col=value`` at all, ``../../etc`` (of a registry keyed by one column, a served
partition's value alone excepted) — is served by the ``__fallback__`` model if the registry has
one, and is a 404 otherwise. An explicit ``version`` or ``alias`` never falls back, and neither
does a request that refuses the fallback (``?fallback=false``): a misspelt key is then a 404
instead of a plausible answer from the fallback model. A key whose columns are no served
spec's (``stor=2,brand=x``), or that names one twice (``store=2,brand=x,store=3``), is never
the fallback's: a 422 names its columns and the specs' (``refuse_other_columns``).

Memory only on the request path (a dict lookup), except an explicit non-production alias,
which reads the registry. ``ModelService`` (``serving.service``) is a ``Resolver`` that also
loads, caches and scores models.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from manymodels.exceptions import (
    AmbiguousKey,
    DataError,
    InvalidRows,
    PartitionNotFound,
    RegistryError,
    retirement,
)
from manymodels.key_forms import is_bare_text
from manymodels.key_lookup import absent
from manymodels.partition import FALLBACK_KEY, decode_key, normalize_key
from manymodels.registry.client import Registry
from manymodels.trained_keys import as_trained
from serving.aliases import AliasTable
from serving.errors import REFUSED
from serving.key_mistakes import (
    column_named_twice,
    encoded_key,
    encoded_whole,
    has_stray_comma,
    other_columns,
    repeated_column,
    stray_comma,
)
from serving.key_shapes import (
    dangling,
    dangling_part,
    key_problem,
    not_utf8,
    undecodable,
)

MAX_KEY_LENGTH = 512  # the registry's key column; anything longer cannot be a partition
PRODUCTION = "production"


@dataclass(frozen=True)
class Target:
    """Which model answers for a requested partition."""

    partition: str  # what was asked for: the canonical key, or the text as given
    key: str  # the registry key whose model answers (``__fallback__`` when falling back)
    version: int
    fallback: bool
    from_alias: bool = False  # read from the in-memory alias table, which may lag the registry


_served: ContextVar[list[str] | None] = ContextVar("manymodels_served", default=None)


@contextmanager
def served_partitions() -> Iterator[list[str]]:
    """The partitions whose own model (not the fallback) a request resolved to while inside,
    in a list filled as it runs: what a Ray Serve replica reports as loaded
    (``serving.ray_serve.ReplicaTag``), so a request that was refused (401, 404) or answered
    by the fallback does not take a place in the replica's multiplexed set. A list, not a
    set of values: the request's tasks and threads see the same one through copies of the
    context."""
    noted: list[str] = []
    token = _served.set(noted)
    try:
        yield noted
    finally:
        _served.reset(token)


def _noted(target: Target) -> Target:
    if not target.fallback:
        noted = _served.get()
        if noted is not None:
            noted.append(target.key)
    return target


class Resolver:
    """Requested keys → ``Target``s, from the in-memory ``production`` alias table."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.aliases = AliasTable(registry.store, PRODUCTION)
        self._partition_by: list[str] | None = None
        # the key columns of each spec with a partition in production (a set → its order),
        # read again only when the alias table has met new ones (``AliasTable.shapes``)
        self._column_sets: dict[frozenset[str], tuple[str, ...]] = {}
        self._shapes_seen = -1

    def partition_by(self) -> list[str] | None:
        """The key columns, from any key in the table (or the fallback's schema)."""
        if self._partition_by is None:
            for key in self.aliases.partitions():
                if key != FALLBACK_KEY:
                    self._partition_by = list(decode_key(key))
                    break
            else:
                version = self.aliases.get(FALLBACK_KEY)
                if version is not None:
                    record = self.registry.store.get_version(FALLBACK_KEY, version)
                    self._partition_by = list(record.schema.partition_by)
        return self._partition_by or None

    def key_columns(self) -> dict[frozenset[str], tuple[str, ...]]:
        """Each set of key columns a served key has (the fallback's schema's when no key is in
        production): one per spec, so a handful; rebuilt only when a refresh brought a key of
        new columns, otherwise one ``len`` of a small dict."""
        shapes = self.aliases.shapes
        if len(shapes) != self._shapes_seen:
            seen = len(shapes)
            found = {}
            for key in list(shapes.values()):
                columns = tuple(decode_key(key))
                found[frozenset(columns)] = columns
            if not found and (fallback := self.partition_by()):
                found[frozenset(fallback)] = tuple(fallback)
            self._column_sets, self._shapes_seen = found, seen if found else -1
        return self._column_sets

    def refuse_other_columns(self, text: str) -> None:
        """A 422 (``InvalidRows`` at the path's key) for a key whose columns are no spec's:
        ``stor=2,brand=x`` (a misspelt column) or ``store=2`` (a registry keyed by store and
        brand) was answered by the fallback model, a 200 that hid the client's mistake; so was
        ``store=2,brand=x,store=3`` (which store?), and ``store=2,brand=tropicana,`` (a stray
        ',': the fallback's answer for a partition the registry serves), as was a key
        percent-encoded whole (``store%3D2%2Cbrand%3Dx``, ``quote(key, safe="")``). A key of a
        spec's
        columns without a partition is still the fallback's; text that is no ``col=value`` key
        at all too. So were a part with no '=' or no column name (``store=2,brand``, ``=2``)
        and escapes that are no UTF-8 (``%FF``, read as U+FFFD). One decode and one set
        lookup."""
        if (misshapen := self.misshapen(text)) is not None:
            raise misshapen
        try:
            named = tuple(decode_key(text))
        except DataError:
            return
        known = self.key_columns()
        if not known or frozenset(named) in known:
            return
        raise InvalidRows([other_columns(text, named, list(known.values()))])

    def misshapen(self, text: str) -> InvalidRows | None:
        """The 422 of a key that is ``col=value,…`` but for its shape (escapes that are no
        UTF-8, a column named twice, a stray ',', a key percent-encoded whole, a part with no
        '=' or no column name), or ``None``. A part with an empty value (``brand=``) is a
        key: training writes a partition so for an empty text value (NaN is refused)."""
        if (escapes := undecodable(text)) is not None:
            return InvalidRows([not_utf8(text, escapes)])
        try:
            decode_key(text)
        except DataError:
            if (twice := column_named_twice(text)) is not None and (known := self.key_columns()):
                return InvalidRows([repeated_column(text, twice, list(known.values()))])
            if has_stray_comma(text) and (known := self.key_columns()):
                return InvalidRows([stray_comma(text, list(known.values()))])
            if (whole := encoded_key(text, self.key_columns())) is not None:
                return InvalidRows([encoded_whole(text, whole)])
            if (part := dangling_part(text)) is not None and (known := self.key_columns()):
                return InvalidRows([dangling(text, part, list(known.values()))])
        return None

    def missing(self, text: str, key: str | None, where: str, why: str = "") -> PartitionNotFound:
        """The 404 of ``text`` (canonical: ``key``), saying which it is: a key of other
        columns than the registry's, or of its columns with no version ``where``. A key
        misshapen is a 422 instead, on every route (``serving.errors``: ``misshapen``)."""
        detail = ""
        if len(text) <= MAX_KEY_LENGTH:  # the spec's columns the key names, else the first's
            order = self._spec_order(text)
            detail = absent(text, list(order) if order is not None else self.partition_by())
        return PartitionNotFound(f"no partition '{key or text}' {where}{detail}{why}")

    def _spec_order(self, text: str) -> tuple[str, ...] | None:
        """The key columns, in order, of the spec whose columns ``text`` names (any order);
        ``None`` for none, or text that is no ``col=value`` key: one decode and one lookup in
        ``key_columns``, for a 404's detail (``missing``) and a reordered key (``canonical``)."""
        try:
            return self.key_columns().get(frozenset(decode_key(text)))
        except DataError:
            return None

    def canonical(self, text: str) -> str | None:
        """The canonical form of a key given as text, or ``None`` if it cannot be one.

        Values are re-encoded canonically; columns given out of order are put in the order
        of the spec keyed by those columns (``key_columns``: a registry may hold partitions
        of specs keyed differently, and ``partition_by`` is only the first's, whose order
        sent a reordered key of another spec to the fallback); a number written as a float
        (``store=2.0``) is the integer key training wrote, when that one is in production —
        on every route, where only scoring followed it (``GET`` answered 404).
        """
        if not text or len(text) > MAX_KEY_LENGTH:
            return None
        try:
            key = normalize_key(text)
        except DataError:
            return self._bare_value(text)
        if key in self.aliases or key == FALLBACK_KEY:
            return key
        order = self._spec_order(key)
        if order is not None:
            key = normalize_key(text, order)  # the same columns: never refused
        try:
            return as_trained(key, self.aliases.__contains__)  # "store=2.0" for "store=2"
        except AmbiguousKey as e:  # two specs' partitions in other spellings: the user's pick
            raise InvalidRows([key_problem(text, str(e), candidates=e.candidates)]) from None

    def _bare_value(self, text: str, *, served: bool = True) -> str | None:
        """``pid=u1`` for ``u1`` in a registry keyed by the one column ``pid`` when that
        partition is in production, as the CLI and Python read such a key: the router served
        ``/v1/partitions/u1/predict`` by the fallback, a 200 for a partition it has. Other
        text with no ``=`` (``mymodel``, a V2 client's name) stays no key: the fallback's;
        ``served=False`` (``named``) reads it whether production serves it or not."""
        known = list(self.key_columns().values()) if is_bare_text(text) else []
        if len(known) != 1 or len(known[0]) != 1:
            return None
        key = normalize_key(text, known[0])
        try:  # "2.0" is the trained "pid=2", as "pid=2.0" is (it was the fallback's)
            key = as_trained(key, self.aliases.__contains__)
        except AmbiguousKey as e:
            raise InvalidRows([key_problem(text, str(e), candidates=e.candidates)]) from None
        return key if not served or key in self.aliases else None

    def named(self, text: str) -> str | None:
        """``canonical`` where nothing falls back (a version, a non-production alias, a move):
        a bare value of the one key column is its partition served or not. ``…/u1/retire``
        was a 200, then ``…/u1/rollback`` and ``?version=1`` 404s calling ``u1`` no key."""
        key = self.canonical(text)
        if key is None and text and len(text) <= MAX_KEY_LENGTH:
            key = self._bare_value(text, served=False)
        return key

    def resolve(
        self,
        text: str,
        *,
        version: int | None = None,
        alias: str | None = None,
        fallback: bool = True,
        asked: bool = True,
        unserved: str = "",
        retired: bool = True,
    ) -> Target:
        """The model that answers for ``text``; ``fallback=False`` makes a key without a
        production model a 404 (``PartitionNotFound``) even when the registry has a fallback,
        whose message says the request refused it when it did (``asked``; a route that never
        serves the fallback — explanations, actuals — says only that there is no partition,
        and ``unserved``, why it does not, where the registry has a fallback that answers the
        key's predictions: a bare "no partition in production" for a key the router answers
        read as a broken router). A refused key's 404 says it was retired when it was
        (``retired``: one registry read; the batch path, whose 404 is its own, passes False)."""
        key = self.canonical(text)
        if version is not None or (alias is not None and alias != PRODUCTION):
            if key is None and (key := self.named(text)) is not None:
                text = key  # a bare value: its 404 names the key it was read as
            if key is None:
                raise self.missing(text, None, "in the registry")
            if version is None:
                assert alias is not None
                try:
                    version = self.registry.store.resolve_alias(key, alias).version
                except PartitionNotFound:  # no such partition (not: no such alias): which
                    raise self.missing(text, key, "in the registry") from None
            return _noted(Target(key, key, version, key == FALLBACK_KEY))
        current = self.aliases.get(key) if key is not None else None
        if current is not None:
            answers = key or text
            return _noted(Target(answers, answers, current, key == FALLBACK_KEY, from_alias=True))
        if not fallback:  # a bare value's 404 names its key, and says it was retired
            if key is None and (key := self.named(text)) is not None:
                text = key
            why = f", {REFUSED}" if asked else ""
            if retired and (note := self.retired_note(key)):
                why = f"{why}; {note}"
            elif not asked and unserved and self.aliases.get(FALLBACK_KEY) is not None:
                why = f": {unserved}"
            raise self.missing(text, key, "in production", why)
        version = self.aliases.get(FALLBACK_KEY)
        if version is None:
            no_fallback = ", and the registry has no fallback model"
            raise self.missing(text, key, "in production", no_fallback)
        self.refuse_other_columns(text)  # the fallback would answer: not for a mistake
        return Target(key or text, FALLBACK_KEY, version, True, from_alias=True)

    def retired_note(self, key: str | None) -> str:
        """For a 404 of ``key``, what says it was retired (``manymodels retire``) and how it
        comes back, or nothing: a retired partition's actuals were told to train the
        partition on rows of its own, as if it never had a model. One primary-key read, on
        the refusal's path only."""
        if key is None or key == FALLBACK_KEY:
            return ""
        try:
            version = self.registry.store.retired_from(key)
        except (SQLAlchemyError, RegistryError):  # unreachable: the 404 as it was, no 500
            return ""
        return retirement(version) if version is not None else ""

    def resolve_canonical(self, key: str, *, fallback: bool = True) -> Target:
        """``resolve`` for a key already in canonical form (one the batch path encoded): a
        production key costs one dict lookup, without parsing the key again."""
        current = self.aliases.get(key)
        if current is not None:
            return _noted(Target(key, key, current, key == FALLBACK_KEY, from_alias=True))
        return self.resolve(key, fallback=fallback, retired=False)  # memory only: ``plan``

    def _existing(self, text: str) -> str:
        key = self.named(text)
        if key is None:
            raise self.missing(text, None, "in the registry")
        return key
