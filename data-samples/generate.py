"""Regenerate the bundled sample CSVs, or write a large synthetic set for benchmarks.

    python data-samples/generate.py samples
    python data-samples/generate.py synthetic --partitions 10000 --rows 100 --out /tmp/big.parquet

The CSVs are checked against a fresh generation by tests/test_samples.py, so regenerate
them (and commit the result) whenever manymodels/samples.py changes.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from manymodels.samples import sensor_readings, store_sales, synthetic, user_activity

HERE = Path(__file__).resolve().parent
SAMPLES: dict[str, Callable[[], pd.DataFrame]] = {
    "store_sales": store_sales,
    "sensor_readings": sensor_readings,
    "user_activity": user_activity,
}


FORMATS = (".csv", ".parquet", ".pq")


def write(frame: pd.DataFrame, out: Path) -> None:
    """Write CSV or Parquet, chosen by the file extension."""
    if out.suffix not in FORMATS:
        raise SystemExit(f"unknown output format {out.suffix!r}: use .csv or .parquet")
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".csv":
        frame.to_csv(out, index=False)
    else:
        frame.to_parquet(out, index=False)


def cmd_samples(args: argparse.Namespace) -> None:
    for name, make in SAMPLES.items():
        out = args.out_dir / f"{name}.csv"
        frame = make()
        write(frame, out)
        print(f"{out}: {len(frame):,} rows, {out.stat().st_size / 1024:.0f} KB")


def cmd_synthetic(args: argparse.Namespace) -> None:
    if args.out.suffix not in FORMATS:  # fail before spending time generating
        raise SystemExit(f"unknown output format {args.out.suffix!r}: use .csv or .parquet")
    start = time.perf_counter()
    frame = synthetic(
        args.partitions,
        args.rows,
        n_features=args.features,
        task=args.task,
        seed=args.seed,
        key_name=args.key_name,
    )
    made = time.perf_counter() - start
    write(frame, args.out)
    print(
        f"{args.out}: {args.partitions:,} partitions x {args.rows} rows = {len(frame):,} rows "
        f"(generated in {made:.2f}s, written in {time.perf_counter() - start - made:.2f}s)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("samples", help="regenerate the three sample CSVs")
    p.add_argument("--out-dir", type=Path, default=HERE)
    p.set_defaults(func=cmd_samples)
    p = sub.add_parser("synthetic", help="write a large synthetic set (.csv or .parquet)")
    p.add_argument("--partitions", type=int, default=10_000)
    p.add_argument("--rows", type=int, default=100)
    p.add_argument("--features", type=int, default=5)
    p.add_argument("--task", choices=["regression", "classification"], default="regression")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--key-name", default="pid")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_synthetic)
    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
