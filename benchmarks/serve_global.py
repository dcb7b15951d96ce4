"""Serving partitions on a global LightGBM, as shipped, beside partitions on their own Ridge.

    python benchmarks/serve_global.py                      # this checkout
    python benchmarks/serve_global.py --against 3e9874a    # … and that commit, on the global one
    python benchmarks/serve_global.py --smoke

Two registries of one synthetic panel (``manymodels.samples.synthetic``: 1,000 partitions ×
50 rows, features x0..x4), trained by the pipeline: in one every partition serves its own
Ridge; in the other every partition serves the run's one global LightGBM (``scope =
"global"``, the partition key a category: #12's "global only"). Each is served by the
``manymodels serve`` command as a user starts it, and loaded with one-row requests to the
per-key endpoint, keys uniform over 100 partitions (``wrk -t1 -c64``); the global registry's
servers also with ``POST /v1/predict`` batches of 100 rows, over 100 partitions and of one
(as ``serve.py``'s, #17). A third registry's global LightGBM also splits on a text feature
(``kind``, a category: before 48749ad such a model always took the frame), loaded with one-row
requests. Scenarios take turns round by round. The commit before 1fb9384 took
~200 ms for the batch over 100 partitions, past wrk's 5 s timeout at -c64: that batch is also
measured at -c4 on both commits. With ``--against REV`` that
commit serves the global registry too (from a git worktree, ``python -m manymodels.cli
serve``), so a change to the global path is measured in the same run as the rest.

A global model bound to a partition (``KeyBound``) once built a pandas frame of the row and
its key for LightGBM, which converted it back to a matrix: ~1.3 ms a request, where the
prediction from a matrix takes ~25 µs (``manymodels.training.booster_input``); a batch over
many partitions on it now makes one call for all (``serving.shared_models``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import numpy as np
from _common import FEATURES, header, ratio_line, table, wait_quiet
from _server import (
    ROW,
    Load,
    Server,
    Traffic,
    batch_traffic,
    load,
    paired,
    shipped,
    start_together,
)

HOT = 100


KIND = "kind"  # the categorical registry's text feature: "up" where x0 > 0, else "down"


def spec(scope: str, rows: int) -> dict[str, Any]:
    """The panel's spec: a Ridge per partition, or one global LightGBM for all of them (with
    the text feature ``KIND`` too: ``scope = "categorical"``)."""
    candidate: dict[str, Any] = {"estimator": "sklearn.linear_model.Ridge"}
    if scope in ("global", "categorical"):
        candidate = {
            "estimator": "lightgbm.LGBMRegressor",
            "scope": "global",
            "params": {"verbosity": -1, "random_state": 0},
        }
    return {
        "name": f"serve-{scope}",
        "partition_by": ["pid"],
        "target": "y",
        "time_column": "t",
        "features": [*FEATURES, KIND] if scope == "categorical" else FEATURES,
        "metric": "neg_mean_absolute_error",
        "validation": {"strategy": "last", "size": max(1, rows // 5)},
        "candidates": [candidate],
        "selection": {"naive_candidate": False},
        "fallback": {"enabled": False},
    }


def build(root: Path, scope: str, partitions: int, rows: int) -> Path:
    """Train the registry; every partition must serve the scope's model."""
    from manymodels.pipeline import train
    from manymodels.registry.client import Registry
    from manymodels.samples import synthetic

    registry = root / scope
    data = synthetic(partitions, rows)
    if scope == "categorical":  # a category the model splits on: y moves with it
        data[KIND] = np.where(data["x0"] > 0, "up", "down")
        data["y"] += np.where(data[KIND] == "up", 2.0, 0.0)
    train(spec(scope, rows), data, registry, backend="local")
    with Registry.open(registry) as reg:
        served = {p.production.estimator for p in reg.list_partitions(limit=partitions)}
        n = reg.count_partitions()
    want = "sklearn.linear_model.Ridge" if scope == "local" else "lightgbm.LGBMRegressor"
    if served != {want} or n != partitions:
        raise RuntimeError(f"{scope} registry serves {served} over {n} partitions")
    return registry


