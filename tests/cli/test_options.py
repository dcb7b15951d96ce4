"""The options several commands share (manymodels.cli.options)."""

from __future__ import annotations

from pathlib import Path

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
