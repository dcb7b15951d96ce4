"""A Parquet upload pyarrow cannot read is the retrain route's 422, whatever pyarrow raises,
and never ends the router's process.

Each file here is an ordinary pyarrow file with a byte or its pandas metadata changed, as a
damaged download or another tool leaves one: found by changing every byte of such files'
footers and pages in turn (the router survived every one after the fix)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from routerkit import KEY, TOKEN, admin

from manymodels.exceptions import DataError
from serving.local import running_server
from serving.settings import Settings
from serving.uploads import read_file

LIMIT = 10 * 1024 * 1024


def parquet(table: pa.Table) -> bytes:
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


def text_relabelled_boolean() -> bytes:
    """A file whose text column's schema type was changed to BOOLEAN: its size statistics
    still count text bytes, which pyarrow refuses by ``std::terminate`` (the process aborts)
    when the footer's column chunk is built."""
    data = parquet(pa.table({"week": ["2024-01-01", "2024-01-08"], "units": [1.0, 2.0]}))
    footer = len(data) - 8 - int.from_bytes(data[-8:-4], "little")
    at = data.index(b"\x15\x0c", footer)  # the first leaf's type: field 1, BYTE_ARRAY (6)
    return data[: at + 1] + b"\x00" + data[at + 2 :]  # BOOLEAN (0)


def level_histogram_too_long() -> bytes:
    """A file whose required column was marked (-1) neither optional nor required: pyarrow
    reads it as required, its definition level histogram then one entry too long (abort)."""
    table = pa.table({"week": ["2024-01-01", "2024-01-08"], "units": [1.0, 2.0]})
    data = parquet(table)
    footer = len(data) - 8 - int.from_bytes(data[-8:-4], "little")
    at = data.index(b"\x15\x0c\x25\x02", footer)  # type BYTE_ARRAY, repetition OPTIONAL
    return data[: at + 3] + b"\x01" + data[at + 4 :]  # repetition -1


def test_a_footer_pyarrow_would_abort_on_is_refused_and_the_process_lives() -> None:
    """Run in a child process: on the previous code it died of SIGABRT."""
    for name, data in (
        ("relabelled", text_relabelled_boolean()),
        ("histogram", level_histogram_too_long()),
    ):
        script = textwrap.dedent(
            f"""
            import sys
            from manymodels.exceptions import DataError
            from serving.uploads import read_file
            try:
                read_file(sys.stdin.buffer.read(), "x.parquet", {LIMIT})
            except DataError as e:
                print("refused:", e)
            """
        )
        done = subprocess.run(
            [sys.executable, "-c", script], input=data, capture_output=True, timeout=120
        )
        assert done.returncode == 0, (name, done.returncode, done.stderr[-500:])
        assert done.stdout.startswith(b"refused: cannot read the uploaded file as PARQUET"), name
        assert b"the footer is malformed" in done.stdout, done.stdout


def test_an_index_out_of_its_dictionary_is_a_data_error() -> None:
    """One byte of a dictionary-encoded page changed: the text check's ``take`` of the
    dictionary's lengths by the page's indices raised pyarrow's ``ArrowIndexError`` (an
    ``IndexError``, neither ``ValueError`` nor ``OSError``): the route's 500."""
    table = pa.table(
        {
            "week": ["2024-01-01", "2024-01-08", "2024-01-08"],
            "units": [1.0, 2.0, 3.0],
            "n": pa.array([1, 2, 3], pa.int32()),
            "l": [[1], [2], [3]],
        }
    )
    data = parquet(table)
    broken = data[:12] + b"\x00" + data[13:]
    with pytest.raises(DataError, match=r"as PARQUET: Index 0 out of bounds"):
        read_file(broken, "x.parquet", LIMIT)


def _with_pandas_metadata(change: dict[str, object]) -> bytes:
    frame = pd.DataFrame({"week": ["2024-01-01"], "price": [2.0], "units": [1.0]})
    table = pa.Table.from_pandas(frame, preserve_index=False)
    meta = {**json.loads(table.schema.metadata[b"pandas"]), **change}
    return parquet(table.replace_schema_metadata({b"pandas": json.dumps(meta).encode()}))


_LEVEL = {"name": None, "field_name": None, "pandas_type": "unicode", "numpy_type": "object"}


