"""Tests for manymodels.cli through typer's CliRunner, and the installed command."""

from __future__ import annotations

import inspect
import json
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import typer.main
from factories import imported_by
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.registry import Registry

runner = CliRunner()


def invoke(*args: str | Path) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def one_error_line(result: Any, *expected: str) -> str:
    """A failed command prints exactly one line, ``error: …``, and no traceback."""
    assert result.exit_code != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("error: ")
    for text in expected:
        assert text in line
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return line


@pytest.fixture(scope="module")
def trained(samples_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One CLI training of the store_sales sample, shared by the read-only tests."""
    registry = tmp_path_factory.mktemp("cli") / "registry"
    result = invoke(
        "train", samples_dir / "store_sales.toml", samples_dir / "store_sales.csv",
        "--registry", registry, "--json", "--backend", "local",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return {"registry": registry, "out": json.loads(result.stdout)}


# ------------------------------------------------------------------------------ train
def test_train_json(trained: dict[str, Any]) -> None:
    out = trained["out"]
    run = out["run"]
    assert run["status"] == "completed"
    assert (run["n_partitions"], run["n_trained"], run["n_skipped"], run["n_failed"]) == (
        36, 34, 2, 0
    )  # fmt: skip
    assert run["spec_name"] == "store-sales"
    assert out["failures"] == []
    assert out["registry"] == str(trained["registry"])
    assert out["seconds"] >= out["startup_seconds"] >= 0
    assert (out["backend"], out["backend_reason"]) == ("local", "--backend local")
    skill = out["skill"]
    assert (skill["compared"], skill["beat_naive"]) == (34, 31) and skill["median"] > 0


def test_train_human_output(samples_dir: Path, tmp_path: Path) -> None:
    """The default backend is auto: the sample is a small job, trained in process. The last
    line is the verdict a person reads first, with the command to run next."""
    root = tmp_path / "r"
    result = invoke("train", samples_dir / "store_sales.toml", samples_dir / "store_sales.csv",
                    "--registry", root)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "completed: 0 failed, 34 trained, 2 skipped of 36 partitions" in result.stdout
    assert "s start-up)" not in result.stdout  # nothing started: not "after 0.0s start-up"
    assert re.search(r" partitions in [\d.]+s \([\d,]+ partitions/s\)\n", result.stdout)
    assert (
        "trained in this process: small job: 4,120 rows to fit × 4 configuration(s)"
        in result.stdout
    )
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("34 trained · 2 skipped · 0 failed · 31 of 34 (91%) beat naive, ")
    assert f"registry: {root} · next: manymodels serve --registry {root}" in last
    with Registry.open(root) as reg:
        assert reg.list_runs()[0].options["backend"] == "local"


def test_one_partition_and_one_row_are_said_in_the_singular(
    samples_dir: Path, tmp_path: Path
) -> None:
    """``of 1 partition``, ``scored 1 row of 1 partition``: counts of one read as English."""
    import pandas as pd

    table = pd.read_csv(samples_dir / "store_sales.csv")
    one = table[(table["store"] == 2) & (table["brand"] == "tropicana")]
    one.to_csv(tmp_path / "one.csv", index=False)
    root = tmp_path / "r"
    result = invoke("train", samples_dir / "store_sales.toml", tmp_path / "one.csv",
                    "--registry", root)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "completed: 0 failed, 1 trained, 0 skipped of 1 partition in " in result.stdout
    one.head(1).to_csv(tmp_path / "row.csv", index=False)
    result = invoke("score", tmp_path / "row.csv", "--registry", root,
                    "--out", tmp_path / "scored.csv")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("scored 1 row of 1 partition (0 by the fallback)")


@pytest.mark.parametrize("command", [["runs", "list"], ["models", "show", "pid=0"]])
def test_a_reader_that_left_the_pipe_is_no_traceback(
    trained: dict[str, Any], command: list[str]
) -> None:
    """``manymodels runs show ID | head -1``: the reader closed the pipe, and the fast path's
    print raised BrokenPipeError with a traceback. Here the reader is gone before the first
    write, so every write meets a closed pipe."""
    import os

    key = "store=2,brand=tropicana"
    argv = [a if a != "pid=0" else key for a in command]
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "manymodels.cli", *argv, "--registry", trained["registry"]],
            stdout=write, stderr=subprocess.PIPE, text=True, timeout=60,
        )  # fmt: skip
    finally:
        os.close(write)
    # killed by SIGPIPE, as `seq 100000 | head -1` is: it exited 1, every other failure's code
    assert done.stderr == "" and done.returncode == -signal.SIGPIPE, done.stderr


@pytest.mark.slow  # two commands of the typer app, ~3-10 s each on a shared machine
def test_a_reader_that_left_typer_commands_ends_them_as_sigpipe(
    trained: dict[str, Any], samples_dir: Path
) -> None:
    """``manymodels score d.csv -o - | head -1`` under ``set -o pipefail``: typer's own EPIPE
    handler exited 1, so a script could not tell its reader leaving from a failure; now the
    pipeline's status is seq's, 141. ``monitor`` prints through rich's console, whose own
    handler exited 1 too: with its reader gone before the first write, it dies of SIGPIPE."""
    import os
    import shlex

    command = shlex.join([sys.executable, "-m", "manymodels.cli"])
    data, registry = (
        shlex.quote(str(p)) for p in (samples_dir / "store_sales.csv", trained["registry"])
    )
    score = f"{command} score {data} --registry {registry}"
    script = f'seq 100000 | head -1; echo "seq $?" >&2; {score} -o - | head -1'
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", script],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.stderr.splitlines()[0] == "seq 141", done.stderr  # the shell's SIGPIPE status
    assert done.returncode == 141, done.stderr
    assert done.stdout.splitlines()[1].startswith("store,brand,week,"), done.stdout
    assert "Traceback" not in done.stderr and "error" not in done.stderr, done.stderr
    read, write = os.pipe()
    os.close(read)
    try:
        shown = subprocess.run(
            [sys.executable, "-m", "manymodels.cli", "monitor", "--registry", trained["registry"]],
            stdout=write, stderr=subprocess.PIPE, text=True, timeout=60,
        )  # fmt: skip
    finally:
        os.close(write)
    assert shown.stderr == "" and shown.returncode == -signal.SIGPIPE, shown.stderr


# ------------------------------------------------------------------------------ models
def test_models_list_json(trained: dict[str, Any]) -> None:
    result = invoke("models", "list", "--registry", trained["registry"], "--json", "--limit", "5")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["total"] == 35
    assert out["offset"] == 0
    keys = [item["key"] for item in out["items"]]
    assert keys == sorted(keys)
    assert len(keys) == 5
    first = out["items"][1]
    assert first["key"] == "store=1,brand=dominicks"
    assert first["key_values"] == {"store": 1, "brand": "dominicks"}
    assert first["aliases"] == {"production": 1}
    assert first["production"]["version"] == 1
    page2 = invoke(
        "models", "list", "--registry", trained["registry"], "--json", "--limit", "5",
        "--offset", "5",
    )  # fmt: skip
    assert not set(keys) & {item["key"] for item in json.loads(page2.stdout)["items"]}


def test_models_list_table_contains_partition_keys(trained: dict[str, Any]) -> None:
    result = invoke("models", "list", "--registry", trained["registry"], "--limit", "100")
    assert result.exit_code == 0, result.output
    for key in ("__fallback__", "store=1,brand=dominicks", "store=12,brand=tropicana"):
        assert key in result.stdout
    # 34 trained of 36 (the run's count): the fallback is one of the 35 rows, no partition (it
    # read "partitions 1–35 of 35")
    assert "1–35 of 35: 34 partitions + the fallback (mean_absolute_error" in result.stdout
    past = invoke("models", "list", "--registry", trained["registry"], "--offset", "100")
    assert past.exit_code == 0, past.output  # it read "101–100", then a frame of no row
    assert [x.strip() for x in past.stdout.splitlines()] == [
        "nothing past 100 of 35: 34 partitions + the fallback"
    ]


def test_models_list_without_a_fallback_counts_partitions(tmp_path: Path) -> None:
    """No fallback trained (``fallback.enabled = false``): every row is a partition."""
    from factories import linear_frame, spec_dict

    from manymodels.pipeline import train

    root = tmp_path / "registry"
    train(spec_dict(fallback={"enabled": False}), linear_frame(2, 30), root, backend="local")
    result = invoke("models", "list", "--registry", root)
    assert result.exit_code == 0, result.output
    assert "partitions 1–2 of 2 (mean_absolute_error on validation)" in result.stdout
    assert "__fallback__" not in result.stdout


def test_models_list_shows_each_versions_metric_when_a_page_mixes_them(tmp_path: Path) -> None:
    """Partitions scored by two metrics on one page (an MLflow import, a classifier's
    fallback metric): the table took one sign for the page, and every mean absolute error
    but one read negative (-4.863). Each row now says its metric, errors positive."""
    from factories import linear_frame, spec_dict

    from manymodels.pipeline import train

    root = tmp_path / "registry"
    df = linear_frame(2, 30)
    train(spec_dict(metric="neg_mean_absolute_error"), df, root, backend="local")
    r2 = spec_dict(metric="r2", promotion={"policy": "always"})
    one = df[df["pid"] == 1]
    train(r2, one.assign(y=one["y"] * 2), root, backend="local")  # other rows: other bytes
    with Registry(root) as reg:
        mae = reg.get_partition("pid=0").production.score  # type: ignore[union-attr]
    result = invoke("models", "list", "--registry", root)
    assert result.exit_code == 0, result.output
    assert "1–3 of 3: 2 partitions + the fallback (on validation)" in result.stdout
    lines = [line for line in result.stdout.splitlines() if "pid=" in line]
    rows = {line.split("│")[1].strip(): line for line in lines}
    cells = [c.strip() for c in rows["pid=0"].split("│")]
    assert cells[4:6] == ["mean_absolute_error", f"{-mae:.4g}"] and -mae > 0
    assert " r2 " in rows["pid=1"]


def test_models_show_json(trained: dict[str, Any]) -> None:
    result = invoke(
        "models", "show", "store=1,brand=tropicana", "--registry", trained["registry"], "--json"
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["partition"]["key"] == "store=1,brand=tropicana"
    (version,) = out["versions"]
    assert version["version"] == 1
    assert version["aliases"] == ["production"]
    assert version["run_id"] == trained["out"]["run"]["run_id"]
    assert {c["label"] for c in version["candidates"]} == {"Ridge", "RandomForestRegressor"}
    assert [m["reason"] for m in out["alias_history"]] == ["first version"]


def test_models_show_table(trained: dict[str, Any]) -> None:
    result = invoke("models", "show", "store=2,brand=dominicks", "--registry", trained["registry"])
    assert result.exit_code == 0, result.output
    assert "versions of store=2,brand=dominicks" in result.stdout
    assert "production" in result.stdout
    assert "first version" in result.stdout


# ------------------------------------------------------------------------------ runs
def test_runs_list_and_show_json(trained: dict[str, Any]) -> None:
    run_id = trained["out"]["run"]["run_id"]
    listed = invoke("runs", "list", "--registry", trained["registry"], "--json")
    assert listed.exit_code == 0, listed.output
    assert [r["run_id"] for r in json.loads(listed.stdout)["items"]] == [run_id]
    shown = invoke("runs", "show", run_id, "--registry", trained["registry"], "--json")
    assert shown.exit_code == 0, shown.output
    out = json.loads(shown.stdout)
    assert out["run"]["run_id"] == run_id
    assert out["failed"] == []
    assert sorted(o["key"] for o in out["skipped"]) == [
        "store=2,brand=minute_maid", "store=6,brand=tropicana"
    ]  # fmt: skip
    assert all(o["error_type"] == "PartitionSkipped" for o in out["skipped"])


def test_runs_tables(trained: dict[str, Any]) -> None:
    run_id = trained["out"]["run"]["run_id"]
    listed = invoke("runs", "list", "--registry", trained["registry"])
    assert run_id in listed.stdout
    shown = invoke("runs", "show", run_id, "--registry", trained["registry"])
    assert "34 trained, 2 skipped, 0 failed" in shown.stdout
    assert "store=6,brand=tropicana" in shown.stdout


def test_a_retrain_that_trained_nothing_is_listed_as_a_retrain(
    trained: dict[str, Any], samples_dir: Path, tmp_path: Path
) -> None:
    """`retrain --when changed` on the data every partition was trained on plus a new one
    retrains none: with no champion to judge, its run was recorded (and listed, shown, given
    as JSON) as kind "train", though retrain started it. (With no new partition either, no
    run is recorded at all: test_contract_changed_only.)"""
    registry = tmp_path / "registry"
    shutil.copytree(trained["registry"], registry)
    frame = pd.read_csv(samples_dir / "store_sales.csv")
    new = frame[(frame["store"] == 2) & (frame["brand"] == "tropicana")].assign(store=77)
    data = tmp_path / "sales.csv"
    pd.concat([frame, new], ignore_index=True).to_csv(data, index=False)
    done = invoke(
        "retrain", samples_dir / "store_sales.toml", data,
        "--when", "changed", "--registry", registry, "--backend", "local", "--json",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    run = json.loads(done.stdout)["run"]
    assert (run["n_partitions"], run["kind"]) == (1, "retrain"), run
    listed = json.loads(invoke("runs", "list", "--registry", registry, "--json").stdout)["items"]
    assert (listed[0]["run_id"], listed[0]["kind"]) == (run["run_id"], "retrain")
    table = invoke("runs", "list", "--registry", registry).stdout
    assert f"{run['run_id']} │ retrain" in table, table
    shown = invoke("runs", "show", run["run_id"], "--registry", registry)
    assert f"run {run['run_id']} (retrain)" in shown.stdout, shown.stdout


# ------------------------------------------------------------------------------ errors
def test_malformed_spec_is_one_line_and_creates_nothing(samples_dir: Path, tmp_path: Path) -> None:
    spec = tmp_path / "bad.toml"
    spec.write_text(
        (samples_dir / "store_sales.toml")
        .read_text()
        .replace('target = "units"', 'targt = "units"')
    )
    registry = tmp_path / "registry"
    result = invoke("train", spec, samples_dir / "store_sales.csv", "--registry", registry,
                    "--backend", "local")  # fmt: skip
    one_error_line(result, str(spec), "targt", "target")
    assert result.exit_code == 2
    assert not registry.exists()


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (
            "target_transform = {}",
            "target_transform: {} is not one of 'none', 'difference', 'scale', "
            "'auto_difference' (or a list of 'none', 'difference', 'scale')",
        ),
        (
            "[selection]\nprior_rows = -1",
            "selection.prior_rows: must be a number ≥ 0 or 'auto', not -1",
        ),
    ],
    ids=["target_transform", "prior_rows"],
)
def test_a_value_no_choice_takes_is_one_line_saying_what_the_key_takes(
    samples_dir: Path, tmp_path: Path, change: str, said: str
) -> None:
    """They said "…, or Input should be a valid list" and "Input should be greater than or
    equal to 0, or -1 is not 'auto'"."""
    spec = tmp_path / "bad.toml"
    text = (samples_dir / "store_sales.toml").read_text()
    spec.write_text(text.replace("seed = 0", f"seed = 0\n{change}", 1))
    result = invoke("train", spec, samples_dir / "store_sales.csv", "--registry",
                    tmp_path / "registry", "--backend", "local")  # fmt: skip
    assert one_error_line(result) == f"error: {spec}: {said}"
    assert result.exit_code == 2


def test_bad_toml_is_one_line(tmp_path: Path, samples_dir: Path) -> None:
    spec = tmp_path / "broken.toml"
    spec.write_text('name = "unterminated\n')
    result = invoke("train", spec, samples_dir / "store_sales.csv", "--registry",
                    tmp_path / "registry", "--backend", "local")  # fmt: skip
    one_error_line(result, str(spec), "not valid TOML")
    assert not (tmp_path / "registry").exists()


def test_missing_column_is_one_line_and_creates_no_run(samples_dir: Path, tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    result = invoke("train", samples_dir / "store_sales.toml", samples_dir / "user_activity.csv",
                    "--registry", registry, "--backend", "local")  # fmt: skip
    one_error_line(result, "user_activity.csv", "missing column(s)", "'units'")
    assert result.exit_code == 2
    if (registry / "registry.db").exists():
        with Registry.open(registry) as reg:
            assert reg.list_runs() == []
            assert reg.count_partitions() == 0


def test_missing_data_file_is_one_line(samples_dir: Path, tmp_path: Path) -> None:
    result = invoke("train", samples_dir / "store_sales.toml", tmp_path / "nope.csv",
                    "--registry", tmp_path / "registry", "--backend", "local")  # fmt: skip
    one_error_line(result, "nope.csv", "data file not found")


def test_a_data_name_too_long_for_the_filesystem_is_one_line(
    samples_dir: Path, tmp_path: Path
) -> None:
    """Looking for a file whose name is longer than the filesystem allows raises OSError
    (ENAMETOOLONG), not False: a mistyped (pasted) DATA printed a traceback. Now one line,
    before any registry is made."""
    data = tmp_path / ("a" * 300 + ".csv")
    result = invoke("train", samples_dir / "store_sales.toml", data,
                    "--registry", tmp_path / "registry", "--backend", "local")  # fmt: skip
    one_error_line(result, "cannot look for the data file (File name too long)")
    assert not (tmp_path / "registry").exists()


def test_unknown_partition_is_one_line(trained: dict[str, Any]) -> None:
    result = invoke("models", "show", "store=99,brand=x", "--registry", trained["registry"])
    one_error_line(result, "no partition 'store=99,brand=x'")
    assert result.exit_code == 2
    garbage = invoke("models", "show", "garbage", "--registry", trained["registry"])
    one_error_line(garbage, "'garbage' is not a partition key")


KEYED = "this registry's key columns are store, brand: a key reads 'store=…,brand=…'"


@pytest.mark.parametrize("command", [["models", "show"], ["promote"], ["rollback"], ["retire"]])
@pytest.mark.parametrize(
    ("key", "said"),
    [
        ("store = 2,brand=tropicana", f"it names 'store ', 'brand'; {KEYED} without spaces"),
        ("store=2, brand=tropicana", f"it names 'store', ' brand'; {KEYED} without spaces"),
        ("store=2,brand= tropicana", f"in the registry; {KEYED} without spaces"),
        ("shop=2,brand=tropicana", f"it names 'shop', 'brand'; {KEYED}"),
        ("store=2", f"it names 'store'; {KEYED}"),
        ("store 2", f"is not a partition key of the form col=value[,col=value]; {KEYED}"),
    ],
)
def test_a_key_not_of_the_registry_columns_names_them(
    trained: dict[str, Any], command: list[str], key: str, said: str
) -> None:
    """Every command that takes a key says what a key of this registry is: 'store = 2' was
    read as the column 'store ' and refused as "no partition 'store%20=%202,…'", naming
    neither the mistake nor the key columns."""
    version = ["1"] if command == ["promote"] else []
    result = invoke(*command, key, *version, "--registry", trained["registry"])
    line = one_error_line(result, said)
    assert result.exit_code == 2
    assert "%20" not in line  # the key as the user wrote it


def test_unknown_run_is_one_line(trained: dict[str, Any]) -> None:
    result = invoke("runs", "show", "deadbeef", "--registry", trained["registry"])
    one_error_line(result, "no run with id 'deadbeef'")
    assert result.exit_code == 2


@pytest.mark.parametrize("command", [["models", "list"], ["runs", "list"],
                                     ["models", "show", "a=1"], ["runs", "show", "x"]])  # fmt: skip
def test_missing_registry_is_one_line(tmp_path: Path, command: list[str]) -> None:
    missing = tmp_path / "no-such-registry"
    result = invoke(*command, "--registry", missing)
    one_error_line(result, f"no registry at {missing}")
    assert result.exit_code == 1
    assert not missing.exists()


# ------------------------------------------------------------------------------ usage errors
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["models", "list", "--limit", "-1"], ["--limit: ", "greater than or equal to 1 (got -1)"]),
        (["models", "list", "--limit", "10001"], ["--limit: ", "less than or equal to 10000"]),
        (["models", "list", "--offset", "-1"], ["--offset: ", "greater than or equal to 0"]),
        (["models", "list", "--limit", "many"], ["--limit: ", "valid integer", "got many"]),
        (["runs", "list", "--limit", "0"], ["--limit: ", "greater than or equal to 1", "got 0"]),
        (["promote", "store=1,brand=x", "0"], ["VERSION: ", "greater than or equal to 1"]),
        (["gc", "--keep", "0"], ["--keep: ", "greater than or equal to 1", "got 0"]),
        (["gc", "--grace-seconds", "-5"], ["--grace-seconds: ", "greater than or equal to 0"]),
        (["serve", "--cache-size", "0"], ["--cache-size: ", "greater than or equal to 1"]),
        (["serve", "--preload", "-1"], ["--preload: ", "greater than or equal to 0"]),
        (["serve", "--refresh-seconds", "0"], ["--refresh-seconds: ", "greater than or equal"]),
        (["serve", "--retrain-workers", "0"], ["--retrain-workers: ", "greater than or equal"]),
        (["serve", "--port", "70000"], ["--port: must be within 0..65535, not 70000"]),
        (["serve", "--port", "-1"], ["--port: must be within 0..65535, not -1"]),
        (["serve", "--refresh-seconds", "inf"], ["--refresh-seconds: must be a finite number"]),
        (["gc", "--grace-seconds", "inf"], ["--grace-seconds: must be a finite number, not inf"]),
        (["gc", "--alias-grace-seconds", "inf"], ["--alias-grace-seconds: must be a finite"]),
    ],
)
def test_out_of_range_option_is_one_line(args: list[str], expected: list[str]) -> None:
    """Checked before the registry is opened: the default ./mmregistry need not exist."""
    result = invoke(*args)
    one_error_line(result, *expected)
    assert result.exit_code == 2


