"""The one spec's process CPU time on one accuracy panel, in process, and what it forecast.

    python benchmarks/one_spec_cpu.py pizzaplace one OUT.pkl [--profile OUT.prof]
    python benchmarks/one_spec_cpu.py pizzaplace first_last OUT.pkl
    python benchmarks/one_spec_cpu.py --compare BEFORE.pkl AFTER.pkl
    python benchmarks/one_spec_cpu.py us_employment one OUT.pkl --mlforecast

Trains ``accuracy.py``'s one spec (``one``), or its row with ``global_refit = false`` and
``global_refit_last = 1`` (``first_last``), on a panel's training split with
``backend="local"`` (no Ray: its start-up and task hops are not ours to cut here), forecasts
its test periods, and prints the process CPU seconds of train + ``forecast`` — not wall
seconds: the machine may be shared, CPU seconds and shares stay meaningful. It saves the
forecast frame and each partition's production version (number, estimator, params,
transform, score, validation record) to OUT.pkl. ``--compare`` checks two such files equal
frame to frame (``check_exact``): a change that claims the same forecasts is run before and
after, on every panel. ``--profile`` writes cProfile's stats with a process-CPU timer.
Needs the bench dependencies (``pip install -e '.[bench]'``) and the clone under test on
``PYTHONPATH``. ``--mlforecast`` times ``accuracy.py``'s mlforecast run with intervals in
CPU seconds too, then ours warm, and prints the ratio of the two.
"""

from __future__ import annotations

import argparse
import cProfile
import pickle
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import accuracy
from _panels import PANELS

ONE_SPEC: dict[str, Any] = accuracy.mm_variants("one-spec")[0]  # accuracy.py's one spec row
VARIANTS = {
    "one": ONE_SPEC,
    "first_last": {**ONE_SPEC, "global_refit": False, "global_refit_last": 1},
}


def run(panel_name: str, variant: str, out: Path, profile: Path | None) -> float:
    import manymodels as mm
    from manymodels.forecasting import forecast

    panel = PANELS[panel_name]()
    train, test = panel.split()
    spec = accuracy.mm_spec(panel, **VARIANTS[variant])
    columns = accuracy.mm_features(panel)
    data = train[[*panel.keys, "ds", "y", *columns]]
    future = test[[*panel.keys, "ds", *columns]]
    registry = Path(tempfile.mkdtemp(prefix="one-spec-cpu-")) / "registry"

    def both() -> pd.DataFrame:
        mm.train(spec, data, registry=registry, backend="local")
        return forecast(registry, horizon=panel.h, future=future)

    start = time.process_time()
    if profile is not None:
        profiler = cProfile.Profile(time.process_time)
        fc = profiler.runcall(both)
        profiler.dump_stats(profile)
    else:
        fc = both()
    cpu = time.process_time() - start
    reg = mm.Registry.open(registry)
    try:
        chosen = [
            (
                str(part.key),
                part.production.version,
                part.production.estimator,
                repr(part.production.params),
                part.production.schema.transform_kind,
                part.production.score,
                repr(part.production.validation),  # every transform's score, too
            )
            for part in reg.list_partitions(limit=1_000_000)
            if part.production is not None
        ]
    finally:
        reg.close()
    columns_ = ["key", "version", "estimator", "params", "transform", "score", "validation"]
    versions = pd.DataFrame(chosen, columns=columns_).sort_values("key").reset_index(drop=True)
    out.write_bytes(pickle.dumps({"forecast": fc, "versions": versions}))
    print(f"{panel_name} {variant} cpu={cpu:.3f} s ({mm.__file__})")
    return cpu


def compare(before: Path, after: Path) -> None:
    a, b = pickle.loads(before.read_bytes()), pickle.loads(after.read_bytes())
    pd.testing.assert_frame_equal(a["forecast"], b["forecast"], check_exact=True)
    pd.testing.assert_frame_equal(a["versions"], b["versions"], check_exact=True)
    print(f"equal: {before} {after} ({len(a['forecast'])} rows, {len(a['versions'])} versions)")


def mlforecast_cpu(panel_name: str) -> float:
    """Process CPU seconds of ``accuracy.py``'s denominator, mlforecast's LightGBM run with
    conformal intervals, on the same panel in this process (its point run first, which also
    imports LightGBM and mlforecast). CPU, not wall: its LightGBM may use both cores, ours runs
    one thread a task; the ratio of CPU seconds is the work each does."""
    panel = PANELS[panel_name]()
    train, test = panel.split()
    cpu: list[float] = []
    timed = accuracy._timed

    def counted(run: Any) -> tuple[float, Any]:
        start = time.process_time()
        try:
            return timed(run)
        finally:
            cpu.append(time.process_time() - start)

    accuracy._timed = counted
    try:
        accuracy.mlforecast_lgbm(panel, train, test)
    finally:
        accuracy._timed = timed
    print(f"{panel_name} mlforecast cpu: point {cpu[0]:.3f} s, with intervals {cpu[1]:.3f} s")
    return cpu[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    p.add_argument("panel", nargs="?", choices=sorted(PANELS))
    p.add_argument("variant", nargs="?", choices=sorted(VARIANTS))
    p.add_argument("out", nargs="?", type=Path)
    p.add_argument("--profile", type=Path)
    p.add_argument(
        "--mlforecast",
        action="store_true",
        help="time mlforecast's run with intervals first, then ours twice (the second, warm, "
        "is saved and compared): prints the CPU ratio",
    )
    args = p.parse_args(argv)
    if args.compare:
        compare(*args.compare)
        return 0
    if not (args.panel and args.variant and args.out):
        p.error("PANEL VARIANT OUT are required without --compare")
    if not args.mlforecast:
        run(args.panel, args.variant, args.out, args.profile)
        return 0
    theirs = mlforecast_cpu(args.panel)
    run(args.panel, args.variant, args.out, None)  # cold: this process's first imports
    ours = run(args.panel, args.variant, args.out, args.profile)
    print(f"ratio: {args.panel}:{args.variant}_cpu/mlf_intervals_cpu={ours / theirs:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
