"""``manymodels.tables.write_tables``: frames written one after another as one file, which
appears whole or not at all."""

from __future__ import annotations

import gzip
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from factories import directories_refuse_fsync, fsynced
from typer.testing import CliRunner, Result

from manymodels.exceptions import DataError
from manymodels.tables import OUT_TMP_PREFIX, write_tables


def chunks(n: int, *, fail_after: int | None = None) -> Iterator[pd.DataFrame]:
    for i in range(n):
        if fail_after is not None and i == fail_after:
            raise DataError("partition 'k=9' v1 could not forecast: boom")
        yield pd.DataFrame({"k": [f"k={i}"] * 3, "t": pd.date_range("2024-01-01", periods=3),
                            "prediction": [i + 0.5, i + 1.0, i + 1.5]})  # fmt: skip


@pytest.mark.parametrize("name", ["out.parquet", "out.csv", "out.csv.gz"])
def test_frames_are_one_table(tmp_path: Path, name: str) -> None:
    out = tmp_path / name
    assert write_tables(chunks(4), out) == 12
    read = pd.read_parquet(out) if name.endswith("parquet") else pd.read_csv(out, parse_dates=["t"])
    pd.testing.assert_frame_equal(read, pd.concat(chunks(4), ignore_index=True), check_dtype=False)


@pytest.mark.parametrize("name", ["out.parquet", "out.csv.gz"])
def test_a_failure_after_some_frames_leaves_no_file(tmp_path: Path, name: str) -> None:
    """A chunk that fails after others were written: the error as it was, no file (an earlier
    one stays as it was) and no temporary file beside it."""
    out = tmp_path / name
    out.write_text("the previous forecast")
    with pytest.raises(DataError, match=r"^partition 'k=9' v1 could not forecast: boom$"):
        write_tables(chunks(4, fail_after=2), out)
    assert out.read_text() == "the previous forecast"
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_a_frame_unlike_the_first_is_one_line(tmp_path: Path) -> None:
    frames = [pd.DataFrame({"k": [1, 2]}), pd.DataFrame({"k": ["a", "b"]})]
    with pytest.raises(DataError, match=r"out\.parquet: column 'k' holds integer values") as e:
        write_tables(frames, tmp_path / "out.parquet")
    assert "\n" not in str(e.value)
    assert list(tmp_path.iterdir()) == []


def test_an_error_of_making_a_frame_is_not_called_one_of_writing(tmp_path: Path) -> None:
    def frames() -> Iterator[pd.DataFrame]:
        yield pd.DataFrame({"k": [1]})
        raise ValueError("a model's own error")

    with pytest.raises(ValueError, match=r"^a model's own error$"):
        write_tables(frames(), tmp_path / "out.csv")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="names fds through /proc")
@pytest.mark.parametrize("name", ["out.parquet", "out.csv", "out.csv.gz"])
def test_a_table_is_on_disk_before_its_name_and_its_name_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """``forecast --out`` / ``score --out`` rename a finished temp file onto the output; with
    neither the file nor its directory fsynced, a power loss after the command returned could
    leave an empty or partial table under the final name (ext4's delayed allocation), or the
    old one. Now: the bytes, then the rename's directory, as an artifact's durable put."""
    seen = fsynced(monkeypatch)
    out = tmp_path / name
    write_tables(chunks(3), out)
    assert len(seen) == 2, seen
    assert Path(seen[0]).parent == tmp_path and Path(seen[0]).name.startswith(OUT_TMP_PREFIX)
    assert seen[1] == str(tmp_path)


def test_an_older_releases_leftover_goes_once_a_day_old(tmp_path: Path) -> None:
    """Before writers were named, a killed ``forecast --out`` left ``.<name>.<8 hex>.tmp``
    (a370371 left them for good: their writer cannot be judged). Now the next write into the
    directory removes one a day old, as it does another machine's leftover."""
    day = 86_400.0

    def planted(name: str, age: float) -> Path:
        path = tmp_path / name
        path.write_bytes(b"part of a forecast")
        os.utime(path, (time.time() - age, time.time() - age))
        return path

    old = [planted(".out.csv.1a2b3c4d.tmp", 2 * day), planted(".f.parquet.deadbeef.tmp", 2 * day)]
    young = planted(".out.csv.0badf00d.tmp", 3600)  # may be an old release's running writer
    theirs = planted(".notes.txt.12345678.tmp", 2 * day)  # not a table's: not ours
    write_tables(chunks(2), tmp_path / "out.csv")
    assert not any(p.exists() for p in old)
    assert young.exists() and theirs.exists() and (tmp_path / "out.csv").exists()


