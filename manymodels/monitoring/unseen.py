"""Text values a partition's model never saw at training: how many of the rows a router
sampled carry one, per text feature.

A model scores a category its training rows never had without a word (an encoder ignores it,
LightGBM reads it as missing): a new product line, a renamed promo code. The version's
profile knows the training values of a text feature when its list is complete
(``known_values``): its ``top`` values when there were at most ``profile.TOP_VALUES`` (the
other bin counted no row), or ``top`` and ``seen`` (up to ``profile.SEEN_VALUES``). A
``capped`` list, or a profile written before ``seen`` existed with more values than its top,
cannot tell a new value from a rare one: that feature is not judged (``—``), never called
unseen.

The router's flush counts, per such feature, the sampled rows that hold a value and those
whose value (as text, as the profile's bins compare it: ``profile.text_of``) is not in that
set — one set lookup per row — and keeps them in the partition's drift row beside its bin
counts, under ``UNSEEN + feature``: ``[unseen, rows with a value]``, decayed with the bins
(``store.add_samples``). An older router's flush leaves the pair as it was (decayed), and
its drift code skips a name that is no feature of the profile. The monitor reads the pairs of
the rows it shows only (``with_unseen``): the share of the worst feature, from
``MIN_DRIFT_ROWS`` rows with a value on, as drift is scored. Prometheus gets no label per
partition for it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Engine, select

from manymodels.monitoring.drift import MIN_DRIFT_ROWS
from manymodels.monitoring.profile import text_of
from manymodels.registry import schema as t
from manymodels.registry.engine import batches

UNSEEN = "__unseen__:"
"""The prefix of a drift row's unseen counts (``__other__`` is the profile's reserved bin)."""


def known_values(stats: Mapping[str, Any]) -> frozenset[str] | None:
    """Every training value of a text feature (as text), or ``None`` when its profile does not
    hold them all: a numeric feature, a ``capped`` list, or a profile written before ``seen``
    whose other bin counted rows."""
    if "top" not in stats or stats.get("capped"):
        return None
    if "seen" in stats:
        return frozenset(stats["top"]).union(stats["seen"])
    counts = stats.get("counts") or [0]
    return frozenset(stats["top"]) if counts[-1] == 0 else None


def unseen_counts(
    profile: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]
) -> dict[str, list[int]]:
    """``{UNSEEN + feature: [unseen, rows with a value]}`` of ``rows`` for each text feature
    whose training values ``profile`` holds all of. A row without the feature, or with a
    missing value (``None``, NaN), is not counted: that is ``live_counts``' missing bin."""
    out: dict[str, list[int]] = {}
    for name, stats in profile.get("features", {}).items():
        known = known_values(stats)
        if known is None:
            continue
        unseen = valued = 0
        for row in rows:
            v = row.get(name)
            if v is None or (isinstance(v, float) and math.isnan(v)):
                continue
            valued += 1
            if text_of(v, known) not in known:  # 1.0 for a column of ints is known
                unseen += 1
        out[UNSEEN + name] = [unseen, valued]
    return out


def worst(counts: Mapping[str, Sequence[float]]) -> tuple[float, str, float] | None:
    """The largest unseen share over a drift row's features, its feature and the rows it is
    of; ``None`` when no feature was judged on ``MIN_DRIFT_ROWS`` rows with a value."""
    found: tuple[float, str, float] | None = None
    for name, pair in counts.items():
        if not name.startswith(UNSEEN) or len(pair) != 2:
            continue
        unseen, valued = float(pair[0]), float(pair[1])
        if valued < MIN_DRIFT_ROWS:
            continue
        share = unseen / valued
        if found is None or share > found[0]:
            found = (share, name[len(UNSEEN) :], valued)
    return found


def with_unseen(engine: Engine, rows: Sequence[Any]) -> list[Any]:
    """``rows`` (``PartitionHealth``) with the unseen share of their worst text feature, read
    from their drift rows (one batched read of the rows shown: the pairs sit in its counts'
    JSON, no column orders them). A drift row of another version than the row's is not its."""
    d = t.monitor_drift.c
    found: dict[str, tuple[float, str, float]] = {}
    wanted = {r.key: r.version for r in rows}
    with engine.connect() as conn:
        for chunk in batches(list(wanted)):
            q = select(d.key, d.version, d.counts_json).where(d.key.in_(chunk))
            for key, version, raw in conn.execute(q):
                if wanted.get(key) != version:
                    continue
                try:
                    counts = json.loads(raw)
                except ValueError:
                    continue
                share = worst(counts) if isinstance(counts, dict) else None
                if share is not None:
                    found[key] = share
    out = []
    for r in rows:
        share = found.get(r.key)
        if share is None:
            out.append(r)
        else:
            out.append(replace(r, unseen_share=share[0], unseen_feature=share[1],
                               unseen_rows=round(share[2], 1)))  # fmt: skip
    return out
