"""The read-only commands' fast path (``manymodels.cli.fastpath`` over
``manymodels.registry.browse``): the same output as the typer commands, and typer's answer for
anything it is not sure of."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from factories import spec_dict
from typer.testing import CliRunner

from manymodels import holiday_sets, plaintable
from manymodels.cli import app
from manymodels.cli.fastpath import answer, parse
from manymodels.pipeline import train
from manymodels.registry import Registry, schema
from manymodels.registry.browse import READABLE_SCHEMAS, Unsure, open_browser

runner = CliRunner()


@pytest.fixture(scope="module")
def registry(samples_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The store_sales sample trained in process: 34 versions, 2 skipped partitions."""
    root = tmp_path_factory.mktemp("browse") / "registry"
    done = runner.invoke(app, [
        "train", str(samples_dir / "store_sales.toml"), str(samples_dir / "store_sales.csv"),
        "--registry", str(root), "--backend", "local", "--json",
    ])  # fmt: skip
    assert done.exit_code == 0, done.output
    with sqlite3.connect(root / "registry.db") as conn:
        (run_id,) = conn.execute("SELECT run_id FROM runs").fetchone()
    return {"root": root, "run": run_id}


COMMANDS = [
    "models list",
    "models list --json",
    "models list --limit 3 --offset 5",
    "models list --limit=7 --json --offset=30",
    "models show store=2,brand=tropicana",
    "models show brand=tropicana,store=2 --json",  # reordered: canonicalised as Registry does
    "runs list",
    "runs list --json --limit 1",
    "runs list --limit 1 --offset 0",
    "runs show RUN",
    "runs show RUN --json",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_fast_path_prints_what_the_typer_command_prints(
    registry: dict[str, Any],
    command: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fast path's tables are drawn without rich (manymodels.plaintable), the typer
    command's here with rich: the same characters."""
    argv = [*command.replace("RUN", registry["run"]).split(), "--registry", str(registry["root"])]
    assert answer(argv) == 0
    fast = capsys.readouterr()
    monkeypatch.setattr(plaintable, "ENABLED", False)
    typer_run = runner.invoke(app, argv)
    assert typer_run.exit_code == 0, typer_run.output
    assert fast.out == typer_run.stdout
    assert fast.err == ""
    assert len(fast.out.splitlines()) > 3


@pytest.mark.parametrize(
    "argv",
    [
        "models list --help",
        "models list --limit 0",  # typer's error line names the bound
        "models list --limit 10001",
        "models list --limit -1",
        "models list --limit ten",
        "models list --limit 3 --limit 4",
        "models list --bogus",
        "models list extra",
        "models list --json=1",
        "models list --registry",
        "models show",
        "models show a=1 b=2",
        "models show a=1 --explain",
        "models show -- a=1",
        "runs list --limit 10001",
        "runs show",
        "models list --registry-db sqlite:///x.db",
        "models list --artifacts /tmp/x",
        "models promote a=1 2",
        "train a b",
        "models",
        "",
    ],
)
def test_command_lines_it_does_not_fully_understand_go_to_typer(argv: str) -> None:
    assert parse(argv.split()) is None


def test_variables_that_change_what_typer_does_send_the_command_there(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert parse(["models", "list"]) is not None
    for name in ("MANYMODELS_REGISTRY_DB", "MANYMODELS_ARTIFACTS", "MANYMODELS_SIGNING_KEY",
                 "MANYMODELS_SIGNING_KEY_FILE"):  # fmt: skip
        with monkeypatch.context() as m:
            m.setenv(name, "x")
            assert parse(["models", "list"]) is None, name
    monkeypatch.setenv("MANYMODELS_REGISTRY", "elsewhere")
    found = parse(["runs", "list"])
    assert found is not None and found.registry == Path("elsewhere")


@pytest.mark.parametrize(
    "argv",
    ["models show nosuch=1", "models show store=2", "models show notakey", "runs show nosuch"],
)
def test_an_unknown_key_or_run_is_typer_s_error(registry: dict[str, Any], argv: str) -> None:
    """Nothing printed by the fast path: the typer command says what is wrong, its way."""
    full = [*argv.split(), "--registry", str(registry["root"])]
    assert answer(full) is None


def test_registries_it_cannot_read_as_registry_does_are_left_to_registry(
    registry: dict[str, Any], tmp_path: Path
) -> None:
    assert open_browser(tmp_path / "missing") is None
    assert open_browser(tmp_path) is None  # no registry.db
    (tmp_path / "registry.db").write_bytes(b"")
    assert open_browser(tmp_path) is None  # empty: Registry says so
    (tmp_path / "registry.db").unlink()
    with sqlite3.connect(tmp_path / "registry.db") as conn:  # another program's database
        conn.execute("CREATE TABLE other (x)")
    assert open_browser(tmp_path) is None
    old = tmp_path / "old"
    old.mkdir()
    with sqlite3.connect(old / "registry.db") as conn:  # a schema Registry would upgrade
        conn.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT)")
        conn.execute("INSERT INTO meta VALUES ('schema_version', '3')")
    assert open_browser(old) is None
    browser = open_browser(registry["root"])
    assert browser is not None
    browser.close()


def test_the_current_schema_is_one_the_browser_was_checked_against() -> None:
    """A new schema version must be added to READABLE_SCHEMAS after checking browse.py's
    queries against it (until then every read-only command is typer's, slower)."""
    assert schema.SCHEMA_VERSION in READABLE_SCHEMAS


def test_the_installed_command_answers_a_read_only_command(
    registry: dict[str, Any],
) -> None:
    script = Path(sys.executable).with_name("manymodels")
    if not script.exists():
        pytest.skip("the manymodels command is not installed beside this Python")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MANYMODELS_")}
    done = subprocess.run(
        [str(script), "models", "list", "--registry", str(registry["root"]), "--json"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(registry["root"] / "registry.db") as conn:
        (n,) = conn.execute("SELECT count(*) FROM partitions").fetchone()
    assert json.loads(done.stdout)["total"] == n == 35  # 34 trained + the fallback


@pytest.fixture(scope="module")
def lost_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A run whose artifact store filled up after 6 writes: some partitions ``lost``."""
    import errno

    from factories import linear_frame

    import manymodels.artifacts

    tmp = tmp_path_factory.mktemp("lost")
    (tmp / "spec.toml").write_text(
        'name = "lost"\npartition_by = ["pid"]\ntarget = "y"\ntime_column = "t"\n'
        '[[candidates]]\nestimator = "sklearn.linear_model.Ridge"\n'
        "[fallback]\nenabled = false\n"
    )
    linear_frame(12, 30).to_csv(tmp / "data.csv", index=False)
    written, real_write = [0], manymodels.artifacts.write_all

    def fills_up(fd: int, data: bytes) -> None:
        written[0] += 1
        if written[0] > 6:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(fd, data)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(manymodels.artifacts, "write_all", fills_up)
        done = runner.invoke(app, [
            "train", str(tmp / "spec.toml"), str(tmp / "data.csv"),
            "--registry", str(tmp / "registry"), "--backend", "local",
        ])  # fmt: skip
    assert done.exit_code == 1, done.output
    with sqlite3.connect(tmp / "registry" / "registry.db") as conn:
        (run_id, n_failed) = conn.execute("SELECT run_id, n_failed FROM runs").fetchone()
        statuses = dict(conn.execute("SELECT status, count(*) FROM run_partitions GROUP BY 1"))
    assert statuses.get("lost", 0) == n_failed > 0 and "failed" not in statuses
    return {"root": tmp / "registry", "run": run_id, "lost": n_failed, "trained": 12 - n_failed}


@pytest.mark.parametrize("command", ["runs list", "runs show RUN"])
@pytest.mark.parametrize("json_out", [False, True])
def test_runs_list_and_show_say_lost_partitions_are_lost_not_failed(
    lost_run: dict[str, Any],
    command: str,
    json_out: bool,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The run's row counts lost partitions in ``n_failed``: `runs list` and `runs show`
    printed them as failed (`train` and ``GET /v1/runs`` say lost), on either path."""
    argv = [*command.replace("RUN", lost_run["run"]).split(), "--registry", str(lost_run["root"])]
    argv += ["--json"] if json_out else []
    assert answer(argv) == 0
    fast = capsys.readouterr().out
    monkeypatch.setattr(plaintable, "ENABLED", False)
    typer_run = runner.invoke(app, argv)
    assert typer_run.exit_code == 0, typer_run.output
    assert fast == typer_run.stdout
    lost, trained = lost_run["lost"], lost_run["trained"]
    counts = {"trained": trained, "skipped": 0, "failed": 0, "lost": lost}
    if json_out and command == "runs list":
        assert json.loads(fast)["items"][0]["counts"] == counts
    elif json_out:
        shown = json.loads(fast)
        assert shown["run"]["counts"] == counts
        assert shown["failed"] == [] and len(shown["lost"]) == lost
        assert {o["status"] for o in shown["lost"]} == {"lost"}
    elif command == "runs list":
        lines = fast.splitlines()
        header, row = lines[2].split("┃"), lines[4].split("│")
        cells = dict(zip((h.strip() for h in header), (c.strip() for c in row), strict=True))
        assert (cells["trained"], cells["failed"], cells["lost"]) == (str(trained), "0", str(lost))
    else:
        assert f"12: {trained} trained, 0 skipped, 0 failed, {lost} lost" in fast
        assert "lost partitions (train them with --resume)" in fast
        assert "failed partitions" not in fast


def test_a_holiday_set_the_browser_cannot_read_is_its_error_not_a_missing_set(
    tmp_path: Path,
) -> None:
    """A registry whose holiday_sets table lost its column (a partial restore): the fast
    path's read of the set said "holiday set … is not in the registry" (the set is there);
    now SQLite's error, and the command goes to typer, whose one line says the same."""
    days = pd.bdate_range("2024-11-01", "2024-12-20")
    df = pd.DataFrame({"shop": "s0", "t": days, "y": 1.0 + days.day})
    spec = spec_dict(partition_by=["shop"], target="y", time_column="t", lags=[1])
    root = tmp_path / "registry"
    with Registry(root) as reg:
        train({**spec, "holidays": ["2024-12-25"]}, df, reg, backend="local")
    with sqlite3.connect(root / "registry.db") as conn:
        conn.execute("ALTER TABLE holiday_sets RENAME COLUMN dates_json TO dates")
    holiday_sets._KNOWN.clear()  # another process: the set is read from the database
    browser = open_browser(root)
    assert browser is not None
    with browser, pytest.raises(Unsure, match="no such column: dates_json"):
        browser.list_versions("shop=s0")
    argv = ["models", "show", "shop=s0", "--registry", str(root)]
    assert answer(argv) is None  # nothing printed: typer's command says what is wrong
    done = runner.invoke(app, argv)
    assert done.exit_code == 1
    assert "no such column" in done.output and len(done.output.strip().splitlines()) == 1


def test_runs_show_of_a_running_run_names_its_process_and_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Text `runs show` of a run still running named neither its process nor its host (only
    ``--json``'s options had them): which machine to stop it on was not said. A line names
    them now, as ``RunBusy`` words it; a finished run has none."""
    from factories import ago, dead_process_tag, linear_frame, mark_running, other_machine_tag

    root = tmp_path / "reg"
    run_id = train(spec_dict(), linear_frame(3, 30), root, backend="local").run.run_id
    argv = ["runs", "show", run_id, "--registry", str(root)]
    assert answer(argv) == 0
    assert "run by" not in capsys.readouterr().out  # completed: no process to name
    with Registry(root) as reg:
        mark_running(reg, run_id, other_machine_tag(), ago(5), host="build-7")
    assert answer(argv) == 0
    fast = capsys.readouterr().out
    assert "\n  run by      process 4242 on host build-7\n" in fast, fast
    typer_run = runner.invoke(app, argv)
    assert typer_run.exit_code == 0 and typer_run.stdout == fast, typer_run.output
    with Registry(root) as reg:  # killed here: gone, not hidden by /proc
        mark_running(reg, run_id, dead_process_tag(), ago(5), host=os.uname().nodename)
    assert answer(argv) == 0
    killed = capsys.readouterr().out
    assert "on this machine, gone\n" in killed and "hidepid" not in killed, killed


@pytest.fixture(scope="module")
def global_registry(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Short noisy shops around one slope, a local and a global candidate: the global model
    wins some (``test_global_candidates`` builds the same choice); one that chose it."""
    rng = np.random.default_rng(0)
    frames = []
    for k in range(12):
        x = np.arange(10) + rng.uniform(0, 1, 10)
        y = 2.0 * x + 3.0 * (k % 5) + rng.normal(0, 2.0, 10)
        days = pd.date_range("2024-01-01", periods=10)
        frames.append(pd.DataFrame({"shop": f"s{k:02d}", "day": days, "x": x, "y": y}))
    root = tmp_path_factory.mktemp("global_browse") / "reg"
    train(
        spec_dict(
            partition_by=["shop"], target="y", time_column="day", features=["x"],
            validation={"strategy": "last", "size": 3}, fallback={"enabled": False},
            candidates=[
                {"estimator": "sklearn.linear_model.LinearRegression"},
                {"estimator": "sklearn.linear_model.Ridge", "scope": "global"},
            ],
        ),
        pd.concat(frames, ignore_index=True), root, backend="local",
    )  # fmt: skip
    with Registry(root) as reg:
        keys = [p.key for p in reg.list_partitions(limit=100)]
        picked = [k for k in keys if reg.get_version(k).selection.chosen == "global"]
    assert picked, "no shop chose the global model"
    return root, picked[0]


@pytest.mark.parametrize("fast", [True, False])
def test_models_list_names_a_global_model_as_models_show_does(
    global_registry: tuple[Path, str],
    fast: bool,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``models list`` said ``Ridge`` of a partition whose production model is the global
    Ridge, where ``models show`` said ``Ridge (global)``."""
    root, key = global_registry
    monkeypatch.setattr(plaintable, "ENABLED", fast)

    def rows(*command: str) -> list[str]:
        argv = [*command, "--registry", str(root)]
        if fast:
            assert answer(argv) == 0
            return capsys.readouterr().out.splitlines()
        done = runner.invoke(app, argv)
        assert done.exit_code == 0, done.output
        return done.stdout.splitlines()

    (listed,) = [r for r in rows("models", "list") if f" {key} " in r]
    shown = next(r for r in rows("models", "show", key) if "production" in r)  # versions
    assert "Ridge (global)" in shown, shown
    assert "Ridge (global)" in listed, listed
