"""`manymodels demo` tells the whole story, and the registry it leaves shows it happened."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.demo import STORY_KEY
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
    assert "production now serves v2" in out
    assert "the router serves v1 again at once" in out
    with Registry.open(registry) as reg:
        history = reg.alias_history(STORY_KEY, "production")
        assert [m.action for m in history] == ["first", "policy", "rollback"]
        assert reg.get_version(STORY_KEY).version == 1
        v2 = reg.get_version(STORY_KEY, 2)
        assert v2.evaluation["promote"] and v2.evaluation["champion_version"] == 1
        assert v2.evaluation["reason"] in out


def test_demo_story_in_process(tmp_path: Path) -> None:
    _check_story(_run(tmp_path, "local"), tmp_path / "demo")


@pytest.mark.slow
def test_demo_story_on_ray(tmp_path: Path, ray_session: Any) -> None:
    _check_story(_run(tmp_path, "ray"), tmp_path / "demo")
