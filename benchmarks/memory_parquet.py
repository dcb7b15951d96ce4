"""Memory: the training driver's peak RSS stays flat as a Parquet directory grows (#14).

    python benchmarks/memory_parquet.py                  # 1 M vs 10 M rows
    python benchmarks/memory_parquet.py --smoke          # 20 k vs 200 k rows

Both directories hold the same 1,000 partitions (``manymodels.samples.synthetic``: 5 features,
a period time column), 1,000 rows each for 1 M and 10,000 rows each for 10 M: only the rows grow,
so the ratio shows what the *data* costs the driver, apart from what each partition costs (its
key, fingerprint and registry row: measured at 100,000 partitions in ``memory.py``). The data
grows as datasets do, by more files of the same size: files of ``ROWS_PER_FILE`` rows (one row
group each; 20 files for 1 M, 200 for 10 M), written once under the temp dir and reused. The
driver decodes one row group at a time, so its peak follows the files' row-group size, not the
row count: with 20 files at both sizes (500,000-row groups at 10 M) the same code measured 1.50×.

Each is trained by the ``manymodels train`` command (Ridge, last-20 % validation, fallback on,
``--backend ray``) in a fresh process; its peak RSS is that process's ``VmHWM`` (read from
``/proc/<pid>/status`` every 0.2 s until it exits: the driver only, never Ray's workers, which
are other processes).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from _common import FEATURES, MiB, header

ROWS_PER_FILE = 50_000
SPEC = """
name = "parquet-memory"
partition_by = ["pid"]
target = "y"
time_column = "t"
features = [{features}]
metric = "neg_mean_absolute_error"
min_rows = 2

[validation]
strategy = "last"
size = {size}

[[candidates]]
estimator = "sklearn.linear_model.Ridge"

[fallback]
enabled = true
"""


def write_directory(root: Path, partitions: int, rows: int) -> Path:
    """Files of ``ROWS_PER_FILE`` rows, whole partitions each (kept between runs: ``_done``
    marks a complete directory)."""
    from manymodels.samples import synthetic

    where = root / f"parquet-{partitions}x{rows}-f{ROWS_PER_FILE}"
    if (where / "_done").exists():
        return where
    where.mkdir(parents=True, exist_ok=True)
    per_file = max(1, ROWS_PER_FILE // rows)
    for i, first in enumerate(range(0, partitions, per_file)):
        frame = synthetic(min(per_file, partitions - first), rows, seed=i)
        frame["pid"] += first
        table = pa.Table.from_pandas(frame, preserve_index=False)
        pq.write_table(table, where / f"part-{i:04d}.parquet", row_group_size=ROWS_PER_FILE)
        del frame, table
    (where / "_done").touch()
    return where


def _hwm(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def driver_peak(spec: Path, data: Path, registry: Path) -> tuple[int, float, str]:
    """(peak RSS of the ``manymodels train`` process, seconds, its last output line); tried
    again (up to 3 times) when embedded Ray fails to start on a busy machine."""
    for attempt in range(3):
        try:
            return _driver_peak(spec, data, registry)
        except RuntimeError as e:
            if "cannot start or reach" not in str(e) or attempt == 2:
                raise
            print(f"  (Ray did not start, attempt {attempt + 1}; again)", flush=True)
    raise AssertionError("unreachable")


def _driver_peak(spec: Path, data: Path, registry: Path) -> tuple[int, float, str]:
    cli = Path(sys.executable).with_name("manymodels")
    cmd = [str(cli), "train", str(spec), str(data), "--registry", str(registry),
           "--backend", "ray", "--json"]  # fmt: skip
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _hwm(proc.pid) or 0)
        time.sleep(0.2)
    took = time.perf_counter() - started
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(
            f"manymodels train failed ({proc.returncode}): {err[-1500:]} {out[-1500:]}"
        )
    return peak, took, (out.strip().splitlines() or [""])[-1][:200]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--partitions", type=int, default=1_000)
    p.add_argument("--rows", type=int, nargs=2, default=[1_000, 10_000])
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    if args.smoke:
        args.partitions, args.rows = 100, [200, 2_000]
    header("memory: driver peak RSS training from a Parquet directory, as the rows grow")
    root = Path(tempfile.gettempdir()) / "manymodels-bench"
    peaks = []
    for rows in args.rows:
        data = write_directory(root, args.partitions, rows)
        with tempfile.TemporaryDirectory() as tmp:
            spec = Path(tmp) / "spec.toml"
            spec.write_text(SPEC.format(features=", ".join(map(repr, FEATURES)).replace("'", '"'),
                                        size=max(1, rows // 5)))  # fmt: skip
            peak, took, _ = driver_peak(spec, data, Path(tmp) / "registry")
        n = args.partitions * rows
        peaks.append(peak)
        print(f"  {n:>12,} rows ({args.partitions:,} partitions × {rows:,}): driver peak "
              f"{peak / MiB:,.0f} MiB, {took:,.0f} s", flush=True)  # fmt: skip
    ratio = peaks[-1] / peaks[0]
    print(f"\nratio: driver-peak@{args.rows[-1] // args.rows[0]}x-rows / driver-peak = "
          f"{ratio:.2f} (goal ≤ 1.2)")  # fmt: skip


if __name__ == "__main__":
    main()
