"""Class labels a CSV reader takes for missing values (``manymodels.csvkeys.literal_labels``):
``NA`` (North America), ``None`` (no damage), ``N/A`` are labels in a column of text labels,
read as written by train, train --append, actuals and the router's retrain; an empty cell stays
a missing target, and numeric columns read as pandas reads them. Real training, real SQLite, a
real router (uvicorn)."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from factories import job_ended, labels_spec
from typer.testing import CliRunner

from manymodels import csvkeys
from manymodels.cli import app as cli_app
from manymodels.csvkeys import literal_labels
from manymodels.data import prepare
from manymodels.monitoring import store
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.spec import Spec
from serving.local import running_server
from serving.settings import Settings

SPEC = labels_spec("regions", "shop", "region", ["x0", "x1"], fallback={"enabled": False})
LABELS = ["EU", "N/A", "NA", "None"]
runner = CliRunner()


def regions(shops: int = 2, rows: int = 80, seed: int = 0) -> pd.DataFrame:
    """Four classes by x0's quarter; ``N/A``, ``NA`` and ``None`` among them."""
    rng = np.random.default_rng(seed)
    parts = []
    for s in range(shops):
        x = rng.normal(size=(rows, 2))
        label = np.array(LABELS)[np.digitize(x[:, 0], [-0.67, 0.0, 0.67])]
        parts.append(pd.DataFrame({"shop": f"s{s}", "x0": x[:, 0], "x1": x[:, 1], "region": label}))
    return pd.concat(parts, ignore_index=True)


def written(df: pd.DataFrame, path: Path) -> Path:
    """``df`` as a CSV, its labels as they are (not pandas' NaN for 'NA')."""
    df.to_csv(path, index=False, na_rep="")
    assert ",NA\n" in path.read_text() and ",None\n" in path.read_text()
    return path


def test_text_labels_that_read_as_missing_are_trained_as_classes(tmp_path: Path) -> None:
    """The 'NA', 'None' and 'N/A' rows were left out as "missing target" (the whole class,
    the run saying only how many rows); an empty cell is still a missing target, and a
    numeric column's empty cell still a missing value."""
    df = regions()
    df.loc[3, "region"] = None  # an empty cell: a missing target
    df.loc[5, "x1"] = np.nan  # an empty numeric cell
    path = written(df, tmp_path / "regions.csv")
    table, read = prepare(Spec.model_validate(SPEC), path)
    assert read["x1"].dtype.kind == "f" and np.isnan(read.loc[5, "x1"])
    assert read["region"].isna().sum() == 1
    assert sorted(read["region"].dropna().unique()) == LABELS
    (said,) = [w for w in table.extra["warnings"] if "target 'region'" in w]
    assert "which a CSV reader takes for missing values: read as class labels" in said
    assert "'NA' (" in said and "'None' (" in said and "'N/A' (" in said

    df.loc[5, "x1"] = 0.0  # (a missing feature fails a partition's fits: not this test's)
    summary = train(SPEC, written(df, path), tmp_path / "reg", backend="local")
    assert summary.run.n_trained == 2 and summary.rows_dropped == {"missing_target": 1}
    with Registry.open(tmp_path / "reg") as reg:
        version = reg.get_version("shop=s0")
        assert version.schema.classes == LABELS
        assert version.n_rows == 79


def test_number_labels_keep_na_as_missing(tmp_path: Path) -> None:
    """A column of 0/1 labels: there 'NA' is a missing value, as pandas reads it."""
    df = regions().assign(region=lambda d: (d["x0"] > 0).astype(int).astype(object))
    df.loc[[1, 2], "region"] = "NA"
    path = tmp_path / "numbers.csv"
    df.to_csv(path, index=False)
    table, read = prepare(Spec.model_validate(SPEC), path)
    assert read["region"].isna().sum() == 2 and read["region"].dtype.kind == "f"
    assert not any("target 'region'" in w for w in table.extra.get("warnings", []))


def test_actuals_and_append_read_the_labels_as_train_does(tmp_path: Path) -> None:
    """actuals counted the 'NA' rows as rows without a target, and train --append left them
    out of the rows it appends."""
    root = tmp_path / "reg"
    train(SPEC, written(regions(), tmp_path / "first.csv"), root, backend="local")
    later = written(regions(rows=40, seed=1), tmp_path / "later.csv")
    result = runner.invoke(cli_app, ["actuals", str(later), "--registry", str(root), "--json"])
    assert result.exit_code == 0, result.output
    assert '"without_target": 0' in result.stdout
    assert "target 'region' holds 'N/A'" in result.stderr
    with Registry.open(root) as reg:
        windows = store.live_sums(reg.store.engine).values()
        assert sum(sums.rows for sums, _ in windows) == 80

    summary = train(SPEC, later, root, backend="local", append=True)
    assert summary.rows_dropped == {}, summary.rows_dropped
    with Registry.open(root) as reg:
        assert reg.get_version("shop=s0").n_rows == 120  # 80 kept + 40 appended


