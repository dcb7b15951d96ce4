"""A CSV written with its row labels (pandas' default ``df.to_csv(path)``, R's ``write.csv``)
posted to the router's retrain, for a spec that leaves its features to "all other columns":
its unnamed first column is no feature, as ``train`` and ``train --append`` already read it."""

from __future__ import annotations

from pathlib import Path

from factories import linear_frame, spec_dict
from routerkit import TOKEN, admin, job_ended, open_client

from manymodels.pipeline import train
from manymodels.registry import Registry
from serving.settings import Settings


def test_a_csv_with_its_row_labels_retrains_on_the_features_it_was_trained_on(
    tmp_path: Path,
) -> None:
    """Before: the stored spec's retrain took 'Unnamed: 0' (the posted rows' positions, NaN
    in the kept rows) as a feature: this Ridge job failed; a RandomForest one "succeeded"
    with a candidate on ['Unnamed: 0', 'price', 'deal', 'feat'], kept because "champion v3
    could not be evaluated (ValueError: X has 4 features, but RandomForestRegressor is
    expecting 3 …)"."""
    df = linear_frame(2, 30)
    root = tmp_path / "registry"
    train(spec_dict(), df, root, backend="local")  # no features list: x0, x1
    rows = df[df["pid"] == 0].assign(t=lambda d: d["t"] + 30)
    body = rows.to_csv().encode()  # pandas' default: the index as a first, unnamed column
    assert body.startswith(b",pid,")
    with open_client(Settings(registry=root, admin_token=TOKEN)) as client:
        r = client.post(
            "/v1/partitions/pid=0/retrain",
            files={"file": ("new.csv", body, "text/csv")},
            headers=admin(),
        )
        assert r.status_code == 202, r.text
        job = job_ended(client, r.headers["Location"], admin())
    assert job["status"] == "succeeded", job
    assert "could not be evaluated" not in job["decision"]["reason"], job["decision"]
    with Registry.open(root) as reg:
        new = reg.get_version("pid=0", 2)
        assert new.feature_schema["features"] == ["x0", "x1"]
        assert new.n_rows == 60  # the kept 30 and the posted 30
