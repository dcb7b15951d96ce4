"""A retrain upload that is small on the wire but huge once read is refused before it is read.

The body limit (``max_body_bytes``) bounds what a JSON or CSV body can hold, but a Parquet
file's run-length and dictionary encodings let a few bytes claim any number of rows: a 1 MB
file of 50 million constant rows took a real router from 260 MB to 8 GB of memory before
any check ran. The router now reads the file's footer first and refuses a file of more values
than a CSV within the body limit could hold (each CSV value takes a byte at least).
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from routerkit import KEY, TOKEN, admin
from test_parquet_pages import understated

from serving.local import running_server
from serving.settings import Settings

LIMIT = 64 * 1024  # the body limit of the router under test: small, so the file is too


def limited(registry_path: Path) -> Settings:
    """A router of the registry whose bodies are at most ``LIMIT`` bytes, retraining here."""
    return Settings(
        registry=registry_path, admin_token=TOKEN, max_body_bytes=LIMIT, retrain_backend="local"
    )


def weekly_columns(n: int) -> dict[str, Any]:
    """The columns the spec trains on, ``n`` weeks from 2025-01-06 of one partition's sales:
    what an upload holds beside the column under test."""
    return {
        "week": pa.array(pd.date_range("2025-01-06", periods=n, freq="W")),
        "price": np.full(n, 2.05),
        "deal": np.ones(n, dtype=np.int64),
        "feat": np.ones(n, dtype=np.int64),
        "units": np.full(n, 1544.0),
    }


def upload(client: httpx.Client, data: bytes) -> httpx.Response:
    """``data`` posted as a Parquet file to the partition's retrain, as an admin."""
    return client.post(
        f"/v1/partitions/{KEY}/retrain",
        files={"file": ("rows.parquet", data, "application/octet-stream")},
        headers=admin(),
    )


def constant_rows(n: int) -> bytes:
    """``n`` rows of one week's sales, as Parquet: a few KB however large ``n`` is."""
    frame = pd.DataFrame(
        {
            "week": np.full(n, np.datetime64("2025-03-10", "ns")),
            "price": np.full(n, 2.05),
            "deal": np.ones(n, dtype=np.int64),
            "feat": np.ones(n, dtype=np.int64),
            "units": np.full(n, 1544.0),
        }
    )
    out = io.BytesIO()
    frame.to_parquet(out, index=False, compression="zstd")
    return out.getvalue()


def test_a_parquet_file_claiming_more_values_than_the_body_limit_is_refused(
    registry_path: Path,
) -> None:
    settings = limited(registry_path)
    bomb = constant_rows(1_000_000)  # 5,000,000 values
    assert len(bomb) < LIMIT // 2  # well within the body limit on the wire
    small = constant_rows(3)
    with running_server(settings) as url, httpx.Client(base_url=url, timeout=60) as client:
        r = upload(client, bomb)
        assert r.status_code == 422, r.text
        detail = r.json()["detail"]
        assert "holds 1,000,000 rows of 5 column(s), 5,000,000 values" in detail, detail
        assert f"more than the {LIMIT:,}" in detail
        assert client.get("/v1/jobs", headers=admin()).json() == {"jobs": []}
        ok = upload(client, small)
        assert ok.status_code == 202, ok.text  # a file of a few rows is read as before


def parquet_of(table: pa.Table) -> bytes:
    out = io.BytesIO()
    pq.write_table(table, out, compression="zstd")
    return out.getvalue()


