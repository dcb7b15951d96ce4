"""`manymodels train` with its database and artifact store named apart (``--registry-db``,
``--artifacts``): the command opened them itself before the library read the data, so bad
data said so only after making the database (``sqlite:///x/r.db`` made x/ and r.db with its
tables). The library opens them now, where it opens a ``--registry`` path: once the data is
read and checked (manymodels.cli.train, manymodels.registry.registry_location)."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import linear_frame
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.registry import Registry
from manymodels.signing import ENV_SIGNING_KEY, Signer

APART = ["--registry-db", "sqlite:///x/r.db", "--artifacts", "x/art"]
GOOD = "pid,t,x0,x1,y\n0,2024-01-01,0.1,0.2,3.0\n"
BAD_DATA = {  # rows.csv's text, train's extra flags, the one line said
    "no target": (
        "pid,t,x0,x1\n0,2024-01-01,0.1,0.2\n",
        [],
        "error: rows.csv: missing column(s) 'y' required by spec 'apart' "
        "(table has: pid, t, x0, x1)",
    ),
    "empty": ("pid,t,x0,x1,y\n", [], "error: rows.csv: the table has no rows (only a header?)"),
    "appended bad time": (
        GOOD + "0,soon,0.1,0.2,3.0\n",
        ["--append"],
        "error: rows.csv: time column 't' is not dates or numbers: 'soon' in data row 2 (counting "
        "from 1) (Time data soon is not ISO8601 format.)",
    ),
}


@pytest.mark.parametrize("case", list(BAD_DATA))
def test_bad_data_makes_no_database_nor_artifact_store(here: Path, case: str) -> None:
    text, flags, said = BAD_DATA[case]
    (here / "rows.csv").write_text(text)
    done = CliRunner().invoke(app, ["train", "spec.toml", "rows.csv", *APART, *flags])
    assert done.exit_code == 2, done.output
    assert done.output.strip().splitlines() == [said]
    assert sorted(p.name for p in here.iterdir()) == ["rows.csv", "spec.toml"]  # no x/, r.db


def test_a_bad_append_leaves_an_existing_registry_as_it_was(here: Path) -> None:
    """The database keeps exactly its runs and versions, the store its objects."""
    linear_frame(2, 30).to_csv(here / "first.csv", index=False)
    runner = CliRunner()
    first = runner.invoke(app, ["train", "spec.toml", "first.csv", *APART, "--backend", "local"])
    assert first.exit_code == 0, first.output

    def state() -> tuple[list[str], list[tuple[str, int]], list[Path]]:
        with Registry(db_url="sqlite:///x/r.db", artifacts="x/art", create=False) as reg:
            runs = [r.run_id for r in reg.list_runs(limit=10)]
            versions = [(v.key, v.version) for v in reg.list_versions("pid=0")]
        return runs, versions, sorted((here / "x" / "art").rglob("*"))

    before = state()
    (here / "rows.csv").write_text("pid,t,x0,x1,y\n0,30,0.1,0.2,3.0\n0,soon,0.1,0.2,3.0\n")
    done = runner.invoke(app, ["train", "spec.toml", "rows.csv", *APART, "--append"])
    assert done.exit_code == 2, done.output
    assert len(done.output.strip().splitlines()) == 1, done.output
    assert done.output.startswith("error: rows.csv: time column 't' "), done.output
    assert state() == before


def test_a_signed_registry_trained_without_its_key_still_says_so_once(here: Path) -> None:
    """The ``warning:`` line ``open_checked`` said when the command opened the registry is
    said where the library opens it (``RegistryLocation.on_open``), once: not again for the
    look before the data is read."""
    linear_frame(2, 30).to_csv(here / "rows.csv", index=False)
    runner = CliRunner()
    args = ["train", "spec.toml", "rows.csv", *APART, "--backend", "local"]
    key = "a-signing-key-of-32-characters!!"
    signed = runner.invoke(app, args, env={ENV_SIGNING_KEY: key})
    assert signed.exit_code == 0 and "warning:" not in signed.stderr, signed.output
    unkeyed = runner.invoke(app, args)
    assert unkeyed.exit_code == 0, unkeyed.output
    warnings = [line for line in unkeyed.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, unkeyed.stderr
    assert Signer(key.encode()).key_id in warnings[0] and "NOT checked" in warnings[0]


@pytest.mark.parametrize("where", [APART, ["--registry", "x/reg"]])
def test_resuming_an_unknown_run_makes_no_registry(here: Path, where: list[str]) -> None:
    """``--resume`` of a run id no registry holds is refused before the data is read, and
    where there is no registry yet, before one is made: it left x/r.db with its tables."""
    linear_frame(2, 30).to_csv(here / "rows.csv", index=False)
    args = ["train", "spec.toml", "rows.csv", *where, "--resume", "abc123", "--backend", "local"]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 2, done.output
    assert done.output.strip().splitlines() == ["error: no run with id 'abc123'"]
    assert sorted(p.name for p in here.iterdir()) == ["rows.csv", "spec.toml"]  # no x/