@contextmanager
def worktree(revision: str | None) -> Iterator[Path | None]:
    """A detached git worktree of ``revision`` (removed on exit), or ``None``."""
    if revision is None:
        yield None
        return
    here = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        other = Path(tmp) / "other"
        subprocess.run(["git", "-C", str(here), "worktree", "add", "-q", "--detach",
                        str(other), revision], check=True)  # fmt: skip
        try:
            yield other
        finally:
            subprocess.run(["git", "-C", str(here), "worktree", "remove", "--force", str(other)],
                           check=False)  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--against", help="a commit that serves the global registry too")
    p.add_argument("--partitions", type=int, default=1000)
    p.add_argument("--rows", type=int, default=50)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--smoke", action="store_true", help="100 partitions, 1 s loads, 1 round")
    args = p.parse_args()
    if args.smoke:
        args.partitions, args.rows, args.seconds, args.repeat = HOT, 30, 1.0, 1
    header("serving partitions on a global LightGBM vs on their own Ridge, as shipped")
    _require_this_checkout()
    if args.partitions < HOT:
        p.error(f"--partitions must be at least {HOT}: the hot keys")
    hot = HOT
    one_row = Traffic(range(hot))
    with_kind = Traffic(range(hot), body=json.dumps({"rows": [{**ROW, KIND: "up"}]}))
    batches = {k: t for k, t in batch_traffic(hot).items() if k in (OVER, ONE)}
    with tempfile.TemporaryDirectory() as tmp, worktree(args.against) as other, ExitStack() as st:
        local = build(Path(tmp), "local", args.partitions, args.rows)
        glob = build(Path(tmp), "global", args.partitions, args.rows)
        cat = build(Path(tmp), "categorical", args.partitions, args.rows)
        starting: dict[str, AbstractContextManager[Server]] = {
            "local Ridge, this checkout": shipped(local),
            "global LightGBM, this checkout": shipped(glob),
            f"{CATEGORICAL}, this checkout": shipped(cat, body=with_kind.body),
        }
        if other is not None:
            starting[f"global LightGBM, {args.against}"] = shipped(glob, checkout=other)
            starting[f"{CATEGORICAL}, {args.against}"] = shipped(
                cat, checkout=other, body=with_kind.body
            )
        servers = start_together(st, starting)  # side by side: all idle before any load
        # (url, traffic, connections) per scenario; every server at -c64 with one-row requests
        scenarios = {
            f"{n}: one row": (url, with_kind if n.startswith(CATEGORICAL) else one_row, 64)
            for n, url in _urls(servers)
        }
        for n, url in _urls(servers):  # batches: to the (numeric) global registry's servers
            if n == "global LightGBM, this checkout":
                scenarios |= {f"{n}: {what}": (url, t, 64) for what, t in batches.items()}
            if n.startswith("global LightGBM, ") and other is not None:  # before 1fb9384 it
                scenarios[f"{n}: {OVER}, -c4"] = (url, batches[OVER], 4)  # took > 5 s at -c64
        for n, url in _urls(servers):  # warm: every hot partition loaded
            warm = with_kind if n.startswith(CATEGORICAL) else one_row
            load(url, warm, connections=8, seconds=min(args.seconds, 2.0))
        # the smoke checks the plumbing: on a busy CI machine the wait is its whole bound
        busy = -1.0 if args.smoke else wait_quiet()
        runs: dict[str, list[Load]] = {name: [] for name in scenarios}
        names = list(scenarios)
        for r in range(args.repeat):
            for name in names[r % len(names) :] + names[: r % len(names)]:  # turns
                url, traffic, connections = scenarios[name]
                runs[name].append(load(url, traffic, connections=connections, seconds=args.seconds))
    rows = []
    for name, done in runs.items():
        rps = statistics.median(x.rps for x in done)
        p99 = statistics.median(x.p99_ms for x in done)
        rows.append([name, f"{rps:,.0f}", f"{p99:.1f}", *(f"{x.rps:,.0f}" for x in done)])
    rounds = [f"rps round {i + 1}" for i in range(args.repeat)]
    said = "not measured (--smoke)" if busy < 0 else f"{busy:.0%} of the CPUs"
    print(f"busy before: {said}\n")
    print(table(["server: requests (100 hot keys)", "rps", "p99 ms", *rounds], rows))
    this, local_one = "global LightGBM, this checkout", "local Ridge, this checkout: one row"
    ratios = {
        "global/local rps": paired(runs[f"{this}: one row"], runs[local_one]),
        "categorical/local rps": paired(
            runs[f"{CATEGORICAL}, this checkout: one row"], runs[local_one]
        ),
        "global batch over/one": paired(runs[f"{this}: {OVER}"], runs[f"{this}: {ONE}"]),
    }
    if other is not None:
        them = f"global LightGBM, {args.against}"
        ratios["global this/other rps"] = paired(runs[f"{this}: one row"], runs[f"{them}: one row"])
        ratios["global batch over -c4, this/other"] = paired(
            runs[f"{this}: {OVER}, -c4"], runs[f"{them}: {OVER}, -c4"]
        )
        ratios["categorical this/other rps"] = paired(
            runs[f"{CATEGORICAL}, this checkout: one row"],
            runs[f"{CATEGORICAL}, {args.against}: one row"],
        )
    print(ratio_line(ratios))


CATEGORICAL = "global LightGBM + a text feature"

# ``serve.py``'s first two batches (#17): over the hot partitions, and of one, on /v1/predict
OVER, ONE = list(batch_traffic(HOT))[:2]


def _urls(servers: dict[str, Server]) -> list[tuple[str, str]]:
    return [(name, server.url) for name, server in servers.items()]


def _require_this_checkout() -> None:
    """ "This checkout" is what the installed ``manymodels`` command runs (an editable install
    of this repository): refuse to label another tree's figures with it."""
    import manymodels

    here = Path(__file__).resolve().parent.parent
    if not Path(manymodels.__file__).resolve().is_relative_to(here):
        raise SystemExit(
            f"manymodels is imported from {Path(manymodels.__file__).parent}, not from {here}: "
            f"pip install -e {here} first"
        )


if __name__ == "__main__":
    main()
