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


@pytest.mark.parametrize("fallback", [True, False])
def test_another_spec_over_other_partitions_is_not_judged_by_their_fallback(
    tmp_path: Path, fallback: bool
) -> None:
    """Two specs keyed alike over other partitions share a registry (north of y, south of
    cost): the south's run challenges none of the north's versions, and leaves the north's
    fallback serving (or trains none), so it trains as before; it was refused by a fallback
    it never judged ("'__fallback__' v1 in production predicts 'y'")."""
    root = tmp_path / "mmregistry"
    frame, features = _frame(), ["x0", "x1"]
    train(
        spec_dict(name="north", features=features), frame[frame["pid"] < 2], root, backend="local"
    )
    south = spec_dict(name="south", features=features, target="cost")
    south |= {} if fallback else {"fallback": {"enabled": False}}
    summary = train(south, frame[frame["pid"] >= 2], root, backend="local")
    assert summary.run.n_trained == 1 and summary.run.n_failed == 0
    with Registry.open(root) as reg:
        assert reg.store.production_info(["__fallback__"])["__fallback__"].version == 1
        assert [v.version for v in reg.list_versions("__fallback__")] == [1]  # north's
