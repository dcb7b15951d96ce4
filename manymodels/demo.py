"""``manymodels demo``: the whole story on the per-store sales sample, on embedded defaults.

It is the README's first command, so it must work from a fresh install with nothing started
by hand, and say plainly what it did and where things are.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from manymodels import console
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.spec import Spec


def samples_dir() -> Path:
    """``data-samples/``: shipped inside the wheel, or beside the package in a source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_data_samples", here.parent / "data-samples"):
        if (candidate / "store_sales.csv").exists():
            return candidate
    raise FileNotFoundError("data-samples not found; reinstall manymodels")


def run_demo(registry: Path, *, backend: str = "ray") -> None:
    samples = samples_dir()
    spec_path, data_path = samples / "store_sales.toml", samples / "store_sales.csv"
    if registry.exists():
        shutil.rmtree(registry)
    spec = Spec.from_toml(spec_path)
    out = console.out
    out.rule("[bold]manymodels demo[/]: one model per store × brand")
    out.print(f"spec: {spec_path}\ndata: {data_path}\n")

    out.rule("1. train")
    with console.progress_bar(f"training {spec.name}", enabled=console.err.is_terminal) as bar:
        summary = train(spec, data_path, registry, backend=backend, progress=bar)
    console.run_summary(summary, str(registry.resolve()))

    with Registry.open(registry) as reg:
        items = reg.list_partitions(limit=1000)
        trained = [p for p in items if p.production and p.key != "__fallback__"]
        beat = sum(1 for p in trained if (p.production and (p.production.skill or 0) > 0))
        console.partitions_table(items, total=len(items), offset=0)
        out.print(
            f"{beat} of {len(trained)} partition models beat the naive last-value forecast "
            f"on their validation weeks ({spec.metric_name})."
        )
        if summary.run.n_skipped:
            out.print(
                f"{summary.run.n_skipped} partition(s) had fewer than {spec.min_rows} rows: "
                "the global fallback model (key __fallback__) serves them."
            )
    out.rule("next")
    out.print(
        f"browse: manymodels models list --registry {registry}\n"
        f"        manymodels models show 'store=2,brand=tropicana' --registry {registry}\n"
        f"        manymodels runs show {summary.run.run_id} --registry {registry}"
    )
