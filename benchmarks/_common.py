"""Helpers shared by the benchmark scripts: timing, tables, machine facts, the bench spec,
the cached serving registry, and process memory.

Every script prints one table and ends with a line ``ratio: …``. Ratios are only ever taken
between figures measured in the same run: the machines these run on are shared and noisy.
"""

from __future__ import annotations

import fcntl
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

CACHE_DIR = Path(tempfile.gettempdir()) / "manymodels-bench"
FEATURES = [f"x{j}" for j in range(5)]  # what manymodels.samples.synthetic generates


# ------------------------------------------------------------------------------------------
# figures and tables
# ------------------------------------------------------------------------------------------
def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """``(seconds, result)`` of one call."""
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def samples(fn: Callable[[int], Any], n: int, *, warmup: int = 3) -> list[float]:
    """Seconds of ``n`` calls ``fn(i)``, after ``warmup`` untimed ones; ``i`` counts all
    calls, so no two see the same ``i``."""
    for i in range(warmup):
        fn(i)
    out = []
    for i in range(warmup, warmup + n):
        started = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - started)
    return out


def _cpu_times() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields), fields[3] + fields[4]  # total, idle + iowait


def wait_quiet(*, busy_below: float = 0.15, max_wait: float = 120.0) -> float:
    """Wait (at most ``max_wait`` s) until other processes use less than ``busy_below`` of
    the CPUs over a second; returns the busy fraction last seen. The machines these run on
    are shared: a neighbour's test suite halves what a parallel method gets, not a serial one.
    """
    deadline = time.monotonic() + max_wait
    while True:
        total0, idle0 = _cpu_times()
        time.sleep(1.0)
        total1, idle1 = _cpu_times()
        busy = 1 - (idle1 - idle0) / max(1, total1 - total0)
        if busy < busy_below or time.monotonic() > deadline:
            return busy
        time.sleep(4.0)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table (readable in a terminal, pasteable into README)."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = [
        "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    lines += [
        "| " + " | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells
    ]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def goal_row(
    name: str, measured: float, target: float, *, at_most: bool, unit: str = ""
) -> list[str]:
    """One row of a goals table: ``name | measured | goal | MET/MISSED``."""
    sign = "≤" if at_most else "≥"
    ok = measured <= target if at_most else measured >= target
    return [name, f"{measured:.3g}{unit}", f"{sign} {target:g}{unit}", verdict(ok)]


def ratio_line(parts: dict[str, float]) -> str:
    return "ratio: " + " ".join(f"{k}={v:.3g}" for k, v in parts.items())


# ------------------------------------------------------------------------------------------
# the machine and the code under test
# ------------------------------------------------------------------------------------------
def machine() -> dict[str, str]:
    """nproc, CPU model, RAM, Python and the versions that matter, plus the git revision."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "unknown"
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        ram = f"{kib / 1024**2:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    import numpy
    import sklearn

    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "ram": ram,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "scikit-learn": sklearn.__version__,
        "blas": _blas(),
        "git": _git_revision(),
    }


def _blas() -> str:
    """The BLAS numpy calls and the CPU kernel it picked (``openblas SkylakeX``): the same
    code gives other digits on another kernel, and a fragile fit other models (statsforecast's
    AutoARIMA with Cigar's price chose models 1.9× apart in MAE on Haswell and SkylakeX
    kernels, benchmarks/HISTORY.md #12's eleventh pass)."""
    from threadpoolctl import threadpool_info  # a scikit-learn dependency

    found = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    kinds = dict.fromkeys(f"{i.get('internal_api')} {i.get('architecture')}" for i in found)
    return ", ".join(kinds) or "none"  # numpy's and scipy's own copies: once each kind


def _git_revision() -> str:
    root = Path(__file__).resolve().parents[1]
    try:
        rev = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", "manymodels", "serving"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return rev + ("+dirty" if dirty else "")


def header(title: str, argv: Sequence[str] | None = None) -> None:
    """What every run prints first: the command and the machine."""
    command = " ".join(["python", *(sys.argv if argv is None else argv)])
    facts = ", ".join(f"{k} {v}" for k, v in machine().items())
    print(f"# {title}\ncommand: {command}\nmachine: {facts}\n", flush=True)


# ------------------------------------------------------------------------------------------
# the benchmark spec and data
# ------------------------------------------------------------------------------------------
MODELS: dict[str, dict[str, Any]] = {
    "ridge": {"estimator": "sklearn.linear_model.Ridge"},
    "forest": {
        "estimator": "sklearn.ensemble.RandomForestRegressor",
        "params": {"n_estimators": 20},
    },
}


def bench_spec(rows: int, model: str = "ridge") -> dict[str, Any]:
    """One candidate, time-ordered last-``rows // 5`` validation, no fallback, MAE."""
    return {
        "name": f"bench-{model}",
        "partition_by": ["pid"],
        "target": "y",
        "time_column": "t",
        "features": FEATURES,
        "metric": "neg_mean_absolute_error",
        "min_rows": 2,
        "validation": {"strategy": "last", "size": max(1, rows // 5)},
        "candidates": [MODELS[model]],
        "fallback": {"enabled": False},
    }


def start_ray() -> float:
    """Start embedded Ray once, before anything is timed; returns its start-up seconds."""
    import ray

    seconds, _ = timed(
        lambda: ray.init(
            address="local", include_dashboard=False, log_to_driver=False, configure_logging=False
        )
    )
    return seconds


CACHE_FORMAT = "2"
"""What a cached registry was built as: bump it when training writes something new into a
version that benchmarks read (2: every version has its monitoring profile, which the router's
drift sampler needs), so that no benchmark measures a registry today's code would not build."""


def serving_registry(n_partitions: int, rows: int = 20) -> Path:
    """A registry of ``n_partitions`` Ridge models trained by the pipeline, built once and
    kept under the temp dir (rebuilt if missing, incomplete, or unreadable)."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    root = CACHE_DIR / f"registry-{n_partitions}x{rows}"
    with open(root.with_suffix(".lock"), "w") as lock:  # concurrent benchmarks build it once
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _serving_registry(root, n_partitions, rows)


def _serving_registry(root: Path, n_partitions: int, rows: int) -> Path:
    from manymodels.exceptions import ManyModelsError
    from manymodels.registry.client import Registry

    done = root / "COMPLETE"
    if done.exists() and done.read_text().strip() == CACHE_FORMAT:
        try:
            with Registry.open(root) as reg:
                if reg.count_partitions() == n_partitions:
                    return root
        except ManyModelsError:
            pass
    shutil.rmtree(root, ignore_errors=True)
    from manymodels.pipeline import train
    from manymodels.samples import synthetic

    print(f"(building a {n_partitions:,}-partition registry under {root} …)", flush=True)
    summary = train(
        bench_spec(rows),
        synthetic(n_partitions, rows),
        root,
        backend="ray" if n_partitions >= 5000 else "local",
    )
    if summary.run.n_trained != n_partitions:
        raise RuntimeError(f"registry build trained {summary.run.n_trained} of {n_partitions}")
    done.write_text(CACHE_FORMAT + "\n")
    return root


# ------------------------------------------------------------------------------------------
# memory
# ------------------------------------------------------------------------------------------
def rss_bytes(pid: int) -> int:
    """Resident set size of a process, from ``/proc/<pid>/status`` (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


MiB = 1024 * 1024
