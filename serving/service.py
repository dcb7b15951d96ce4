"""What the router does, without HTTP: resolve a key to a model, score rows, move aliases.

Blocking and thread-safe; the routes call it from worker threads. Per request it costs a dict
lookup (the alias table) and, on a cache hit, nothing else: no database, no disk. Which model
answers for a key (the alias table, canonical keys, the fallback) is ``serving.resolution``;
this module caches and scores that model and moves aliases. How a miss loads it, and what
the router says of a version it will not serve, is ``serving.model_load``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from manymodels.exceptions import (
    ArtifactError,
    ArtifactStoreUnavailable,
    PartitionNotFound,
    VersionNotFound,
)
from manymodels.partition import FALLBACK_KEY
from manymodels.registry.client import Registry
from manymodels.registry.entities import AliasMove
from manymodels.targetunits import to_target_units
from serving.batch import predict_one
from serving.cache import CacheStats, CoefficientCache, ModelCache
from serving.errors import ModelNotServed
from serving.model_load import load_for_serving, local_registry
from serving.monitor import RowSampler
from serving.resolution import PRODUCTION, Resolver, Target
from serving.row_matrix import input_of
from serving.rows import finite_answers, to_json_list
from serving.served import ServedModel, can_score, coefficients_only, needs_formats

logger = logging.getLogger("manymodels.serving")

INLINE_LOAD_SECONDS = 0.002  # misses load on the event loop while loads average less
COEFFICIENTS_PER_MODEL = 10  # the coefficient cache holds this many times ``cache_size``

Row = Mapping[str, Any]


@dataclass(frozen=True)
class Scored:
    target: Target
    predictions: list[Any]
    probabilities: list[dict[str, float]] | None
    predicts: str | None
    """The column the answering version predicts (its schema's ``target``): answers name it."""


class ModelService(Resolver):
    """The router's state: the registry, the production alias table (``Resolver``) and the
    model cache."""

    def __init__(
        self,
        registry: Registry,
        *,
        cache_size: int = 1000,
        on_load: Any = None,
        inline_loads: bool | None = None,
        coefficient_cache_size: int | None = None,
    ) -> None:
        super().__init__(registry)
        self.inline_loads = local_registry(registry) if inline_loads is None else inline_loads
        # linear models the model cache evicts keep answering from their coefficients
        self.coefficients: CoefficientCache[ServedModel] = CoefficientCache(
            max_size=COEFFICIENTS_PER_MODEL * cache_size
            if coefficient_cache_size is None
            else coefficient_cache_size
        )
        self.cache: ModelCache[ServedModel] = ModelCache(
            partial(load_for_serving, registry),
            max_size=cache_size,
            on_load=on_load,
            on_evict=self._keep_coefficients,
            key_of=self.aliases.pair,
        )
        self._counts = {"fallback_uses": 0, "fallback_rows": 0, "predicted_rows": 0}
        self._counts_lock = threading.Lock()
        self.sampler: RowSampler | None = None  # set while monitoring runs (serving.monitor)
        self._trusted: frozenset[str] | None = None  # the formats follow_trust last saw

    # ------------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Read the alias table; learn the key columns from it."""
        n = self.aliases.load()
        self.partition_by()
        logger.info("alias table loaded: %d partition(s) in production", n)

    def preload(self, n: int) -> int:
        """Warm the cache with the fallback and up to ``n`` production models; returns how many
        loaded. A model that fails to load is logged and skipped."""
        keys = self.aliases.partitions()
        keys.sort(key=lambda k: k != FALLBACK_KEY)
        loaded = 0
        for key in keys[: min(n, self.cache.max_size)]:
            version = self.aliases.get(key)
            if version is None:
                continue
            try:
                self.cache.get(key, version)
                loaded += 1
            except ModelNotServed as e:
                logger.warning("preload skipped %s v%d: %s", key, version, e)
        return loaded

    # ------------------------------------------------------------------------ resolution
    def score_inline(
        self,
        target: Target,
        rows: Sequence[Row],
        *,
        with_probabilities: bool = False,
        fallback: bool = True,
    ) -> Scored | None:
        """Score on the event loop when that needs no I/O (the model is cached) or only a
        quick local load (``loads_inline``); ``None`` when the caller must use a thread.

        A thread hop costs more than predicting a few rows, and a loading thread makes several
        blocking calls (SQLite, open, read), each of which must win the GIL back from the busy
        event loop: on 2 cores with 90 % misses, loading inline gave +14 % throughput and a
        p99 of 8.5 ms instead of 51 ms.
        """
        model = self.cache.peek(target.key, target.version)  # evicted later or not: ours
        if model is None:
            scored = self._score_coefficients(target, rows)
            if scored is not None:
                return scored
            if not self.loads_inline(target):
                return None
        return self.score_target(
            target, rows, with_probabilities=with_probabilities, model=model, fallback=fallback
        )

    def in_memory(self, key: str, version: int) -> ServedModel | None:
        """The model if it answers without a load: cached in full, or a linear model's
        coefficients (``ServedModel.model`` is then ``None``; see ``served.answers``)."""
        return self.cache.peek(key, version) or self.coefficients.get(key, version)

    def _keep_coefficients(self, key: str, version: int, model: ServedModel) -> None:
        """``ModelCache.on_evict``: a linear model's coefficients stay (``CoefficientCache``)."""
        slim = coefficients_only(model)
        if slim is not None:
            self.coefficients.put(key, version, slim)

    def _score_coefficients(self, target: Target, rows: Sequence[Row]) -> Scored | None:
        """Score with the coefficients of an evicted linear model, when they are kept and
        accept the rows (``None`` otherwise: the full model must answer)."""
        slim = self.coefficients.get(target.key, target.version)
        if slim is None:
            return None
        X = input_of(slim, rows)
        if not can_score(slim, X):
            return None
        return self._scored(target, rows, slim, X, False)

    def loads_inline(self, target: Target) -> bool:
        """Whether a miss of ``target`` may load on the event loop: the registry is local
        (``inline_loads``), recent loads have been quick, and nobody is loading it already
        (waiting for that would block the loop). A slow load (a big model, a slow disk) sends
        the next ones to threads until loads are quick again; the first slow load after quick
        ones still runs on the loop, its time being known only when it ends."""
        return (
            self.inline_loads
            and self.cache.recent_load_seconds < INLINE_LOAD_SECONDS
            and not self.cache.loading(target.key, target.version)
        )

    def model(self, target: Target, *, fallback: bool = True, asked: bool = True) -> ServedModel:
        return self.load(target, fallback=fallback, asked=asked)[1]

    def load(
        self, target: Target, *, fallback: bool = True, asked: bool = True
    ) -> tuple[Target, ServedModel]:
        """The model that answers for ``target``, and the target it answered as.

        A version read from the alias table may have been deleted since: promoted away from
        and removed by ``gc`` before this router's next refresh. Such a target re-reads its
        alias once and is served by the version production points at now (the answer names
        it), rather than being a 404 for a version nobody serves any more; a partition
        retired meanwhile is resolved again as one with no model, by the request's flags
        (``resolve``'s ``fallback``, ``asked``). An explicit ``version`` is never substituted.
        """
        try:
            return target, self.cache.get(target.key, target.version)
        except PartitionNotFound:  # a ?version= / ?alias= of no partition: say which it is
            raise self.missing(target.key, None, "in the registry") from None
        except VersionNotFound:
            if not target.from_alias:
                raise
            current = self.aliases.reread(target.key)
            if current is None and not target.fallback:  # the key left the table: retired
                logger.info("%s v%d is gone; the partition is retired", target.key, target.version)
                again = self.resolve(target.partition, fallback=fallback, asked=asked)
                return self.load(again, fallback=fallback, asked=asked)
            if current is None or current == target.version:
                raise
            logger.info(
                "%s v%d is gone; production points at v%d now", target.key, target.version, current
            )
        fresh = replace(target, version=current)
        return fresh, self.cache.get(fresh.key, fresh.version)

    def follow_trust(self) -> int:
        """Drop cached models stored in a format the registry no longer trusts (``manymodels
        trust --trusted-formats skops`` while the router runs): a cold load would refuse them
        (500), and a model already in memory must not answer on. Called with each alias
        refresh; costs one cached read of the policy (``FORMATS_TTL``) unless it changed."""
        trusted = self.registry.trusted_formats
        if trusted == self._trusted:
            return 0
        self._trusted = trusted
        gone = self.cache.discard(lambda m: not needs_formats(m) <= trusted)
        gone += self.coefficients.discard(lambda m: not needs_formats(m) <= trusted)
        if gone:
            logger.warning("dropped %d cached model(s) in formats no longer trusted", gone)
        return gone

    # ------------------------------------------------------------------------ scoring
    def score_partition(
        self,
        text: str,
        rows: Sequence[Row],
        *,
        version: int | None = None,
        alias: str | None = None,
        with_probabilities: bool = False,
        fallback: bool = True,
    ) -> Scored:
        """Score rows with one partition's model (or the fallback for an unknown key, unless
        ``fallback`` is false)."""
        target = self.resolve(text, version=version, alias=alias, fallback=fallback)
        return self.score_target(
            target, rows, with_probabilities=with_probabilities, fallback=fallback
        )

    def score_target(
        self,
        target: Target,
        rows: Sequence[Row],
        *,
        with_probabilities: bool = False,
        model: ServedModel | None = None,
        fallback: bool = True,
    ) -> Scored:
        """Score rows with the model of an already resolved target (``model``, if the caller
        has it already); ``fallback`` is the request's (``load``)."""
        if model is None or model.model is None:
            if model is None and (scored := self._score_coefficients(target, rows)) is not None:
                return scored
            target, loaded = self.load(target, fallback=fallback)
        else:
            loaded = model
        X = input_of(loaded, rows)
        return self._scored(target, rows, loaded, X, with_probabilities)

    def _scored(
        self,
        target: Target,
        rows: Sequence[Row],
        loaded: ServedModel,
        X: Any,
        with_probabilities: bool,
    ) -> Scored:
        preds, proba = predict_one(loaded, X, with_probabilities)
        if loaded.schema.transform is not None:  # a target_transform: back to its units
            preds = to_json_list(to_target_units(preds, rows, loaded.schema))
        finite_answers(preds)
        if self.sampler is not None and not target.fallback:
            self.sampler.offer(target.key, target.version, rows)
        fell_back = target.fallback and target.partition != FALLBACK_KEY
        self.count(len(rows), int(fell_back), len(rows) if fell_back else 0)
        return Scored(target, preds, proba, loaded.schema.target)

    # ------------------------------------------------------------------------ aliases
    def promote(self, text: str, version: int, *, reason: str) -> AliasMove:
        """Point production at ``version``; this router serves it from the next request.

        Idempotent: promoting the version production already points at writes nothing and
        returns the move that put it there, ``moved`` false.
        """
        key = self._existing(text)
        try:
            move = self.registry.promote(key, version, reason=reason)
        except ArtifactStoreUnavailable:
            raise
        except ArtifactError as e:  # a 409 (``serving.errors``): said of which version, as the
            # 500 of a prediction is ("artifact 7268a8… is missing from …" named neither)
            raise ArtifactError(f"cannot promote partition '{key}' version {version}: {e}") from e
        self.aliases.apply(key, move.to_version or version, move.at)
        return move

    def rollback(self, text: str, *, reason: str | None = None) -> AliasMove:
        """Move production back to the version before its latest forward move."""
        key = self._existing(text)
        move = self.registry.rollback(key, reason=reason)
        self.aliases.apply(key, move.to_version or 0, move.at)
        return move

    def retire(self, text: str, *, reason: str) -> AliasMove:
        """Take the partition out of production (``Registry.retire``); this router serves it
        as one with no model (the fallback, where there is one) from the next request. One
        retired already returns the entry that retired it (``moved`` false), applied here
        too: another router's retirement may not have reached this one's table yet."""
        key = self._existing(text)
        (move,) = self.registry.retire([key], reason=reason)
        self.aliases.apply(key, None, move.at)
        return move

    def follow(self, key: str) -> int | None:
        """Serve the version production points at now (read from the registry) from the next
        request, after a move made in this process outside ``promote`` — a retrain its policy
        promoted. The model is loaded first, so no request waits for it; returns the version."""
        entry = self.registry.store.alias_entry(key, PRODUCTION)
        if entry is None:
            return None
        version, at = entry
        try:
            self.cache.get(key, version)
        except ModelNotServed as e:  # requests will say so; the alias moved all the same
            logger.warning("cannot warm %s v%d: %s", key, version, e)
        self.aliases.apply(key, version, at)
        return version

    # ------------------------------------------------------------------------ figures
    def count(self, rows: int, fallback_uses: int, fallback_rows: int) -> None:
        with self._counts_lock:
            self._counts["predicted_rows"] += rows
            self._counts["fallback_uses"] += fallback_uses
            self._counts["fallback_rows"] += fallback_rows

    def counters(self) -> dict[str, int]:
        with self._counts_lock:
            return dict(self._counts)

    def cache_stats(self) -> CacheStats:
        return self.cache.stats()

    def alias_stats(self) -> dict[str, float]:
        last = self.aliases.last_refresh
        return {
            "size": float(len(self.aliases)),
            "age_seconds": time.time() - last if last is not None else float("nan"),
        }
