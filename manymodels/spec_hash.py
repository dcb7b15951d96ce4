"""A spec's hash: sha256 of its canonical JSON form, recorded with every run so that a resumed
or retrained run can tell whether it is the same job.

Options added after the first release are left out while they hold their default, so a spec
that does not use them keeps the hash it had (and its runs stay resumable): every new option
is listed here with its default.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from manymodels.spec_sections import Artifacts, Selection


def canonical_hash(data: dict[str, Any]) -> str:
    """The hash of a spec's ``model_dump(mode="json")`` (changed in place): equal specs hash
    equal whatever their formatting."""
    data.pop("schedule", None)  # when it trains is not what it trains
    for cand in data.get("candidates", []):  # added later: a local candidate keeps its hash
        if cand.get("scope") == "local":
            del cand["scope"]
    for option, default in _later_defaults().items():
        if data.get(option) == default:
            data.pop(option, None)
    for table, defaults in _later_sub_defaults().items():
        for option, default in defaults.items():
            if isinstance(data.get(table), dict) and data[table].get(option) == default:
                del data[table][option]
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _later_defaults() -> dict[str, Any]:
    """Options added after the first release, with their defaults in JSON form."""
    return {
        "calendar": None,
        "lags": None,
        "rolling": None,
        "changes": None,
        "target_transform": "none",
        "missing_target": "drop",
        "bad_rows": "error",
        "selection": Selection().model_dump(mode="json"),
        "decision": None,
        "calibration": None,
        "artifacts": Artifacts().model_dump(mode="json"),
        "intervals": None,
        "holidays": None,
    }


def _later_sub_defaults() -> dict[str, dict[str, Any]]:
    """Options added to a table after the table itself, with their defaults in JSON form: a
    table that sets only its older options keeps its hash."""
    return {
        "selection": {
            "fallback_metric": "log_loss",
            "naive_margin": 0.1,
            "global_margin": 0.0,
            "transform_margin": 0.1,
            "prior_rows": "auto",
            "ensemble": "none",
            "min_class_rows": 5,
            "too_few_rows": "auto",
            "prior_shifted": False,
        },
        "validation": {"global_refit": True, "global_refit_last": 0, "step_size": None},
        "decision": {"positive": None},
        "intervals": {"pool_partitions": False},
    }
