"""``manymodels retire``: partitions taken out of production, all or none, as alias moves
with their reason in the history; ``rollback`` undoes it and ``gc`` keeps what it restores."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from factories import linear_frame, sales_files, sales_toml, spec_dict
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.cli.fastpath import answer
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
    unknown = cli.invoke(app, ["retire", "pid=1", "pid=7", *where])
    assert unknown.exit_code == 2 and unknown.stderr.startswith("error: no partition 'pid=7'")
    table, history = _state(root)
    assert "pid=0" in table and "pid=1" not in table
    assert history == [["first"], ["first", "retire"]]


def test_retiring_a_retired_partition_again_says_since_when_and_writes_nothing(
    tmp_path: Path,
) -> None:
    """A retire script run twice failed the second time ("has no production version:
    retired from v1 already", exit 1), where promoting the version served says "already"
    and succeeds: it succeeds, saying when and why it was retired, and writes no new alias
    row or history entry, while the other keys of the call are retired."""
    root = _manual_registry(tmp_path)
    where = ["--registry", str(root)]
    first = cli.invoke(app, ["retire", "pid=1", "--reason", "store closed", "--json", *where])
    assert first.exit_code == 0, first.output
    (retired,) = json.loads(first.stdout)
    with Registry.open(root) as reg:
        rows_before = reg.store.alias_changes("production")
    again = cli.invoke(app, ["retire", "pid=0", "pid=1", *where])
    assert again.exit_code == 0, again.output
    assert again.stdout.splitlines() == [
        "pid=0: production v1 → retired (retired by hand: manual)",
        f"pid=1: production is already retired from v1 (since {retired['at']}: "
        "retired by hand: store closed); nothing changed",
    ]
    table, history = _state(root)
    assert table == {"__fallback__": 1}
    assert history == [["first", "retire"], ["first", "retire"]]
    with Registry.open(root) as reg:
        rows = {k: r for k, *r in reg.store.alias_changes("production")}
        assert rows["pid=1"] == next([v, at] for k, v, at in rows_before if k == "pid=1")
    third = cli.invoke(app, ["retire", "pid=1", "--json", *where])
    assert json.loads(third.stdout) == [retired | {"moved": False}]


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
    (row,) = [line for line in text.splitlines() if "y gone" in line]
    assert [c.strip() for c in row.split("│")][2:5] == ["production", "retire", "1"], row
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


def test_readers_of_production_treat_a_retired_partition_as_one_without_a_model(
    tmp_path: Path,
) -> None:
    """score answers its rows as an unknown key's (the fallback; refused, or unscored with
    --skip-unknown, without one) and says how many were retired; monitor lists it no more,
    so no `retrain --when` flag retrains it."""
    from manymodels.monitoring.partition_health import Thresholds
    from manymodels.monitoring.report import flagged

    root = _manual_registry(tmp_path)
    where = ["--registry", str(root)]
    data, out = tmp_path / "rows.csv", tmp_path / "scored.csv"
    linear_frame(2, 40).to_csv(data, index=False)
    assert cli.invoke(app, ["retire", "pid=0", *where]).exit_code == 0
    scored = cli.invoke(app, ["score", str(data), "--out", str(out), *where])
    assert scored.exit_code == 0, scored.output
    assert "(40 by the fallback; 1 retired partition(s) among them)" in scored.stdout
    monitored = cli.invoke(app, ["monitor", "--json", *where])
    assert [r["key"] for r in json.loads(monitored.stdout)["partitions"]] == ["pid=1"]
    with Registry.open(root) as reg:
        assert flagged(reg, ["stale"], Thresholds(max_age_days=0.0)) == ["pid=1"]
    bare = tmp_path / "bare"  # no fallback: refused as an unknown key, or left unscored
    train(spec_dict(fallback={"enabled": False}), linear_frame(2, 40), bare)
    there = ["--registry", str(bare)]
    assert cli.invoke(app, ["retire", "pid=0", *there]).exit_code == 0
    refused = cli.invoke(app, ["score", str(data), "--out", str(out), *there])
    assert refused.exit_code == 2 and "partition(s) 'pid=0' (1 retired), and" in refused.stderr
    skipped = cli.invoke(app, ["score", str(data), "--out", str(out), "--skip-unknown", *there])
    assert "(0 by the fallback, 40 unscored; 1 retired partition(s) among them)" in skipped.stdout


def test_forecast_leaves_a_retired_partition_out_and_says_so(tmp_path: Path) -> None:
    """As a partition with no production version: left out of a forecast of every
    partition (counted and named in its note), refused in one line when named."""
    spec, data, root = sales_files(tmp_path, sales_toml("sales"))
    where = ["--registry", str(root)]
    assert (
        cli.invoke(app, ["train", str(spec), str(data), *where, "--backend", "local"]).exit_code
        == 0
    )
    key = "store=1,brand=tropicana"
    assert cli.invoke(app, ["retire", key, *where]).exit_code == 0
    out = tmp_path / "forecast.csv"
    done = cli.invoke(app, ["forecast", "--horizon", "2", "--out", str(out), *where])
    assert done.exit_code == 0, done.output
    assert f"note: left out 1 partition(s) with no 'production' version: '{key}'\n" in done.stderr
    brands = pd.read_csv(out).query("store == 1")["brand"]
    assert len(brands) > 0 and "tropicana" not in set(brands)
    named = cli.invoke(app, ["forecast", "--horizon", "2", "--partitions", key, *where])
    assert named.exit_code != 0 and len(named.stderr.splitlines()) == 1, named.output
    assert key in named.stderr


@pytest.mark.parametrize("fast", [False, True], ids=["typer", "fastpath"])
def test_models_list_says_a_partition_is_retired(
    tmp_path: Path, fast: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its row's version reads 'retired v1', where it read '—' as for a partition never
    promoted: the reader saw no way back ('rollback' restores v1)."""
    root = _manual_registry(tmp_path)
    where = ["--registry", str(root)]
    assert cli.invoke(app, ["retire", "pid=0", *where]).exit_code == 0
    argv = ["models", "list", *where]
    if fast:
        assert answer(argv) == 0
        text = capsys.readouterr().out
    else:
        text = cli.invoke(app, argv, terminal_width=200).stdout
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in text.splitlines()
            if line.startswith("│")}  # fmt: skip
    assert (rows["pid=0"], rows["pid=1"]) == ("retired v1", "1"), text