def test_the_routers_retrain_reads_a_csvs_labels_as_train_does(tmp_path: Path) -> None:
    """A CSV posted to the router's retrain lost its 'NA' rows as train did."""
    root = tmp_path / "reg"
    train(SPEC, written(regions(), tmp_path / "first.csv"), root, backend="local")
    posted = written(regions(shops=1, rows=60, seed=2), tmp_path / "posted.csv").read_bytes()
    token = {"Authorization": "Bearer admin-token-4d1f"}
    settings = Settings(registry=root, admin_token="admin-token-4d1f")
    with running_server(settings) as base, httpx.Client(base_url=base, timeout=60) as http:
        files = {"file": ("posted.csv", posted, "text/csv")}
        job = http.post("/v1/partitions/shop=s0/retrain", files=files, headers=token)
        assert job.status_code == 202, job.text
        state = job_ended(http, f"/v1/jobs/{job.json()['job_id']}", token)
        assert state["status"] == "succeeded", state
    with Registry.open(root) as reg:
        newest = reg.list_versions("shop=s0")[0]
        assert newest.version == 2 and newest.n_rows == 60 and newest.schema.classes == LABELS
        # and the run says so, as train's does (it said nothing: the warning was dropped)
        said = reg.get_run(newest.run_id).options.get("warnings", [])
        assert any("posted.csv: target 'region' holds" in w for w in said), said


def test_an_unquoted_na_among_quoted_labels_is_a_missing_target(tmp_path: Path) -> None:
    """R's ``write.csv`` quotes text and writes a missing value as an unquoted ``NA`` (a label
    ``NA`` quoted): such a file's unknown outcomes became a third class 'NA' beside "yes" and
    "no", and a binary spec scored by roc_auc was refused ("cannot score this table's labels
    (3 text labels: 'NA', 'no', 'yes')"). Now an unquoted NA among quoted labels is a
    missing target, as pandas reads it, and a quoted "NA" still a label."""
    rng = np.random.default_rng(0)
    lines = ['"shop","x0","x1","region"']
    for shop in ("s0", "s1"):
        for i in range(80):
            x0, x1 = rng.normal(size=2)
            label = "NA" if i % 10 == 0 else '"yes"' if x0 > 0 else '"no"'
            lines.append(f'"{shop}",{x0},{x1},{label}')
    path = tmp_path / "from_r.csv"
    path.write_text("\n".join(lines) + "\n")
    spec = {**SPEC, "metric": "roc_auc"}
    summary = train(spec, path, tmp_path / "reg", backend="local")
    assert summary.run.n_trained == 2 and summary.rows_dropped == {"missing_target": 16}
    with Registry.open(tmp_path / "reg") as reg:
        assert reg.get_version("shop=s0").schema.classes == ["no", "yes"]

    lines[1] = lines[1].rsplit(",", 1)[0] + ',"NA"'  # a label NA, as R writes one: quoted
    path.write_text("\n".join(lines) + "\n")
    table, read = prepare(Spec.model_validate(SPEC), path)
    assert read["region"].tolist()[0] == "NA" and read["region"].isna().sum() == 15
    (said,) = [w for w in table.extra["warnings"] if "target 'region'" in w]
    assert "'NA' (1 row(s))" in said


def test_a_label_quoted_for_its_quote_leaves_an_unquoted_na_a_label(tmp_path: Path) -> None:
    """A writer that quotes only a label that needs it (one holding a quote) quotes nothing
    else: its unquoted NA is the label written, as in a file without quotes."""
    path = tmp_path / "some_quoted.csv"
    path.write_text('region,x\n"say ""hi""",1\nNA,2\nEU,3\n')
    df, said = literal_labels(path, pd.read_csv(path), "region", source=str(path))
    assert df["region"].tolist() == ['say "hi"', "NA", "EU"] and said is not None


