"""Read-only commands as a user runs them: the `manymodels` process, start-up included.

    python benchmarks/cli.py             # a 10,000-partition registry, 7 runs per command
    python benchmarks/cli.py --train     # and `manymodels train` on the store-sales sample
    python benchmarks/cli.py --smoke

Each command (`models list`, `models show KEY`, `runs list`, `runs show RUN`, with and
without `--json`) is timed as a whole process, against `python -c "import manymodels"` in the
same run: the cost of starting Python and our package, which no command can go below. Goals
(issue #13): every command ≤ 3× that baseline and ≤ 0.5 s. The registry is built without
training (see registry.py), 10,000 partitions with two versions each. Each row also gives the
CPU seconds (user + sys) of the process, which a busy machine inflates less than wall time.

``--train`` adds the README's first command, ``manymodels train`` on the store-sales sample
(36 partitions, default backend) into a new registry, as a process (goal: ≤ 3 s), beside
``python -c "import manymodels.pipeline, manymodels.cli.commands"``: the imports the command
cannot avoid (scikit-learn, pandas, SQLAlchemy, typer), so the rest is the work itself.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import goal_row, header, median, ratio_line, table, timed, wait_quiet

COMMANDS = [
    ["models", "list"],
    ["models", "list", "--json"],
    ["models", "show", "KEY"],
    ["models", "show", "KEY", "--json"],
    ["runs", "list"],
    ["runs", "list", "--json"],
    ["runs", "show", "RUN"],
    ["runs", "show", "RUN", "--json"],
]
MANYMODELS = Path(sys.executable).parent / "manymodels"
SAMPLES = Path(__file__).resolve().parent.parent / "data-samples"


def _cpu() -> float:
    t = os.times()
    return t.children_user + t.children_system


def as_installed(cache: Path) -> dict[str, str]:
    """The environment a timed process runs in: this one, with Python's bytecode cache on (in
    ``cache``) whatever ``PYTHONDONTWRITEBYTECODE`` says here. An installed package runs from
    its ``.pyc`` (pip compiles them at install, an editable install on first import); with
    the variable set, as on our shared machines, every timed run compiled our ~200 modules
    from source: 0.27 s CPU of the sample's ``train``, counted as the command's own."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    return env


def _process_seconds(
    argv: list[str], runs: int, fresh: Path | None = None, *, cache: Path
) -> tuple[float, float]:
    """Median (wall, CPU) seconds of ``argv`` as a process; ``fresh``: a directory removed
    before each run (the registry a training creates); ``cache``: the bytecode cache the
    untimed first run fills (``as_installed``)."""
    env = as_installed(cache)

    def once() -> None:
        if fresh is not None:
            subprocess.run(["rm", "-rf", str(fresh)], check=True)
        subprocess.run(argv, check=True, capture_output=True, timeout=600, env=env)

    once()  # the page and bytecode caches warm, as for a user's second command
    walls, cpus = [], []
    for _ in range(runs):
        cpu0 = _cpu()
        walls.append(timed(once)[0])
        cpus.append(_cpu() - cpu0)
    return median(walls), median(cpus)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--partitions", type=int, default=10_000)
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--train", action="store_true", help="add the sample's `manymodels train`")
    args = p.parse_args()
    from registry import build  # the registry builder (and manymodels) only for a run

    if args.smoke:
        args.partitions, args.runs = 200, 1
    header("cli: read-only commands as processes")
    with tempfile.TemporaryDirectory(prefix="mm-bench-cli-") as tmp:
        reg, _, seconds = build(Path(tmp) / "registry", 2 * args.partitions)
        run_id = reg.list_runs()[0].run_id
        reg.close()
        print(f"  built {args.partitions:,} partitions in {seconds:.1f} s", flush=True)
        # the smoke checks the plumbing: on a busy CI machine the wait is its whole bound
        busy = "not measured (--smoke)" if args.smoke else f"{wait_quiet(max_wait=60):.0%}"
        print(f"  other processes' share of the CPUs: {busy}", flush=True)
        bare = [sys.executable, "-c", "import manymodels"]
        cache = Path(tmp) / "pycache"
        baseline, base_cpu = _process_seconds(bare, args.runs, cache=cache)
        rows: list[list[object]] = []
        goals, ratios = [], {}
        for command in COMMANDS:
            argv = [a.replace("KEY", "pid=7").replace("RUN", run_id) for a in command]
            took, cpu = _process_seconds(
                [str(MANYMODELS), *argv, "--registry", str(Path(tmp) / "registry")],
                args.runs,
                cache=cache,
            )
            name = " ".join(command).replace("KEY", "pid=7")
            rows.append([name, took * 1e3, took / baseline, cpu * 1e3, cpu / base_cpu])
            ratios[name.replace(" ", "_")] = took / baseline
            goals.append(goal_row(f"{name} vs import", took / baseline, 3, at_most=True, unit="×"))
            goals.append(goal_row(f"{name}", took, 0.5, at_most=True, unit=" s"))
        if args.train:
            _train_rows(Path(tmp), max(1, args.runs // 2), rows, goals, ratios)
    print(f"\nmedian of {args.runs} runs; baseline `import manymodels` {baseline * 1e3:.0f} ms "
          f"wall, {base_cpu * 1e3:.0f} ms CPU:\n")  # fmt: skip
    print(table(["command", "wall ms", "× baseline", "CPU ms", "CPU × baseline"], rows))
    print("\n" + table(["goal", "measured", "target", "verdict"], goals))
    print("\n" + ratio_line(ratios))


def _train_rows(
    tmp: Path, runs: int, rows: list[list[object]], goals: list[list[str]], ratios: dict[str, float]
) -> None:
    """The sample's ``manymodels train`` and the imports it cannot avoid, as processes."""
    imports = [sys.executable, "-c", "import manymodels.pipeline, manymodels.cli.commands"]
    floor, floor_cpu = _process_seconds(imports, runs, cache=tmp / "pycache")
    target = tmp / "train-registry"
    argv = [str(MANYMODELS), "train", str(SAMPLES / "store_sales.toml"),
            str(SAMPLES / "store_sales.csv"), "--registry", str(target)]  # fmt: skip
    took, cpu = _process_seconds(argv, runs, fresh=target, cache=tmp / "pycache")
    rows.append(["import pipeline + CLI (no work)", floor * 1e3, "", floor_cpu * 1e3, ""])
    rows.append(["train store-sales sample", took * 1e3, "", cpu * 1e3, ""])
    ratios["train_sample_s"] = took
    ratios["train_sample_imports_s"] = floor
    goals.append(goal_row("train store-sales sample", took, 3, at_most=True, unit=" s"))


if __name__ == "__main__":
    main()
