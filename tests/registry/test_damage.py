"""A registry file damaged past the pages its opening reads (manymodels.registry.damage)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from factories import linear_frame, spec_dict
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.exceptions import RegistryError
from manymodels.pipeline import train
from manymodels.registry import Registry


@pytest.fixture(scope="module")
def damaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained registry whose ``model_versions`` table's root page is overwritten with
    noise: its schema (page 1) is sound, so it opens, and a read of versions fails."""
    root = tmp_path_factory.mktemp("damage") / "reg"
    train(spec_dict(), linear_frame(2, 30), root, backend="local")
    db = root / "registry.db"
    with sqlite3.connect(db) as raw:
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        (page,) = raw.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'model_versions'"
        ).fetchone()
        (size,) = raw.execute("PRAGMA page_size").fetchone()
    raw.close()
    for suffix in ("-wal", "-shm"):
        (root / f"registry.db{suffix}").unlink(missing_ok=True)
    data = bytearray(db.read_bytes())
    data[(page - 1) * size : page * size] = b"\xa5" * size
    db.write_bytes(bytes(data))
    return root


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "command",
    [["models", "list"], ["doctor"], ["monitor"], ["gc", "--keep", "1"], ["export-registry"]],
)
def test_a_damaged_database_is_one_line_naming_it_and_changes_nothing(
    damaged: Path, tmp_path: Path, command: list[str]
) -> None:
    """`models list`, `doctor`, `monitor` and `gc` on such a file each ended in a 70-90 line
    traceback of SQLAlchemy's ``DatabaseError: database disk image is malformed``."""
    db = damaged / "registry.db"
    before = digest(db)
    args = [*command, str(tmp_path / "b.tar")] if command == ["export-registry"] else command
    result = CliRunner().invoke(app, [*args, "--registry", str(damaged)])
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: registry database {db} is damaged ("), lines[0]
    assert "malformed" in lines[0] and "restore it from a backup" in lines[0]
    assert digest(db) == before
    assert not (tmp_path / "b.tar").exists()


def test_the_library_raises_a_registry_error_naming_the_file(damaged: Path) -> None:
    with Registry.open(damaged) as reg, pytest.raises(RegistryError, match="is damaged"):
        reg.list_versions(reg.list_partitions(limit=1)[0].key)