def r_file(tmp_path: Path, *, comma: bool) -> Path:
    """A classifier's table as R's ``write.csv`` writes it: text quoted, a missing outcome an
    unquoted ``NA``; with ``comma``, one shop's name holds a comma (quoted, as all text)."""
    rng = np.random.default_rng(0)
    lines = ['"shop","x0","x1","region"']
    for shop in ("s0", "s1"):
        name = "s0, north" if comma and shop == "s0" else shop
        for i in range(80):
            x0, x1 = rng.normal(size=2)
            label = "NA" if i % 10 == 0 else '"yes"' if x0 > 0 else '"no"'
            lines.append(f'"{name}",{x0},{x1},{label}')
    path = tmp_path / "from_r.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_an_r_file_with_a_quoted_comma_keeps_its_unquoted_na_missing(tmp_path: Path) -> None:
    """A quoted comma anywhere in an R ``write.csv`` file (a shop "s0, north") made its quotes
    unreadable, and every unquoted NA became the label 'NA' again (a third class beside "yes"
    and "no"); now the quotes are read past the comma, as without it."""
    for comma in (False, True):
        path = r_file(tmp_path, comma=comma)
        table, read = prepare(Spec.model_validate(SPEC), path)
        assert read["region"].isna().sum() == 16, comma
        assert not any("target 'region'" in w for w in table.extra.get("warnings", []))
    lines = path.read_text().splitlines()
    lines[1] = lines[1].rsplit(",", 1)[0] + ',"NA"'  # a label NA, as R writes one: quoted
    path.write_text("\n".join(lines) + "\n")
    df, said = literal_labels(path, pd.read_csv(path), "region", source="f")
    assert df["region"].tolist()[0] == "NA" and df["region"].isna().sum() == 15
    assert said is not None and "'NA' (1 row(s))" in said


def test_an_unquoted_null_or_nan_is_a_missing_target(tmp_path: Path) -> None:
    """``NULL`` (an SQL export), ``null`` (JSON) and ``NaN`` are what writers write for a
    missing value: an unquoted one became a class label beside the real ones. It stays a
    missing target; written in quotes, or as a word (``NA``, ``None``), it is a label."""
    path = tmp_path / "export.csv"
    path.write_text('region,x\nEU,1\nNULL,2\nnull,3\nNaN,4\nNA,5\n"null",6\nNone,7\n')
    df, said = literal_labels(path, pd.read_csv(path), "region", source="f")
    assert df["region"].isna().tolist() == [False, True, True, True, False, False, False]
    assert df["region"].dropna().tolist() == ["EU", "NA", "null", "None"]
    assert said is not None and "'null' (1 row(s))" in said
    for label in ("NULL", "null", "NaN", "nan", "#N/A", "<NA>"):  # and from bytes (the router)
        data = f"region,x\nEU,1\n{label},2\nNA,3\n".encode()
        df, _ = literal_labels(data, pd.read_csv(io.BytesIO(data)), "region", source="f")
        assert df["region"].isna().tolist() == [False, True, False], label


