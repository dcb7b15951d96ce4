"""An ensemble's global members, stored by reference: one copy of a global model, not one per
ensemble (nor one per prior-shifted partition: ``manymodels.prior_shift``).

A ``top2`` ensemble (``candidates.MeanOf``) may pair a local model with the run's global
model bound to the partition's key (``training.global_fit.KeyBound``). Pickled as it is, every
such ensemble would hold its own copy of the global model — a LightGBM booster of hundreds of
kilobytes, once per partition, in the store and in every reader's memory. Instead, the stored
artifact holds a ``GlobalMember`` (the global model's sha256 and the key) in its place
(``stored_form``), and the version lists that sha256 in ``model_versions.members_json`` so
that ``gc``, ``backup``, ``restore`` and ``doctor`` count the global model as referenced.

Every reader links the members back (``linked``) with a ``load`` that reads each global model
once: the router shares one loaded copy across partitions, batch scoring one per chunk,
forecasting one per call. The bytes of the member are checked against its sha256 like any
artifact, and that sha256 is itself inside the version's (checked, and optionally signed)
artifact, so the chain of checks is unbroken.

This module imports nothing heavy: read-only commands load artifacts through it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import Any

from manymodels.exceptions import ArtifactError
from manymodels.serialization import format_of, loads, require_loadable


class GlobalMember:
    """A global member as an ensemble's artifact stores it: which global model, which key.

    Never served: ``linked`` replaces it by the model bound to the key. Plain attributes (a
    string and a dict), so skops stores it as data (``serialization.TRUSTED_TYPES``)."""

    def __init__(self, sha256: str = "", key: Mapping[str, Any] | None = None) -> None:
        self.sha256 = sha256
        self.key = dict(key or {})

    def predict(self, X: Any) -> Any:
        raise ArtifactError(
            f"global member {self.sha256[:12]}… was not linked: load the model through "
            "manymodels (Registry.load_model), which reads the global model it names"
        )

    def __repr__(self) -> str:
        return f"GlobalMember({self.sha256[:12]}…, key={self.key})"


def stored_form(model: Any) -> tuple[Any, list[str]]:
    """``model`` as its artifact holds it, and the sha256s of the global models it names: an
    ensemble's members bound to a stored global model become ``GlobalMember``s; any other
    model is returned as it is, with no names. ``model`` itself is not changed."""
    members = _members(model)
    if members is None:
        return model, []
    stored: list[Any] = []
    names: list[str] = []
    for m in members:
        sha = getattr(m, "sha256", None)
        if isinstance(sha, str) and sha and hasattr(m, "key"):
            stored.append(GlobalMember(sha, m.key))
            if sha not in names:
                names.append(sha)
        else:
            stored.append(m)
    if not names:
        return model, []
    return _rebuilt(model, stored), names


def linked(model: Any, load: Callable[[str], Any]) -> Any:
    """``model`` with each ``GlobalMember`` replaced by the global model ``load(sha256)``
    returns, bound to the member's key; ``model`` itself when it names none."""
    members = _members(model)
    if members is None or not any(isinstance(m, GlobalMember) for m in members):
        return model
    from manymodels.training.global_fit import bound  # pandas and scikit-learn: loaded already

    return _rebuilt(
        model,
        [bound(load(m.sha256), m.key, m.sha256) if isinstance(m, GlobalMember) else m
         for m in members],
    )  # fmt: skip


def member_names(model: Any) -> list[str]:
    """The sha256s of the global models a loaded artifact names (``GlobalMember``s)."""
    members = _members(model) or []
    return list(dict.fromkeys(m.sha256 for m in members if isinstance(m, GlobalMember)))


def _members(model: Any) -> list[Any] | None:
    """The members of a model that holds global ones: an ensemble's, or the one global model
    a ``PriorShifted`` reweights (``manymodels.prior_shift``); ``None`` for any other model."""
    if _is(model, "manymodels.candidates", "MeanOf"):
        return list(model.members)
    if _is(model, "manymodels.prior_shift", "PriorShifted"):
        return [model.member]
    return None


def _rebuilt(model: Any, members: list[Any]) -> Any:
    """``model`` over other forms of its members (``_members``' order), itself unchanged."""
    if _is(model, "manymodels.prior_shift", "PriorShifted"):
        (member,) = members
        return model.with_member(member)
    return type(model)(members)


def _is(obj: Any, module: str, name: str) -> bool:
    """``isinstance(obj, module.name)`` without importing ``module``: an object of that type
    exists only once its module is imported (by whoever built or unpickled it)."""
    found = sys.modules.get(module)
    return found is not None and isinstance(obj, getattr(found, name))


class GlobalModels:
    """Global models by sha256, each read (verified by the store) and loaded once per
    ``cache``: pass a long-lived mapping to share them across calls (the router's is weak, so a
    model goes when no cached version holds it). ``formats_of`` records each one's format
    beside it, so a model loaded before the registry's policy narrowed is refused when it is
    reused, as a fresh load would be: the router's outlive a policy change; a forecast's or a
    scoring chunk's ``cache`` (with no ``formats_of``) lives for one call, under one policy.
    ``owner`` names what loads it, for messages."""

    def __init__(
        self,
        get: Callable[[str], bytes],
        formats: Iterable[str],
        cache: MutableMapping[str, Any] | None = None,
        formats_of: MutableMapping[str, str] | None = None,
        *,
        owner: str = "",
    ) -> None:
        self.get = get
        self.formats = frozenset(formats)
        self.cache: MutableMapping[str, Any] = {} if cache is None else cache
        self.formats_of: MutableMapping[str, str] = {} if formats_of is None else formats_of
        self.owner = owner

    def __call__(self, sha256: str) -> Any:
        what = f"global model {sha256[:12]}…" + (f" (in {self.owner})" if self.owner else "")
        model = self.cache.get(sha256)
        if model is None:
            data = self.get(sha256)
            found = format_of(data)
            model = loads(data, self.formats, what=what)
            if not _is(model, "manymodels.training.global_fit", "GlobalModel"):
                raise ArtifactError(f"{what} is a {type(model).__name__}, not a global model")
            self.cache[sha256], self.formats_of[sha256] = model, found
        elif sha256 in self.formats_of:  # loaded earlier, maybe under a wider policy
            require_loadable(self.formats_of[sha256], self.formats, what=what)
        return model

    def format(self, sha256: str) -> str | None:
        """The format a loaded global model was stored in (``None`` before it is loaded)."""
        return self.formats_of.get(sha256)