def test_a_directory_its_filesystem_cannot_fsync_does_not_fail_the_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Some network and FUSE filesystems refuse fsync of a directory (EINVAL): the table is
    already in place under its name by then, so the write stands (as PostgreSQL ignores it),
    rather than a `cannot write the table` error for a file that was written."""
    directories_refuse_fsync(monkeypatch)
    assert write_tables(chunks(2), tmp_path / "out.csv") == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_a_parquet_file_whose_pandas_metadata_does_not_fit_is_read_as_stored(
    tmp_path: Path,
) -> None:
    """A file whose pandas metadata claimed a range index of 10**30 rows (another tool's
    file, or one edited by hand) made ``manymodels train`` end in a traceback
    (``OverflowError``, not a ``DataError``); now its columns are read as stored, as a retrain
    upload reads them (``read_parquet``)."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from manymodels.tables import read_table

    table = pa.Table.from_pandas(pd.DataFrame({"store": [1, 2], "y": [1.0, 2.0]}))
    meta = json.loads(table.schema.metadata[b"pandas"])
    meta["index_columns"] = [{"kind": "range", "name": None, "start": 0, "stop": 10**30, "step": 1}]
    path = tmp_path / "rows.parquet"
    pq.write_table(table.replace_schema_metadata({b"pandas": json.dumps(meta).encode()}), path)
    frame = read_table(path)
    assert list(frame.columns) == ["store", "y"] and frame["y"].tolist() == [1.0, 2.0]
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(path.read_bytes()[:-20] + b"PAR1")  # the file's fault: refused
    with pytest.raises(DataError, match=r"broken\.parquet: cannot read table"):
        read_table(broken)


def train_on(tmp_path: Path, data: Path) -> Result:
    """``manymodels train`` of a one-feature Ridge spec on ``data``, as a user runs it."""
    from manymodels.cli import app

    spec = tmp_path / "spec.toml"
    spec.write_text(
        'name = "s"\npartition_by = ["store"]\ntarget = "y"\nfeatures = ["x"]\n'
        '[[candidates]]\nestimator = "sklearn.linear_model.Ridge"\n'
    )
    return CliRunner().invoke(
        app, ["train", str(spec), str(data), "--registry", str(tmp_path / "r")]
    )


