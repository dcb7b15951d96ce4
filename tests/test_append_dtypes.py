"""``append`` given a notebook's frame: its pandas dtypes differ from the kept rows'."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from factories import linear_frame, spec_dict

import manymodels as mm
from manymodels.registry import Registry


@pytest.mark.parametrize(
    ("kept", "posted"),
    [("boolean", "boolean"), ("int64", "boolean"), ("bool", "int64"), ("bool", "float64")],
)
def test_appended_true_false_features_stay_numbers(tmp_path: Path, kept: str, posted: str) -> None:
    """New rows with a ``boolean`` feature (pandas' nullable dtype) were concatenated with
    the kept rows' 0.0/1.0 into objects, which training read as text ("feature 'flag' holds
    numbers in 100% of its rows and text in the rest: it is one-hot encoded"), and every
    later score was refused: "feature 'flag' must be text, as the model was trained on".
    Kept as true/false (``bool``) and posted as 0/1 ints or floats, likewise."""
    full = linear_frame(2, 48)
    full["flag"] = (full.t % 3 == 0).astype(kept)
    spec = spec_dict(features=["x0", "x1", "flag"], validation={"strategy": "last", "size": 8})
    old, new = full[full.t < 40], full[full.t >= 40].copy()
    new["flag"] = new["flag"].astype(posted)
    train_root = tmp_path / "reg"
    mm.train(spec, old, registry=train_root, backend="local")
    summary = mm.train(spec, new, registry=train_root, backend="local", append=True)
    assert summary.run.n_trained == 2 and not summary.run.options.get("warnings")
    with Registry.open(train_root) as reg:
        v2 = reg.get_version("pid=1", 2)
        assert v2.schema.categorical == []
        loaded = reg.load_model("pid=1", version=2)
        as_ints = loaded.predict(new.assign(flag=new.flag.astype("int64")))
    as_posted = mm.score(new, train_root, alias=None, backend="local")
    assert np.isfinite(as_ints).all() and len(as_posted) == len(new)
