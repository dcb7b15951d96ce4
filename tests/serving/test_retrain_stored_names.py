"""A registry trained before ad81c60 refused column names that ``score`` and ``forecast``
write (``written_columns.reserved``): its models read such a column, served, and are retrained
over the router from the run's stored spec, under the rules of its day."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from factories import linear_frame, spec_dict
from routerkit import TOKEN, admin, job_ended

from manymodels.exceptions import SpecError
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.spec import Spec
from serving.local import running_server
from serving.settings import Settings


def test_a_stored_spec_reading_a_written_name_is_retrained_over_the_router(
    tmp_path: Path,
) -> None:
    """Key 'partition', feature 'prediction' (the table's other columns): a new spec is
    refused, the run's stored spec read back is not; the router's retrain of such a
    partition was a 422 "run …'s spec: column 'partition' is a name scoring writes: rename
    it", which no one can do without training every partition afresh."""
    given = spec_dict(partition_by=["partition"])
    with pytest.raises(SpecError, match="column 'partition' is a name scoring writes"):
        Spec.from_dict(given)
    old = Spec.from_dict(given, stored=True)  # as the spec of a run trained before ad81c60
    df = linear_frame(2, 30).rename(columns={"pid": "partition", "x1": "prediction"})
    root = tmp_path / "reg"
    with Registry(root) as reg:
        assert train(old, df, reg, backend="local").run.n_failed == 0

    settings = Settings(registry=root, admin_token=TOKEN, retrain_backend="local")
    later = df[df["partition"] == 1].drop(columns=["partition"]).assign(t=lambda d: d["t"] + 30)
    with running_server(settings) as base, httpx.Client(base_url=base, timeout=30) as client:
        r = client.post(
            "/v1/partitions/partition=1/retrain",
            json={"rows": later.to_dict("records")},
            headers=admin(),
        )
        assert r.status_code == 202, r.text
        job = job_ended(client, r.headers["Location"], admin())
    assert job["status"] == "succeeded", job
    assert job["version"] == 2
