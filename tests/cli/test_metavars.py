"""How ``--help`` names arguments and option values (manymodels.cli.metavars)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from manymodels.cli import app


def command_lines() -> Iterator[list[str]]:
    """Every command's words: ``[]``, ``["train"]``, …, ``["runs", "show"]``."""

    def walk(command: Any, words: list[str]) -> Iterator[list[str]]:
        yield words
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, [*words, name])

    yield from walk(typer.main.get_command(app), [])


def test_every_commands_help_names_its_values_not_their_python_types() -> None:
    """`manymodels train --help` showed "spec <path>", "data <str>", "--resume <str>" and a
    usage line "{spec} {data}" (typer 0.29 writes a parameter's Python type): `<str>` named
    no data path, key or run id, where the help's prose says "each partition of DATA". Now
    each argument is named in upper case (SPEC, DATA, RUN_ID) and each option's value as
    click names it (PATH, TEXT, INTEGER RANGE, [auto|ray|local]), in every command's help."""
    cli = CliRunner()
    seen = 0
    for words in command_lines():
        done = cli.invoke(app, [*words, "--help"], terminal_width=200)
        assert done.exit_code == 0, (words, done.output)
        # a type where a value's name belongs: "--limit <int range>", "data <str>"
        typed = re.findall(r"(?m)^\s+(?:-\S+|[a-z_]+)(?: / \S+)? <[^>]+>", done.output)
        assert typed == [], (words, typed)
        assert "<str>" not in done.output and "<path>" not in done.output, words
        usage = done.output.splitlines()[0]
        assert "{" not in usage, usage
        seen += 1
    assert seen > 25
    train = cli.invoke(app, ["train", "--help"], terminal_width=200).output
    assert " train [OPTIONS] SPEC DATA" in train.splitlines()[0]
    assert re.search(r"(?m)^  SPEC +Spec file \(TOML\)", train), train
    for option in ("--registry PATH", "--resume TEXT", "--backend [auto|ray|local]",
                   "--max-failed-fraction FLOAT RANGE"):  # fmt: skip
        assert re.search(rf"(?m)^  {re.escape(option)}\s", train), (option, train)
    runs = cli.invoke(app, ["runs", "show", "--help"], terminal_width=200).output
    assert " runs show [OPTIONS] RUN_ID" in runs.splitlines()[0], runs


def test_a_missing_argument_is_named_as_the_help_names_it() -> None:
    """The one-line usage error names the argument as the usage line does."""
    done = CliRunner().invoke(app, ["train", "spec.toml"])
    assert done.exit_code == 2
    assert done.output.strip() == "error: missing argument 'DATA'", done.output


def test_a_choice_of_one_value_is_shown_as_it_is_typed() -> None:
    """`manymodels export --help` showed "--format MLFLOW" (typer's "<mlflow>" upper-cased as
    a type's name), and `--format MLFLOW`, typed as the help said, was refused; now the help
    lists the choice as click does, "--format [mlflow]", and that value is the one accepted."""
    cli = CliRunner()
    shown = cli.invoke(app, ["export", "--help"], terminal_width=200).output
    assert re.search(r"(?m)^  --format \[mlflow\]\s", shown), shown
    refused = cli.invoke(app, ["export", "store=1", "out", "--format", "MLFLOW"])
    assert refused.exit_code == 2 and "'MLFLOW' is not one of 'mlflow'" in refused.output


def test_a_typer_without_the_help_hooks_keeps_its_own_classes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The overrides name typer 0.29's help hooks; pyproject allowed typer 0.26, which has
    none of them (its help then showed `<str>` with no error, or a later typer's missing
    hook failed `--help`). A typer without one of them keeps its own classes, so its own
    help text; the arguments are still named in upper case (a plain metavar)."""
    from typer.core import TyperArgument, TyperOption

    from manymodels.cli import metavars

    def params(command: Any) -> list[Any]:
        return list(command.commands["train"].params)

    hooked = params(typer.main.get_command(app))
    assert {type(p) for p in hooked} == {metavars.NamedArgument, metavars.NamedOption}
    monkeypatch.delattr(TyperArgument, "_usage_display_name")
    assert not metavars.hooks_present()
    plain = params(typer.main.get_command(app))
    assert {type(p) for p in plain} == {TyperArgument, TyperOption}
    assert [p.metavar for p in plain if isinstance(p, TyperArgument)] == ["SPEC", "DATA"]
