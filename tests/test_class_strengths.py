"""Per-class prior strengths (``manymodels.classes.class_strengths``): a table of three or
more classes smooths each class by its own empirical-Bayes strength, so a rare class that
some users always pick is not drowned by the common classes' pooled one; two classes keep
the pooled Dirichlet strength and its arithmetic, bit for bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from manymodels.candidates import ConstantProbabilityClassifier
from manymodels.classes import MAX_STRENGTH, MIN_STRENGTH, class_prior
from manymodels.pipeline import train
from manymodels.registry import Registry

CLASSES = np.array(["browse", "buy", "leave"])


def visits(users: int = 400, buyers: float = 0.012, seed: int = 1) -> pd.DataFrame:
    """Users × 15–29 visits, each ending in browse / buy / leave: nearly all users browse 70 %
    of the time and never buy; ~1 % are buyers, buying 96 % of the time. The last user has 23
    visits, every one a "buy"."""
    rng = np.random.default_rng(seed)
    n = rng.integers(15, 30, users)
    n[-1] = 23
    buyer = rng.random(users) < buyers
    labels = []
    for k, b in zip(n[:-1], buyer[:-1], strict=True):
        labels.append(rng.choice(CLASSES, size=k, p=[0.02, 0.96, 0.02] if b else [0.7, 0, 0.3]))
    labels.append(np.full(23, "buy"))
    rows = int(n.sum())
    return pd.DataFrame(
        {
            "user": np.repeat(np.arange(users), n),
            "visit": np.concatenate([np.arange(k) for k in n]),
            "x1": rng.standard_normal(rows),
            "ended": np.concatenate(labels),
        }
    )


def spec(target: str = "ended") -> dict[str, object]:
    return {
        "name": "visits",
        "task": "classification",
        "partition_by": ["user"],
        "target": target,
        "time_column": "visit",
        "features": ["x1"],
        "metric": "neg_log_loss",
        "min_rows": 10,
        "validation": {"strategy": "last", "size": 5},
        "candidates": [{"estimator": "sklearn.linear_model.LogisticRegression"}],
    }


def test_a_user_who_always_buys_is_answered_buy_though_buying_is_rare(tmp_path: Path) -> None:
    """The pooled strength (~35 pseudo-rows here: browse and leave barely vary between users)
    answered the user with 23 of 23 visits "buy" with "browse" (0.415 against 0.401); buying
    alone calls for ~0.02 pseudo-rows."""
    df = visits()
    offsets = np.concatenate([[0], np.cumsum(df.groupby("user").size().to_numpy())])
    summary = train(spec(), df, tmp_path / "reg", backend="local")
    assert summary.run.n_failed == 0, summary.failures
    with Registry.open(tmp_path / "reg") as reg:
        loaded = reg.load_model("user=399")
        record = loaded.version.evaluation["single_class"]
        proba = loaded.predict_proba(df[df.user == 399][["x1"]].head(1))[0]
        answer = loaded.predict(df[df.user == 399][["x1"]].head(1))[0]
        schema = reg.get_version("user=399").feature_schema
    assert isinstance(loaded.model, ConstantProbabilityClassifier)
    assert answer == "buy"  # "browse" with one pooled strength
    assert proba[1] > 0.5 and proba.sum() == pytest.approx(1.0)

    prior = class_prior(df["ended"].to_numpy(), offsets)
    assert prior.strength is not None and prior.strength > 30  # the pooled one: large
    assert prior.strengths is not None
    # buying alone estimates ~0.02 pseudo-rows, held at MIN_STRENGTH's one
    assert prior.strengths[1] == MIN_STRENGTH < 30 < min(prior.strengths[0], prior.strengths[2])
    assert record["prior_rows"] == pytest.approx(list(prior.strengths))
    assert schema["class_prior"]["strengths"] == pytest.approx(list(prior.strengths))

    # two more visits appended (version 2, promoted or not): the user's rows alone would make
    # a one-class prior; the recorded strengths smooth it as the whole table did
    more = df[df.user == 399].tail(2).assign(visit=[23, 24])
    train(spec(), more, tmp_path / "reg", backend="local", append=True)
    with Registry.open(tmp_path / "reg") as reg:
        again = reg.load_model("user=399", 2)
    assert again.version.evaluation["single_class"]["prior_rows"] == pytest.approx(
        list(prior.strengths)
    )
    assert again.predict(more[["x1"]].head(1))[0] == "buy"


def _old_strength(counts: np.ndarray, rates: np.ndarray) -> float:
    """The pooled estimator as it was before per-class strengths (a copy of 405a807's
    ``strength_of_counts``): what binary tables must still get, to the bit."""
    n = counts.sum(axis=1)
    use = n >= 2
    big_p, big_n = int(use.sum()), float(n[use].sum())
    if big_p < 2 or big_n <= big_p:
        return MAX_STRENGTH
    spread = 0.0
    for j, p in enumerate(rates):
        k = counts[use, j]
        spread += float(np.sum((k - n[use] * p) ** 2 / n[use]))
    chance = float(np.sum(rates * (1 - rates)))
    rho = (spread / chance - big_p) / (big_n - big_p)
    rho = min(max(rho, 1 / (MAX_STRENGTH + 1)), 1.0)
    return 1 / rho - 1


@pytest.mark.parametrize("seed", range(4))
def test_binary_tables_get_the_same_probabilities_as_before(seed: int, tmp_path: Path) -> None:
    """One-vs-rest of two classes is the same Beta: a binary table's strength, and every
    single-class and too-few-rows user's probabilities, are those of the pooled Dirichlet."""
    rng = np.random.default_rng(seed)
    n = rng.integers(3, 30, 300)
    rate = rng.beta(0.5, 2.0, len(n)) * (rng.random(len(n)) > 0.2)  # a fifth never click
    y = np.concatenate([rng.random(k) < p for k, p in zip(n, rate, strict=True)]).astype(int)
    offsets = np.concatenate([[0], np.cumsum(n)])
    prior = class_prior(y, offsets)
    counts = np.stack([np.add.reduceat(y == c, offsets[:-1]) for c in (0, 1)], axis=1)
    assert getattr(prior, "strengths", None) is None  # (getattr: this test runs on 405a807 too)
    assert prior.strength == _old_strength(counts, prior.rates)  # to the bit

    df = pd.DataFrame(
        {
            "user": np.repeat(np.arange(len(n)), n),
            "visit": np.concatenate([np.arange(k) for k in n]),
            "x1": rng.standard_normal(len(y)),
            "clicked": y,
        }
    )
    train(spec("clicked"), df, tmp_path / "reg", backend="local")
    m, rates = prior.strength, prior.rates
    constants = 0
    with Registry.open(tmp_path / "reg") as reg:
        for user in range(len(n)):
            model = reg.load_model(f"user={user}").model
            if not isinstance(model, ConstantProbabilityClassifier):
                continue
            constants += 1
            k = counts[user].astype(np.float64)
            old = (k + m * np.asarray(rates.tolist())) / max(n[user] + m, 1e-12)
            assert model.proba_.tolist() == old.tolist()  # to the bit
    assert constants > 50  # single-class and too-few-rows users: most of the constants


