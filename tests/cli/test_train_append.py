"""`manymodels train --append` of rows training refuses: to a registry not there yet
(``--registry`` a new directory, ``--registry-db``/``--artifacts`` a new database and store)
nothing is made, and an existing one keeps its runs, versions and objects. The append opened
(made) its registry first, to read the kept rows, and said what was wrong only after
(manymodels.appended_rows, registry.registry_location.open_writer_if_there)."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import linear_frame
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.registry import Registry

WHERE = {  # the flags naming the registry, and how to open it to look
    "dir": (["--registry", "x/reg"], lambda: Registry.open("x/reg")),
    "apart": (
        ["--registry-db", "sqlite:///x/r.db", "--artifacts", "x/art"],
        lambda: Registry(db_url="sqlite:///x/r.db", artifacts="x/art", create=False),
    ),
}
BAD_ROWS = {  # rows.csv's text, how the one line said starts, what it names
    "no target": (
        "pid,t,x0,x1\n0,30,0.1,0.2\n",
        "error: rows.csv: missing column(s) 'y' required by spec 'apart' "
        "(table has: pid, t, x0, x1)",
        "'y'",
    ),
    "target of words": (  # named its word and row appended to nothing ("must be numeric
        "pid,t,x0,x1,y\n0,30,0.1,0.2,soon\n",  # for a regression (found dtype str)"), in
        "error: rows.csv: target 'y' ",  # "rows.csv (appended)" there, "rows.csv" beside kept
        "'soon' in data row 1",  # rows
    ),
    "empty key": (  # named no file at all: "error: partition column 'pid' has 1 missing…"
        "pid,t,x0,x1,y\n0,30,0.1,0.2,1.0\n,31,0.1,0.2,1.0\n",
        "error: rows.csv: partition column 'pid' has 1 missing value(s) (empty cells, or codes "
        "the CSV reader takes for missing values",
        "'pid'",
    ),
    "no key nor target": (  # the key alone was named ("missing key column(s) 'pid'"), as
        "t,x0,x1\n30,0.1,0.2\n",  # `train` names them all, with the table's columns
        "error: rows.csv: missing column(s) 'pid', 'y' required by spec 'apart' "
        "(table has: t, x0, x1)",
        "'pid'",
    ),
}


@pytest.mark.parametrize("rows", list(BAD_ROWS))
@pytest.mark.parametrize("where", list(WHERE))
def test_bad_rows_appended_to_a_new_registry_make_nothing(
    here: Path, where: str, rows: str
) -> None:
    text, said, named = BAD_ROWS[rows]
    (here / "rows.csv").write_text(text)
    args = ["train", "spec.toml", "rows.csv", *WHERE[where][0], "--append"]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 2, done.output
    lines = done.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(said) and named in lines[0], done.output
    assert sorted(p.name for p in here.iterdir()) == ["rows.csv", "spec.toml"]  # no x/


@pytest.mark.parametrize("rows", list(BAD_ROWS))
@pytest.mark.parametrize("where", list(WHERE))
def test_bad_rows_appended_leave_an_existing_registry_as_it_was(
    here: Path, where: str, rows: str
) -> None:
    flags, opened = WHERE[where]
    linear_frame(2, 30).to_csv(here / "first.csv", index=False)
    runner = CliRunner()
    first = runner.invoke(app, ["train", "spec.toml", "first.csv", *flags, "--backend", "local"])
    assert first.exit_code == 0, first.output

    def state() -> tuple[list[str], list[tuple[str, int]], list[Path]]:
        with opened() as reg:
            runs = [r.run_id for r in reg.list_runs(limit=10)]
            versions = [(v.key, v.version) for v in reg.list_versions("pid=0")]
        return runs, versions, sorted((here / "x").rglob("*"))

    before = state()
    text, said, named = BAD_ROWS[rows]
    (here / "rows.csv").write_text(text)
    done = runner.invoke(app, ["train", "spec.toml", "rows.csv", *flags, "--append"])
    assert done.exit_code == 2, done.output
    lines = done.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(said) and named in lines[0], done.output
    assert state() == before


def test_good_rows_appended_to_a_new_registry_train_it(here: Path) -> None:
    """An append to nothing trains on its new rows, as it always did: made once they are read."""
    linear_frame(2, 30).to_csv(here / "rows.csv", index=False)
    args = ["train", "spec.toml", "rows.csv", *WHERE["apart"][0], "--append", "--backend", "local"]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    with WHERE["apart"][1]() as reg:
        assert [v.version for v in reg.list_versions("pid=1")] == [1]


def test_an_append_to_a_database_whose_store_is_not_found_says_so(here: Path) -> None:
    """A database holding a registry, named without ``--artifacts`` where the ``--registry``
    directory is not there: its store was taken for no registry, the append merged no kept
    rows, and refused as one "made by another run meanwhile" ("run the append again": the
    same answer for ever), leaving that directory made empty."""
    flags, opened = WHERE["apart"]
    linear_frame(2, 30).to_csv(here / "first.csv", index=False)
    runner = CliRunner()
    first = runner.invoke(app, ["train", "spec.toml", "first.csv", *flags, "--backend", "local"])
    assert first.exit_code == 0, first.output
    args = ["train", "spec.toml", "first.csv", "--registry-db", "sqlite:///x/r.db",
            "--registry", "elsewhere", "--append", "--backend", "local"]  # fmt: skip
    done = runner.invoke(app, args)
    assert done.exit_code != 0, done.output
    lines = done.output.strip().splitlines()
    assert len(lines) == 1 and "no artifact store at" in lines[0], done.output
    assert "--artifacts" in lines[0] and "another run" not in lines[0], done.output
    assert not (here / "elsewhere").exists()
    with opened() as reg:
        assert len(reg.list_runs(limit=10)) == 1


def test_appended_times_of_another_kind_name_the_file(here: Path) -> None:
    """Dates appended to a registry whose kept rows hold period numbers: the one line said
    "error: time column 't' holds dates …", naming no file."""
    linear_frame(2, 30).to_csv(here / "first.csv", index=False)
    runner = CliRunner()
    flags = WHERE["dir"][0]
    first = runner.invoke(app, ["train", "spec.toml", "first.csv", *flags, "--backend", "local"])
    assert first.exit_code == 0, first.output
    (here / "rows.csv").write_text("pid,t,x0,x1,y\n0,2025-01-06,0.1,0.2,1.0\n")
    done = runner.invoke(app, ["train", "spec.toml", "rows.csv", *flags, "--append"])
    assert done.exit_code == 2, done.output
    lines = done.output.strip().splitlines()
    assert len(lines) == 1, done.output
    said = "time column 't' holds dates (2025-01-06 00:00:00) in data row 1 (counting from 1)"
    assert lines[0].startswith(f"error: rows.csv: {said}"), done.output


def test_a_target_of_words_names_its_first_word_and_row_as_training_does(here: Path) -> None:
    """An appended target of words with no kept numbers to compare (a new registry, or new
    partitions only) said "target 'y' must be numeric for a regression (found dtype str)",
    neither word nor row, where words among kept numbers are named: named now, in the new
    rows' own file and row, by the same line as `train` of the same rows."""
    linear_frame(2, 30).to_csv(here / "first.csv", index=False)
    runner = CliRunner()
    flags = WHERE["dir"][0]
    first = runner.invoke(app, ["train", "spec.toml", "first.csv", *flags, "--backend", "local"])
    assert first.exit_code == 0, first.output
    # pid 7 is new: no kept rows to compare with
    (here / "rows.csv").write_text(
        "pid,t,x0,x1,y\n7,30,0.1,0.2,1.5\n7,31,0.1,0.2,ten\n7,32,0.1,0.2,eleven\n"
    )
    said = (
        "target 'y' must be numeric for a regression, and 2 value(s) are not numbers, the "
        "first 'ten' in data row 2 (counting from 1)"
    )
    runs = {
        "append": [*flags, "--append"],
        "append to nothing": ["--registry", "new", "--append"],
        "train": ["--registry", "new"],
    }
    for run, how in runs.items():
        done = runner.invoke(app, ["train", "spec.toml", "rows.csv", *how])
        assert done.exit_code == 2, (run, done.output)
        assert done.output.strip() == f"error: rows.csv: {said}", (run, done.output)
    assert not (here / "new").exists()