def test_text_that_decodes_past_the_body_limit_is_refused_before_it_is_expanded(
    registry_path: Path,
) -> None:
    """Few values, but long ones: a dictionary page holding one 100 KB string that 1,000
    rows name (the file: ~400 bytes, within the value cap) decoded to 100 MB, and one 1 MB
    value packed by zstd to a few KB unpacked whole. A 289-byte file of 1,000 rows naming a
    1 MB string took 17 s and 1.5 GB to read."""
    settings = limited(registry_path)
    long = pa.array(["x" * 100_000]).dictionary_encode().dictionary
    repeated = pa.DictionaryArray.from_arrays(pa.array(np.zeros(1000, np.int32)), long)
    n = 1000
    rows = weekly_columns(n)
    dictionary_bomb = parquet_of(pa.table({**rows, "note": repeated}))
    packed_bomb = parquet_of(pa.table({"week": ["x" * 1_000_000]}))
    assert len(dictionary_bomb) < LIMIT // 2 and len(packed_bomb) < LIMIT // 2
    with running_server(settings) as url, httpx.Client(base_url=url, timeout=60) as client:
        r = upload(client, dictionary_bomb)
        assert r.status_code == 422, r.text
        assert "text and binary values decode to 100,000,000 bytes" in r.json()["detail"]
        r = upload(client, packed_bomb)
        assert r.status_code == 422, r.text
        assert "pages unpack to 1,000,0" in r.json()["detail"], r.text
        assert client.get("/v1/jobs", headers=admin()).json() == {"jobs": []}
        short = pa.DictionaryArray.from_arrays(
            pa.array(np.zeros(n, np.int32)), pa.array(["a note"])
        )
        ok = upload(client, parquet_of(pa.table({**rows, "note": short})))
        assert ok.status_code == 202, ok.text  # text within the limit is read as before


def test_a_body_of_millions_of_empty_rows_is_refused_from_its_head(registry_path: Path) -> None:
    """10 MB of ``{}`` rows (3.3 million) held the event loop ~1.3 s on the scoring routes
    (parsed, then every row validated there) and ~0.5 s on the retrain route before their
    422s. The first MiB of a big body is now read first: more rows there than the cap (the
    scoring routes), or an empty row (a retrain: it can never be trained on), is the 422.
    Shown here by a body whose end is not JSON at all: it used to be read to that end and
    refused for it (``json_invalid``); now its head decides."""
    settings = Settings(registry=registry_path, admin_token=TOKEN, retrain_backend="local")
    body = b'{"rows":[' + b",".join([b"{}"] * 3_000_000) + b"], oops"
    assert len(body) < settings.max_body_bytes
    json_type = {"content-type": "application/json"}
    with running_server(settings) as url, httpx.Client(base_url=url, timeout=60) as client:
        for path in (f"/v1/partitions/{KEY}/predict", "/v1/predict"):
            r = client.post(path, content=body, headers=json_type)
            assert r.status_code == 422, r.text
            [error] = r.json()["detail"]
            assert error["type"] == "too_long" and error["loc"] == ["body", "rows"], error
            assert error["msg"].startswith("at least "), error
            assert error["msg"].endswith("rows is more than the limit of 100000 per request")
        r = client.post(
            f"/v1/partitions/{KEY}/retrain", content=body, headers={**admin(), **json_type}
        )
        assert r.status_code == 422, r.text
        assert r.json()["detail"] == [
            {"loc": ["body", "rows", 0], "msg": "the row holds no values", "type": "value_error"}
        ]
        assert client.get("/v1/jobs", headers=admin()).json() == {"jobs": []}
        few = {"rows": [{"price": 2.0, "deal": 1, "feat": 0}] * 1000}
        ok = client.post(f"/v1/partitions/{KEY}/predict", json=few)
        assert ok.status_code == 200, ok.text  # rows within the cap are scored as before


def test_an_empty_retrain_row_is_the_same_422_in_a_small_body_as_in_a_big_one(
    registry_path: Path,
) -> None:
    """A big body's first MiB refused an empty row ("the row holds no values"), but the same
    row in a small body went on to another answer (a missing time or target, or, for a spec
    without a time column, the row dropped and the rest trained): its size decided. Now every
    body refuses it alike, and nothing is queued."""
    settings = Settings(registry=registry_path, admin_token=TOKEN, retrain_backend="local")
    week = {"week": "2024-01-01", "price": 2.0, "deal": 1, "feat": 0, "units": 300}
    with running_server(settings) as url, httpx.Client(base_url=url, timeout=60) as client:
        r = client.post(f"/v1/partitions/{KEY}/retrain", json={"rows": [week, {}]}, headers=admin())
        assert r.status_code == 422, r.text
        [error] = r.json()["detail"]
        assert {k: error[k] for k in ("loc", "msg", "type")} == {
            "loc": ["body", "rows", 1], "msg": "the row holds no values", "type": "value_error"
        }  # fmt: skip
        assert client.get("/v1/jobs", headers=admin()).json() == {"jobs": []}