@pytest.mark.parametrize(
    "change",
    [
        {"index_columns": ["week_id"]},
        {"columns": 5},
        {"column_indexes": "x"},
        {"index_columns": [{"kind": "range", "name": None, "start": 0, "stop": 10**30, "step": 1}]},
        {"column_indexes": [_LEVEL, _LEVEL]},
        {
            "column_indexes": [
                {**_LEVEL, "pandas_type": "datetimetz", "metadata": {"timezone": "UTC"}}
            ]
        },
        {"index_columns": ["week", "week"]},
    ],
    ids=[
        "index column missing",
        "columns a number",
        "column indexes text",
        "range index of 10**30 rows",
        "two column index levels",
        "column index of times",
        "index column twice",
    ],
)
def test_a_file_whose_pandas_metadata_does_not_fit_is_read_as_stored(
    change: dict[str, object],
) -> None:
    """Its pandas metadata naming a column it lacks, or malformed: a ``KeyError`` or a
    ``TypeError`` (500) before; now its columns are read as stored. A range index of 10**30
    rows (``OverflowError``) was a 500 still, and metadata pandas raised ``ValueError`` for
    (two column index levels whose names are no literal, a column index of times over text
    columns, an index column named twice) refused a file whose columns read well."""
    frame, fmt, _ = read_file(_with_pandas_metadata(change), "x.parquet", LIMIT)
    assert fmt == "parquet" and list(frame.columns) == ["week", "price", "units"]
    assert frame["units"].tolist() == [1.0]


def test_the_retrain_route_answers_each_with_a_4xx(registry_path: Path) -> None:
    settings = Settings(registry=registry_path, admin_token=TOKEN, retrain_backend="local")
    with running_server(settings) as url, httpx.Client(base_url=url, timeout=60) as client:
        for data in (text_relabelled_boolean(), level_histogram_too_long()):
            r = client.post(
                f"/v1/partitions/{KEY}/retrain",
                files={"file": ("rows.parquet", data, "application/octet-stream")},
                headers=admin(),
            )
            assert r.status_code == 422, r.text
            assert "the footer is malformed" in r.json()["detail"], r.text
        assert client.get("/v1/jobs", headers=admin()).json() == {"jobs": []}


def test_a_csv_whose_rows_outnumber_its_header_is_refused_not_shifted() -> None:
    """A comma at the end of each row: pandas read the first field as row labels and every
    column shifted one on (``week`` read the prices), a retrain's rows misread; now a 422
    naming the counts, as ``train`` refuses the file (``tables.refuse_shifted``)."""
    data = b"week,price,units\n2024-01-01,2.0,5.0,\n2024-01-08,2.5,6.0,\n"
    with pytest.raises(DataError, match=r"rows\.csv: its first data row holds 4 fields, 1 more"):
        read_file(data, "rows.csv", LIMIT)


def test_a_csv_of_r_row_names_is_read_as_r_reads_it() -> None:
    """R's ``write.table(df, sep=",")``: row names under no header cell. A retrain's upload
    of it was refused as shifted (648164d); now its columns are read as named."""
    data = b'"week","price","units"\n"1","2024-01-01",2.0,5.0\n"2","2024-01-08",2.5,6.0\n'
    frame = read_file(data, "rows.csv", LIMIT)[0]
    assert frame["week"].tolist() == ["2024-01-01", "2024-01-08"]
    assert frame["units"].tolist() == [5.0, 6.0]


def test_a_number_past_float_among_decimals_is_named_not_read_as_inf() -> None:
    """A retrain's CSV upload read a 400-digit price among decimals as ``inf``: the retrain's
    "is inf in row 1: too large to train on". Now the words every door uses for such a
    number, naming the column and the file's row (``csv_rows.refuse_overflowed``)."""
    data = b"week,price,units\n2024-01-01,2.0,5.0\n2024-01-08,1" + b"0" * 400 + b".5,6.0\n"
    with pytest.raises(DataError) as info:
        read_file(data, "rows.csv", LIMIT)
    assert "rows.csv: column 'price' is too large a number ('1000000000000000" in str(info.value)
    assert str(info.value).endswith("in data row 2 (counting from 1): it does not fit a float")


def test_a_cell_longer_than_the_csv_modules_field_limit_is_read() -> None:
    """A retrain's CSV upload whose first data row held a cell of 200,000 characters: pandas
    read it, the rows' width check's ``csv`` module raised "field larger than field limit
    (131072)", which no handler took for the file's fault (a 500). Now it is read."""
    note = b"n" * 200_000
    data = b"week,note,units\n2024-01-01," + note + b",5.0\n2024-01-08,b,6.0\n"
    frame = read_file(data, "rows.csv", LIMIT)[0]
    assert frame["note"].str.len().tolist() == [200_000, 1]
