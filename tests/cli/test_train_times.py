"""`manymodels train` of a CSV whose time column mixes period numbers and text: one line
naming the first cell that is no number, and its row (manymodels.timecolumn.parse_time); it
named the first number ('1' in row 1) as the cell that was no date. Nothing made."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import synthetic_ridge_toml
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.signing import ENV_SIGNING_KEY


@pytest.mark.parametrize("flags", [[], ["--append"]], ids=["train", "append"])
def test_a_time_column_of_numbers_and_a_word_names_the_word(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flags: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV_SIGNING_KEY, raising=False)
    (tmp_path / "spec.toml").write_text(synthetic_ridge_toml("times"))
    (tmp_path / "rows.csv").write_text("pid,t,x0,x1,y\n0,1,0.1,0.2,3.0\n0,soon,0.1,0.2,3.0\n")
    done = CliRunner().invoke(app, ["train", "spec.toml", "rows.csv", "--registry", "reg", *flags])
    assert done.exit_code == 2, done.output
    assert done.output.strip().splitlines() == [
        "error: rows.csv: time column 't' is not dates or numbers: its first time is the "
        "period number '1' (data row 1), and 'soon' in data row 2 (counting from 1) is no "
        "number: give every time as a period number, or every one as a date"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.csv", "spec.toml"]
