"""``manymodels demo``: the whole story on the per-store sales sample, on embedded defaults.

train → serve → score over HTTP → a consumer posts new weeks for one store → the challenger is
evaluated against the champion → promoted (or not, with the reason) → the router answers with
the new version → rollback. It is the README's first command, so it must work from a fresh
install with nothing started by hand, and say plainly what it did and where things are.
"""

from __future__ import annotations

import secrets
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from manymodels import browse_tables, console
from manymodels.keys import FALLBACK_KEY
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.registry.client import ARTIFACTS_DIR, DB_FILE
from manymodels.spec import Spec

STORY_KEY = "store=5,brand=tropicana"
"""The partition whose consumer posts new data in the demo."""
UNKNOWN_KEY = {"store": 99, "brand": "tropicana"}
MARKER = ".manymodels-demo"
"""A file the demo leaves in its registry: the only directory a later demo replaces."""
DEMO_LAYOUT = frozenset(
    {MARKER, ARTIFACTS_DIR, *(DB_FILE + end for end in ("", "-wal", "-shm", "-journal"))}
)
"""All a demo's registry holds: one holding anything else is not replaced."""
REFUSED = (
    "it exists and is not a registry `manymodels demo` made, so the demo leaves it as it is: "
    "give a new directory with --registry"
)
OLDER = "if this is its registry, remove it yourself"


