"""A retrain upload (a CSV body) refused for what its cells hold, not for its format, says
what is wrong once: "cannot read the uploaded file as CSV" stood before every such refusal
(a number past float64, a column named twice), which the reader had read."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from factories import linear_frame, spec_dict
from routerkit import TOKEN, admin, job_ended, open_client

from manymodels.pipeline import train
from manymodels.registry import Registry
from serving.settings import Settings

BIG = "1" + "0" * 400


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("upload") / "registry"
    train(spec_dict(), linear_frame(2, 30), root, backend="local")
    return root


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (
            f"pid,t,x0,x1,y\n0,30,1.5,2.5,3.0\n0,31,{BIG}.5,2.5,3.0\n",
            f"new.csv: column 'x0' is too large a number ('{BIG[:36]}...) in data row 2 "
            "(counting from 1): it does not fit a float",
        ),
        (
            "pid,t,x0,x0,y\n0,30,1.5,2.5,3.0\n",
            "new.csv: column 'x0' is named twice in the header row",
        ),
    ],
    ids=["overflowed number", "repeated column"],
)
def test_a_refusal_of_the_cells_is_not_said_to_be_of_the_format(
    root: Path, body: str, detail: str
) -> None:
    with open_client(Settings(registry=root, admin_token=TOKEN)) as client:
        r = client.post(
            "/v1/partitions/pid=0/retrain",
            files={"file": ("new.csv", body.encode(), "text/csv")},
            headers=admin(),
        )
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith(detail), r.json()
    assert "cannot read the uploaded file" not in r.text


def test_a_file_the_reader_cannot_read_still_says_so(root: Path) -> None:
    with open_client(Settings(registry=root, admin_token=TOKEN)) as client:
        r = client.post(
            "/v1/partitions/pid=0/retrain",
            files={
                "file": (
                    "new.csv",
                    b"pid,t,x0,x1,y\n0,30,1.5,2.5,3.0\n0,31,1,2,3,4,5\n",
                    "text/csv",
                )
            },
            headers=admin(),
        )
    assert r.status_code == 422, r.text
    assert "cannot read the uploaded file as CSV" in r.json()["detail"], r.json()


def test_a_parquet_upload_of_decimals_retrains_them_as_numbers(tmp_path: Path) -> None:
    """Posted decimal128 values appended to the floats the version kept made a column of
    mixed objects, which training took for text: the job "succeeded" with a version that
    one-hot encoded the feature's values as categories ('1.5')."""
    import decimal
    import io

    from routerkit import job_ended

    from manymodels.registry import Registry

    root = tmp_path / "registry"
    df = linear_frame(2, 30)
    train(spec_dict(), df, root, backend="local")
    rows = df[df["pid"] == 0].assign(t=lambda d: d["t"] + 30)
    rows["x1"] = [decimal.Decimal(f"{v:.6f}") for v in rows["x1"]]
    body = io.BytesIO()
    rows.to_parquet(body)
    with open_client(Settings(registry=root, admin_token=TOKEN)) as client:
        r = client.post(
            "/v1/partitions/pid=0/retrain",
            files={"file": ("new.parquet", body.getvalue(), "application/octet-stream")},
            headers=admin(),
        )
        assert r.status_code == 202, r.text
        job = job_ended(client, r.headers["Location"], admin())
    assert job["status"] == "succeeded", job
    with Registry.open(root) as reg:
        schema = reg.get_version("pid=0", 2).feature_schema
    assert schema["categorical"] == [] and schema["dtypes"]["x1"] == "float64", schema


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b"", "the request has no body"),
        (b"  \n", "the request body is empty (only whitespace)"),
        (b"null", "the request body is null, not a JSON object"),
    ],
)
def test_a_json_retrain_without_rows_is_told_as_the_other_routes_tell_it(
    root: Path, body: bytes, said: str
) -> None:
    """A JSON retrain with no body, or one of only whitespace, was pydantic's "Invalid JSON:
    EOF while parsing a value at line 1 column 0" where every other route says the request
    has no body (or an empty one) and what to send — the members it holds too, as they do
    (it said none: the route reads its body itself). Nothing is queued."""
    with open_client(Settings(registry=root, admin_token=TOKEN)) as client:
        r = client.post(
            "/v1/partitions/pid=0/retrain",
            content=body,
            headers={**admin(), "content-type": "application/json"},
        )
        assert r.status_code == 422, r.text
        (error,) = r.json()["detail"]
        assert error["loc"] == ["body"] and error.get("input") is None, error  # not echoed
        assert error["msg"] == f"{said}: send a JSON object holding 'rows' (its fields: /docs)"
        assert client.get("/v1/jobs", headers=admin()).json()["jobs"] == []


