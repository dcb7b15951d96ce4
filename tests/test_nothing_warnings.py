"""A changed-only run that finds nothing to train records no run and says so in one line; the
warnings reading the data raised (a CSV written with its index, rows with a stray word left
out) were lost with the run it did not record, at every run that changed nothing — the runs a
frequent schedule makes most. They are said beside that line now (stderr; ``warnings`` in
``--json``), by ``train --changed-only``, ``retrain --when`` and a scheduler's firing; and a
run that trained says them on stderr too (they were on stdout with its summary, or unsaid by
a scheduler's firing)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from factories import sales_files, sales_toml
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.samples import store_sales

BIN = Path(sys.executable).parent
UNNAMED = "column 'Unnamed: 0' has no name in the header"


def _setup(tmp_path: Path, schedule: str = "") -> tuple[Path, Path, Path]:
    """A spec without a features list, and data written with its index: every read of it
    warns of the unnamed column (not used as a feature)."""
    return sales_files(tmp_path, sales_toml("indexed", schedule, features=None), index=True)


def _cli(*args: str | Path) -> Any:
    return CliRunner().invoke(app, [str(a) for a in args])


def test_a_changed_only_run_of_nothing_keeps_the_datas_warnings(tmp_path: Path) -> None:
    spec, data, root = _setup(tmp_path)
    first = _cli("train", spec, data, "--registry", root, "--backend", "local")
    assert first.exit_code == 0, first.output
    # on stderr, as the run of nothing below says it (it was on stdout, with the summary)
    assert f"warning: {UNNAMED}" in first.stderr and "warning" not in first.stdout, first.stdout

    again = _cli("train", spec, data, "--registry", root, "--backend", "local", "--changed-only")
    assert again.exit_code == 0, again.output
    assert again.stdout.startswith("nothing to train: all 6 partitions")
    warned = again.stderr.splitlines()
    assert [w for w in warned if w.startswith(f"warning: {UNNAMED}")], again.stderr

    as_json = _cli(
        "train", spec, data, "--registry", root, "--backend", "local", "--changed-only", "--json"
    )
    out = json.loads(as_json.stdout)
    assert out["run"] is None and out["unchanged"] == 6, out
    assert [w for w in out["warnings"] if w.startswith(UNNAMED)], out

    retrained = _cli(
        "retrain", spec, data, "--registry", root, "--backend", "local",
        "--when", "stale", "--max-age-days", "0",
    )  # fmt: skip
    assert retrained.exit_code == 0, retrained.output
    assert retrained.stdout.startswith("nothing to retrain: all 4 flagged")
    assert f"warning: {UNNAMED}" in retrained.stderr


def test_a_run_of_nothing_on_clean_data_says_no_warning(tmp_path: Path) -> None:
    """The list is the data's own: clean data adds no line, and ``warnings`` is empty."""
    spec, data, root = _setup(tmp_path)
    store_sales(n_stores=2).to_csv(data, index=False)
    assert _cli("train", spec, data, "--registry", root, "--backend", "local").exit_code == 0
    again = _cli("train", spec, data, "--registry", root, "--backend", "local", "--changed-only")
    assert "warning" not in again.output, again.output
    as_json = _cli(
        "train", spec, data, "--registry", root, "--backend", "local", "--changed-only", "--json"
    )
    assert json.loads(as_json.stdout)["warnings"] == []


@pytest.mark.slow
def test_a_firing_that_trains_nothing_keeps_the_datas_warnings(tmp_path: Path) -> None:
    spec, data, root = _setup(tmp_path, '\n[schedule]\ncron = "*/2 * * * * *"\n')
    cmd = [str(BIN / "manymodels"), "scheduler", str(spec), str(data), "--registry", str(root),
           "--backend", "local", "--max-runs", "2"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 2 and " 4 trained" in lines[0], done.stdout
    assert " nothing to train: all 6 partitions" in lines[1], done.stdout
    # each firing says them, on stderr: the one that trained said none
    warned = [w for w in done.stderr.splitlines() if w.startswith(f"warning: {UNNAMED}")]
    assert len(warned) == 2, done.stderr


def test_a_retrain_that_trained_has_the_json_members_of_one_that_trained_nothing(
    tmp_path: Path,
) -> None:
    """`retrain --when … --json` of nothing has `selected` and `when`; of a run that trained
    it had neither: a script reading `["selected"]` met a KeyError only when it trained."""
    spec, data, root = _setup(tmp_path)
    store_sales(n_stores=2).to_csv(data, index=False)
    assert _cli("train", spec, data, "--registry", root, "--backend", "local").exit_code == 0
    sales = store_sales(n_stores=2)
    sales.loc[sales.index[0], "units"] += 5.0  # a row of one trained partition corrected
    sales.to_csv(data, index=False)
    done = _cli(
        "retrain", spec, data, "--registry", root, "--backend", "local",
        "--when", "stale", "--max-age-days", "0", "--json",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    out = json.loads(done.stdout)
    assert out["run"]["n_trained"] == 1, out["run"]
    assert out["when"] == ["stale"] and len(out["selected"]) == 4, out


def test_a_run_that_trained_has_the_json_warnings_of_one_that_trained_nothing(
    tmp_path: Path,
) -> None:
    """`train --json` of nothing has `warnings` (the data's, and the rows with a stray word
    left out); of a run that trained it had none at the top: a script reading `["warnings"]`
    met a KeyError exactly when a run was recorded. Both lists are now the same."""
    spec, data, root = _setup(tmp_path)
    spec.write_text(sales_toml("indexed", features=None, bad_rows="drop"))
    sales = store_sales(n_stores=2)
    sales["price"] = sales["price"].astype(object)
    sales.loc[sales.index[3], "price"] = "oops"  # a stray word: its row left out
    sales.to_csv(data, index=True)
    args = ["train", spec, data, "--registry", root, "--backend", "local", "--json"]
    done = _cli(*args)
    assert done.exit_code == 0, done.output
    trained = json.loads(done.stdout)
    assert trained["run"]["n_trained"] > 0, trained["run"]
    nothing = json.loads(_cli(*args, "--changed-only").stdout)
    assert nothing["run"] is None, nothing
    assert trained["warnings"] == nothing["warnings"], (trained["warnings"], nothing)
    assert [w for w in trained["warnings"] if w.startswith(UNNAMED)], trained["warnings"]
    assert [w for w in trained["warnings"] if "stray word" in w], trained["warnings"]