def test_a_gzip_csv_cut_short_is_one_error_line(tmp_path: Path) -> None:
    """A .csv.gz cut short (a partial download) made gzip raise ``EOFError``, which click
    takes for Ctrl-D: ``manymodels train`` (score, forecast, actuals) printed "Aborted!" and
    nothing else. Now the file's one error line, exit code 2."""
    whole = gzip.compress(b"store,x,y\n" + b"1,2.0,3.0\n" * 1000)
    data = tmp_path / "rows.csv.gz"
    data.write_bytes(whole[: len(whole) // 2])
    result = train_on(tmp_path, data)
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"error: {data}: cannot read table (EOFError: Compressed file ended before the "
        "end-of-stream marker was reached)\n"
    )


def test_a_gzip_csv_damaged_inside_is_one_error_line(tmp_path: Path) -> None:
    """A .csv.gz whose compressed bytes were damaged (a bad copy, a disk error), not cut
    short: zlib raised ``zlib.error``, which is no OSError, and ``train`` ended in a
    traceback (exit 1). Now one line naming the file, exit 2, as a gzip cut short."""
    whole = bytearray(
        gzip.compress(
            b"store,x,y\n" + b"".join(f"{i % 7},{i}.5,{i * 3}.25\n".encode() for i in range(5000))
        )
    )
    for i in range(200, 240):  # inside the first deflate block: the header row's too
        whole[i] ^= 0x55
    data = tmp_path / "rows.csv.gz"
    data.write_bytes(bytes(whole))
    result = train_on(tmp_path, data)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {data}: cannot read table (error: "), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr


@pytest.mark.parametrize(
    "rows",
    [
        "1,2.0,3.0,\n2,2.5,3.5,\n",
        "1,2.0,3.0,9\n1,2.5,3.5,9\n",
        "Smith, J,2.0,3.0\nDoe,2.5,3.5\n",
    ],
    ids=[
        "a comma ending each row",
        "a field more in each row, led by a repeated value",
        "an unquoted comma in the first row",
    ],
)
def test_rows_of_more_fields_than_the_header_are_refused_not_shifted(
    tmp_path: Path, rows: str
) -> None:
    """pandas took the extra field's column as row labels and moved every name one column
    on (store read 2.0, x 3.0, y the last field): ``train`` trained the shifted columns, each
    x value a partition, and said nothing. Now the file is refused, naming the counts."""
    from manymodels.tables import read_table

    path = tmp_path / "rows.csv"
    path.write_text("store,x,y\n" + rows)
    with pytest.raises(DataError) as info:
        read_table(path)
    assert str(info.value).startswith(
        f"{path}: its first data row holds 4 fields, 1 more than the 3 its header row names"
    ), info.value
    path.write_text("store,x,y\n1,2.0,3.0\n")  # as many as the header: read as ever
    assert read_table(path)["store"].tolist() == [1]


@pytest.mark.parametrize("name", ["rows.csv", "rows.csv.gz"])
def test_a_number_past_float_among_decimals_is_named_not_read_as_inf(
    tmp_path: Path, name: str
) -> None:
    """pandas reads a 400-digit number in a column of decimals as ``inf``: ``train`` failed
    its partition with scikit-learn's "Input X contains infinity", ``score`` likewise, naming
    neither column nor row. Now the file is refused in the words every door uses for such
    a number; a cell that says ``inf`` is read as before."""
    import gzip

    from manymodels.tables import read_table

    def written(text: str) -> Path:
        path = tmp_path / name
        path.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
        return path

    big = "1" + "0" * 400
    path = written(f"store,price,units\n1,1.5,2\n1,2.5,3\n2,{big},4\n")
    with pytest.raises(DataError) as info:
        read_table(path)
    assert str(info.value) == (
        f"{path}: column 'price' is too large a number ({big[:37]}...) in data row 3 "
        "(counting from 1): it does not fit a float"
    )
    path = written(f'"store","price"\n"a",1,1.5\n"b",2,-{big}.5\n')  # R's row names
    with pytest.raises(DataError, match=r"column 'price' is too large a number \('-1000"):
        read_table(path)
    df = read_table(written("store,price\n1,1.5\n2,inf\n3,-Infinity\n"))
    assert df["price"].tolist() == [1.5, float("inf"), float("-inf")]


@pytest.mark.parametrize("name", ["rows.csv", "rows.csv.gz"])
def test_a_first_column_of_0_to_n_minus_1_under_a_comma_ending_each_row_is_refused(
    tmp_path: Path, name: str
) -> None:
    """pandas reads ``id,x,y`` over ``0,1.0,2.0,`` with the ids as row labels 0, 1, 2 … —
    the labels it would make itself — so the shifted file was let through: ``id`` read as
    1.0, ``x`` as 2.0, ``y`` empty, and ``train`` trained on it. The rows' widths decide
    now; the same file without the commas, or with R's row names 0 … n-1, reads as ever."""
    import gzip

    from manymodels.tables import read_table

    def written(text: str) -> Path:
        path = tmp_path / name
        data = ("\ufeff" + text).encode()  # a byte-order mark, as Excel writes
        path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
        return path

    path = written("id,x,y\r\n0,1.0,2.0,\r\n1,3.0,4.0,\r\n2,5.0,6.0,\r\n")
    with pytest.raises(DataError, match="its first data row holds 4 fields, 1 more than the 3"):
        read_table(path)
    df = read_table(written("id,x,y\n0,1.0,2.0\n1,3.0,4.0\n"))
    assert df.to_dict("list") == {"id": [0, 1], "x": [1.0, 3.0], "y": [2.0, 4.0]}
    df = read_table(written('"x","y"\n"0","a",1\n"1","b",2\n'))  # R, row names 0 and 1
    assert df.to_dict("list") == {"x": ["a", "b"], "y": [1, 2]}
    df = read_table(written('id,note\n\n0,"two\nlines"\n1,b\n'))  # a quoted newline
    assert df.to_dict("list") == {"id": [0, 1], "note": ["two\nlines", "b"]}


@pytest.mark.parametrize("name", ["rows.csv", "rows.csv.gz"])
def test_a_row_names_column_the_header_does_not_name_is_read_as_r_reads_it(
    tmp_path: Path, name: str
) -> None:
    """R's ``write.table(df, sep=",")`` writes row names under no header cell (a header one
    field short of every row; after a subset they are 3, 7, 12). R's ``read.csv`` and pandas
    read them as row names, the columns as named, and ``train`` read the file so until
    648164d refused it as shifted; now it is read as R reads it, its row names dropped.
    A row-names column is unique, every row holds it, and its last field is not empty."""
    from manymodels.tables import read_table

    text = '"store","x","y"\n"3","s1",1,2\n"7","s1",2,NA\n"12","s2",3,4\n'
    path = tmp_path / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    df = read_table(path)
    assert df["store"].tolist() == ["s1", "s1", "s2"]
    assert df["x"].tolist() == [1, 2, 3]
    assert df["y"].tolist()[::2] == [2.0, 4.0]
    assert list(df.index) == [0, 1, 2]


@pytest.mark.parametrize(
    ("first", "later", "said"),
    [
        ([1, 2], [1.5, 2.0], "holds integer values in the rows written first and 1.5 in later"),
        ([1, 2], ["a", "b"], "holds integer values in the rows written first and 'a' in later"),
        (["a"], [1], "holds text values in the rows written first and 1 in later ones"),
        ([1], [10**20], "holds integer values in the rows written first and 100000000000"),
        ([1, 10**20], [1], "holds values of more than one type"),
    ],
)
def test_a_parquet_column_of_values_of_other_types_across_frames_is_one_line(
    tmp_path: Path, first: list[object], later: list[object], said: str
) -> None:
    """``forecast --out x.parquet`` and ``score --out x.parquet`` write chunk after chunk to
    the first chunk's schema: keys of another type in a later chunk (partitions trained from
    tables of other types) were pyarrow's "('Float value 1.500000 was truncated converting
    to int64', 'Conversion failed for column store with type float64')", and an integer
    past int64 an OverflowError traceback. Now one line naming the column and what to do;
    a .csv holds them, and no partial file is left."""
    out = tmp_path / "x.parquet"
    frames = [pd.DataFrame({"store": first}), pd.DataFrame({"store": later})]
    with pytest.raises(DataError) as info:
        write_tables(iter(frames), out)
    message = str(info.value)
    assert message.startswith(f"{out}: column 'store' {said}"), message
    assert message.endswith("write a .csv instead, which holds each value as it is"), message
    assert "\n" not in message and os.listdir(tmp_path) == []
    assert write_tables(iter(frames), tmp_path / "x.csv") == len(first) + len(later)


@pytest.mark.parametrize("name", ["rows.csv", "rows.csv.gz"])
def test_a_csv_that_is_not_utf8_names_its_line(tmp_path: Path, name: str) -> None:
    """A Latin-1 export (a spreadsheet's 'CSV' on Windows): the error was pandas'
    "cannot read table (UnicodeDecodeError: 'utf-8' codec can't decode byte 0xf6 in
    position 1: invalid start byte)", a position in some block of the file. Now its line."""
    import gzip

    from manymodels.tables import read_table

    data = "store,brand,units\n1,a,2\n2,b,3\n3,dömi,4\n".encode("latin-1")
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    with pytest.raises(DataError) as info:
        read_table(path)
    assert str(info.value) == (
        f"{path}: is not UTF-8 text (byte 0xf6 in line 4, counting the header as line 1): "
        "save it as UTF-8, or as Parquet"
    )


PID_SPEC = {  # one Ridge per 'pid', target 'y'
    "name": "s",
    "task": "regression",
    "partition_by": ["pid"],
    "target": "y",
    "metric": "neg_mean_absolute_error",
    "candidates": [{"estimator": "sklearn.linear_model.Ridge"}],
}


def test_a_csv_written_with_its_row_labels_does_not_train_on_them(tmp_path: Path) -> None:
    """``df.to_csv(path)`` (pandas' default writes the index) or R's ``write.csv``: a first
    column with no name, read as 'Unnamed: 0'. With the spec's features left to "all other
    columns", the rows' positions were trained on as a feature, and every table scored
    later had to hold them. Now it is left out, with a warning; named, it is used."""
    import numpy as np

    from manymodels.data import resolve_columns
    from manymodels.spec import Spec
    from manymodels.tables import read_table

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"pid": np.repeat([1, 2], 10), "x": rng.normal(size=20)})
    frame.assign(y=frame.x * 2).to_csv(tmp_path / "rows.csv")  # index=True
    df = read_table(tmp_path / "rows.csv")
    assert list(df.columns) == ["Unnamed: 0", "pid", "x", "y"]
    cols = resolve_columns(df, Spec.from_dict(PID_SPEC), source="rows.csv")
    assert cols.features == ["x"]
    assert cols.warnings[0].startswith("column 'Unnamed: 0' has no name in the header")
    named = Spec.from_dict({**PID_SPEC, "features": ["Unnamed: 0", "x"]})
    assert resolve_columns(df, named, source="rows.csv").features == ["Unnamed: 0", "x"]