def test_a_long_promotion_reason_is_printed_on_one_line_as_written(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A reason past the pipe's 160 columns was folded onto a second line, and its "[b]" read
    as rich markup and dropped (promote and rollback print their move through this)."""
    from manymodels import console
    from manymodels.cli.alias_commands import _show_move
    from manymodels.registry.entities import AliasMove

    reason = "x" * 150 + " [b]tagged[/b]"
    move = AliasMove("store=1,brand=x", "production", 2, 1, reason, None, "2026-12-05T09:00:00")
    _show_move(move, False, console)
    assert capsys.readouterr().out == f"store=1,brand=x: production v2 → v1 ({reason})\n"


def test_a_promotion_reason_s_emoji_codes_are_printed_as_written(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With markup off, rich still read ":x:" and ":warning:" in a reason as emoji codes and
    printed "❌" and "⚠": not the reason recorded."""
    from manymodels import console
    from manymodels.cli.alias_commands import _show_move
    from manymodels.registry.entities import AliasMove

    reason = "promoted by hand: :x: drift fixed :warning:"
    move = AliasMove("store=1,brand=x", "production", 2, 1, reason, None, "2026-12-05T09:00:00")
    _show_move(move, False, console)
    assert capsys.readouterr().out == f"store=1,brand=x: production v2 → v1 ({reason})\n"


def test_an_option_outside_its_choices_says_them_without_pydantic_s_prefix() -> None:
    """`monitor --sort bogus` said "--sort: value error, 'bogus' is not one of …": the
    exception's type, pydantic's wording, ahead of the message; then "… 'key' (got bogus)",
    naming the value twice. A bound still says what it got: the message does not."""
    result = invoke("monitor", "--sort", "errors")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: --sort: 'errors' is not one of 'drift', 'error', 'naive', 'age', 'key'"
    ]
    backend = invoke("train", "spec.toml", "data.csv", "--backend", "bogus")
    assert backend.exit_code == 2
    assert backend.output.strip().splitlines() == [
        "error: --backend: 'bogus' is not one of 'auto', 'ray', 'local'"
    ]
    bound = invoke("monitor", "--limit", "0")
    assert bound.output.strip().splitlines()[-1].endswith("equal to 1 (got 0)")


