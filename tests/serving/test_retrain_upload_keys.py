"""A CSV posted to the router's retrain keyed by codes such as 007, for a registry trained from
Parquet or a DataFrame of text keys ('pid=007'): its rows are the partition's, as train --append,
score, actuals and a forecast's future table read such a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from factories import linear_frame, spec_dict
from routerkit import TOKEN, admin, job_ended, open_client

from manymodels.pipeline import train
from manymodels.registry import Registry
from serving.settings import Settings


@pytest.fixture
def registry(tmp_path: Path) -> tuple[Path, Any]:
    df = linear_frame(2, 30)
    df["pid"] = df["pid"].map(lambda p: f"00{p + 7}")  # '007', '008': text, as Parquet keeps
    root = tmp_path / "registry"
    train(spec_dict(features=["x0", "x1"]), df, root, backend="local")
    return root, df


def test_a_csv_of_padded_codes_retrains_its_partition(registry: tuple[Path, Any]) -> None:
    """Before: 422 "rows of another partition: key column 'pid' holds '7', but the rows are
    posted to partition 'pid=007'" (the CSV reader made the code 007 the number 7)."""
    root, df = registry
    rows = df[df["pid"] == "007"].assign(t=lambda d: d["t"] + 30)
    body = rows.to_csv(index=False).encode()
    with open_client(Settings(registry=root, admin_token=TOKEN)) as client:
        r = client.post(
            "/v1/partitions/pid=007/retrain",
            files={"file": ("new.csv", body, "text/csv")},
            headers=admin(),
        )
        assert r.status_code == 202, r.text
        job = job_ended(client, r.headers["Location"], admin())
    assert job["status"] == "succeeded", job
    with Registry.open(root) as reg:
        assert [p.key for p in reg.list_partitions()][-2:] == ["pid=007", "pid=008"]
        assert len(reg.list_partitions()) == 3  # and the fallback: no partition pid=7
        assert reg.get_version("pid=007", 2).n_rows == 60  # the kept 30 and the posted 30


def test_rows_of_a_timestamp_partition_retrain_it_as_posted(tmp_path: Path) -> None:
    """A timestamp key trained from a DataFrame is ``ts=2024-01-05T10:30:00``, its record's
    value the text ``2024-01-05 10:30:00``. Before: its CSV retrained a new partition
    ``ts=2024-01-05%2010:30:00`` (the job failed: "the run produced no version"), and JSON rows
    holding ``2024-01-05 10:30`` were a 422 "rows of another partition". Now both are new
    versions of the partition posted to, and no other partition appears."""
    import pandas as pd

    root = tmp_path / "registry"
    df = linear_frame(2, 30)
    df["ts"] = pd.Timestamp("2024-01-05 10:30") + pd.to_timedelta(df.pop("pid"), unit="D")
    train(spec_dict(partition_by=["ts"], features=["x0", "x1"]), df, root, backend="local")
    key = "ts=2024-01-05T10:30:00"
    rows = df[df["ts"] == pd.Timestamp("2024-01-05 10:30")].assign(t=lambda d: d["t"] + 30)
    csv = rows.to_csv(index=False).encode()
    typed = rows.assign(ts="2024-01-05 10:30").to_dict(orient="records")
    with open_client(Settings(registry=root, admin_token=TOKEN)) as client:
        for sent in ({"files": {"file": ("new.csv", csv, "text/csv")}}, {"json": {"rows": typed}}):
            r = client.post(f"/v1/partitions/{key}/retrain", headers=admin(), **sent)
            assert r.status_code == 202, r.text
            job = job_ended(client, r.headers["Location"], admin())
            assert job["status"] == "succeeded", job
    with Registry.open(root) as reg:
        assert reg.get_partition(key).latest_version == 3
        assert [p.key for p in reg.list_partitions()] == [
            "__fallback__",
            key,
            "ts=2024-01-06T10:30:00",
        ]


def test_rows_of_another_partition_spelt_like_this_ones_key_are_refused(tmp_path: Path) -> None:
    """A text key column holding both ``1`` and ``true``: rows of ``pid=1`` posted to retrain
    ``pid=true`` were taken for its own (``1`` read as a spelling of ``true``) and trained
    into it; they are a 422 naming the other value, and ``pid=true`` keeps one version."""
    root = tmp_path / "registry"
    df = linear_frame(2, 30)
    df["pid"] = df["pid"].map({0: "1", 1: "true"})
    train(spec_dict(features=["x0", "x1"]), df, root, backend="local")
    rows = df[df["pid"] == "1"].assign(t=lambda d: d["t"] + 30).to_dict(orient="records")
    with open_client(Settings(registry=root, admin_token=TOKEN)) as client:
        r = client.post("/v1/partitions/pid=true/retrain", headers=admin(), json={"rows": rows})
        assert r.status_code == 422, r.text
        assert "pid=true" in r.text and "1" in r.text, r.text
    with Registry.open(root) as reg:
        assert reg.get_partition("pid=true").latest_version == 1
