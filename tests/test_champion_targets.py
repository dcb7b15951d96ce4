"""``manymodels.champion_targets``: a run's champions predict what its spec predicts."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from factories import linear_frame, spec_dict

from manymodels.exceptions import DataError
from manymodels.pipeline import train
from manymodels.registry import Registry


def _frame() -> pd.DataFrame:
    frame = linear_frame(3, 30)
    return frame.assign(cost=frame["y"] * -50.0 + 7.0)  # another quantity, other units


def _versions(reg: Registry) -> list[tuple[str, int]]:
    return [(v.key, v.version) for p in reg.list_partitions() for v in reg.list_versions(p.key)]


def test_a_spec_whose_target_changed_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    """The spec edited from `target = "y"` to `target = "cost"` and trained into the same
    registry retrained every partition: each challenger (a model of cost) was scored
    against its champion (a model of y), the champions that scored better were kept, and
    production then served y for some partitions and cost for the others. Refused now,
    naming a version and both targets; the registry is as it was."""
    root = tmp_path / "mmregistry"
    features = ["x0", "x1"]
    train(spec_dict(features=features), _frame(), root, backend="local")
    with Registry.open(root) as reg:
        before = _versions(reg)
        runs = len(reg.list_runs())
    edited = spec_dict(features=features, target="cost")
    with pytest.raises(DataError, match=r"in production predicts 'y'; spec 'test' predicts 'cost'"):
        train(edited, _frame(), root, backend="local")
    with Registry.open(root) as reg:
        assert _versions(reg) == before
        assert len(reg.list_runs()) == runs


def test_a_spec_edited_otherwise_still_retrains(tmp_path: Path) -> None:
    """Only the target is checked: features edited, the same target is retrained as ever."""
    root = tmp_path / "mmregistry"
    train(spec_dict(features=["x0", "x1"]), _frame(), root, backend="local")
    summary = train(spec_dict(features=["x0"]), _frame(), root, backend="local")
    assert summary.run.n_trained == 3 and summary.run.n_failed == 0