def test_serve_on_an_address_it_cannot_listen_on_is_one_line(trained: dict[str, Any]) -> None:
    """A port in use: uvicorn logged "router ready", then its own error lines, exit 3."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke("serve", "--registry", trained["registry"], "--port", str(port))
        one_error_line(result, f"cannot listen on 127.0.0.1:{port}: address already in use")
    unknown = invoke("serve", "--registry", trained["registry"], "--host", "no-such-host.invalid")
    one_error_line(unknown, "--host no-such-host.invalid: cannot resolve it")

    # IPv6 listens IPv6-only, as asyncio binds it for uvicorn: another process on
    # 0.0.0.0:PORT leaves [::]:PORT free (the check said "address already in use")
    from serving.command import _refuse_unusable_address

    with socket.socket() as v4:
        v4.bind(("0.0.0.0", 0))
        v4.listen()
        _refuse_unusable_address("::", v4.getsockname()[1])  # no typer.Exit


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--bogus"], ["no such option: --bogus"]),
        (["train", "--bogus"], ["no such option: --bogus"]),
        (["train", "spec.toml"], ["missing argument 'DATA'"]),  # as the help names it
        (["score", "table.csv"], ["missing option", "--out"]),
        (["trian"], ["no such command 'trian'", "'train'"]),
        (["models", "lst"], ["no such command 'lst'", "'list'"]),
        (["version", "extra"], ["unexpected extra argument", "extra"]),
        # click reads a negative number as an option: the line says how to give one
        (["promote", "store=1", "-1"], ["no such option: -1", "arguments after '--'"]),
        (["promote", "store=1", "-2.5"], ["no such option: -2", "arguments after '--'"]),
    ],
)
def test_other_usage_errors_are_one_line(args: list[str], expected: list[str]) -> None:
    result = invoke(*args)
    one_error_line(result, *expected)
    assert result.exit_code == 2


@pytest.mark.parametrize("args", [["--help"], ["models", "list", "--help"], ["serve", "--help"]])
def test_help_still_works(args: list[str]) -> None:
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "Usage" in result.stdout
    assert result.stderr == ""


def test_every_command_is_listed_with_a_one_line_summary() -> None:
    """``manymodels --help`` lists a command by its help's first paragraph: one whose first
    paragraph ran on for eight lines broke the list mid-sentence, and one too long for an
    80-column terminal ends in "...". Each first paragraph is one short line; the rest is for
    ``manymodels COMMAND --help``."""
    for args in ([], ["models"], ["runs"]):
        listing = invoke(*args, "--help").stdout.split("Commands:")[1]
        assert "..." not in listing, listing
        assert len(listing.strip().splitlines()) > 1
    group: Any = typer.main.get_command(app)
    assert len(group.commands) > 20
    long = {
        name: first
        for name, command in group.commands.items()
        if "\n" in (first := inspect.cleandoc(command.help or "").split("\n\n")[0])
    }
    assert long == {}


def test_no_help_page_shows_restructuredtext_quotes() -> None:
    """Docstrings quote names in ``double backquotes`` for Sphinx; a command's help is read
    in a terminal, where they showed as they are written."""

    def pages(group: Any, prefix: list[str]) -> Iterator[list[str]]:
        for name, command in group.commands.items():
            if hasattr(command, "commands"):
                yield from pages(command, [*prefix, name])
            else:
                yield [*prefix, name]

    group: Any = typer.main.get_command(app)
    quoted = [args for args in pages(group, []) if "``" in invoke(*args, "--help").stdout]
    assert quoted == []


def test_help_shows_brackets_as_written_and_wraps_paragraphs() -> None:
    """Rich markup read "[intervals]" in ``forecast --help`` as a style tag and dropped it,
    and kept each docstring line break, so paragraphs wrapped raggedly."""
    text = invoke("forecast", "--help").stdout
    assert "Models trained with [intervals] add lo-<level>/hi-<level> columns" in " ".join(
        text.split()
    )
    assert all(len(line) <= 80 for line in text.splitlines())


@pytest.mark.parametrize("args", [[], ["models"]])
def test_a_group_without_a_command_shows_its_help_not_an_error(args: list[str]) -> None:
    result = invoke(*args)
    assert "Usage" in result.stdout
    assert "error:" not in result.output


@pytest.mark.parametrize("args", [["version"], ["--version"]])
def test_version(args: list[str]) -> None:
    """``manymodels --version``, which pip and MLflow answer, was "error: no such option:
    --version" (exit 2); now it prints the version as ``manymodels version`` does."""
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    from manymodels import __version__

    assert result.stdout.strip() == __version__
    assert result.stderr == ""