def test_a_parquet_files_missing_key_is_not_told_to_come_as_parquet(tmp_path: Path) -> None:
    """A key missing in a Parquet file was answered "(empty cells, or codes the CSV reader
    takes for missing values …; give such keys as a Parquet file)": said of a Parquet
    file, whose missing values are its own. A CSV's keeps the hint."""
    from manymodels.data import prepare
    from manymodels.spec import Spec

    frame = pd.DataFrame({"pid": [1.0, None, 2.0], "x": [1.0, 2.0, 3.0], "y": [1.0, 2.0, 3.0]})
    spec = Spec.from_dict(PID_SPEC)
    frame.to_parquet(tmp_path / "rows.parquet")
    with pytest.raises(DataError) as info:
        prepare(spec, tmp_path / "rows.parquet")
    assert str(info.value) == (
        f"{tmp_path / 'rows.parquet'}: partition column 'pid' has 1 missing value(s)"
    )
    frame.to_csv(tmp_path / "rows.csv", index=False)
    with pytest.raises(DataError, match="codes the CSV reader takes for missing values"):
        prepare(spec, tmp_path / "rows.csv")


def test_a_cell_longer_than_the_csv_modules_field_limit_is_read(tmp_path: Path) -> None:
    """A cell of 131,073 characters or more (a long note, a JSON document) in the first data
    row: pandas reads it, but the check of the rows' widths read the file again with the
    ``csv`` module, whose default field limit is 131,072, and ``train`` ended in the
    traceback of ``_csv.Error: field larger than field limit (131072)``; R's row names over
    such a cell alike. Now the file trains, and reads as pandas reads it."""
    from manymodels.tables import read_table

    note = "n" * 200_000
    data = tmp_path / "rows.csv"
    data.write_text(f"store,note,x,y\n1,{note},1.0,2.0\n1,b,2.0,4.1\n2,c,1.0,3.0\n2,d,3.0,6.2\n")
    result = train_on(tmp_path, data)
    assert result.exit_code == 0, result.output
    assert read_table(data)["note"].str.len().tolist() == [200_000, 1, 1, 1]
    data.write_text(f'"store","note","x","y"\n"3",1,"{note}",1,2\n"7",2,"b",2,4\n')
    assert read_table(data).to_dict("list") == {
        "store": [1, 2], "note": [note, "b"], "x": [1, 2], "y": [2, 4]
    }  # fmt: skip