def samples_dir() -> Path:
    """``data-samples/``: shipped inside the wheel, or beside the package in a source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_data_samples", here.parent / "data-samples"):
        if (candidate / "store_sales.csv").exists():
            return candidate
    raise FileNotFoundError("data-samples not found; reinstall manymodels")


def new_weeks(history: pd.DataFrame, weeks: int = 8, uplift: float = 1.5) -> pd.DataFrame:
    """What a consumer might post: the next ``weeks`` weeks of one store × brand, after a
    competitor closed and demand rose by ``uplift`` — the old model now under-forecasts."""
    last = history.sort_values("week").tail(weeks).copy()
    step = pd.Timedelta(weeks=weeks)
    last["week"] = pd.to_datetime(last["week"]) + step
    rng = np.random.default_rng(7)
    last["units"] = (last["units"] * uplift * rng.normal(1.0, 0.05, len(last))).round(1)
    return last


def fresh_registry(registry: Path) -> None:
    """Make ``registry`` an empty directory marked as the demo's. An earlier demo's registry
    (it holds ``MARKER``, and nothing but what a registry holds) is emptied, entry by entry;
    any other non-empty path is refused with a ``DataError`` and left as it is: ``--registry
    .`` or a real registry given by mistake must never be deleted."""
    from manymodels.exceptions import DataError

    if registry.is_symlink() or (registry.exists() and not registry.is_dir()):
        raise DataError(f"{registry}: {REFUSED}")
    if registry.exists():
        held = {p.name for p in registry.iterdir()}
        if held and (MARKER not in held or not held <= DEMO_LAYOUT):
            older = MARKER not in held and held <= DEMO_LAYOUT  # a registry, unmarked
            hint = f" (an older manymodels' demo left no mark: {OLDER})" if older else ""
            raise DataError(f"{registry}: {REFUSED}{hint}")
        for name in held - {MARKER}:
            entry = registry / name
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    registry.mkdir(parents=True, exist_ok=True)
    (registry / MARKER).write_text("made by `manymodels demo`: the next demo replaces it\n")


def run_demo(registry: Path, *, backend: str = "ray") -> None:
    from manymodels.execution import make_backend

    samples = samples_dir()
    spec_path, data_path = samples / "store_sales.toml", samples / "store_sales.csv"
    fresh_registry(registry)
    spec = Spec.from_toml(spec_path)
    out = console.out
    from rich.text import Text  # the console prints text as written: these are our styles

    out.rule(Text.from_markup("[bold]manymodels demo[/]: one model per store × brand"))
    out.print(f"spec: {spec_path}\ndata: {data_path}\nregistry: {registry.resolve()}\n")

    started = time.perf_counter()
    runner = make_backend(backend)  # one Ray instance for the whole story
    if backend == "ray":
        out.print(f"Ray started in {time.perf_counter() - started:.1f}s, for the whole demo")
    try:
        out.rule("1. train one model per partition")
        with console.progress_bar(f"training {spec.name}", enabled=console.err.is_terminal) as bar:
            summary = train(spec, data_path, registry, backend=runner, progress=bar)
        where = str(registry.resolve())
        console.run_summary(summary, ["--registry", where], where, command=command_name())
        _show_models(registry, spec, summary.run.run_id)
        _serve_and_score(registry, spec, data_path, backend)
    finally:
        runner.close()
    out.rule("try it yourself")
    mm = command_name()
    out.print(
        f"{mm} models list --registry {registry}\n"
        f"{mm} models show '{STORY_KEY}' --registry {registry}\n"
        f"{mm} runs list --registry {registry}\n"
        f"{mm} serve --registry {registry}    # then curl it as the README shows"
    )
    activate = Path(mm).parent / "activate"
    if mm != "manymodels" and activate.exists():
        out.print(f"(or `. {activate}` first: it puts `manymodels` on your PATH)")


def command_name() -> str:
    """How to type ``manymodels`` in this shell. The README runs ``.venv/bin/manymodels demo``
    without activating the environment, so a bare ``manymodels`` in "try it yourself" was
    "command not found"; this environment's own script is named instead (relative to the
    current directory when under it) unless ``PATH`` already finds that very script."""
    mine = Path(sys.executable).parent / "manymodels"
    found = shutil.which("manymodels")
    if not mine.exists() or (found is not None and Path(found).resolve() == mine.resolve()):
        return "manymodels"
    try:
        return str(mine.relative_to(Path.cwd()))
    except ValueError:
        return str(mine)


def _show_models(registry: Path, spec: Spec, run_id: str) -> None:
    """The models trained, and which partitions have none: the run's skipped ones, named, as
    the table lists only versions (the summary's "2 skipped" named none, and step 2's
    store=2,brand=minute_maid answered by the fallback looked like a miss)."""
    with Registry.open(registry) as reg:
        items = reg.list_partitions(limit=1000)
        skipped = reg.store.run_outcomes(run_id, status="skipped", limit=4)
    trained = [p for p in items if p.production and p.key != FALLBACK_KEY]
    beat = sum(1 for p in trained if p.production and (p.production.skill or 0) > 0)
    fallback = any(p.key == FALLBACK_KEY for p in items)
    browse_tables.partitions_table(items, total=len(items), offset=0, fallback=fallback)
    named = ", ".join(o.key for o in skipped[:3]) + (", …" if len(skipped) > 3 else "")
    console.out.print(
        f"{beat} of {len(trained)} partition models beat the naive last-value forecast on their "
        f"validation weeks. Partitions under {spec.min_rows} rows have no model of their own"
        + (f" ({named})" if named else "")
        + ": the global fallback model (key __fallback__) answers for them, as for a store "
        "it has never seen."
    )


def _serve_and_score(registry: Path, spec: Spec, data_path: Path, backend: str) -> None:
    import httpx

    from serving.local import running_server
    from serving.settings import Settings

    out = console.out
    data = pd.read_csv(data_path)
    token = secrets.token_urlsafe(16)
    settings = Settings(
        registry=registry,
        admin_token=token,
        refresh_seconds=0.5,
        retrain_backend="local" if backend == "local" else "ray",  # reuses the demo's Ray
    )
    with running_server(settings) as url, httpx.Client(base_url=url, timeout=60) as http:
        admin = {"Authorization": f"Bearer {token}"}
        out.rule(f"2. serve: router on {url}")
        rows = _latest_rows(data, [(1, "dominicks"), (2, "minute_maid"), (5, "tropicana")], spec)
        rows.append({**UNKNOWN_KEY, **{f: rows[0][f] for f in spec.features or []}})
        answer = _post(http, "/v1/predict", {"rows": rows})
        _print_predictions("POST /v1/predict (4 rows, 4 partitions, one store unknown)", rows,
                           answer["predictions"])  # fmt: skip

        out.rule(f"3. a consumer posts 8 new weeks for {STORY_KEY}")
        mask = (data["store"] == 5) & (data["brand"] == "tropicana")
        posted = new_weeks(data[mask])
        before = _score_one(http, posted.head(1), spec)
        out.print(f"production serves v{before['version']}; it predicts "
                  f"{before['predictions'][0]:,.0f} units for a week that sold "
                  f"{posted['units'].iloc[0]:,.0f}")  # fmt: skip
        # the consumer posts the store's series with the new weeks; the router stores the rows,
        # retrains this one partition off the request path, and applies the promotion policy
        history = pd.concat([data[mask], posted], ignore_index=True)
        rows = history.drop(columns=spec.partition_by).assign(week=history["week"].astype(str))
        accepted = _post(http, f"/v1/partitions/{STORY_KEY}/retrain",
                         {"rows": rows.to_dict(orient="records")}, headers=admin)  # fmt: skip
        out.print(f"POST /v1/partitions/{STORY_KEY}/retrain → 202, job {accepted['job_id']} "
                  f"(rows stored as artifact {accepted['data']['sha256'][:12]}…)")  # fmt: skip
        job = _wait_for_job(http, accepted["links"]["self"], admin)
        decision = job["decision"]
        verdict = "[green]promoted[/]" if decision["promoted"] else "[yellow]not promoted[/]"
        out.print(f"job {job['status']}: challenger v{decision['challenger']['version']} vs "
                  f"champion v{decision['champion']['version']}, both scored on the new "
                  f"validation weeks: {verdict}", markup=True)  # fmt: skip
        out.print(f"  reason: {decision['reason']}")
        new_version = decision["challenger"]["version"]

        out.rule("4. the router answers with the new version")
        after = _wait_for_version(http, posted.head(1), spec, new_version)
        out.print(f"production now serves v{after['version']}: it predicts "
                  f"{after['predictions'][0]:,.0f} units for that week")  # fmt: skip

        out.rule("5. roll back")
        back = _post(http, f"/v1/partitions/{STORY_KEY}/rollback", {}, headers=admin)
        # as `manymodels rollback` prints it: "production v2 → v1", not "production 2 → 1"
        out.print(f"production v{back['from_version']} → v{back['to_version']} ({back['reason']})")
        final = _score_one(http, posted.head(1), spec)
        out.print(f"the router serves v{final['version']} again at once")


def _latest_rows(
    data: pd.DataFrame, keys: list[tuple[int, str]], spec: Spec
) -> list[dict[str, Any]]:
    rows = []
    for store, brand in keys:
        part = data[(data["store"] == store) & (data["brand"] == brand)].sort_values("week")
        last = part.iloc[-1]
        rows.append({"store": store, "brand": brand,
                     **{f: last[f].item() for f in spec.features or []}})  # fmt: skip
    return rows


def _score_one(http: Any, rows: pd.DataFrame, spec: Spec) -> dict[str, Any]:
    body = {"rows": rows[list(spec.features or [])].to_dict(orient="records")}
    return _post(http, f"/v1/partitions/{STORY_KEY}/predict", body)


def _wait_for_version(http: Any, rows: pd.DataFrame, spec: Spec, version: int) -> dict[str, Any]:
    import time

    deadline = time.monotonic() + 10
    answer = _score_one(http, rows, spec)
    while answer["version"] != version and time.monotonic() < deadline:
        time.sleep(0.1)
        answer = _score_one(http, rows, spec)
    return answer


def _wait_for_job(http: Any, link: str, headers: dict[str, str]) -> dict[str, Any]:
    import time

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        job: dict[str, Any] = http.get(link, headers=headers).raise_for_status().json()
        if job["status"] in ("succeeded", "failed"):
            if job["status"] == "failed":
                raise RuntimeError(f"the retrain job failed: {job.get('error')}")
            return job
        time.sleep(0.1)
    raise TimeoutError("the retrain job did not finish within 300 s")


def _post(http: Any, path: str, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    response = http.post(path, json=body, **kwargs)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def _print_predictions(
    title: str, rows: list[dict[str, Any]], answers: list[dict[str, Any]]
) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for col in ("store", "brand", "served by", "version", "fallback", "prediction"):
        table.add_column(col)
    for row, a in zip(rows, answers, strict=True):
        table.add_row(str(row["store"]), row["brand"], a["served_by"], str(a["version"]),
                      "yes" if a["fallback"] else "", f"{a['prediction']:,.0f}")  # fmt: skip
    console.out.print(table)
