"""The scheduler command's checks at start (manymodels.cli.schedule)."""

from __future__ import annotations

from pathlib import Path

from factories import sales_toml
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.samples import store_sales


def test_a_schedule_of_monitor_flags_on_a_missing_registry_is_refused_at_start(
    tmp_path: Path,
) -> None:
    """`scheduler` of `when = ["drifted", "degraded"]` with a mistyped `--registry` made an
    empty registry there at its first firing, which then said "nothing to retrain: no
    partition is flagged" and exited 0 at every firing, for ever; now one line, exit 1,
    nothing made — as `retrain --when drifted` says it."""
    spec = tmp_path / "spec.toml"
    cron = '[schedule]\ncron = "*/1 * * * * *"\nwhen = ["drifted", "degraded"]\n'
    spec.write_text(sales_toml("scheduled", cron))
    data = tmp_path / "sales.csv"
    store_sales(n_stores=1).to_csv(data, index=False)
    typo = tmp_path / "mmregsitry"
    args = ["scheduler", str(spec), str(data), "--registry", str(typo), "--max-runs", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines() == [
        f"error: no registry at {typo} (train something first)"
    ]
    assert not typo.exists()


def test_a_schedule_of_changed_partitions_may_start_a_new_registry(tmp_path: Path) -> None:
    """Training what changed is how a registry starts: its scheduler's first firing trains
    every partition into a registry that did not exist."""
    spec = tmp_path / "spec.toml"
    spec.write_text(sales_toml("scheduled", '[schedule]\ncron = "*/1 * * * * *"\n'))
    data = tmp_path / "sales.csv"
    store_sales(n_stores=1).to_csv(data, index=False)
    root = tmp_path / "new"
    args = ["scheduler", str(spec), str(data), "--registry", str(root), "--max-runs", "1",
            "--backend", "local"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert " 1 trained · 2 skipped · 0 failed" in result.output, result.output
    assert (root / "registry.db").exists()


def test_a_schedule_of_a_data_file_that_does_not_exist_says_so_at_start(tmp_path: Path) -> None:
    """A mistyped data file started a scheduler that said only its start line, and told of
    the file at its first firing (next Monday at 03:00); a file that an upstream job writes
    before the firing may be missing at start, so it is a warning there, and the firing
    still fails, in one line."""
    spec = tmp_path / "spec.toml"
    spec.write_text(sales_toml("scheduled", '[schedule]\ncron = "*/1 * * * * *"\n'))
    typo = tmp_path / "slaes.csv"
    args = ["scheduler", str(spec), str(typo), "--registry", str(tmp_path / "reg"),
            "--max-runs", "1"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("scheduler: scheduled on '*/1 * * * * *'"), lines
    assert lines[1] == f"warning: {typo}: no such file (yet): each firing fails until it is"
