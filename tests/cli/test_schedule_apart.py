"""`manymodels scheduler` with its database and artifact store named apart (``--registry-db``,
``--artifacts``): each firing names them to the library as `train` does
(``cli.options.located``), which opens them once the data is read and checked; a database
not made yet has no missed firing to look for (manymodels.cli.schedule)."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import sales_toml
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.registry import Registry
from manymodels.samples import store_sales
from manymodels.signing import ENV_SIGNING_KEY

APART = ["--registry-db", "sqlite:///x/r.db", "--artifacts", "x/art"]


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory holding spec.toml, fired every second."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV_SIGNING_KEY, raising=False)
    (tmp_path / "spec.toml").write_text(
        sales_toml("scheduled", '[schedule]\ncron = "*/1 * * * * *"\n')
    )
    return tmp_path


def fire_once(data: str) -> tuple[int, str, str]:
    args = ["scheduler", "spec.toml", data, *APART, "--backend", "local", "--max-runs", "1"]
    done = CliRunner().invoke(app, args)
    return done.exit_code, done.stdout, done.stderr


def test_a_firing_trains_into_a_new_database_and_store_without_a_warning(here: Path) -> None:
    """A new database said "warning: missed firings not looked for: no registry database at
    x/r.db" at every start: a new ``--registry`` directory said nothing, as nothing was
    missed."""
    store_sales(n_stores=1).to_csv(here / "sales.csv", index=False)
    code, out, err = fire_once("sales.csv")
    assert code == 0, (out, err)
    assert "warning" not in err, err
    with Registry(db_url="sqlite:///x/r.db", artifacts="x/art", create=False) as reg:
        (run,) = reg.list_runs()
        assert run.status == "completed" and run.options["trigger"] == "schedule"


def test_a_firing_on_bad_data_records_its_failure_and_no_run(here: Path) -> None:
    """The claim made the database (the firing's failure is kept there, for a scheduler
    started later to run it again); the run's own opening, after the data is read, adds no
    run and no artifact store."""
    store_sales(n_stores=1).drop(columns="units").to_csv(here / "bad.csv", index=False)
    code, out, err = fire_once("bad.csv")
    assert code == 1, (out, err)
    errors = [line for line in out.splitlines() if " error: " in line]
    assert len(errors) == 1 and "missing column(s) 'units'" in errors[0], out
    assert "warning" not in err, err
    with Registry(db_url="sqlite:///x/r.db", artifacts="x/art", create=False) as reg:
        assert reg.list_runs() == []
    assert not (here / "x" / "art").exists()


def test_a_database_whose_artifact_store_is_not_found_is_still_warned_of(here: Path) -> None:
    """A database that holds a registry, named without ``--artifacts`` where no
    ``--registry`` directory holds its store (a scheduler started from another directory):
    "no artifact store at …" is no database not made yet, and its missed firings were
    silently taken as none, where the start said it could not look for them."""
    store_sales(n_stores=1).to_csv(here / "sales.csv", index=False)
    code, out, err = fire_once("sales.csv")
    assert code == 0, (out, err)
    args = ["scheduler", "spec.toml", "sales.csv", "--registry-db", "sqlite:///x/r.db",
            "--registry", "elsewhere", "--backend", "local", "--max-runs", "1"]  # fmt: skip
    done = CliRunner().invoke(app, args)
    warned = [line for line in done.stderr.splitlines() if "missed firings not looked" in line]
    assert len(warned) == 1 and "no artifact store at" in warned[0], done.stderr
