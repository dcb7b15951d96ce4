"""``manymodels gc --keep N`` says how many versions past the retention it kept for the alias
grace: right after a retrain, every replaced champion is one, and a gc that deleted nothing
said nothing of why."""

from __future__ import annotations

import json
from pathlib import Path

from factories import linear_frame, spec_dict
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.pipeline import train

cli = CliRunner()


def _retrained(tmp_path: Path) -> Path:
    """Two partitions, each with v1 replaced in production by v2 just now."""
    root = tmp_path / "reg"
    spec = spec_dict(promotion={"policy": "always"}, fallback={"enabled": False})
    for i in range(2):
        train(spec, linear_frame(2, 30).assign(y=lambda d, i=i: d["y"] * (1 + i)), root)
    return root


def test_gc_says_the_versions_it_kept_for_the_alias_grace(tmp_path: Path) -> None:
    root = _retrained(tmp_path)
    args = ["gc", "--registry", str(root), "--keep", "1"]
    dry = cli.invoke(app, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would delete 0 version(s)" in dry.output
    assert "2 version(s) past --keep kept: an alias moved onto or off them within 600s" in (
        dry.output
    )
    assert "(--alias-grace-seconds)" in dry.output
    report = json.loads(cli.invoke(app, [*args, "--json"]).output)
    assert report["versions_deleted"] == [] and report["versions_kept_alias_grace"] == 2
    # without the grace they go, and nothing is said kept
    gone = cli.invoke(app, [*args, "--alias-grace-seconds", "0"])
    assert gone.exit_code == 0, gone.output
    assert "deleted 2 version(s)" in gone.output and "past --keep" not in gone.output
    again = json.loads(cli.invoke(app, [*args, "--json"]).output)
    assert again["versions_kept_alias_grace"] == 0
