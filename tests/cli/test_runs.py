"""``runs list`` pages as ``models list`` does (``manymodels.cli.runs``, and the fast path's
``manymodels.cli.fastpath``): it capped ``--limit`` at 1000, had no ``--offset`` and never
said that more runs existed than it showed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from factories import linear_frame, spec_dict
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.cli.fastpath import answer
from manymodels.pipeline import train
from manymodels.registry import Registry


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three runs of one small spec."""
    root = tmp_path_factory.mktemp("runs") / "reg"
    for seed in range(3):
        train(spec_dict(), linear_frame(1, 30, seed=seed), root, backend="local")
    return root


def newest_first(root: Path) -> list[str]:
    with Registry.open(root) as reg:
        return [r.run_id for r in reg.list_runs(limit=10)]


@pytest.mark.parametrize("fast", [False, True], ids=["typer", "fastpath"])
def test_runs_list_pages_and_says_which_of_how_many(
    root: Path, fast: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = newest_first(root)
    assert len(ids) == 3

    def run(*args: str) -> str:
        argv = ["runs", "list", *args, "--registry", str(root)]
        if fast:
            assert answer(argv) == 0
            return capsys.readouterr().out
        result = CliRunner().invoke(app, argv)
        assert result.exit_code == 0, result.output
        return result.stdout

    first = run("--limit", "2")
    assert first.splitlines()[0].strip() == "runs 1–2 of 3 (newest first)"
    assert ids[0] in first and ids[1] in first and ids[2] not in first
    last = run("--limit", "2", "--offset", "2")
    assert last.splitlines()[0].strip() == "runs 3–3 of 3 (newest first)"
    assert ids[2] in last and ids[0] not in last
    assert run("--offset", "3").strip() == "no runs past 3 of 3"
    assert "runs 1–3 of 3" in run("--limit", "5000")  # over the old cap of 1000
    paged = json.loads(run("--limit", "2", "--offset", "1", "--json"))
    # models list's shape: how many runs, and where the page starts (it was the bare page)
    assert (paged["total"], paged["offset"]) == (3, 1)
    assert [r["run_id"] for r in paged["items"]] == ids[1:]
    past = json.loads(run("--offset", "3", "--json"))
    assert past == {"total": 3, "offset": 3, "items": []}


def test_an_empty_registry_says_it_has_no_runs(tmp_path: Path) -> None:
    Registry(tmp_path / "reg").close()
    result = CliRunner().invoke(app, ["runs", "list", "--registry", str(tmp_path / "reg")])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "no runs"
