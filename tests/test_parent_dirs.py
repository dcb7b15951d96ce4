"""``manymodels.parent_dirs``: one refusal of an output whose directory is missing or a file,
said alike by every command that writes one (the shuffle's, MLflow export's: their own tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from manymodels.backup import BadBackup, export_registry
from manymodels.exceptions import DataError
from manymodels.parent_dirs import missing_parent
from manymodels.registry import Registry
from manymodels.table_output import output_format


def test_the_refusal_names_the_path_its_directory_and_why(tmp_path: Path) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a directory")
    gone = tmp_path / "gone" / "out.csv"
    assert missing_parent(tmp_path / "out.csv") is None
    assert missing_parent(gone) == f"{gone}: cannot write there ({gone.parent} does not exist)"
    under = a_file / "out.csv"
    assert missing_parent(under) == f"{under}: cannot write there ({a_file} is not a directory)"
    # a directory to be made inside ``path`` (the shuffle's): its own parent is the one asked
    assert missing_parent("x/y", parent=tmp_path) is None


@pytest.mark.parametrize("parent", ["gone", "notes.txt"])
def test_a_table_and_a_backup_under_a_missing_directory_say_it_in_the_same_words(
    tmp_path: Path, parent: str
) -> None:
    """``score -o`` said "output directory D does not exist" and ``export-registry`` "cannot
    write F: directory D does not exist", both also of a D that was a file; each now raises
    the one line, as its own error type (``DataError``, ``BadBackup``)."""
    (tmp_path / "notes.txt").write_text("not a directory")
    why = "does not exist" if parent == "gone" else "is not a directory"
    table, tar = tmp_path / parent / "scores.csv", tmp_path / parent / "b.tar"
    with pytest.raises(DataError) as raised:
        output_format(table)
    assert str(raised.value) == f"{table}: cannot write there ({tmp_path / parent} {why})"
    with Registry(tmp_path / "reg") as reg, pytest.raises(BadBackup) as refused:
        export_registry(reg, tar)
    assert str(refused.value) == f"{tar}: cannot write there ({tmp_path / parent} {why})"
    assert not (tmp_path / "gone").exists()
