"""``[decision] positive``: which of two text classes a threshold is about.

Before, the positive class was always the greater of the two: with labels "fraud" and "ok",
"ok" — so ``cost = { fp = 1, fn = 20 }`` priced a missed *ok* at 20 alarms, and the
thresholds, labels and monitoring all turned on the probability of the wrong class, with no
way to say otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from manymodels.exceptions import SpecError
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.scoring import score
from manymodels.spec import Spec
from serving.local import running_server
from serving.settings import Settings


def spec(**decision: Any) -> dict[str, Any]:
    return {
        "name": "payments",
        "task": "classification",
        "partition_by": ["shop"],
        "target": "verdict",
        "time_column": "day",
        "features": ["amount", "hour"],
        "metric": "neg_log_loss",
        "min_rows": 10,
        "validation": {"strategy": "last", "size": 15},
        "candidates": [{"estimator": "sklearn.linear_model.LogisticRegression"}],
        "decision": {"threshold": "cost", "cost": {"fp": 1, "fn": 20}, **decision},
    }


def payments() -> pd.DataFrame:
    """Three shops × 60 days; fraud is rare (~15 %) and comes with large amounts."""
    rng = np.random.default_rng(0)
    frames = []
    for shop in range(3):
        amount, hour = rng.standard_normal(60), rng.standard_normal(60)
        fraud = amount + 0.5 * rng.standard_normal(60) > 1.0
        verdict = np.where(fraud, "fraud", "ok")
        frames.append(
            pd.DataFrame(
                {
                    "shop": shop,
                    "day": np.arange(60),
                    "amount": amount,
                    "hour": hour,
                    "verdict": verdict,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def test_the_named_positive_class_is_the_one_thresholded(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    table = payments()
    train(spec(positive="fraud"), table, root, backend="local")
    with Registry(root) as reg:
        version = reg.get_version("shop=0")
        decision = version.feature_schema["decision"]
        assert decision["positive"] == "fraud"
        assert decision["threshold"] < 0.5  # a missed fraud costs 20 alarms: flag early
        model = reg.load_model("shop=0")
        rows = table[table["shop"] == 0][["amount", "hour"]]
        p_fraud = model.predict_proba(rows)[:, list(model.classes).index("fraud")]
    scored = score(table, root)
    shop0 = scored[scored["shop"] == 0]
    expected = np.where(p_fraud >= decision["threshold"], "fraud", "ok")
    assert shop0["decision_label"].tolist() == expected.tolist()
    with running_server(Settings(registry=root)) as url:
        answer = httpx.post(
            f"{url}/v1/partitions/shop=0/predict?probabilities=true",
            json={"rows": rows.to_dict("records")},
        ).json()
    assert answer["labels"] == expected.tolist()
    assert [row["fraud"] for row in answer["probabilities"]] == pytest.approx(p_fraud)


@pytest.mark.parametrize("positive", ["frud", 1, True])
def test_a_positive_class_the_table_lacks_is_refused_before_any_work(
    tmp_path: Path, positive: Any
) -> None:
    root = tmp_path / "registry"
    with pytest.raises(SpecError, match=r"\[decision\] positive = .* is not one of the table's"):
        train(spec(positive=positive), payments(), root, backend="local")
    assert not (root / "registry.db").exists()  # refused before the registry was made


def test_a_positive_class_is_matched_by_value_and_leaves_old_hashes_alone() -> None:
    """``positive = 1`` is the class 1.0 of labels read with blanks; a spec without
    ``positive`` keeps the hash it had."""
    from manymodels.classes import class_prior
    from manymodels.training.classify import positive_at

    rule = Spec.from_dict({**spec(positive=1), "target": "y"}).decision
    assert rule is not None
    assert positive_at(rule, class_prior(np.array([0.0, 1.0, 1.0]))) == 1
    assert positive_at(rule, class_prior(np.array([1, 2]))) == 0
    plain = Spec.from_dict(spec())
    assert plain.spec_hash == Spec.from_dict(spec(positive=None)).spec_hash
    assert plain.spec_hash != Spec.from_dict(spec(positive="fraud")).spec_hash


@pytest.mark.parametrize(
    ("positive", "expected"), [("true", True), ("FALSE", False), ("1", True), ("0", False)]
)
def test_a_positive_class_of_booleans_is_named_in_any_case(
    tmp_path: Path, positive: str, expected: bool
) -> None:
    """``positive = "true"`` on labels True/False was refused ("not one of the table's
    classes (False, True)") where ``"True"`` was taken: TOML and JSON spell it ``true``;
    and ``"1"`` was refused where the number 1 was taken."""
    from factories import churn_frame, churn_spec

    root = tmp_path / "registry"
    rule = {"threshold": "f1", "positive": positive}
    train(churn_spec(target="churn", decision=rule), churn_frame(seed=0, noise=0.5, labels="bool"),
          root, backend="local")  # fmt: skip
    with Registry.open(root) as reg:
        decision = reg.get_version("user=u0").feature_schema["decision"]
    assert decision["positive"] is expected
