"""Fixtures shared by the CLI's tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import synthetic_ridge_toml

from manymodels.signing import ENV_SIGNING_KEY


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory holding spec.toml (spec 'apart': pid, time t, target y), and no
    signing key in the environment: what a command makes there is all that is in it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV_SIGNING_KEY, raising=False)
    (tmp_path / "spec.toml").write_text(synthetic_ridge_toml("apart"))
    return tmp_path
