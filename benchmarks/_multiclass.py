"""``classification.py --panel visits``: per-user classification of three classes, one rare.

Users × few visits, each ending in ``browse``, ``buy`` or ``leave``. Most users browse about
as often as each other and almost never buy; 4 % are buyers who mostly buy. Training rows per
user are few (3 + a geometric number, median ~9: about half the users are below ``min_rows``
and get a smoothed constant), and 5 more visits per user are held out. One feature nudges
leaving for everyone. The shape the per-class prior strength (``manymodels.classes
.class_strengths``) is for: one pooled Dirichlet strength, set by the common classes, drowned
the rare one for the users who favour it.

Scored per group of users (all; those below ``min_rows``; those whose training rows hold one
class; and by what each user's version chose): the median over users of log loss and Brier
score (summed over classes) on their held-out visits, and pooled over the group's visits the
log loss and the accuracy of the most probable class.

One more method is scored that manymodels does not serve (a diagnosis, ``prior shifted``):
the fallback model's probabilities reweighted, per user, by that user's smoothed constant over
the table's rates, ``p(c|x) ∝ p_fallback(c|x) · q_c / r_c`` — the pooled model as the prior a
user's own class counts shift (Saerens et al. 2002's prior-shift adjustment), rather than the
table's constant rates that ``too_few_rows`` and the naive candidate smooth toward.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from manymodels.candidates import ConstantProbabilityClassifier
from manymodels.classes import class_prior
from manymodels.partition import FALLBACK_KEY
from manymodels.registry.client import Registry
from manymodels.training.classify import aligned_proba, over_classes

CLASSES = np.array(["browse", "buy", "leave"], dtype=object)
TEST_ROWS, MIN_ROWS = 5, 10


def visits(users: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Training rows, held-out rows and the spec."""
    rng = np.random.default_rng(seed)
    n = 2 + rng.geometric(1 / 8, users) + TEST_ROWS  # ≥ 3 training rows each
    buyer = rng.random(users) < 0.04
    rates = rng.dirichlet(60 * np.array([0.695, 0.005, 0.30]), users)
    rates[buyer] = rng.dirichlet(10 * np.array([0.15, 0.75, 0.10]), int(buyer.sum()))
    user = np.repeat(np.arange(users), n)
    x1 = rng.standard_normal(len(user))
    p = rates[user] * np.exp(np.outer(x1, [0.0, 0.0, 0.4]))  # x1 nudges leaving
    p /= p.sum(axis=1, keepdims=True)
    ended = (rng.random(len(user))[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
    visit = np.concatenate([np.arange(k) for k in n])
    df = pd.DataFrame({"user": user, "visit": visit, "x1": x1, "ended": CLASSES[ended]})
    held = visit >= np.repeat(n - TEST_ROWS, n)
    return df[~held], df[held], spec()


def pooled_logistic() -> Any:
    """A logistic regression on ``x1`` alone, for a ``scope = "global"`` candidate: the key
    column a global model is handed (the user, a category) is dropped, so it is the pooled
    model the diagnosis shifts, fitted as a global candidate is (each fold's rows held out)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(ColumnTransformer([("x", StandardScaler(), ["x1"])]), LogisticRegression())


POOLED_LR = {"estimator": "benchmarks._multiclass:pooled_logistic", "scope": "global"}
"""The variant ``+ pooled global LR``: ``pooled_logistic`` as the run's global candidate."""

GLOBAL_LR = {
    "estimator": "sklearn.linear_model.LogisticRegression",
    "scope": "global",
    "scale": True,
    "params": {"C": 1.0},
}
"""The variant ``+ global LR``: one pooled logistic regression over every user's rows (the
user as a one-hot category), which each user may choose as it is or shifted to its own rates
(``manymodels.prior_shift``), and which users below ``min_rows`` are served shifted."""


def spec(with_global: dict[str, Any] | None = None) -> dict[str, Any]:
    """The panel's spec: local logistic regressions, and the global candidate ``with_global``
    (``GLOBAL_LR``, ``POOLED_LR``)."""
    local = {
        "estimator": "sklearn.linear_model.LogisticRegression",
        "scale": True,
        "params": {"C": [0.1, 1.0]},
    }
    return {
        "name": "visits",
        "task": "classification",
        "partition_by": ["user"],
        "target": "ended",
        "time_column": "visit",
        "features": ["x1"],
        "metric": "neg_log_loss",
        "min_rows": MIN_ROWS,
        "validation": {"strategy": "last", "size": 5},
        "selection": {"prior_shifted": with_global is not None},  # the shift is asked for
        "candidates": [local, with_global] if with_global else [local],
    }


VARIANTS = {"manymodels_global": GLOBAL_LR, "manymodels_pooled": POOLED_LR}
"""Each variant's name (a method of ``score``) and the global candidate its spec adds."""


def score(
    root: Any, train_df: pd.DataFrame, test: pd.DataFrame, variants: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Each method's probabilities of every held-out visit, scored per group of users;
    ``variants``: the registry of each ``VARIANTS`` run, scored as one more method (its
    choices counted apart: ``choices_<name>``)."""
    rows = train_df.groupby("user").size()
    kinds = train_df.groupby("user")["ended"].nunique()
    rate = train_df["ended"].value_counts(normalize=True).reindex(CLASSES).to_numpy()
    shifts = _prior_shifts(train_df)
    probas: dict[str, list[np.ndarray]] = {
        "manymodels": [], "global": [], "base": [], "shifted": []}  # fmt: skip
    truth, users, chose = [], [], []
    chose_in: dict[str, list[str]] = {}
    for name, where in (variants or {}).items():
        probas[name], chose_in[name] = [], []
        with Registry(where) as reg:
            for key, held in test.groupby("user", sort=True):
                loaded = reg.load_model(f"user={key}")
                chosen = loaded.version.selection.chosen
                small = loaded.version.validation.get("too_few_rows") or {}
                served = f"{chosen} ({small['served']})" if "served" in small else chosen
                chose_in[name].append(served)
                answered = np.asarray(loaded.classes, dtype=object)
                p = loaded.predict_proba(held[["x1"]])
                probas[name].append(over_classes(p, answered, CLASSES))
    with Registry(root) as reg:
        fallback = reg.load_model(FALLBACK_KEY).model
        for key, held in test.groupby("user", sort=True):
            X = held[["x1"]]
            truth.append(np.searchsorted(CLASSES, held["ended"].to_numpy()))
            users.append(key)
            probas["global"].append(aligned_proba(fallback, X.to_numpy(), CLASSES))
            probas["base"].append(np.tile(rate, (len(held), 1)))
            shifted = probas["global"][-1] * shifts[key]
            probas["shifted"].append(shifted / shifted.sum(axis=1, keepdims=True))
            loaded = reg.load_model(f"user={key}")  # every user has one: ≥ 3 training rows
            chose.append(loaded.version.selection.chosen)
            answered = np.asarray(loaded.classes, dtype=object)
            probas["manymodels"].append(over_classes(loaded.predict_proba(X), answered, CLASSES))
    n_rows = rows.loc[users].to_numpy()
    groups = {
        "all": np.ones(len(users), dtype=bool),
        f"< {MIN_ROWS} rows": n_rows < MIN_ROWS,
        "one class": kinds.loc[users].to_numpy() == 1,
    }
    choices = np.asarray(chose)
    by_choice = {f"chose {c}": choices == c for c in sorted(set(chose))}
    return (
        {
            name: {g: _figures(ps, truth, mask) for g, mask in groups.items()}
            for name, ps in probas.items()
        }
        | {
            "sizes": {g: int(mask.sum()) for g, mask in groups.items()},
            "choices": {
                g: {
                    "users": int(mask.sum()),
                    "median_rows": float(np.median(n_rows[mask])),
                    **{name: _figures(ps, truth, mask) for name, ps in probas.items()},
                }
                for g, mask in by_choice.items()
            },
        }
        | {
            f"choices_{name}": {c: chose.count(c) for c in sorted(set(chose))}
            for name, chose in chose_in.items()
        }
    )


def _prior_shifts(train_df: pd.DataFrame) -> dict[Any, np.ndarray]:
    """Per user, its smoothed constant over the table's rates (``q_c / r_c``): the constant
    manymodels gives a user below ``min_rows``, with the run's per-class strengths."""
    ordered = train_df.sort_values(["user", "visit"], kind="stable")
    sizes = ordered.groupby("user", sort=True).size()
    offsets = np.concatenate([[0], np.cumsum(sizes.to_numpy())])
    y = ordered["ended"].to_numpy()
    prior = class_prior(y, offsets)
    m = list(prior.strengths) if prior.strengths is not None else prior.strength
    assert m is not None and list(prior.classes) == list(CLASSES)
    out = {}
    for i, key in enumerate(sizes.index):
        const = ConstantProbabilityClassifier(prior.labels, prior.rates.tolist(), m)
        const.fit(None, y[offsets[i] : offsets[i + 1]])
        out[key] = const.proba_ / prior.rates
    return out


def _figures(ps: list[np.ndarray], truth: list[np.ndarray], mask: np.ndarray) -> dict[str, float]:
    eps = np.finfo(np.float64).eps
    per_ll, per_brier, hits, lls = [], [], [], []
    for p, y, keep in zip(ps, truth, mask, strict=True):
        if not keep:
            continue
        picked = np.clip(p[np.arange(len(y)), y], eps, 1.0)
        onehot = np.eye(len(CLASSES))[y]
        per_ll.append(float(-np.mean(np.log(picked))))
        per_brier.append(float(np.mean(np.sum((p - onehot) ** 2, axis=1))))
        lls.extend((-np.log(picked)).tolist())
        hits.extend((p.argmax(axis=1) == y).tolist())
    return {
        "log_loss": float(np.median(per_ll)),
        "brier": float(np.median(per_brier)),
        "pooled_log_loss": float(np.mean(lls)),
        "accuracy": float(np.mean(hits)),
    }


def report(figures: dict[str, Any], seconds: float, users: int) -> list[list[Any]]:
    """The panel's table rows: a row per method and group of users."""
    labels = {"manymodels": "manymodels (local)", "global": "fallback model alone",
              "base": "base rate", "shifted": "prior shifted (diagnosis)",
              "manymodels_global": "manymodels + global LR (user one-hot)",
              "manymodels_pooled": "manymodels + pooled global LR (x1 only)"}  # fmt: skip
    out = []
    for name, label in labels.items():
        if name not in figures:
            continue
        for group, f in figures[name].items():
            out.append(
                [f"{users:,} users, 3 classes", label, f"{group} ({figures['sizes'][group]:,})",
                 f["log_loss"], f["brier"], f["pooled_log_loss"], f"{f['accuracy']:.1%}"]
            )  # fmt: skip
    return out


def report_choices(figures: dict[str, Any]) -> list[list[Any]]:
    """Rows per choice of the users' versions: how many, their median training rows, and the
    median / pooled log loss of manymodels, the fallback and the prior-shifted fallback."""
    out = []
    for group, f in figures["choices"].items():
        out.append(
            [group, f"{f['users']:,}", f"{f['median_rows']:.0f}",
             *(f"{f[m]['log_loss']:.3f} / {f[m]['pooled_log_loss']:.3f}"
               for m in ("manymodels", "global", "shifted"))]
        )  # fmt: skip
    return out