def test_an_upload_of_more_columns_than_a_retrain_reads_is_refused_before_it_is_parsed(
    registry_path: Path,
) -> None:
    """1.5 million columns in a 10 MB CSV took the router 32-63 s and 1.8 GB, only to be
    refused for the spec's columns it lacked; a JSON row of 700,000 keys held the event loop
    1.4 s. More than ``MAX_COLUMNS`` (10,000) is now refused from the CSV's header, the
    Parquet footer, or the JSON rows' keys (from the head of a big body)."""
    settings = Settings(registry=registry_path, admin_token=TOKEN, retrain_backend="local")
    wide = 10_001
    names = [f"c{i}" for i in range(wide)]
    csv_plain = (",".join(names) + "\n" + ",".join("1" for _ in names) + "\n").encode()
    quoted = '"a\nb",' + ",".join(names[1:])  # a quoted name holding a newline: one header
    csv_quoted = (quoted + "\n" + ",".join("1" for _ in names) + "\n").encode()
    parquet = parquet_of(pa.table({n: [1] for n in names}))
    small_json = {"rows": [dict.fromkeys(names, 1)]}
    big_row = {f"column_{i:07d}": 1 for i in range(70_000)}  # ~1.3 MB: read from its head
    with running_server(settings) as url, httpx.Client(base_url=url, timeout=60) as client:
        retrain = f"/v1/partitions/{KEY}/retrain"

        def detail(r: httpx.Response) -> str:
            assert r.status_code == 422, r.text
            return str(r.json()["detail"])

        for name, data in (("w.csv", csv_plain), ("q.csv", csv_quoted), ("w.parquet", parquet)):
            r = client.post(retrain, files={"file": (name, data, "text/csv")}, headers=admin())
            assert "has 10,001 columns: more than the 10,000 a retrain reads" in detail(r), name
        r = client.post(retrain, json=small_json, headers=admin())
        assert "name at least 10,001 columns: more than the 10,000" in detail(r)
        r = client.post(retrain, json={"rows": [big_row]}, headers=admin())
        assert "row 0 names at least" in detail(r)
        assert client.get("/v1/jobs", headers=admin()).json() == {"jobs": []}


def test_a_parquet_file_whose_footer_understates_its_pages_is_refused(
    registry_path: Path,
) -> None:
    """A reader unpacks each page into the size its own header claims: a 6 KB file whose
    footer said its one page unpacked to 1,000 bytes passed the footer's check and made the
    router unpack 200 MB (a page may claim 2 GiB; a file, many pages). The pages' headers are
    now read too."""
    settings = limited(registry_path)
    lied = understated(parquet_of(pa.table({"week": ["x" * 2_000_000]})), 1000)
    assert len(lied) < LIMIT // 2
    with running_server(settings) as url, httpx.Client(base_url=url, timeout=60) as client:
        r = upload(client, lied)
        assert r.status_code == 422, r.text
        assert "pages unpack to 2,000,0" in r.json()["detail"], r.text


def test_a_v2_request_of_more_rows_than_the_cap_is_refused_from_its_head(
    registry_path: Path,
) -> None:
    """A 9 MB V2 request of 3 million values held the event loop 1.2 s (parsed, then
    validated there) before its 400 for the row cap. Its head (the first MiB) is now read
    first: an input whose shape, or whose data so far, is taller than ``max_batch_rows`` is
    the 400 at once. Shown by a body whose end is not JSON: it used to be read to there."""
    settings = Settings(registry=registry_path, admin_token=TOKEN)
    flat = b",".join([b"1"] * 3_000_000)
    tall = b'{"inputs":[{"name":"price","shape":[3000000],"datatype":"FP64","data":[' + flat
    nested = b",".join([b"[1]"] * 1_500_000)
    unshaped = b'{"inputs":[{"name":"price","shape":[10,1],"datatype":"FP64","data":[' + nested
    with running_server(settings) as url, httpx.Client(base_url=url, timeout=60) as client:
        r = client.post(f"/v2/models/{KEY}/infer", content=tall + b"], oops")
        assert r.status_code == 400, r.text
        assert r.json() == {"error": "3000000 rows is more than the limit of 100000 per request"}
        r = client.post(f"/v2/models/{KEY}/infer", content=unshaped + b"], oops")
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert error.startswith("at least ") and error.endswith(
            "rows is more than the limit of 100000 per request"
        ), error


