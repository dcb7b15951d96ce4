"""Forecast vs actual with interval bands, for a few series of one panel (``accuracy.py --plot``).

One PNG per panel: three series (the first, middle and last id in sorted order, so the choice
never looks at the errors), each with its last training periods, the held-out actuals, the
manymodels forecast with its 80 % and 95 % conformal bands and AutoARIMA's point forecast for
comparison. matplotlib is imported here only, so ``accuracy.py`` runs without it unless asked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

SHOWN = "manymodels one spec"  # the same spec on every panel: the row #12's goal is about
PEER = "AutoARIMA"


def pick_series(ids: list[str], n: int = 3) -> list[str]:
    """The first, middle and last id (sorted): spread over the panel, blind to the errors."""
    ids = sorted(ids)
    if len(ids) <= n:
        return ids
    return [ids[round(i * (len(ids) - 1) / (n - 1))] for i in range(n)]


def plot_panel(
    panel: Any, train: pd.DataFrame, test: pd.DataFrame, results: list[Any], out_dir: Path
) -> Path:
    """Writes ``out_dir/<panel>.png`` and returns its path."""
    import matplotlib

    matplotlib.use("Agg")  # no display on a benchmark machine
    import matplotlib.pyplot as plt

    by_method = {r.method: r.frame for r in results}
    shown = by_method.get(SHOWN)
    if shown is None:
        shown = next(f for m, f in by_method.items() if m.startswith("manymodels"))
    peer = by_method.get(PEER)
    series = pick_series(list(test["unique_id"].unique()))
    fig, axes = plt.subplots(len(series), 1, figsize=(9, 2.6 * len(series)), squeeze=False)
    for ax, uid in zip(axes[:, 0], series, strict=True):
        past = train[train["unique_id"] == uid].tail(4 * panel.h)
        actual = test[test["unique_id"] == uid]
        fc = shown[shown["unique_id"] == uid].sort_values("ds")
        for level, alpha in ((95, 0.18), (80, 0.35)):
            lo, hi = f"yhat-lo-{level}", f"yhat-hi-{level}"
            if lo in fc and hi in fc:
                ax.fill_between(
                    fc["ds"], fc[lo], fc[hi], color="tab:blue", alpha=alpha, label=f"{level} %"
                )
        ax.plot(past["ds"], past["y"], color="black", lw=1, label="training")
        ax.plot(actual["ds"], actual["y"], color="black", lw=1.5, ls=":", label="actual")
        ax.plot(fc["ds"], fc["yhat"], color="tab:blue", lw=1.5, label=SHOWN)
        if peer is not None:
            p = peer[peer["unique_id"] == uid].sort_values("ds")
            ax.plot(p["ds"], p["yhat"], color="tab:orange", lw=1, ls="--", label=PEER)
        ax.set_title(f"{panel.name}: {uid}", fontsize=9, loc="left")
        ax.tick_params(labelsize=8)
    axes[0, 0].legend(fontsize=7, ncol=3, loc="upper left")
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{panel.name}.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
