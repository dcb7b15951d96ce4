"""A database a refused writer made is taken back (manymodels.registry.unmade)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from factories import linear_frame, synthetic_ridge_toml
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.registry.store import SqlStore
from manymodels.registry.unmade import take_back


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A spec, its rows, and ``afile``: a store under it cannot be marked (not a directory)."""
    monkeypatch.chdir(tmp_path)
    linear_frame(3, 30).to_csv("rows.csv", index=False)
    Path("spec.toml").write_text(synthetic_ridge_toml("unmade"))
    Path("afile").write_text("")
    return tmp_path


def _train(*more: str) -> tuple[int, list[str]]:
    done = CliRunner().invoke(app, ["train", "spec.toml", "rows.csv", "--backend", "local", *more])
    return done.exit_code, done.output.strip().splitlines()


@pytest.mark.parametrize(
    "where",
    [
        ["--registry-db", "sqlite:///new.db"],
        ["--registry-db", "sqlite:///nd/deeper/new.db"],
        ["--registry", "nr/reg"],
    ],
)
def test_a_train_refused_once_its_new_database_was_made_leaves_nothing(
    workdir: Path, where: list[str]
) -> None:
    """`train --registry-db sqlite:///new.db --artifacts afile/store` made new.db (tables,
    registry id) and was then refused, the store under a file not markable as this
    registry's: new.db stayed, a registry of no run that later commands opened. The refusal
    is one line, exit 1, and leaves no database or directory made for it."""
    code, lines = _train(*where, "--artifacts", str(workdir / "afile" / "store"))
    assert code == 1, lines
    assert len(lines) == 1 and lines[0].startswith(
        f"error: cannot mark {workdir / 'afile' / 'store'} as this registry's: "
    ), lines
    assert sorted(p.name for p in workdir.iterdir()) == ["afile", "rows.csv", "spec.toml"]


def test_a_database_there_before_the_refused_train_stays(workdir: Path) -> None:
    """Only what the command made is taken back: a registry trained before, and an empty
    file that was there (made a registry's tables by the opening, as before), stay."""
    code, lines = _train("--registry-db", "sqlite:///kept.db", "--registry", "reg")
    assert code == 0, lines
    Path("empty.db").write_bytes(b"")
    bad = str(workdir / "afile" / "store")
    for db in ("kept.db", "empty.db"):
        code, lines = _train("--registry-db", f"sqlite:///{db}", "--artifacts", bad)
        assert code == 1 and lines[0].startswith("error: cannot "), lines
        assert Path(db).is_file()
    listed = CliRunner().invoke(
        app, ["runs", "list", "--registry-db", "sqlite:///kept.db", "--registry", "reg", "--json"]
    )
    assert listed.exit_code == 0, listed.output
    assert [r["status"] for r in json.loads(listed.output)["items"]] == ["completed"]


def test_a_made_database_another_connection_uses_or_one_recording_a_run_stays(
    tmp_path: Path,
) -> None:
    """Taken back only while it records nothing and no other connection has it open: another
    process that opened the same new file meanwhile would go on writing to a removed file."""
    url = f"sqlite:///{tmp_path / 'r.db'}"
    made = SqlStore(url)
    assert made.made is not None and made.made.file == tmp_path / "r.db"
    other = SqlStore(url)
    assert other.made is None  # there already: never this opening's to take back
    other.records_anything()  # a connection open
    take_back(made)
    assert (tmp_path / "r.db").is_file()
    other.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.db"]  # -wal, -shm gone with it
    (tmp_path / "r.db").unlink()
    again = SqlStore(url)
    with again.engine.begin() as conn:
        conn.exec_driver_sql(  # a router's job: the one record a registry may start with
            "INSERT INTO jobs (job_id, kind, partition, status, backend, owner, created_at, "
            "heartbeat_at) VALUES ('j', 'retrain', 'x=1', 'queued', 'local', 'o', '', '')"
        )
    take_back(again)
    assert (tmp_path / "r.db").is_file()
