"""How much of the one spec's global LightGBM fits is ``Dataset`` construction (#12, 29th pass).

    python benchmarks/lgbm_construct.py us_employment [--repeat 3]

Trains ``accuracy.py``'s one spec through ``one_spec_cpu.run`` (in process,
``backend="local"``: cold, then warm) with ``lightgbm.sklearn.train`` wrapped so that each
global fit's ``Dataset`` is constructed first and timed apart from ``lgb.train`` on it (process
CPU seconds, the same params and data manymodels passes). Then, on the captured inputs, best of
``--repeat``: construction; boosting as run (the one spec's ``objective = "l1"``); boosting
with ``l2`` (what l1's leaf medians cost); and the folds' construction with
``reference=`` the refit's all-rows ``Dataset`` (bin mappers reused, rows still binned) — the
most that reusing bins across the run's fits could save. CPU, not wall: the machine may be
shared. Needs the bench dependencies and the clone under test on ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import one_spec_cpu
from _panels import PANELS


def best(repeat: int, run: Callable[..., Any], *args: Any) -> float:
    """The least process CPU seconds of ``repeat`` calls ``run(*args)`` (noise only adds)."""
    times = []
    for _ in range(repeat):
        start = time.process_time()
        run(*args)
        times.append(time.process_time() - start)
    return min(times)


def in_situ(panel: str) -> tuple[float, list[dict[str, Any]]]:
    """The warm run's CPU and, per global LightGBM fit, its input and its two CPU parts."""
    import lightgbm.sklearn as lsk

    fits: list[dict[str, Any]] = []
    train = lsk.train

    def timed(params: dict[str, Any], train_set: Any, *args: Any, **kwargs: Any) -> Any:
        fit = {  # the raw input, before construction frees it (``free_raw_data``)
            "data": train_set.data, "label": train_set.label, "params": dict(params),
            "categorical": train_set.categorical_feature,
            "rounds": kwargs.get("num_boost_round", 100),
        }  # fmt: skip
        start = time.process_time()
        train_set.construct()
        built = time.process_time()
        booster = train(params, train_set, *args, **kwargs)
        fits.append({**fit, "construct": built - start, "boost": time.process_time() - built})
        return booster

    lsk.train = timed
    out = Path(tempfile.mkdtemp(prefix="lgbm-construct-")) / "out.pkl"
    try:
        one_spec_cpu.run(panel, "one", out, None)  # cold: this process's first imports
        fits.clear()
        cpu = one_spec_cpu.run(panel, "one", out, None)
    finally:
        lsk.train = train
    return cpu, fits


def offline(fits: list[dict[str, Any]], repeat: int) -> dict[str, float]:
    """Each part's CPU summed over the fits, best of ``repeat`` each."""
    import lightgbm as lgb

    def construct(fit: dict[str, Any], params: dict[str, Any], reference: Any = None) -> Any:
        return lgb.Dataset(
            fit["data"], fit["label"], params=params, categorical_feature=fit["categorical"],
            reference=reference, free_raw_data=False,
        ).construct()  # fmt: skip

    names = ("construct", "boost l1", "boost l2", "refit construct", "folds construct, reference=")
    parts = dict.fromkeys(names, 0.0)
    for fit in fits:
        params, rounds = fit["params"], fit["rounds"]
        l2 = {**params, "objective": "l2", "metric": ["l2"]}
        parts["construct"] += best(repeat, construct, fit, params)
        parts["boost l1"] += best(repeat, lgb.train, params, construct(fit, params), rounds)
        parts["boost l2"] += best(repeat, lgb.train, l2, construct(fit, l2), rounds)
    refit = max(fits, key=lambda f: len(f["label"]))  # every usable row: the refit's
    reference = construct(refit, refit["params"])
    parts["refit construct"] = best(repeat, construct, refit, refit["params"])
    parts["folds construct, reference="] = sum(
        best(repeat, construct, f, f["params"], reference) for f in fits if f is not refit
    )
    return parts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("panel", choices=sorted(PANELS))
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    cpu, fits = in_situ(args.panel)
    built = sum(f["construct"] for f in fits)
    boosted = sum(f["boost"] for f in fits)
    rows = sorted(len(f["label"]) for f in fits)
    print(
        f"{args.panel}: one spec {cpu:.3f} CPU-s; {len(fits)} LightGBM fits of {rows[0]:,}–"
        f"{rows[-1]:,} rows: construct {built:.3f}, boost {boosted:.3f} "
        f"(construct {built / (built + boosted):.1%} of the fits, the fits "
        f"{(built + boosted) / cpu:.1%} of the run)"
    )
    parts = offline(fits, args.repeat)
    print(
        f"{args.panel} offline, best of {args.repeat}: "
        + ", ".join(f"{k} {v:.3f}" for k, v in parts.items())
    )
    construct = parts["construct"]
    reused = parts["refit construct"] + parts["folds construct, reference="]
    print(
        f"ratio: {args.panel}:construct_share={construct / (construct + parts['boost l1']):.3f} "
        f"l1/l2_boost={parts['boost l1'] / parts['boost l2']:.2f} "
        f"reference_saves_cpu={construct - reused:.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