@pytest.mark.parametrize("block", [1, 2, 5, 1 << 20])
def test_quotes_are_read_alike_whatever_the_blocks_and_compression(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    """The quotes are read a block at a time (the file never whole in memory): a quote opening
    a field right after a block's end, a line break split across two blocks, and a gzipped
    file read as the plain one."""
    monkeypatch.setattr(csvkeys, "_BLOCK", block)
    text = 'region,x\r\n"EU",1\r\nNA,2\r\n"a, b",3\r\n"NA",4\r\n"say ""hi""",5\r\nnull,6\r\n'
    plain, packed = tmp_path / "r.csv", tmp_path / "r.csv.gz"
    plain.write_text(text, newline="")
    with gzip.open(packed, "wt", newline="") as out:
        out.write(text)
    for path in (plain, packed):
        df, said = literal_labels(path, pd.read_csv(path), "region", source="f")
        assert df["region"].isna().tolist() == [False, True, False, False, False, True], path
        assert said is not None and "'NA' (1 row(s))" in said


def test_label_codes_that_read_as_one_number_are_refused_not_merged(tmp_path: Path) -> None:
    """Labels ``01`` and ``1`` (two classes: codes, not counts) were read by the CSV reader as
    the number 1: one class, the other's rows pooled into it and never answered, nothing said.
    Now one ``error:`` line names both; zero-padded codes that merge with none train, with a
    warning that they are answered as numbers."""
    coded(CODES).to_csv(data := tmp_path / "codes.csv", index=False)
    (spec := tmp_path / "spec.toml").write_text(SPEC_TOML)
    at = ["--registry", str(tmp_path / "reg")]
    result = runner.invoke(cli_app, ["train", str(spec), str(data), *at])
    assert result.exit_code != 0
    assert result.output.strip().splitlines()[-1] == (
        f"error: {data}: target 'region' holds '01' and '1', which read as one number (1): "
        "their classes would merge. Give the column as text (a Parquet file, or a DataFrame "
        "with it as str)"
    )
    assert not (tmp_path / "reg").exists() or not Registry.open(tmp_path / "reg").list_partitions()
    coded(PADDED).to_csv(data, index=False)
    summary = train(SPEC, data, Registry(tmp_path / "padded"), backend="local")
    with Registry.open(tmp_path / "padded") as reg:
        assert reg.load_model("shop=s0").classes == [1, 2, 3, 4]  # '01' is 1
    assert any("leading zeros (e.g. '01')" in w for w in summary.run.options["warnings"])


def test_appended_label_codes_that_read_as_one_number_are_refused(tmp_path: Path) -> None:
    """``train --append`` of rows labelled ``01`` and ``1`` to a table of classes 1 to 4
    merged the two into class 1 as training once did; now the same error line."""
    (spec := tmp_path / "spec.toml").write_text(SPEC_TOML)
    at = ["--registry", str(tmp_path / "reg")]
    coded(["1", "2", "3", "4"]).to_csv(data := tmp_path / "codes.csv", index=False)
    assert runner.invoke(cli_app, ["train", str(spec), str(data), *at]).exit_code == 0
    coded(CODES).head(40).to_csv(more := tmp_path / "more.csv", index=False)
    result = runner.invoke(cli_app, ["train", str(spec), str(more), "--append", *at])
    assert result.exit_code != 0
    assert result.output.strip().splitlines()[-1] == (
        f"error: {more}: target 'region' holds '01' and '1', which read as one number (1): "
        "their classes would merge. Give the column as text (a Parquet file, or a DataFrame "
        "with it as str)"
    )


def test_a_csv_posted_to_retrain_with_label_codes_that_read_as_one_number_is_a_422(
    tmp_path: Path,
) -> None:
    """A CSV posted to the router's retrain with labels ``01`` and ``1`` trained them as the
    one class 1, as train once did; now a 422 in train's words, before any job."""
    train(SPEC, csv(coded(["1", "2", "3", "4"]), tmp_path / "first.csv"), root := tmp_path / "r")
    posted = csv(coded(CODES).head(40), tmp_path / "posted.csv").read_bytes()
    token = {"Authorization": "Bearer admin-token-4d1f"}
    settings = Settings(registry=root, admin_token="admin-token-4d1f")
    with running_server(settings) as base, httpx.Client(base_url=base, timeout=60) as http:
        files = {"file": ("posted.csv", posted, "text/csv")}
        answer = http.post("/v1/partitions/shop=s0/retrain", files=files, headers=token)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"] == (
        "posted.csv: target 'region' holds '01' and '1', which read as one number (1): their "
        "classes would merge. Give the column as text (a Parquet file, or a DataFrame with it "
        "as str)"
    )


def test_actuals_with_label_codes_that_read_as_one_number_are_refused(tmp_path: Path) -> None:
    """``manymodels actuals`` of a CSV labelled ``01`` and ``1`` measured both as class 1;
    now train's error line, and nothing is recorded."""
    train(SPEC, csv(coded(["1", "2", "3", "4"]), tmp_path / "first.csv"), root := tmp_path / "r")
    observed = csv(coded(CODES).head(40), tmp_path / "observed.csv")
    result = runner.invoke(cli_app, ["actuals", str(observed), "--registry", str(root)])
    assert result.exit_code != 0
    assert result.output.strip().splitlines()[-1] == (
        f"error: {observed}: target 'region' holds '01' and '1', which read as one number (1): "
        "their classes would merge. Give the column as text (a Parquet file, or a DataFrame "
        "with it as str)"
    )
    with Registry.open(root) as reg:
        assert store.windows(reg.store.engine, "shop=s0", 1) == []


def csv(df: pd.DataFrame, path: Path) -> Path:
    df.to_csv(path, index=False)
    return path


def coded(codes: list[str]) -> pd.DataFrame:
    """``regions()`` with its four labels written as these codes."""
    return regions().assign(region=lambda d: d["region"].map(dict(zip(LABELS, codes, strict=True))))


CODES = ["1", "01", "2", "3"]  # '01' and '1' read as 1
PADDED = ["01", "2", "3", "4"]  # '01' reads as 1 and merges with no other
SPEC_TOML = """
name = "regions"
task = "classification"
partition_by = ["shop"]
target = "region"
features = ["x0", "x1"]
metric = "accuracy"
min_rows = 20
[validation]
strategy = "holdout"
size = 0.25
[[candidates]]
estimator = "sklearn.linear_model.LogisticRegression"
[fallback]
enabled = false
"""