def test_a_line_of_spaces_pandas_skips_does_not_make_the_file_shifted(tmp_path: Path) -> None:
    """A line of only spaces or a tab (above the header, as a hand-edited or exported file
    may have, or between R's rows) is skipped by pandas, which read the file whole; the
    rows' width check read it as a one-field header (or a row one field short of R's row
    names) and refused the file as "its first data row holds 4 fields, 1 more than the 3 its
    header row names", which it does not. Now it reads as pandas reads it; a comma ending
    each row under such a line is still refused."""
    from manymodels.tables import read_table

    data = tmp_path / "rows.csv"
    data.write_text("   \nstore,x,y\n1,2.0,3.0\n1,3.0,4.0\n2,1.0,2.0\n2,2.0,4.1\n")
    assert train_on(tmp_path, data).exit_code == 0
    data.write_text("\t\nstore,x,y\n1,2.0,3.0\n")
    assert read_table(data).to_dict("list") == {"store": [1], "x": [2.0], "y": [3.0]}
    data.write_text('"store","x","y"\n"3","s1",1,2\n  \n"7","s1",2,4\n')  # R's row names
    assert read_table(data).to_dict("list") == {"store": ["s1", "s1"], "x": [1, 2], "y": [2, 4]}
    data.write_text(" \nid,x,y\n0,1.0,2.0,\n1,3.0,4.0,\n")
    with pytest.raises(DataError, match="its first data row holds 4 fields, 1 more than the 3"):
        read_table(data)


