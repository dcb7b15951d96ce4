"""What the CLI prints of user text — a reason, a key, a spec's name, a path, a column — is
printed as written, each result on one line: rich read "[bold]" as a style tag (dropping it)
and ":x:" as an emoji code ("❌"), and a newline in a reason split a result line in two for a
log read line by line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from manymodels.cli import app

runner = CliRunner()

STORES = [":x:", "[bold]b[/bold]"]
NAME = ":warning: [bold]weekly[/bold]"


def invoke(*args: str | Path) -> Any:
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A weekly series per store, each store's name markup or an emoji code, trained from a
    directory whose name is both."""
    root = tmp_path_factory.mktemp("lines")
    folder = root / "in [bold]x :x:"
    folder.mkdir()
    rng = np.random.default_rng(0)
    weeks = pd.date_range("2025-01-06", periods=30, freq="W-MON")
    frame = pd.concat(
        pd.DataFrame({"store": s, "week": weeks.strftime("%Y-%m-%d"),
                      "price": rng.uniform(1, 3, len(weeks)),
                      "units": rng.uniform(50, 150, len(weeks)).round(1)})
        for s in STORES
    )  # fmt: skip
    data = folder / "sales.csv"
    frame.to_csv(data, index=False)
    spec = folder / "spec.toml"
    spec.write_text(
        f'name = "{NAME}"\ntask = "regression"\npartition_by = ["store"]\ntarget = "units"\n'
        'time_column = "week"\nfeatures = ["price"]\nlags = [1]\nmin_rows = 10\n'
        '[validation]\nstrategy = "last"\nsize = 4\n'
        '[[candidates]]\nestimator = "sklearn.linear_model.Ridge"\nparams = { alpha = [1.0] }\n'
    )
    registry = root / "registry"
    for _ in range(2):  # v1 in production, then v2 (the same data: its candidate)
        done = invoke("train", spec, data, "--registry", registry, "--backend", "local", "--json")
        assert done.exit_code == 0, done.output
    return {"registry": registry, "data": data, "spec": spec, "run": json.loads(done.stdout)}


@pytest.fixture
def registry(trained: dict[str, Any], tmp_path: Path) -> Path:
    copy = tmp_path / "registry"
    shutil.copytree(trained["registry"], copy)
    return copy


def test_a_promotion_reason_s_newline_is_escaped_on_its_one_result_line(registry: Path) -> None:
    """`promote --reason $'line one\\nline two'` printed its result on two lines (and its
    promotion already in place too); the history keeps the reason as given."""
    key = "store=:x:"
    first = invoke("promote", key, "2", "--registry", registry, "--reason", "line one\nline two")
    assert first.exit_code == 0, first.output
    assert first.stdout.count("\n") == 1, first.stdout
    assert "(promoted by hand: line one\\nline two)" in first.stdout, first.stdout
    again = invoke("promote", key, "2", "--registry", registry, "--reason", "tab\there\r")
    assert again.exit_code == 0, again.output
    assert again.stdout.count("\n") == 1, again.stdout
    assert "promoted by hand: line one\\nline two); nothing changed" in again.stdout
    shown = json.loads(invoke("models", "show", key, "--registry", registry, "--json").stdout)
    reasons = [m["reason"] for m in shown["alias_history"]]
    assert "promoted by hand: line one\nline two" in reasons, reasons
    table = invoke("models", "show", key, "--registry", registry).stdout
    assert "promoted by hand: line one\\nline two" in table, table


def test_an_error_quoting_a_path_with_a_newline_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "reg\nerror: forged"
    result = invoke("models", "list", "--registry", missing)
    assert result.exit_code != 0, result.output
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: ") and "reg\\nerror: forged" in result.stderr


@pytest.mark.parametrize(
    ("command", "said"),
    [
        (["promote", "store=" + "9" * 100_000, "1"], "error: no partition 'store=999"),
        (["rollback", "store=" + "9" * 100_000], "error: no partition 'store=999"),
        (["retire", "store=" + "9" * 100_000], "error: no partition 'store=999"),
        (["runs", "show", "r" * 100_000], "error: no run with id 'rrr"),
        (["models", "list", "--limit", "9" * 100_000], "error: --limit: unable to parse"),
    ],
)
def test_an_error_quoting_a_huge_argument_is_cut_in_its_middle(
    trained: dict[str, Any], command: list[str], said: str
) -> None:
    """A 100,000-character key, run id or option value was quoted whole: a 100 KB error line,
    its beginning scrolled out of sight. The line keeps its beginning and its end."""
    done = invoke(*command, "--registry", trained["registry"])
    assert done.exit_code == 2, done.output
    (line,) = done.stderr.splitlines()
    assert line.startswith(said) and len(line) <= 2_100, line[:200]
    assert "characters cut]…" in line
    assert line.endswith(("' in the registry", "rrr'", "999)")), line[-200:]


def test_tables_print_keys_names_and_reasons_as_written(
    registry: Path, trained: dict[str, Any]
) -> None:
    listed = invoke("models", "list", "--registry", registry).stdout
    assert "store=:x:" in listed and "❌" not in listed, listed
    runs = invoke("runs", "list", "--registry", registry).stdout  # the name folds in its cell
    assert ":warning:" in runs and "[bold]weekly[/bold]" in runs and "⚠" not in runs, runs
    reason = "[bold]fixed[/bold] :x: :warning:"
    moved = invoke("promote", "store=:x:", "2", "--registry", registry, "--reason", reason)
    assert moved.exit_code == 0, moved.output
    assert moved.stdout == f"store=:x:: production v1 → v2 (promoted by hand: {reason})\n"
    shown = invoke("models", "show", "store=:x:", "--registry", registry).stdout
    assert "versions of store=:x:" in shown, shown
    assert reason in shown, shown
    assert "❌" not in shown and "⚠" not in shown


def test_runs_show_prints_the_data_path_as_written(trained: dict[str, Any]) -> None:
    run_id = trained["run"]["run"]["run_id"]
    shown = invoke("runs", "show", run_id, "--registry", trained["registry"])
    assert shown.exit_code == 0, shown.output
    assert str(trained["data"]) in shown.stdout, shown.stdout
    assert NAME in shown.stdout, shown.stdout


def test_forecast_on_the_terminal_prints_keys_as_written(trained: dict[str, Any]) -> None:
    """`forecast` without --out printed the frame with emoji codes replaced: ":x:" as "❌"."""
    result = invoke("forecast", "--horizon", "2", "--registry", trained["registry"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 5, result.stdout  # the header and 2 steps of 2 partitions
    assert sum(":x:" in line for line in lines) == 2, result.stdout
    assert sum("[bold]b[/bold]" in line for line in lines) == 2, result.stdout