@pytest.mark.parametrize(
    "store",
    [["--registry", "empty"], ["--artifacts", "empty/art"]],
    ids=["a directory without it", "a misspelt --artifacts"],
)
def test_an_append_over_a_store_without_the_registry_s_models_says_which_store(
    here: Path, store: list[str]
) -> None:
    """A database holding a registry named with a store that holds none of its models (an
    existing ``--registry`` directory without its ``artifacts/``, or a misspelt
    ``--artifacts``) said "artifact 1dad6e… is missing from …", a lost model's words, as the
    append read its first kept rows: `train` of the same flags names the store and asks
    whether it is the one trained into. Said so before any kept row is read, and nothing
    made."""
    flags, opened = WHERE["apart"]
    linear_frame(2, 30).to_csv(here / "first.csv", index=False)
    runner = CliRunner()
    first = runner.invoke(app, ["train", "spec.toml", "first.csv", *flags, "--backend", "local"])
    assert first.exit_code == 0, first.output
    (here / "empty").mkdir()
    args = ["train", "spec.toml", "first.csv", "--registry-db", "sqlite:///x/r.db", *store,
            "--append", "--backend", "local"]  # fmt: skip
    done = runner.invoke(app, args)
    assert done.exit_code == 1, done.output
    lines = done.output.strip().splitlines()
    assert len(lines) == 1, done.output
    assert "holds none of this registry's models" in lines[0], done.output
    assert "is it the store x/r.db was trained into" in lines[0], done.output
    assert list((here / "empty").iterdir()) == []
    with opened() as reg:
        assert len(reg.list_runs(limit=10)) == 1
