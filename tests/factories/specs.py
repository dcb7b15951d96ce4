"""Specs the tests train: dicts over the samples' and synthetic frames' columns, spec files' text.

One place for each spec shape, so that a change to what a spec takes is made once for every test.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from typer.testing import Result


RIDGE = "sklearn.linear_model.Ridge"


# The store-sales sample's spec the router and explain tests train: one scaled Ridge, the
# last 8 weeks validate. A test that needs another name writes ``{**SALES_SPEC, "name": …}``.
SALES_SPEC: dict[str, Any] = {
    "name": "router-test",
    "partition_by": ["store", "brand"],
    "target": "units",
    "time_column": "week",
    "features": ["price", "deal", "feat"],
    "min_rows": 20,
    "validation": {"strategy": "last", "size": 8},
    "candidates": [{"estimator": RIDGE, "scale": True, "params": {"alpha": [1.0]}}],
}


def synthetic_ridge_toml(name: str) -> str:
    """A spec file's text over ``samples.synthetic()`` columns: a Ridge alpha grid, as the
    command-line trials (kill -9, SIGSTOP) train it."""
    return f"""
name = "{name}"
partition_by = ["pid"]
target = "y"
time_column = "t"
[[candidates]]
estimator = "sklearn.linear_model.Ridge"
params = {{ alpha = [0.1, 1.0, 10.0] }}
"""


def sales_toml(
    name: str,
    more: str = "",
    *,
    estimator: str = RIDGE,
    features: Sequence[str] | None = ("price", "deal", "feat"),
    **top: str | float,
) -> str:
    """A spec file's text over ``samples.store_sales()`` columns, as ``SALES_SPEC`` (a Ridge per
    store and brand, the last 8 weeks validate) without its scaling and grid; ``more`` follows
    the candidate's ``estimator`` line: its ``params``, then further tables (``[promotion]``,
    ``[schedule]`` …). ``features=None`` writes no features list (every other column is one);
    ``top`` adds top-level keys (``bad_rows="drop"``). Has no braces, so a caller may
    ``.format`` its own into ``more``."""
    listed = f"features = {json.dumps(list(features))}\n" if features is not None else ""
    keys = "".join(f"{key} = {json.dumps(value)}\n" for key, value in top.items())
    return (
        f'\nname = "{name}"\n'
        """partition_by = ["store", "brand"]
target = "units"
time_column = "week"
"""
        + listed
        + "min_rows = 20\n"
        + keys
        + f"""[validation]
strategy = "last"
size = 8
[[candidates]]
estimator = "{estimator}"
"""
        + more
    )


def sales_files(
    tmp_path: Path, spec_text: str, *, n_stores: int = 2, index: bool = False
) -> tuple[Path, Path, Path]:
    """``tmp_path``'s ``spec.toml`` (``spec_text``, a ``sales_toml``), ``sales.csv`` (the
    ``store_sales`` sample of ``n_stores`` stores; ``index=True`` writes pandas' index as an
    unnamed first column) and ``registry`` (not made): what a command-line run is given."""
    from manymodels.samples import store_sales

    spec, data = tmp_path / "spec.toml", tmp_path / "sales.csv"
    spec.write_text(spec_text)
    store_sales(n_stores=n_stores).to_csv(data, index=index)
    return spec, data, tmp_path / "registry"


def train_cli(
    tmp_path: Path, spec_text: str, frame: pd.DataFrame, *args: str
) -> tuple[Result, Path]:
    """``manymodels train`` through the CLI runner, of ``frame`` (``tmp_path``'s ``data.csv``,
    written without its index) under ``spec_text`` (``spec.toml``) into ``tmp_path``'s
    ``reg``, with any further ``args``: the result, its exit code unchecked (a test of a
    refusal reads it), and the registry. What a test of what a run over its own frame says
    would otherwise build by hand: three files, and the command that names them."""
    from typer.testing import CliRunner

    from manymodels.cli import app

    spec, data, registry = tmp_path / "spec.toml", tmp_path / "data.csv", tmp_path / "reg"
    spec.write_text(spec_text)
    frame.to_csv(data, index=False)
    command = ["train", str(spec), str(data), "--registry", str(registry), *args]
    return CliRunner().invoke(app, command), registry


def spec_dict(**overrides: Any) -> dict[str, Any]:
    """A minimal, valid regression spec over ``synthetic()`` columns, Ridge only."""
    spec: dict[str, Any] = {
        "name": "test",
        "partition_by": ["pid"],
        "target": "y",
        "time_column": "t",
        "candidates": [{"estimator": RIDGE}],
    }
    spec.update(overrides)
    return spec


DECIDED = {"threshold": "cost", "cost": {"fp": 1, "fn": 1000}}  # a missed failure costs more


def pumps_spec(**overrides: Any) -> dict[str, Any]:
    """The ``sensor_readings`` sample's pumps as a binary classifier per asset (will it fail
    within 24 h?): two features, a LogisticRegression, the last quarter validates."""
    return {
        "name": "pumps",
        "task": "classification",
        "partition_by": ["asset"],
        "target": "failure_within_24h",
        "time_column": "ts",
        "features": ["temperature", "vibration"],
        "metric": "neg_log_loss",
        "validation": {"strategy": "last", "size": 0.25},
        "candidates": [{"estimator": "sklearn.linear_model.LogisticRegression"}],
        **overrides,
    }


LOGISTIC = {"estimator": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": [500]}}


def labels_spec(
    name: str, key: str, target: str, features: list[str], **overrides: Any
) -> dict[str, Any]:
    """A classifier per ``key`` value for the label-reading tests (what a CSV's labels train
    as): a LogisticRegression scored by accuracy on a quarter held out, every version
    promoted, so a test sees the classes its rows were read as."""
    return {
        "name": name,
        "task": "classification",
        "partition_by": [key],
        "target": target,
        "features": features,
        "metric": "accuracy",
        "min_rows": 20,
        "candidates": [LOGISTIC],
        "validation": {"strategy": "holdout", "size": 0.25},
        "promotion": {"policy": "always"},
        **overrides,
    }


def churn_spec(**overrides: Any) -> dict[str, Any]:
    """A LogisticRegression per user of ``churn_frame``'s ``label`` from ``x1`` and ``x2``,
    scored by accuracy on 30% held out (seed 0)."""
    return {
        "name": "churn",
        "task": "classification",
        "partition_by": ["user"],
        "target": "label",
        "features": ["x1", "x2"],
        "metric": "accuracy",
        "min_rows": 20,
        "seed": 0,
        "validation": {"strategy": "holdout", "size": 0.3},
        "candidates": [
            {"estimator": "sklearn.linear_model.LogisticRegression", "params": {"C": [1.0]}}
        ],
        **overrides,
    }


# every numeric reading of the ``sensor_readings`` sample, for a pumps spec that uses them all
SENSORS = ["temperature", "vibration", "pressure", "rpm", "hours_since_service"]


def users_spec(**overrides: Any) -> dict[str, Any]:
    """The ``user_activity`` sample's minutes per user: a scaled Ridge over a categorical
    feature (``plan``) fitted on a frame, the last week validates."""
    return {
        "name": "users",
        "partition_by": ["user_id"],
        "target": "minutes_active",
        "time_column": "day",
        "features": ["plan", "sessions", "pages", "notifications", "weekend"],
        "categorical": ["plan"],
        "validation": {"strategy": "last", "size": 7},
        "candidates": [{"estimator": "sklearn.linear_model.Ridge", "scale": True}],
        **overrides,
    }