def test_per_class_strengths_of_two_classes_are_the_pooled_one() -> None:
    """The estimator itself agrees: each class against the other is the pooled spread."""
    from manymodels.classes import class_strengths

    rng = np.random.default_rng(9)
    counts = rng.integers(0, 20, (200, 2))
    rates = counts.sum(axis=0) / counts.sum()
    pooled = _old_strength(counts, rates)
    assert class_strengths(counts, rates) == pytest.approx([pooled, pooled], rel=1e-12)


def test_a_class_held_always_or_never_leaves_no_partition_certain() -> None:
    """A class each partition holds always or never (40 partitions of 20 rows, a quarter of
    them all "buy") makes the moment estimate of its strength 0: a partition that never held
    it was answered ~1e-18 for it, a certain 0 (a log loss without bound the day it happens).
    The strength is held at one pseudo-row: ~rate / (n + 1)."""
    labels = [np.full(20, "buy") if i % 4 == 0 else np.resize(["browse", "leave"], 20)
              for i in range(40)]  # fmt: skip
    y = np.concatenate(labels)
    offsets = np.arange(0, 20 * 41, 20)
    prior = class_prior(y, offsets)
    assert prior.strengths is not None and min(prior.strengths) == MIN_STRENGTH
    never = ConstantProbabilityClassifier(prior.labels, prior.rates, list(prior.strengths))
    proba = never.fit(np.zeros((20, 1)), labels[1]).predict_proba(np.zeros((1, 1)))[0]
    buy = list(prior.labels).index("buy")
    assert proba[buy] > 0.25 / 21 / 2  # ~rate / (n + 1), renormalised; 1e-18 before
    assert proba.sum() == pytest.approx(1.0)
