"""The options several commands share (manymodels.cli.options)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from factories import linear_frame, synthetic_ridge_toml
from typer.testing import CliRunner

from manymodels.cli import app


def test_an_empty_registry_is_refused_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`train spec.toml data.csv --registry ""` (an unset $REG) made the registry in the
    current directory, registry.db and artifacts/ among the user's files (a Path of "" is
    "."): one line, exit 2, nothing written; a named registry still trains."""
    monkeypatch.chdir(tmp_path)
    linear_frame(3, 30).to_csv("rows.csv", index=False)
    Path("spec.toml").write_text(synthetic_ridge_toml("empty"))
    cli = CliRunner()
    done = cli.invoke(app, ["train", "spec.toml", "rows.csv", "--registry", ""])
    assert done.exit_code == 2, done.output
    assert done.output.strip().splitlines() == [
        "error: --registry (env var: MANYMODELS_REGISTRY): the registry is an empty path "
        "(''): name its directory, or leave --registry out for ./mmregistry"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.csv", "spec.toml"]
    done = cli.invoke(app, ["train", "spec.toml", "rows.csv", "--registry", "r"])
    assert done.exit_code == 0, done.output
    assert (tmp_path / "r" / "registry.db").is_file()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "sqlite:///:memory:"])
def test_an_in_memory_registry_database_is_refused_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    """`--registry-db "sqlite:///$DB"` with DB unset (or sqlite://, :memory:) trained: the
    run's versions went into a database gone when train exited, their models stayed in the
    store with no registry naming them, and it said "next: manymodels serve --registry-db
    sqlite://". One line, exit 2, nothing written; from the variable too."""
    monkeypatch.chdir(tmp_path)
    linear_frame(3, 30).to_csv("rows.csv", index=False)
    Path("spec.toml").write_text(synthetic_ridge_toml("memory"))
    cli = CliRunner()
    train = ["train", "spec.toml", "rows.csv", "--artifacts", "store"]
    for done in (
        cli.invoke(app, [*train, "--registry-db", url]),
        cli.invoke(app, train, env={"MANYMODELS_REGISTRY_DB": url}),
    ):
        assert done.exit_code == 2, done.output
        assert done.output.strip().splitlines() == [
            f"error: --registry-db (env var: MANYMODELS_REGISTRY_DB): '{url}' is an in-memory "
            "SQLite database, gone when the command ends: name the file "
            "(sqlite:///path/registry.db; four slashes for an absolute path)"
        ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.csv", "spec.toml"]


def test_a_file_uri_is_judged_by_its_mode_not_by_the_word_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's shared in-memory URI (``file:db1?mode=memory&uri=true``, its docs' form)
    trained into a database gone at exit, where a file URI whose path held the word (a
    directory memory-lab/) was refused as in-memory. Now the first is the one-line refusal
    and the second trains into its file."""
    monkeypatch.chdir(tmp_path)
    linear_frame(3, 30).to_csv("rows.csv", index=False)
    Path("spec.toml").write_text(synthetic_ridge_toml("memory"))
    cli = CliRunner()
    train = ["train", "spec.toml", "rows.csv", "--artifacts", "store"]
    shared = "sqlite:///file:db1?mode=memory&cache=shared&uri=true"
    done = cli.invoke(app, [*train, "--registry-db", shared])
    assert done.exit_code == 2, done.output
    assert done.output.strip().splitlines() == [
        f"error: --registry-db (env var: MANYMODELS_REGISTRY_DB): '{shared}' is an in-memory "
        "SQLite database, gone when the command ends: name the file "
        "(sqlite:///path/registry.db; four slashes for an absolute path)"
    ]
    assert not Path("store").exists()
    (tmp_path / "memory-lab").mkdir()
    on_disk = f"sqlite:///file:{tmp_path}/memory-lab/registry.db?uri=true"
    done = cli.invoke(app, [*train, "--registry-db", on_disk])
    assert done.exit_code == 0, done.output
    assert (tmp_path / "memory-lab" / "registry.db").stat().st_size > 0


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["gc", "--grace-seconds", "inf"], "--grace-seconds"),
        (["gc", "--alias-grace-seconds", "1e400"], "--alias-grace-seconds"),
        (["serve", "--refresh-seconds", "inf"], "--refresh-seconds"),
    ],
)
def test_an_infinite_number_of_seconds_is_refused_naming_the_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], flag: str
) -> None:
    """An infinity passes ``min=``: `gc --grace-seconds inf` ran, kept every artifact and said
    "younger than infs kept"; `serve --refresh-seconds inf` said "refresh_seconds must be > 0,
    not inf" (inf is > 0, and no flag is called that). One line naming the flag, exit 2,
    before any registry is looked for."""
    monkeypatch.chdir(tmp_path)
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 2, done.output
    assert done.output.strip().splitlines() == [f"error: {flag}: must be a finite number, not inf"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--max-age-days", "inf"),
        ("--max-data-age-days", "1e400"),
        ("--drift-threshold", "inf"),
        ("--error-ratio", "inf"),
        ("--naive-ratio", "inf"),
        ("--max-age-days", "nan"),
        ("--naive-ratio", "nan"),
    ],
)
def test_a_monitor_threshold_that_is_not_finite_is_refused_naming_the_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flag: str, value: str
) -> None:
    """`retrain --when stale --max-age-days inf` took the infinity (it passes ``min=0``) as
    "never stale" and went on to open the registry; the monitor's thresholds, like
    --refresh-seconds and --grace-seconds, are refused when not finite: one line naming the
    flag, exit 2, before any registry is looked for. (NaN was already refused by the bound.)"""
    monkeypatch.chdir(tmp_path)
    args = ["retrain", "spec.toml", "rows.csv", "--when", "stale", flag, value]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 2, done.output
    [line] = done.output.strip().splitlines()
    assert line.startswith(f"error: {flag}: "), line
    if value != "nan":
        assert line == f"error: {flag}: must be a finite number, not inf"
    assert list(tmp_path.iterdir()) == []


def test_score_and_forecast_describe_probabilities_with_one_help_text() -> None:
    """`--probabilities` was declared twice (score, forecast) with two near-identical help
    texts; it is one ``ProbabilitiesOpt``: the same help in both, and each command's --help
    says what it writes (proba-<class> columns)."""
    import typer

    group: Any = typer.main.get_command(app)
    helps = {
        name: next(p.help for p in group.commands[name].params if p.name == "probabilities")
        for name in ("score", "forecast")
    }
    assert helps["score"] == helps["forecast"], helps
    cli = CliRunner()
    for name in helps:
        done = cli.invoke(app, [name, "--help"])
        assert done.exit_code == 0, done.output
        options = done.output.split("\nOptions:\n", 1)[1]  # not the docstring's mention
        entry = options.split("  --probabilities ", 1)[1].split("\n  --", 1)[0]
        assert " ".join(entry.split()) == " ".join(helps[name].split()), done.output
        assert "a proba-<class> column per class" in " ".join(entry.split())