def test_a_row_of_more_columns_than_a_model_could_take_is_refused_before_it_is_scored(
    registry_path: Path,
) -> None:
    """One row of 700,000 keys (9.7 MB) held the event loop 1.1 s on the per-key predict
    route, which scores a few rows in place. A row of more than 10,000 columns is now a 422
    as soon as the body is parsed, or from its head when the body is over 1 MiB (shown by a
    body whose end is not JSON)."""
    settings = Settings(registry=registry_path)
    row = {f"c{i}": 1 for i in range(10_001)}
    wide = b'{"rows":[{' + b",".join(b'"c%07d":1' % i for i in range(100_000))
    with running_server(settings) as url, httpx.Client(base_url=url, timeout=60) as client:
        for path in (f"/v1/partitions/{KEY}/predict", "/v1/predict"):
            r = client.post(path, json={"rows": [{"price": 2.0, "deal": 1, "feat": 0}, row]})
            assert r.status_code == 422, r.text
            assert r.json()["detail"] == [
                {
                    "loc": ["body", "rows", 1],
                    "msg": "10001 columns is more than the limit of 10000 per row",
                    "type": "too_long",
                }
            ]
            r = client.post(path, content=wide, headers={"content-type": "application/json"})
            assert r.status_code == 422, r.text
            [error] = r.json()["detail"]
            assert error["loc"] == ["body", "rows", 0] and error["msg"].startswith("at least ")


def test_delta_encoded_text_is_read_and_its_repeats_are_bounded(registry_path: Path) -> None:
    """Spark's and parquet-mr's v2 writers (and DuckDB's, arrow's on request) store text as
    DELTA_BYTE_ARRAY or DELTA_LENGTH_BYTE_ARRAY, which the text check could not read as a
    dictionary: such a file, however small, was refused ("cannot read the uploaded file as
    PARQUET: Not yet implemented: DecodeArrow of DictAccumulator …"). It is read now; and a
    DELTA_BYTE_ARRAY column whose rows repeat one long value as a shared prefix (a few KB
    for 16 MB of text) is still refused, from the values' first batches."""
    settings = limited(registry_path)
    n = 200
    rows = {**weekly_columns(n), "note": [f"week {i} of the promotion" for i in range(n)]}

    def delta(table: pa.Table, encoding: str) -> bytes:
        out = io.BytesIO()
        pq.write_table(
            table, out, compression="zstd", use_dictionary=False, column_encoding={"note": encoding}
        )
        return out.getvalue()

    bomb = delta(pa.table({"note": ["x" * 40_000] * 400}), "DELTA_BYTE_ARRAY")
    assert len(bomb) < 1000
    with running_server(settings) as url, httpx.Client(base_url=url, timeout=60) as client:
        for encoding in ("DELTA_BYTE_ARRAY", "DELTA_LENGTH_BYTE_ARRAY"):
            ok = upload(client, delta(pa.table(rows), encoding))
            assert ok.status_code == 202, (encoding, ok.text)
            job = ok.json()["job_id"]
            for _ in range(600):  # one retrain at a time: wait for this one to end
                status = client.get(f"/v1/jobs/{job}", headers=admin()).json()["status"]
                if status in ("succeeded", "failed"):
                    break
                time.sleep(0.1)
        r = upload(client, bomb)
        assert r.status_code == 422, r.text
        assert "text and binary values decode to" in r.json()["detail"], r.text
        assert len(client.get("/v1/jobs", headers=admin()).json()["jobs"]) == 2


def test_nested_text_in_several_row_groups_is_read(registry_path: Path) -> None:
    """A file of several row groups (pyarrow's ParquetWriter writing a batch at a time, or any
    table past its row group size) with a column of lists, structs or maps of text beside the
    spec's: the text check read it whole as dictionaries, which pyarrow cannot for nested
    columns across row groups (ArrowNotImplementedError "Nested data conversions not
    implemented for chunked array outputs"), and the retrain answered 500. Now 202."""
    settings = limited(registry_path)
    n = 60
    tags = [[f"tag{i % 3}", "promo"] for i in range(n)]
    source = [{"shop": f"s{i % 2}", "line": i} for i in range(n)]
    table = pa.table({**weekly_columns(n), "tags": tags, "source": source})
    out = io.BytesIO()
    pq.write_table(table, out, row_group_size=20)
    with running_server(settings) as url, httpx.Client(base_url=url, timeout=60) as client:
        r = upload(client, out.getvalue())
    assert r.status_code == 202, r.text
