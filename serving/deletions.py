"""Versions ``gc`` deleted leave the router's memory too.

The model cache is keyed by ``(partition, version)`` and a version never changes, so nothing
in it ever went stale — except a version that is deleted: ``?version=N`` of a version ``gc``
removed kept answering (200) from any router that had it cached, for as long as it stayed
cached, while a router without it answered 404 "has no version N". ``gc`` rewrites one
``meta`` row when it deletes versions (``VERSIONS_DELETED``, in the same transaction); this
follower reads that row with each alias refresh (one primary-key read), and only when it
changed asks which of the versions held in memory still exist (one batched indexed read) and
drops the rest. So the answer for a deleted version no longer depends on the cache, after at
most one refresh interval — the delay a promotion made elsewhere has.

A load under way as it looks may have read its version's row before gc's commit, and put the
model in the cache whenever it ends (a large artifact from an object store: seconds). The
versions being loaded are asked about with those held, and a deleted one is dropped as soon
as its load has ended, at a later refresh, with no further read.

Only versions production does not point at are asked about: ``gc`` never deletes an aliased
version (nor one an alias left within its grace period), and a production entry that is stale
because the alias moved is handled where it is loaded (``ModelService.load``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from manymodels.registry.writes import VERSIONS_DELETED

if TYPE_CHECKING:
    from serving.service import ModelService

logger = logging.getLogger("manymodels.serving")


class DeletedVersions:
    """``follow()`` (a ``Refresher`` companion): drop what ``gc`` deleted from ``service``'s
    model and coefficient caches; returns how many entries went."""

    def __init__(self, service: ModelService) -> None:
        self.service = service
        self._seen: str | None = None  # the mark last acted on (none: gc never deleted)
        self._late: set[tuple[str, int]] = set()  # deleted, and being loaded when last looked

    def follow(self) -> int:
        gone = self._drop_late() if self._late else 0
        mark = self.service.registry.store.get_meta(VERSIONS_DELETED)
        if mark == self._seen:
            return gone
        self._seen = mark
        return gone + self._drop_deleted()

    def _drop_late(self) -> int:
        """Drop the deleted versions whose loads have ended since the last look."""
        loading = self.service.cache.loads_under_way()
        ended = {pair for pair in self._late if pair not in loading}
        self._late -= ended
        return self._drop(ended) if ended else 0

    def _drop_deleted(self) -> int:
        service = self.service
        production = service.aliases.get
        loading = service.cache.loads_under_way()  # before the entries: one that ends is held
        asked = {
            pair
            for pair in (*loading, *service.cache.entries(), *service.coefficients.entries())
            if production(pair[0]) != pair[1]
        }
        if not asked:
            return 0
        deleted = asked - service.registry.store.existing_versions(sorted(asked))
        self._late |= deleted & loading
        return self._drop(deleted) if deleted else 0

    def _drop(self, deleted: set[tuple[str, int]]) -> int:
        service = self.service
        gone = service.cache.drop(deleted) + service.coefficients.drop(deleted)
        if not gone:
            return 0
        logger.info(
            "dropped %d version(s) gc deleted from memory: %s",
            len(deleted),
            ", ".join(f"{k} v{v}" for k, v in sorted(deleted)[:10]),
        )
        return gone
