"""docs/monitoring.md, docs/dashboard.md and docs/global-candidates.md hold no command to
run (tests/test_deployment_doc.py runs deployment.md's): what they hold is names — the
endpoints and query parameters a client sends, the flags and defaults of the commands, the
metrics, indexes, files and code they point a reader to. Each is checked here against what
it names, so a renamed flag, route or module fails a test instead of a reader (read as a new
user: ``profile.SIGNIFICANCE``, ``pipeline._slices`` and ``fit_global`` named code that had
moved, and a spec ``static`` key that was never built).

A dotted name is looked up as ``module.attribute`` in the packages below; the few that name
a record's field rather than code are in ``NOT_CODE`` with what they name.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import typer

from manymodels.cli import app as cli_app
from manymodels.registry import schema

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "docs" / name for name in ("monitoring.md", "dashboard.md", "global-candidates.md")]
PACKAGES = ("manymodels.", "manymodels.monitoring.", "manymodels.training.", "serving.", "")
FILE_DIRS = ("manymodels", "manymodels/training", "serving", "serving/ui", "benchmarks")
CLASSES = {  # a class named with one of its fields or methods
    "Settings": "serving.settings:Settings",
    "Registry": "manymodels.registry:Registry",
    "Candidate": "manymodels.spec:Candidate",
    "plan": "manymodels.lagfeatures:LagPlan",  # "with `plan.direct`"
    "store": "manymodels.artifacts:ArtifactStore",  # "skips `store.put`"
    "fallback": "manymodels.spec_sections:Fallback",  # "`[fallback] max_rows`"
}
NOT_CODE = {
    "validation.error_rate": "a key of a version's validation record",
    "history.target": "a key of a version's feature_schema history",
}
NOT_FLAGS = {"--headless", "--screenshot", "--window-size"}  # chromium's, not manymodels'
# "Thresholds: `--drift-threshold 0.25`, …": the defaults the monitoring page states
DEFAULTS = {
    "retrain": ("--drift-threshold 0.25", "--min-actuals 20", "--error-ratio 1.5",
                "--naive-ratio 1", "--confidence 0.95", "--max-age-days 30"),
}  # fmt: skip
SPAN = re.compile(r"`([^`\n]+)`")


def spans(doc: Path) -> list[str]:
    return SPAN.findall(doc.read_text(encoding="utf-8"))


def every_span() -> list[tuple[str, str]]:
    return [(doc.name, s) for doc in DOCS for s in spans(doc)]


def _module(name: str) -> ModuleType | None:
    for package in PACKAGES:
        try:
            return importlib.import_module(package + name)
        except ModuleNotFoundError:
            continue
    return None


def _has(owner: Any, name: str) -> bool:
    fields = {**getattr(owner, "__dataclass_fields__", {}), **getattr(owner, "model_fields", {})}
    return hasattr(owner, name) or name in fields


def _target(text: str) -> Any:
    module, _, name = text.partition(":")
    return getattr(importlib.import_module(module), name)


def test_each_dotted_name_is_code_that_exists() -> None:
    """`drift.SIGNIFICANCE`, `manymodels.rowlags`, `serving/served.load_served`,
    `Settings.monitor_flush_seconds`, `model_versions.members_json`, `app.js`: each
    resolves."""
    wrong = []
    for doc, span in every_span():
        if span in NOT_CODE:
            continue
        if re.fullmatch(r"\w[\w/]*\.(py|js|css)", span):  # a file, by name or path
            if not any((ROOT / d / span).exists() for d in ("", *FILE_DIRS)):
                wrong.append(f"{doc}: no file {span}")
        elif found := re.fullmatch(r"([A-Za-z_]\w*(?:/\w+)?)\.([A-Za-z_]\w*)", span):
            owner_name, name = found[1].replace("/", "."), found[2]
            if owner_name in CLASSES:
                owner: Any = _target(CLASSES[owner_name])
            elif owner_name == "model_versions":
                owner = schema.model_versions.c
            else:
                owner = _module(owner_name)
            if owner is None:
                wrong.append(f"{doc}: {span}: no module {owner_name}")
            elif not (_has(owner, name) or _module(f"{owner_name}.{name}")):
                wrong.append(f"{doc}: {span}: {owner_name} has no {name}")
    assert "\n".join(wrong) == ""


def test_each_path_exists() -> None:
    """`tests/serving/test_monitor_lags.py`, `manymodels/monitoring/evidence.py`, `serving/ui/`."""
    tree = re.compile(r"(manymodels|serving|tests|benchmarks)/([\w/-]+(\.(py|md|js))?/?)")
    paths = [(doc, s) for doc, s in every_span() if tree.fullmatch(s)]
    assert len(paths) >= 8
    assert [f"{doc}: {p}" for doc, p in paths if not (ROOT / p).exists()] == []


def _routes() -> dict[tuple[str, str], set[str]]:
    """Every route of the router's API description (``/openapi.json``), by method and path,
    with the query parameters it takes."""
    from serving.app import create_app
    from serving.settings import Settings

    app = create_app(Settings(registry=ROOT / "no-registry-is-opened"))  # not started
    out: dict[tuple[str, str], set[str]] = {}
    for path, methods in app.openapi()["paths"].items():
        for method, operation in methods.items():
            params = operation.get("parameters", [])
            query = {p["name"] for p in params if p["in"] == "query"}
            out[(method.upper(), path)] = query
    return out


def test_each_endpoint_is_a_route_taking_the_parameters_shown() -> None:
    """`GET /v1/partitions?limit=200&prefix=…&after=…&sort=…`: the route, and each of its
    query parameters."""
    routes, wrong, seen = _routes(), [], 0
    for doc, span in every_span():
        if not (found := re.fullmatch(r"(GET|POST) (/[^?\s]+)(?:\?(\S+))?", span)):
            continue
        seen += 1
        method, path, query = found.groups()
        taken = routes.get((method, path))
        if taken is None:
            wrong.append(f"{doc}: {span}: no such route")
            continue
        for pair in (query or "").split("&"):
            if pair and pair.partition("=")[0] not in taken:
                wrong.append(f"{doc}: {span}: the route takes no {pair.partition('=')[0]!r}")
    assert seen >= 12 and wrong == []


def _options() -> dict[str, dict[str, Any]]:
    """Every option of every ``manymodels`` command: {command: {flag: default}}."""
    root = typer.main.get_command(cli_app)
    out: dict[str, dict[str, Any]] = {}
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        for param in command.params:
            for flag in (*param.opts, *getattr(param, "secondary_opts", ())):
                out.setdefault(name, {})[flag] = param.default
    return out


def test_each_flag_is_an_option_of_a_command() -> None:
    options = _options()
    known = {flag for flags in options.values() for flag in flags}
    flags = {f for _, s in every_span() for f in re.findall(r"(?<![\w-])--\w[\w-]*", s)}
    assert "--no-monitor" in flags and len(flags) >= 15
    assert sorted(flags - known - NOT_FLAGS) == []


@pytest.mark.parametrize("command", sorted(DEFAULTS))
def test_the_defaults_stated_are_the_commands(command: str) -> None:
    stated = set(spans(DOCS[0]))
    options = _options()[command]
    for claim in DEFAULTS[command]:
        assert claim in stated, f"monitoring.md no longer states {claim!r}: update DEFAULTS"
        flag, value = claim.split()
        assert float(options[flag]) == float(value), f"{command} {flag} defaults to {options[flag]}"


def test_each_metric_and_index_exists() -> None:
    """The Prometheus names (counters with or without ``_total``) are the collector's, the
    index names the schema's."""
    source = (ROOT / "serving" / "monitor.py").read_text(encoding="utf-8")
    indexes = {ix.name for table in schema.metadata.tables.values() for ix in table.indexes}
    names = {n for _, s in every_span() for n in re.findall(r"\b(?:manymodels|ix)_\w+", s)}
    metrics = {n.removesuffix("_total") for n in names if n.startswith("manymodels_")}
    assert len(metrics) >= 6
    assert [m for m in sorted(metrics) if f'"{m}"' not in source] == []
    assert sorted(n for n in names if n.startswith("ix_") and n not in indexes) == []
