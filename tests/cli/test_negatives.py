"""Negative numbers typed as arguments (manymodels.cli.negatives)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.cli.negatives import as_arguments


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["promote", "store=1", "-1"], "VERSION: input should be greater than or equal to 1"),
        (["promote", "store=1", "-1", "--reason", "-2"], "VERSION: input should be greater"),
        (["promote", "store=1", "1", "--bogus"], "no such option: --bogus"),
    ],
)
def test_a_negative_version_is_refused_as_a_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], line: str
) -> None:
    """`promote KEY -1` said "no such option: -1" (click reads '-1' as a flag): now the
    version's own refusal, exit 2, before any registry is looked for; a typo'd flag is still
    told as one."""
    monkeypatch.chdir(tmp_path)
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 2, done.output
    (said,) = done.output.strip().splitlines()
    assert said.startswith(f"error: {line}"), said
    assert list(tmp_path.iterdir()) == []


def test_only_numbers_no_option_takes_move_behind_the_double_dash() -> None:
    """An option's value stays with it; a '--' the user typed is left as typed."""
    valued = {"--reason"}
    assert as_arguments(["k", "-1", "--reason", "-2"], valued) == [
        "k",
        "--reason",
        "-2",
        "--",
        "-1",
    ]
    assert as_arguments(["k", "1", "--json"], valued) == ["k", "1", "--json"]
    assert as_arguments(["k", "--", "-1"], valued) == ["k", "--", "-1"]
    assert as_arguments(["k", "-1.5e3"], valued) == ["k", "--", "-1.5e3"]
