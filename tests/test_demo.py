"""`manymodels demo` tells the whole story, and the registry it leaves shows it happened."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.demo import MARKER, STORY_KEY, command_name, fresh_registry
from manymodels.registry import Registry


def _run(tmp_path: Path, backend: str) -> str:
    result = CliRunner().invoke(
        app, ["demo", "--registry", str(tmp_path / "demo"), "--backend", backend]
    )
    assert result.exit_code == 0, result.output
    return result.stdout


def _check_story(out: str, registry: Path) -> None:
    for step in ("1. train", "2. serve", "3. a consumer posts", "4. the router answers",
                 "5. roll back"):  # fmt: skip
        assert step in out
    assert "0 failed, 34 trained, 2 skipped of 36 partitions" in out
    assert "__fallback__" in out  # the unknown store 99, answered by the fallback
    # the table's 35 rows are 34 partitions and the fallback (it read "partitions 1–35 of 35")
    assert "1–35 of 35: 34 partitions + the fallback" in out
    # the two partitions below min_rows, which the table of models leaves out, are named
    said = " ".join(out.split())  # as a reader sees it, whatever the lines' wrapping
    assert "no model of their own (store=2,brand=minute_maid, store=6,brand=tropicana)" in said
    assert "production now serves v2" in out
    assert "production v2 → v1 (rollback from v2)" in out  # as `manymodels rollback` says it
    assert "the router serves v1 again at once" in out
    with Registry.open(registry) as reg:
        history = reg.alias_history(STORY_KEY, "production")
        assert [m.action for m in history] == ["first", "policy", "rollback"]
        assert reg.get_version(STORY_KEY).version == 1
        v2 = reg.get_version(STORY_KEY, 2)
        assert v2.evaluation["promote"] and v2.evaluation["champion_version"] == 1
        assert v2.evaluation["reason"] in out


def test_demo_story_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole story, told over an earlier demo's registry, which it replaces. That one is
    made as ``run_demo`` starts (``fresh_registry``) and trained small: a second demo run,
    ~4 s, would show no more."""
    from factories import linear_frame, spec_dict

    from manymodels.pipeline import train

    fresh_registry(tmp_path / "demo")
    train(spec_dict(), linear_frame(2, 20), tmp_path / "demo", backend="local")
    stale = tmp_path / "demo" / "artifacts" / "left-over"
    stale.write_text("an earlier demo's")
    # the README's `.venv/bin/manymodels demo`, its environment not activated, run from
    # outside the clone (from inside it, the script is named relative: the next test)
    monkeypatch.setenv("PATH", os.defpath)
    monkeypatch.chdir(tmp_path)
    out = _run(tmp_path, "local")
    _check_story(out, tmp_path / "demo")  # its own registry: replaced
    assert not stale.exists()
    with Registry.open(tmp_path / "demo") as reg:
        assert reg.list_partitions(prefix="pid=") == []  # the earlier demo's partitions
    mine = Path(sys.executable).parent / "manymodels"
    assert f"\n{mine} models list --registry" in out  # not a bare `manymodels`: not found
    assert f"next: {mine} serve --registry" in " ".join(out.split())  # the verdict's too


def test_try_it_yourself_names_a_command_this_shell_finds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = Path(sys.executable).parent / "manymodels"
    monkeypatch.setenv("PATH", os.defpath)  # `.venv/bin/manymodels demo`, not activated
    monkeypatch.chdir(tmp_path)
    assert command_name() == str(mine)
    monkeypatch.chdir(mine.parent.parent.parent)  # the clone the README's .venv is in
    assert command_name() == str(Path(mine.parent.parent.name, "bin", "manymodels"))
    monkeypatch.setenv("PATH", f"{mine.parent}{os.pathsep}{os.defpath}")  # activated
    assert command_name() == "manymodels"


@pytest.mark.parametrize(
    "what", ["a directory with files", "a file", "an unmarked registry", "a marked one with more"]
)
def test_the_demo_never_deletes_what_it_did_not_make(tmp_path: Path, what: str) -> None:
    """``--registry .``, a real registry, or a demo registry someone put their own files in:
    one line, exit 2, nothing touched — only a registry an earlier demo marked as its own,
    holding only what a registry holds, is replaced."""
    target = tmp_path / "demo"
    if what == "a file":
        target.write_text("notes")
    else:
        target.mkdir()
        (target / "registry.db").write_text("not a demo's")
        if what != "an unmarked registry":
            (target / "notes.txt").write_text("notes")
        if what == "a marked one with more":
            (target / MARKER).write_text("")
    before = {p.name: p.read_text() for p in target.iterdir()} if target.is_dir() else None
    result = CliRunner().invoke(app, ["demo", "--registry", str(target), "--backend", "local"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {target}: it exists")
    assert ("remove it yourself" in lines[0]) == (what == "an unmarked registry")
    if before is None:
        assert target.read_text() == "notes"
    else:
        assert {p.name: p.read_text() for p in target.iterdir()} == before


def test_the_demo_takes_an_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    fresh_registry(tmp_path / "empty")
    assert [p.name for p in (tmp_path / "empty").iterdir()] == [MARKER]


def test_an_unknown_backend_is_refused_before_anything_is_made(tmp_path: Path) -> None:
    """A demo that marked its directory and then refused the backend left a directory a later
    demo would wipe, whatever a user had put in it meanwhile."""
    result = CliRunner().invoke(
        app, ["demo", "--registry", str(tmp_path / "demo"), "--backend", "foo"]
    )
    assert result.exit_code == 2, result.output
    assert "'foo' is not one of 'ray', 'local'" in result.output
    assert not (tmp_path / "demo").exists()


@pytest.mark.slow
def test_demo_story_on_ray(tmp_path: Path, ray_session: Any) -> None:
    _check_story(_run(tmp_path, "ray"), tmp_path / "demo")
