"""The pooled fallback: one global model over (a sample of) every partition's usable rows, for
unknown keys and partitions too small to train."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from manymodels.artifacts import ArtifactStore
from manymodels.partition import FALLBACK_KEY, PartitionedTable
from manymodels.registry.entities import NewVersion, PartitionOutcome
from manymodels.spec import Candidate, Spec
from manymodels.training.chunk import Result, train_one
from manymodels.training.compare import Champion
from manymodels.training.rows import drop_masks, kept_rows
from manymodels.training.schema import feature_schema
from manymodels.training.splits import take

if TYPE_CHECKING:  # the workers that train a fallback never import the registry's writes
    from manymodels.registry.writes import Recorded


def pooled_fingerprint(table: PartitionedTable) -> str:
    """The fallback's data fingerprint: changes when any partition's does."""
    h = hashlib.blake2b(digest_size=16)
    for key, fp in zip(table.keys, table.fingerprints, strict=True):
        h.update(f"{key}\0{fp}\n".encode())
    return h.hexdigest()


def train_fallback(
    table: PartitionedTable, spec: Spec, store: ArtifactStore, champion: Champion | None = None
) -> Result:
    """Train the fallback on the rows that can train.

    One partition's missing targets or infinite feature values must not sink the model every
    unknown key is served by: those rows are left out and counted by reason in the version's
    ``validation.dropped``. Validated on a time-ordered last 20 % (or a seeded 20 % holdout):
    the per-partition ``size`` means nothing for the pooled table. The naive baseline is not a
    candidate here: the last value of a pooled table is some partition's last value.

    With a ``target_transform`` there is no fallback (skipped, saying why): its rows pool
    every partition's transformed targets, and an unknown key has no transform to turn its
    answers back with — it would answer in no partition's units (``manymodels.targetunits``).
    Unknown keys and partitions below ``min_rows`` are then refused, never answered wrongly.
    """
    if table.raw_y is not None:
        why = (
            f"no fallback with target_transform = {spec.target_transform!r}: a model pooled "
            "over partitions has no partition's transform to answer in the target's units"
        )
        return PartitionOutcome(
            FALLBACK_KEY, "skipped", "PartitionSkipped", why, table.n_rows,
            pooled_fingerprint(table),
        )  # fmt: skip
    rng = np.random.default_rng(spec.seed)
    rows, dropped = kept_rows(slice(0, table.n_rows), drop_masks(table, spec, pooled=True))
    idx = np.arange(table.n_rows)[rows]
    if len(idx) < 2:  # below the pooled min_rows: say why rather than "too few rows"
        return PartitionOutcome(
            FALLBACK_KEY, "skipped", "PartitionSkipped", _unusable(table, len(idx), dropped),
            table.n_rows, pooled_fingerprint(table),
        )  # fmt: skip
    if len(idx) > spec.fallback.max_rows:
        idx = np.sort(rng.choice(idx, spec.fallback.max_rows, replace=False))
    if table.time is not None:
        idx = idx[np.argsort(table.time[idx], kind="stable")]
    pooled = spec.model_copy(
        update={
            "validation": spec.validation.model_copy(
                update={"strategy": "last" if table.time is not None else "holdout", "size": 0.2}
            ),
            "min_rows": 2,
            "missing_target": "drop",
            "selection": spec.selection.model_copy(update={"naive_candidate": False}),
            "candidates": _pooled_candidates(spec),
        }
    )
    return train_one(
        take(table.X, idx),
        table.y[idx],
        pooled,
        store,
        key=FALLBACK_KEY,
        key_values={},
        fingerprint=pooled_fingerprint(table),
        schema=feature_schema(table, spec),
        numeric=[c for c in table.features if c not in table.categorical],
        champion=champion,
        dropped=dropped,
        prior=table.extra.get("class_prior"),
    )


def worse_than_naive(version: NewVersion, recorded: Recorded) -> str | None:
    """The run's warning when the fallback scores worse than the naive baseline on its own
    validation rows, else ``None``. Naive is no candidate for the fallback (see
    ``train_fallback``), so nothing else says it: a retrained fallback at skill -92 % was
    promoted on a tie and the run's output said nothing, while every request for an unknown
    partition gets it. A warning, not a failure: it is still the only model those keys have.

    Only of a version production now serves (promoted and not ``overruled`` by ``record``, or
    ``returned``): one that lost to the fallback in production serves no request, and the
    warning's "requests for unknown partitions get it" was untrue of it."""
    key = version.key
    promoted = bool(version.evaluation.get("promote")) and key not in recorded.overruled
    if not (promoted or key in recorded.returned):
        return None
    score, naive = version.score, version.naive_score
    if naive is None or naive == 0 or not (math.isfinite(score) and math.isfinite(naive)):
        return None
    skill = (score - naive) / abs(naive)  # as ``ModelVersion.skill``: < 0 is worse
    if skill >= 0:
        return None
    return (
        f"the fallback model scores worse than naive (skill {skill:+.0%}) on its validation "
        "rows; requests for unknown partitions get it"
    )


def _unusable(table: PartitionedTable, n: int, dropped: Mapping[str, int]) -> str:
    """Why the pooled rows leave the fallback nothing to fit: the reasons' counts, and the
    numeric features with no finite value at all (the usual cause: an empty column)."""
    reasons = ", ".join(f"{count} {reason.replace('_', ' ')}" for reason, count in dropped.items())
    reasons = f" ({reasons})" if reasons else ""
    numeric = [c for c in table.features if c not in table.categorical]
    if isinstance(table.X, pd.DataFrame):
        values = table.X[numeric].to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        values = np.asarray(table.X, dtype=np.float64)
    empty = [c for c, ok in zip(numeric, np.isfinite(values).any(axis=0), strict=True) if not ok]
    named = f"; no finite value in feature(s) {', '.join(map(repr, empty))}" if empty else ""
    return f"no fallback: {n} of {table.n_rows} pooled rows are usable{reasons}{named}"


def _pooled_candidates(spec: Spec) -> list[Candidate]:
    """What the fallback fits: the local candidates; a spec of global candidates only has its
    global ones fitted as pooled models (without the key columns — an unknown key has none to
    give), rather than a run that fails with "no model to fit"."""
    local = [c for c in spec.candidates if c.scope == "local"]
    return local or [c.model_copy(update={"scope": "local"}) for c in spec.candidates]