def test_a_csv_that_is_not_utf8_is_named_without_holding_it_in_memory(tmp_path: Path) -> None:
    """Naming the line of a CSV's first byte that is no UTF-8 read the whole file into memory
    (and decoded it): a file larger than the memory left (a 20 GB Latin-1 export) ended in a
    ``MemoryError`` or the process killed, for a message about its second line. Here a 1 GB
    file (sparse: NUL bytes, valid UTF-8, after the Latin-1 'ö') in a process whose address
    space is bounded to 300 MB more than it holds."""
    import subprocess
    import sys

    path = tmp_path / "big.csv"
    with open(path, "wb") as f:
        f.write("store,brand\n1,dömi\n".encode("latin-1"))
        f.truncate(1 << 30)
    script = f"""
import resource
from pathlib import Path
from manymodels.csv_rows import not_utf8
size = int(open("/proc/self/status").read().split("VmSize:")[1].split()[0]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (size + (300 << 20), resource.RLIM_INFINITY))
print(not_utf8(Path({str(path)!r}), UnicodeDecodeError("utf-8", b"\\xf6", 0, 1, "bad")))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout == (
        f"{path}: is not UTF-8 text (byte 0xf6 in line 2, counting the header as line 1): "
        "save it as UTF-8, or as Parquet\n"
    )


@pytest.mark.parametrize("name", ["rows.csv", "rows.csv.gz"])
def test_an_empty_csv_is_one_error_line_saying_so(tmp_path: Path, name: str) -> None:
    """A CSV of no bytes at all (a failed export) was refused in pandas' words, "cannot read
    table (EmptyDataError: No columns to parse from file)"; a header alone says it has no rows."""
    data = tmp_path / name
    data.write_bytes(gzip.compress(b"") if name.endswith(".gz") else b"")
    result = train_on(tmp_path, data)
    assert result.exit_code == 2, result.output
    assert result.stderr == f"error: {data}: the file is empty (no header, no rows)\n"
    header = tmp_path / "header.csv"
    header.write_text("store,x,y\n")
    result = train_on(tmp_path, header)
    assert result.exit_code == 2, result.output
    assert result.stderr == f"error: {header}: the table has no rows (only a header?)\n"
    assert not (tmp_path / "r" / "registry.db").exists()


def test_an_empty_data_path_is_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`manymodels score "$DATA"` with DATA unset read the current directory as a Parquet
    dataset: "error: .: cannot read table (ArrowInvalid: … Could not read schema from
    './notes.txt' …)", naming a path and a file no one gave; train said ": cannot read a
    Parquet dataset (FileNotFoundError)". Now one line saying the path is empty, exit 2,
    nothing written."""
    from factories import synthetic_ridge_toml

    from manymodels.cli import app

    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("not a table")
    spec = tmp_path / "spec.toml"
    spec.write_text(synthetic_ridge_toml("empty"))
    for args, what in (
        (["train", str(spec), ""], "data"),
        (["score", "", "-o", "out.csv"], "data"),
        (["actuals", ""], "data"),
        (["scheduler", str(spec), ""], "data"),  # not at its first firing: before it starts
        (["forecast", "--horizon", "2", "--future", ""], "--future"),
    ):
        done = CliRunner().invoke(app, [*args, "--registry", "r"])
        assert done.exit_code == 2, done.output
        said = f"error: {what} is an empty path (''): name a .csv or .parquet file"
        assert done.output.strip().splitlines() == [said], args
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "spec.toml"]