# ------------------------------------------------------------------------------ start-up
def command() -> list[str]:
    script = Path(sys.executable).with_name("manymodels")
    if script.exists():
        return [str(script)]
    found = shutil.which("manymodels")
    return [found] if found else [sys.executable, "-m", "manymodels.cli"]


def test_help_in_a_subprocess_imports_nothing_heavy() -> None:
    """``--help`` lists the commands without importing what only work needs (how long it
    takes is for ``benchmarks/cli.py``, not a timed test: a loaded machine made it flaky)."""
    done = subprocess.run([*command(), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    for word in ("train", "models", "runs"):
        assert word in done.stdout
    statement = (
        "sys.argv = ['manymodels', '--help']\nfrom manymodels.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass"
    )
    heavy = ("ray", "sklearn", "scipy", "pandas", "pyarrow", "sqlalchemy")
    assert imported_by(statement, heavy) == []


def test_usage_error_of_the_installed_command_is_one_line() -> None:
    done = subprocess.run(
        [*command(), "models", "list", "--limit", "0"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "error: --limit: input should be greater than or equal to 1 (got 0)"
    ]


def test_python_m_manymodels_is_the_command() -> None:
    """``python -m manymodels`` (a venv not activated) said "No module named
    manymodels.__main__"; it is now the installed command: the same answers, and as light."""
    module = [sys.executable, "-m", "manymodels"]
    for args in (["--version"], ["--help"], ["models", "list", "--limit", "0"]):
        ran = subprocess.run([*module, *args], capture_output=True, text=True, timeout=60)
        script = subprocess.run([*command(), *args], capture_output=True, text=True, timeout=60)
        assert ran.returncode == script.returncode, ran.stderr
        # the usage line names how it was run: "python -m manymodels" rather than "manymodels"
        assert ran.stdout.replace("python -m manymodels", "manymodels") == script.stdout
        assert ran.stderr == script.stderr
    statement = (
        "import runpy\nsys.argv = ['manymodels', '--help']\n"
        "try:\n    runpy.run_module('manymodels', run_name='__main__')\n"
        "except SystemExit:\n    pass"
    )
    heavy = ("ray", "sklearn", "scipy", "pandas", "pyarrow", "sqlalchemy")
    assert imported_by(statement, heavy) == []


def test_importing_the_cli_does_not_import_heavy_libraries() -> None:
    heavy = ("ray", "sklearn", "pandas", "pyarrow", "sqlalchemy", "typer")
    assert imported_by("import manymodels.cli", heavy) == []


READ_ONLY = [
    ["models", "list"],
    ["models", "list", "--json"],
    ["models", "show", "store=2,brand=tropicana"],
    ["models", "show", "store=2,brand=tropicana", "--json"],
    ["runs", "list"],
    ["runs", "list", "--json"],
    ["runs", "show", "RUN"],
    ["runs", "show", "RUN", "--json"],
]
HEAVY = ("sklearn", "pandas", "pyarrow", "ray", "numpy", "scipy")
# what the installed command (``main``) answers these without: typer, SQLAlchemy, pydantic
# (~0.6 s of imports, 6-20x the rest of the command; benchmarks/cli.py)
HEAVY_FOR_MAIN = (*HEAVY, "typer", "sqlalchemy", "pydantic", "fastapi")


@pytest.mark.parametrize("entry", ["main", "app"])
@pytest.mark.parametrize("args", READ_ONLY, ids=" ".join)
def test_read_only_commands_import_no_heavy_library(
    trained: dict[str, Any], args: list[str], entry: str
) -> None:
    """Browsing a registry took 2–5 s, most of it importing scikit-learn and pandas that
    nothing in it uses; Ray workers likewise imported SQLAlchemy. The installed command
    (``main``) now reads a SQLite registry without typer or SQLAlchemy either
    (``manymodels.cli.fastpath``); the typer app (``app``, which every other command line
    reaches) still imports none of the libraries of training."""
    run_id = trained["out"]["run"]["run_id"]
    argv = [a.replace("RUN", run_id) for a in args] + ["--registry", str(trained["registry"])]
    heavy = HEAVY_FOR_MAIN if entry == "main" else HEAVY
    script = (
        "import sys\n"
        f"sys.argv = ['manymodels', *{argv!r}]\n"
        f"from manymodels.cli import {entry}\n"
        f"try:\n    {entry}()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        f"print('HEAVY', sorted(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip(), "the command printed nothing"
    assert "HEAVY []" in done.stderr, done.stderr[-500:]
