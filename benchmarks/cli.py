"""Read-only commands as a user runs them: the `manymodels` process, start-up included.

    python benchmarks/cli.py             # a 10,000-partition registry, 7 runs per command
    python benchmarks/cli.py --smoke

Each command (`models list`, `models show KEY`, `runs list`, `runs show RUN`, with and
without `--json`) is timed as a whole process, against `python -c "import manymodels"` in the
same run: the cost of starting Python and our package, which no command can go below. Goals
(issue #13): every command ≤ 3× that baseline and ≤ 0.5 s. The registry is built without
training (see registry.py), 10,000 partitions with two versions each.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import goal_row, header, median, ratio_line, table, timed
from registry import build

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


def _process_seconds(argv: list[str], runs: int) -> float:
    def once() -> None:
        subprocess.run(argv, check=True, capture_output=True, timeout=120)

    once()  # the page cache warm, as for a user's second command
    return median([timed(once)[0] for _ in range(runs)])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--partitions", type=int, default=10_000)
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    if args.smoke:
        args.partitions, args.runs = 200, 1
    header("cli: read-only commands as processes")
    with tempfile.TemporaryDirectory(prefix="mm-bench-cli-") as tmp:
        reg, _, seconds = build(Path(tmp) / "registry", 2 * args.partitions)
        run_id = reg.list_runs()[0].run_id
        reg.close()
        print(f"  built {args.partitions:,} partitions in {seconds:.1f} s", flush=True)
        baseline = _process_seconds([sys.executable, "-c", "import manymodels"], args.runs)
        rows, goals, ratios = [], [], {}
        for command in COMMANDS:
            argv = [a.replace("KEY", "pid=7").replace("RUN", run_id) for a in command]
            took = _process_seconds(
                [str(MANYMODELS), *argv, "--registry", str(Path(tmp) / "registry")], args.runs
            )
            name = " ".join(command).replace("KEY", "pid=7")
            rows.append([name, took * 1e3, took / baseline])
            ratios[name.replace(" ", "_")] = took / baseline
            goals.append(goal_row(f"{name} vs import", took / baseline, 3, at_most=True, unit="×"))
            goals.append(goal_row(f"{name}", took, 0.5, at_most=True, unit=" s"))
    print(f"\nmedian wall ms of {args.runs} runs; baseline `import manymodels` "
          f"{baseline * 1e3:.0f} ms:\n")  # fmt: skip
    print(table(["command", "ms", "× baseline"], rows))
    print("\n" + table(["goal", "measured", "target", "verdict"], goals))
    print("\n" + ratio_line(ratios))


if __name__ == "__main__":
    main()
