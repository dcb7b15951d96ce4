"""Moving a partition's aliases by hand (manymodels.registry.alias_control)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from factories import linear_frame, spec_dict
from typer.testing import CliRunner

from manymodels.artifacts import OWNERS_DIR, LocalArtifactStore
from manymodels.cli import app
from manymodels.exceptions import ArtifactError
from manymodels.pipeline import train
from manymodels.registry import Registry


def test_a_move_with_a_misspelt_store_names_the_store_and_moves_nothing(tmp_path: Path) -> None:
    """`rollback`/`promote --artifacts <a store holding none of the registry's models>` said
    "no earlier 'production' version … that can be loaded" (rollback) or "artifact … is
    missing" (promote): the store is refused in the line train, gc and doctor give, from the
    CLI (exit 1, one line) and the library, and production stays where it was."""
    root = _two_versions_on_manual(tmp_path)
    with Registry.open(root) as reg:
        reg.promote("pid=0", 2)
    typo = tmp_path / "artefacts"
    typo.mkdir()
    refused = f"error: the artifact store {typo} holds none of this registry's models: "
    cli = CliRunner()
    where = ["--registry", str(root), "--artifacts", str(typo)]
    for args in (["rollback", "pid=0"], ["promote", "pid=0", "1"]):
        done = cli.invoke(app, [*args, *where])
        assert done.exit_code == 1, done.output
        assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith(refused)
        assert "(--artifacts, MANYMODELS_ARTIFACTS)?" in done.stderr
    with Registry.open(root, artifacts=typo) as reg:
        with pytest.raises(ArtifactError, match="holds none of this registry's models"):
            reg.rollback("pid=0")
        with pytest.raises(ArtifactError, match="holds none of this registry's models"):
            reg.promote("pid=0", 1)
    with Registry.open(root) as reg:
        assert [m.to_version for m in reg.alias_history("pid=0", "production")] == [1, 2]
        assert reg.rollback("pid=0").to_version == 1  # the right store: it moves


def test_rollback_off_lost_production_artifacts_still_moves(tmp_path: Path) -> None:
    """Rolling back is the remedy for production models that cannot be loaded (a store
    restored from a backup older than the last training: every production artifact gone, the
    earlier ones there). On a store without the registry's mark (one written before the
    marks) that was refused as "holds none of this registry's models" — the wrong-store check
    ran as soon as any version was skipped — though the earlier version loads: the store is
    judged only once nothing is left to roll back to."""
    root = _two_versions_on_manual(tmp_path)
    with Registry.open(root) as reg:
        reg.promote("pid=0", 2)
        assert isinstance(reg.artifacts, LocalArtifactStore)
        shutil.rmtree(reg.artifacts.root / OWNERS_DIR)  # a store from before the marks
        for _, _, digest in reg.store.sample_artifacts(10):  # every production artifact
            reg.artifacts.delete(digest)
        assert reg.rollback("pid=0").to_version == 1
        assert [m.to_version for m in reg.alias_history("pid=0", "production")] == [1, 2, 1]


def _two_versions_on_manual(tmp_path: Path) -> Path:
    """A registry whose one partition has two versions under a manual policy (v1 in
    production until a test promotes v2)."""
    spec = spec_dict(promotion={"policy": "manual"})
    root = tmp_path / "reg"
    for i in range(2):
        train(spec, linear_frame(1, 40).assign(y=lambda d, i=i: d["y"] * (1 + i)), root)
    return root
