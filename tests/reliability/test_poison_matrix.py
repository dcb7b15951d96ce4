"""The poison matrix: one partition per kind of bad data, beside clean ones, on Ray.

Each poison must stay in its own partition — a recorded outcome with a reason, never a crash,
never a clean partition lost — and the pooled fallback must train on the usable rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from factories import linear_frame, spec_dict

from manymodels.partition import FALLBACK_KEY
from manymodels.pipeline import train
from manymodels.registry import Registry

pytestmark = pytest.mark.slow

CLEAN = 6


def _poison(part: pd.DataFrame, kind: str) -> pd.DataFrame:
    part = part.copy()
    if kind == "all_nan_target":
        part["y"] = np.nan
    elif kind == "some_nan_target":
        part.loc[part.index[:5], "y"] = np.nan
    elif kind == "inf_feature":
        part.loc[part.index[3], "x0"] = np.inf
    elif kind == "nan_feature":
        part.loc[part.index[3], "x1"] = np.nan
    elif kind == "inf_target":
        part.loc[part.index[3], "y"] = -np.inf
    elif kind == "constant_target":
        part["y"] = 7.0
    elif kind == "constant_feature":
        part["x0"] = 1.0
    elif kind == "huge_values":
        part["x0"] = part["x0"] * 1e300
    elif kind == "one_row":
        part = part.head(1)
    elif kind == "duplicate_times":
        part["t"] = part["t"] // 2
    return part


# poison → (status, what the outcome's message or the version's record says)
EXPECTED: dict[str, tuple[str, str]] = {
    "all_nan_target": ("skipped", "0 rows < min_rows"),
    "some_nan_target": ("trained", "missing_target"),
    "inf_feature": ("failed", "infinity"),
    "nan_feature": ("failed", "NaN"),
    "inf_target": ("failed", "infinity"),
    "constant_target": ("trained", ""),
    "constant_feature": ("trained", ""),
    "huge_values": ("failed", ""),
    "one_row": ("skipped", "1 rows < min_rows"),
    "duplicate_times": ("trained", ""),
}


def test_every_poison_stays_in_its_partition(ray_session: Any, tmp_path: Path) -> None:
    kinds = list(EXPECTED)
    base = linear_frame(CLEAN + len(kinds), 30)
    parts = [base[base.pid < CLEAN]]
    for i, kind in enumerate(kinds):
        parts.append(_poison(base[base.pid == CLEAN + i], kind))
    df = pd.concat(parts, ignore_index=True)
    summary = train(spec_dict(), df, tmp_path / "reg", backend="ray")
    assert summary.fallback == "trained"
    with Registry.open(tmp_path / "reg") as reg:
        outcomes = {o.key: o for o in reg.store.run_outcomes(summary.run.run_id, limit=100)}
        for i in range(CLEAN):
            assert outcomes[f"pid={i}"].status == "trained"
        for i, kind in enumerate(kinds):
            key = f"pid={CLEAN + i}"
            status, says = EXPECTED[kind]
            got = outcomes[key]
            if kind == "huge_values":  # overflow: Ridge may fit or refuse; either stays here
                assert got.status in ("trained", "failed"), (kind, got)
                continue
            assert got.status == status, (kind, got)
            if status == "trained":
                v = reg.get_version(key)
                if says:
                    assert says in v.validation.get("dropped", {}), (kind, v.validation)
            else:
                assert says in got.message, (kind, got.message)
        fb = reg.get_version(FALLBACK_KEY)
        dropped = fb.validation["dropped"]
        assert dropped["missing_target"] == 30 + 5  # all_nan_target + some_nan_target
        assert dropped["unusable_target"] == 1  # inf_target
        assert dropped["unusable_features"] == 1 + 1 + 30  # inf, nan, and 30 huge values
