"""``manymodels retire``: partitions taken out of production, all or none, as alias moves
with their reason in the history; ``rollback`` undoes it and ``gc`` keeps what it restores."""

from __future__ import annotations

import json
from pathlib import Path

from factories import linear_frame, spec_dict
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.pipeline import train
from manymodels.registry import Registry

cli = CliRunner()


def _manual_registry(tmp_path: Path) -> Path:
    """Two partitions (+ the fallback), each with v1 in production and an unpromoted v2."""
    root = tmp_path / "reg"
    spec = spec_dict(promotion={"policy": "manual"})
    for i in range(2):
        train(spec, linear_frame(2, 40).assign(y=lambda d, i=i: d["y"] * (1 + i)), root)
    return root


def _state(root: Path) -> tuple[dict[str, int], list[list[str]]]:
    with Registry.open(root) as reg:
        keys = ("pid=0", "pid=1")
        history = [[m.action for m in reg.alias_history(k, "production")] for k in keys]
        return reg.store.alias_table(), history


def test_bad_keys_exit_non_zero_in_one_line_and_write_nothing(tmp_path: Path) -> None:
    root = _manual_registry(tmp_path)
    before = _state(root)
    where = ["--registry", str(root)]
    refusals = {
        ("pid=0", "pid=7"): "error: no partition 'pid=7' in the registry",
        ("pid=0", "store=1"): "error: no partition 'store=1' in the registry: it names 'store'",
        ("__fallback__",): "error: '__fallback__' is the fallback model, not a partition",
    }
    for keys, line in refusals.items():
        done = cli.invoke(app, ["retire", *keys, *where])
        assert done.exit_code == 2, done.output
        assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith(line), done.stderr
        assert _state(root) == before
    long = cli.invoke(app, ["retire", "pid=0", "--reason", "x" * 501, *where])
    assert long.exit_code == 2 and "--reason is 501 characters long" in long.stderr
    assert cli.invoke(app, ["retire", "pid=1", *where]).exit_code == 0
    twice = cli.invoke(app, ["retire", "pid=0", "pid=1", *where])
    assert twice.exit_code != 0
    assert twice.stderr == (
        "error: partition 'pid=1' has no production version: retired from v1 already\n"
    )
    table, history = _state(root)
    assert "pid=0" in table and "pid=1" not in table
    assert history == [["first"], ["first", "retire"]]


def test_retired_partitions_show_their_reason_and_gc_keeps_what_rollback_restores(
    tmp_path: Path,
) -> None:
    root = _manual_registry(tmp_path)
    where = ["--registry", str(root)]
    done = cli.invoke(app, ["retire", "pid=0", "pid=1", "--reason", "y gone", "--json", *where])
    assert done.exit_code == 0, done.output
    moves = json.loads(done.stdout)
    assert [(m["key"], m["from_version"], m["to_version"], m["action"]) for m in moves] == [
        ("pid=0", 1, None, "retire"),
        ("pid=1", 1, None, "retire"),
    ]
    shown = cli.invoke(app, ["models", "show", "pid=0", "--json", *where])
    last = json.loads(shown.stdout)["alias_history"][-1]
    assert (last["to_version"], last["reason"]) == (None, "retired by hand: y gone")
    text = cli.invoke(app, ["models", "show", "pid=0", *where], terminal_width=200).stdout
    assert "retired by hand: y gone" in text
    # v1 is neither the newest nor in production: kept because rollback restores it
    gc = cli.invoke(app, ["gc", "--keep", "1", "--alias-grace-seconds", "0", *where])
    assert gc.exit_code == 0 and gc.stdout.startswith("deleted 0 version(s)"), gc.output
    back = cli.invoke(app, ["rollback", "pid=0", *where])
    assert back.stdout == "pid=0: production nothing → v1 (rollback of v1's retirement)\n"
    gc = cli.invoke(app, ["gc", "--keep", "1", "--alias-grace-seconds", "0", *where])
    assert gc.stdout.startswith("deleted 0 version(s)"), gc.output  # v1 in production again
    with Registry.open(root) as reg:
        assert reg.store.alias_table() == {"__fallback__": 1, "pid=0": 1}
        assert [v.version for v in reg.list_versions("pid=1")] == [2, 1]