def test_doctor_counts_retired_partitions_apart_from_aliases(tmp_path: Path) -> None:
    """A retirement moves production's row to 'retired': counted as an alias, doctor said
    '6 alias(es)' (production and candidate of pid=0, pid=1 and the fallback) both before and
    after, as if nothing had left production."""
    root = _manual_registry(tmp_path)
    where = ["--registry", str(root)]
    before = cli.invoke(app, ["doctor", *where])
    assert ", 6 alias(es), 2 run(s)" in before.stdout, before.output
    assert cli.invoke(app, ["retire", "pid=0", *where]).exit_code == 0
    after = cli.invoke(app, ["doctor", *where])
    assert after.exit_code == 0, after.output
    assert ", 5 alias(es), 1 retired partition(s), 2 run(s)" in after.stdout, after.stdout
    checked = json.loads(cli.invoke(app, ["doctor", "--json", *where]).stdout)["checked"]
    assert (checked["aliases"], checked["retired_partitions"]) == (5, 1), checked


def test_export_of_a_retired_partition_names_its_version_and_how_to_export_it(
    tmp_path: Path,
) -> None:
    """It read as a partition never promoted: "has no 'production' alias", and nothing said
    its version was kept, nor that --version exports it; ``--alias production`` given
    explicitly still did (the registry's refusal says it now, the command adds the hint)."""
    root = _manual_registry(tmp_path)
    where = ["--registry", str(root)]
    assert cli.invoke(app, ["retire", "pid=0", *where]).exit_code == 0
    out = tmp_path / "out"
    export = ["export", "pid=0", str(out), "--format", "mlflow", *where]
    for explicit in ([], ["--alias", "production"]):
        refused = cli.invoke(app, [*export, *explicit])
        assert refused.exit_code == 2, refused.output
        assert refused.stderr == (
            "error: partition 'pid=0' has no 'production' alias: it was retired from v1; export"
            " it with --version 1 (or 'manymodels rollback' puts it back in production)\n"
        ), explicit
        assert not out.exists()
    other = cli.invoke(app, [*export, "--alias", "champion"])  # never retired from: as it was
    assert other.stderr == "error: partition 'pid=0' has no 'champion' alias\n", other.stderr
    done = cli.invoke(app, [*export, "--version", "1"])
    assert done.exit_code == 0 and done.stdout.startswith("exported pid=0 v1 as an MLflow")


@pytest.mark.parametrize("fast", [False, True], ids=["typer", "fastpath"])
def test_models_show_says_a_partition_is_retired_and_explain_says_why_not(
    tmp_path: Path, fast: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """The table's aliases column and --json's partition.aliases name the 'retired' version;
    --explain (production's model) said only "has no 'production' alias", as of a partition
    never promoted."""
    root = _manual_registry(tmp_path)
    where = ["--registry", str(root)]
    assert cli.invoke(app, ["retire", "pid=0", *where]).exit_code == 0
    argv = ["models", "show", "pid=0", *where]
    if fast:
        assert answer(argv) == 0
        text = capsys.readouterr().out
    else:
        text = cli.invoke(app, argv, terminal_width=200).stdout
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in text.splitlines()
            if line.startswith("│ 1 ") or line.startswith("│ 2 ")}  # fmt: skip
    assert rows == {"1": "retired", "2": "candidate"}, text
    shown = json.loads(cli.invoke(app, [*argv, "--json"]).stdout)
    assert shown["partition"]["aliases"] == {"candidate": 2, "retired": 1}
    for extra in ([], ["--json"]):
        refused = cli.invoke(app, [*argv, "--explain", *extra])
        assert refused.exit_code == 2, refused.output
        assert refused.stderr == (
            "error: partition 'pid=0' has no 'production' alias to explain: it was retired from"
            " v1 (drop --explain to see its versions; 'manymodels rollback' puts it back in"
            " production)\n"
        )
