"""A retired partition back in production through ``train``: the summary, ``--json`` and the
alias history say it came back from its retirement, where they counted it a new partition."""

from __future__ import annotations

import json
from pathlib import Path

from factories import sales_files, sales_toml
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.registry import Registry

cli = CliRunner()
KEYS = ("store=1,brand=tropicana", "store=2,brand=dominicks")


def _train(spec: Path, data: Path, where: list[str], *more: str) -> str:
    done = cli.invoke(
        app, ["train", str(spec), str(data), *where, "--backend", "local", *more],
        terminal_width=300,
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    return done.stdout


def test_train_counts_retired_partitions_back_from_retirement_not_new(tmp_path: Path) -> None:
    """Retire 2 of the sample's 4 partitions and train again: the summary said "2 new
    partitions" (``decisions.first`` 2) and each history entry "first version", though each
    had v1 and v2."""
    spec, data, root = sales_files(tmp_path, sales_toml("sales"))
    where = ["--registry", str(root)]
    _train(spec, data, where)
    usual = _train(spec, data, where)  # v2 of each, compared with v1: nothing retired
    (line,) = [s for s in usual.splitlines() if s.startswith("retrained:")]
    assert line.endswith(", 0 new partitions"), line  # "back from retirement" only when some
    assert cli.invoke(app, ["retire", *KEYS, "--reason", "closed", *where]).exit_code == 0
    text = _train(spec, data, where)
    (line,) = [s for s in text.splitlines() if s.startswith("retrained:")]
    assert line.endswith(", 0 new partitions, 2 back from retirement"), line
    shown = cli.invoke(app, ["models", "show", KEYS[0], "--json", *where])
    last = json.loads(shown.stdout)["alias_history"][-1]
    assert (last["action"], last["from_version"], last["to_version"], last["reason"]) == (
        "first", None, 3, "back in production after its retirement from v1"
    )  # fmt: skip
    assert cli.invoke(app, ["retire", *KEYS, *where]).exit_code == 0
    summary = json.loads(_train(spec, data, where, "--json"))
    decisions = summary["decisions"]
    assert decisions.get("returned") == 2 and "first" not in decisions, decisions
    assert sum(decisions.values()) == 4, decisions
    with Registry.open(root) as reg:
        assert {k: reg.store.alias_table()[k] for k in KEYS} == dict.fromkeys(KEYS, 4)
        (v4,) = [v for v in reg.list_versions(KEYS[1]) if v.version == 4]
        assert v4.decision is not None and v4.decision.outcome == "returned"
        assert v4.decision.reason == "back in production after its retirement from v3"
