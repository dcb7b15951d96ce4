"""An append's new rows checked before its registry is opened, and an append to a registry
not there yet trained on its new rows with nothing made until they are checked
(manymodels.appended_rows, registry.registry_location.open_writer_if_there).

An append opened (made) its registry first, for the kept rows it merges with, so new rows
that training then refused — without the target column, a regression's target of words —
left a new path's directory, or a new database with its tables, behind."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from factories import linear_frame, spec_dict

import manymodels as mm
from manymodels.exceptions import DataError, TrainingError
from manymodels.registry import Registry, RegistryLocation

NO_TARGET = linear_frame(2, 5).drop(columns="y")
WORDS = linear_frame(2, 5).assign(y="soon")  # refused by training, not by read_appended


def apart(tmp_path: Path) -> RegistryLocation:
    """A database and an artifact store under tmp_path/x, which does not exist yet."""
    x = tmp_path / "x"
    return RegistryLocation(db_url=f"sqlite:///{x / 'r.db'}", artifacts=x / "art")


@pytest.mark.parametrize("rows", ["no target", "target of words"])
@pytest.mark.parametrize("kind", ["path", "location"])
def test_bad_rows_appended_to_no_registry_make_nothing(
    tmp_path: Path, rows: str, kind: str
) -> None:
    where = tmp_path / "x" / "reg" if kind == "path" else apart(tmp_path)
    bad, said = {
        "no target": (NO_TARGET, r"^<DataFrame>: missing column\(s\) 'y' required by spec"),
        "target of words": (WORDS, "target 'y'"),
    }[rows]
    with pytest.raises(DataError, match=said):
        mm.train(spec_dict(), bad, registry=where, backend="local", append=True)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("kind", ["path", "location"])
def test_an_append_to_no_registry_trains_on_its_rows_and_makes_it(
    tmp_path: Path, kind: str
) -> None:
    """The meaning an append to a new registry always had: nothing kept, the new rows alone."""
    where = tmp_path / "x" / "reg" if kind == "path" else apart(tmp_path)
    summary = mm.train(spec_dict(), linear_frame(2, 30), registry=where, backend="local",
                       append=True)  # fmt: skip
    assert summary.run.options["append"] == {"partitions": 2, "with_history": 0, "kept_rows": 0}
    assert summary.versions == {"pid=0": 1, "pid=1": 1}
    opened = Registry.open(where) if isinstance(where, Path) else where.open_existing()
    with opened as reg:
        assert reg.get_version("pid=0", 1).n_rows == 30


def test_rows_without_the_target_are_refused_before_the_kept_rows_are_read(
    tmp_path: Path,
) -> None:
    """Named in their own file (not the merged table's "(appended)"), the registry as it was."""
    mm.train(spec_dict(), linear_frame(2, 30), registry=tmp_path / "reg", backend="local")
    NO_TARGET.to_csv(tmp_path / "rows.csv", index=False)
    with pytest.raises(DataError, match=r"rows\.csv: missing column\(s\) 'y' required by"):
        mm.train(spec_dict(), tmp_path / "rows.csv", registry=tmp_path / "reg",
                 backend="local", append=True)  # fmt: skip
    with Registry.open(tmp_path / "reg") as reg:
        assert len(reg.list_runs()) == 1
        assert [v.version for v in reg.list_versions("pid=0")] == [1]


def test_a_registry_made_meanwhile_with_kept_rows_refuses_the_append(tmp_path: Path) -> None:
    """An append that found no registry merged no kept rows: if another run made it since
    and keeps rows of its partitions, training on the new rows alone would drop them."""
    from manymodels.run_input import require_nothing_kept

    mm.train(spec_dict(), linear_frame(2, 30), registry=tmp_path / "reg", backend="local")
    with Registry.open(tmp_path / "reg") as reg:
        require_nothing_kept(reg, ["pid=7"])  # a partition it has no rows of: fine
        with pytest.raises(TrainingError, match=r"keeps rows of 1 of its partition\(s\)"):
            require_nothing_kept(reg, ["pid=0", "pid=7"])


def test_an_append_whose_registry_another_run_makes_meanwhile_is_refused(
    tmp_path: Path,
) -> None:
    """The race itself, through ``train``: no registry when the append looked, one made with
    kept rows of its partitions before it opened its own (``on_open``, told of the registry
    as it is made, trains the other run there). Nothing of the append is recorded."""
    first = linear_frame(2, 30)

    def other_run(reg: Registry) -> None:
        mm.train(spec_dict(), first, registry=reg, backend="local")

    where = RegistryLocation(root=tmp_path / "reg", on_open=other_run)
    with pytest.raises(TrainingError, match=r"made by another run while this append read"):
        mm.train(spec_dict(), first.tail(4), registry=where, backend="local", append=True)
    with Registry.open(tmp_path / "reg") as reg:
        assert len(reg.list_runs()) == 1
        assert [v.version for v in reg.list_versions("pid=0")] == [1]


def test_every_column_the_spec_names_is_looked_for_in_the_new_rows(tmp_path: Path) -> None:
    """The target and the features listed, as training names them, before any opening."""
    frame = pd.DataFrame({"pid": [0], "t": [1], "x0": [0.1]})
    with pytest.raises(DataError, match=r"^<DataFrame>: missing column\(s\) 'y', 'x1' "):
        mm.train(spec_dict(features=["x0", "x1"]), frame, registry=tmp_path / "reg",
                 backend="local", append=True)  # fmt: skip
    assert not (tmp_path / "reg").exists()


@pytest.mark.parametrize("kind", ["kept numbers", "no registry"])
def test_a_regression_target_of_booleans_is_refused_as_training_refuses_it(
    tmp_path: Path, kind: str
) -> None:
    """New rows whose target is all ``True``/``False`` (a bool column: numeric to pandas)
    merged with kept numbers as 1.0 and 0.0 and trained, where one ``True`` among numbers is
    refused, as ``/actuals`` refuses ``true``: refused now, its first row named, nothing
    trained or made."""
    where = tmp_path / "reg"
    if kind == "kept numbers":
        mm.train(spec_dict(), linear_frame(2, 30), where, backend="local")
    new = linear_frame(2, 32).tail(2).assign(y=[True, False])
    said = r"^<DataFrame>: target 'y' holds a boolean \(True\) in data row 1 \(counting from 1\)"
    with pytest.raises(DataError, match=said):
        mm.train(spec_dict(), new, where, backend="local", append=True)
    if kind == "no registry":
        assert not where.exists()
        return
    with Registry.open(where) as reg:
        assert [v.version for v in reg.list_versions("pid=1")] == [1]