def test_rows_lags_leave_too_few_of_are_refused_before_a_job(tmp_path: Path) -> None:
    """``?mode=replace`` with ``min_rows`` + 1 rows under ``lags = [3]``: the first 3 rows
    have no lag, so the run had 8 to train on and skipped the partition — a 202, then a
    failed job ("8 rows < min_rows 10"). Rows the retrain can only fail on are a 422 before
    any job, naming the rows the lags leave."""
    root = tmp_path / "registry"
    train(spec_dict(lags=[3], min_rows=10), linear_frame(2, 30), root, backend="local")
    new = linear_frame(1, 11, seed=1).drop(columns="pid")
    body = new.to_csv(index=False).encode()
    with open_client(Settings(registry=root, admin_token=TOKEN)) as client:
        r = client.post(
            "/v1/partitions/pid=0/retrain?mode=replace",
            files={"file": ("new.csv", body, "text/csv")},
            headers=admin(),
        )
        assert r.status_code == 422, r.text
        assert r.json()["detail"] == (
            "11 row(s) leave 8 to train on (3 undefined lags), fewer than min_rows (10) of "
            "spec 'test': the partition would not be trained"
        )
        assert client.get("/v1/jobs", headers=admin()).json() == {"jobs": []}
        new = linear_frame(1, 13, seed=1).drop(columns="pid")  # 10 left: trained
        r = client.post(
            "/v1/partitions/pid=0/retrain?mode=replace",
            files={"file": ("new.csv", new.to_csv(index=False).encode(), "text/csv")},
            headers=admin(),
        )
        assert r.status_code == 202, r.text


def test_an_append_to_rows_an_older_version_kept_is_not_refused_for_lags(tmp_path: Path) -> None:
    """Production kept no training rows (imported from MLflow, or rows Arrow could not store:
    ``data_sha256`` empty) but an older version did: an append builds on those
    (``registry.reads.latest_data``), and the posted rows' first periods get their lags from
    them. The router judged by production's alone that nothing was kept, and refused 11 rows
    under ``lags = [3]`` as leaving 8 below ``min_rows`` 10 — rows the job trains on."""
    root = tmp_path / "registry"
    spec = spec_dict(lags=[3], min_rows=10)
    train(spec, linear_frame(2, 30), root, backend="local")
    train(spec, linear_frame(2, 30, seed=5), root, backend="local")  # v2, production
    with sqlite3.connect(root / "registry.db") as db:  # as an imported version is recorded
        db.execute("UPDATE model_versions SET data_sha256 = NULL WHERE version = 2")
    new = linear_frame(1, 41, seed=1).iloc[30:].drop(columns="pid")  # t 30…40, after v1's
    with open_client(Settings(registry=root, admin_token=TOKEN)) as client:
        r = client.post(
            "/v1/partitions/pid=0/retrain",
            files={"file": ("new.csv", new.to_csv(index=False).encode(), "text/csv")},
            headers=admin(),
        )
        assert r.status_code == 202, r.text
        job = job_ended(client, r.headers["location"], admin())
    assert job["status"] == "succeeded", job
    with Registry.open(root) as reg:
        assert reg.get_version("pid=0", job["version"]).n_rows == 30 + 11 - 3  # v1's and these
