"""Constants and helpers shared by the router tests (fixtures live in conftest.py)."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from factories import SALES_SPEC as SALES_SPEC  # re-exported: the router tests import it from here
from factories import job_ended as job_ended  # re-exported, as SALES_SPEC
from factories import open_client as open_client  # re-exported, as SALES_SPEC

from manymodels.registry import Registry
from manymodels.samples import store_sales

TOKEN = "s3cret-admin-token"
SLASH_BRAND = "dominick's/own label"  # a key value with '/', an apostrophe and a space
KEY = "store=2,brand=tropicana"
SLASH_KEY = "store=1,brand=dominick%27s%2Fown%20label"
TWO_VERSIONS = ("store=1,brand=tropicana", "store=3,brand=minute_maid")


def sales() -> pd.DataFrame:
    df = store_sales(n_stores=4)
    df["brand"] = df["brand"].replace({"dominicks": SLASH_BRAND})
    return df


def doubled_rows(store: int, brand: str, n: int) -> list[dict[str, Any]]:
    """The last ``n`` weeks of one partition of ``sales()`` as JSON rows, its units doubled:
    actuals (or retrain rows) far from what its model predicts."""
    df = sales()
    part = df[(df["store"] == store) & (df["brand"] == brand)].tail(n)
    return [
        {"week": str(r.week.date()), "price": r.price, "deal": r.deal, "feat": r.feat,
         "units": r.units * 2.0}
        for r in part.itertuples()
    ]  # fmt: skip


def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


FEATURES = ["price", "deal", "feat"]  # feature_rows' columns, in the sales models' order


def feature_rows(n: int = 3, offset: float = 0.0) -> list[dict[str, Any]]:
    return [
        {"price": 2.0 + 0.25 * i + offset, "deal": i % 2, "feat": int(i % 3 == 0)} for i in range(n)
    ]


def matrix(rows: list[dict[str, Any]], *, nested: bool = False) -> list[dict[str, Any]]:
    """``rows`` as the V2 protocol's one 2-D tensor in ``FEATURES`` order, flat row-major (or
    nested)."""
    data = [[float(r[f]) for f in FEATURES] for r in rows]
    flat = [v for row in data for v in row]
    return [
        {"name": "X", "datatype": "FP64", "shape": [len(rows), 3], "data": data if nested else flat}
    ]


def expected(root: Path, key: str, rows: list[dict[str, Any]], version: int | None = None) -> list:
    """What the registry's own model predicts for these rows (the ground truth)."""
    with Registry.open(root) as reg:
        loaded = reg.load_model(key, version)
    X = np.array([[r["price"], r["deal"], r["feat"]] for r in rows], dtype=np.float64)
    return [float(v) for v in loaded.model.predict(X)]


def ready_line(cmd: list[str]) -> dict[str, object]:
    """The JSON of the router's start-up line ("router ready"), then the router is stopped."""
    lines: list[str] = []
    with subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stderr is not None
        stderr = proc.stderr

        def read() -> None:
            for line in stderr:
                lines.append(line)
                if "router ready" in line:
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout=60)
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)
    ready = next((line for line in lines if "router ready" in line), None)
    assert ready is not None, "".join(lines)
    return dict(json.loads(ready[ready.index("{") :]))
