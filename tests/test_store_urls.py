"""An artifact store's URL, and a data path, read as RFC 3986 and RFC 8089 read them: a scheme
in any case, and a ``file`` URL's host (``localhost`` is this machine; another is no directory
here)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from manymodels.artifact_stores import FsspecArtifactStore
from manymodels.artifacts import LocalArtifactStore, open_store
from manymodels.exceptions import ArtifactError, DataError
from tests.factories import linear_frame, spec_dict, synthetic_ridge_toml


def test_a_file_url_naming_localhost_is_that_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`file://localhost/tmp/x` was the relative directory `./localhost/tmp/x`."""
    monkeypatch.chdir(tmp_path)
    where = tmp_path / "models"
    for url in (f"file://localhost{where}", f"file://LocalHost{where}", f"FILE://{where}"):
        store = open_store(url)
        assert isinstance(store, LocalArtifactStore) and store.url == str(where), url
    assert list(tmp_path.iterdir()) == []  # no ./localhost, no ./FILE:
    with pytest.raises(ArtifactError, match="names no path"):
        open_store("file://localhost")


def test_a_file_url_naming_another_host_is_refused_in_one_line(
    tmp_path: Path, samples_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`file://otherhost/x` trained into `./otherhost/x` on whichever machine ran it: now
    one `error:` line, and nothing is made."""
    from typer.testing import CliRunner

    from manymodels.cli import app

    monkeypatch.chdir(tmp_path)
    args = ["train", str(samples_dir / "store_sales.toml"), str(samples_dir / "store_sales.csv")]
    url = "file://otherhost/srv/models"
    result = CliRunner().invoke(app, [*args, "--registry", "reg", "--artifacts", url])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert lines == [
        f"error: artifact store URL '{url}' names the host 'otherhost': a file URL names a path "
        "on this machine (file:///srv/models or file://localhost/srv/models); mount the other "
        "machine's directory, or give its URL (sftp://, s3://…)"
    ]
    assert list(tmp_path.iterdir()) == []


def test_an_empty_artifact_store_is_refused_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`train … --artifacts ""` opened the current directory as the store and wrote its 36
    hash folders and owners/ among the user's files; now one line, exit 1 as any artifact
    store refusal, nothing written."""
    from typer.testing import CliRunner

    from manymodels.cli import app

    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "spec.toml"
    spec.write_text(synthetic_ridge_toml("urls"))
    linear_frame(2).to_csv(tmp_path / "rows.csv", index=False)
    done = CliRunner().invoke(
        app, ["train", str(spec), "rows.csv", "--registry", "r", "--artifacts", ""]
    )
    assert done.exit_code == 1, done.output
    assert done.output.strip().splitlines() == [
        "error: artifact store is an empty path (''): name a directory or a URL "
        "(s3://bucket/prefix), or leave --artifacts out for the registry's artifacts/"
    ]
    with pytest.raises(ArtifactError, match="empty path"):
        open_store("")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.csv", "spec.toml"]


@pytest.mark.parametrize(
    ("url", "opened"),
    [("S3://bucket/models", "s3://bucket/models"), ("Memory://models", "memory://models")],
)
def test_a_schemes_case_does_not_matter(url: str, opened: str) -> None:
    """`S3://bucket/models` was refused as "unknown scheme 'S3://'": schemes are
    case-insensitive (RFC 3986)."""
    store = open_store(url)
    assert isinstance(store, FsspecArtifactStore) and store.url == opened
    with pytest.raises(ArtifactError, match="names no bucket"):
        open_store("S3:///models")  # an unset $BUCKET, whatever the case


def test_a_file_url_of_a_store_with_a_space_is_its_path_decoded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--artifacts file:///tmp/my%20store` (Path.as_uri() of "my store") made the directory
    `my%20store`, where a data path's file URL is decoded (`data_path`): now the store is
    `my store`, and its models are scored from the same URL."""
    import manymodels as mm
    from manymodels.registry import Registry

    monkeypatch.chdir(tmp_path)
    where = tmp_path / "my store é"
    url = where.as_uri()
    assert "%20" in url and "%C3%A9" in url
    store = open_store(url)
    assert isinstance(store, LocalArtifactStore) and store.url == str(where)
    with Registry(tmp_path / "reg", artifacts=url) as reg:
        assert mm.train(spec_dict(), linear_frame(2, 30), reg, backend="local").run.n_trained == 2
    assert any(p.is_file() for p in where.rglob("*"))  # the models, at the decoded path
    with Registry(tmp_path / "reg", artifacts=url, create=False) as reg:
        assert mm.score(linear_frame(2, 30), reg, backend="local")["prediction"].notna().all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my store é", "reg"]
    with pytest.raises(ArtifactError, match="NUL byte"):
        open_store("file:///tmp/a%00b")


def test_a_store_already_at_the_undecoded_path_is_kept_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A registry whose store was made at `my%20store` from `file:///…/my%20store`, before
    file URLs were decoded, keeps its models: the same URL opens that store (a `warning:` line
    says so) while nothing is at the decoded path; once something is, the decoded one."""
    import manymodels as mm
    from manymodels.registry import Registry

    literal = tmp_path / "my%20store"
    with Registry(tmp_path / "reg", artifacts=literal) as reg:  # as the old code made it
        mm.train(spec_dict(), linear_frame(2, 30), reg, backend="local")
    url = f"file://{literal}"
    caplog.set_level("WARNING", logger="manymodels.store_urls")
    with Registry(tmp_path / "reg", artifacts=url, create=False) as reg:
        assert reg.artifacts.url == str(literal)
        scored = mm.score(linear_frame(2, 30), reg, backend="local")
    assert scored["prediction"].notna().all()
    assert [r.getMessage() for r in caplog.records] == [
        f"warning: artifact store URL '{url}': the store already at {literal} is used, not the "
        f"decoded path {tmp_path / 'my store'} (file URLs are %-decoded: move the store there, "
        f"or give {literal} as a plain path)"
    ]
    assert not (tmp_path / "my store").exists()
    (tmp_path / "my store").mkdir()  # moved there: the decoded path, and no warning
    caplog.clear()
    assert open_store(url).url == str(tmp_path / "my store") and not caplog.records


# --------------------------------------------------------------------------------------------
# data paths: read as the artifact store's URL is (store_urls.data_path)
# --------------------------------------------------------------------------------------------
@pytest.fixture
def rows_on_disk(tmp_path: Path) -> tuple[Path, Path]:
    """``rows.csv`` and the same rows as a Parquet directory ``rows/`` (two files)."""
    df = linear_frame(3, 30)
    csv = tmp_path / "rows.csv"
    df.to_csv(csv, index=False)
    folder = tmp_path / "rows"
    folder.mkdir()
    df.iloc[:45].to_parquet(folder / "part-0.parquet", index=False)
    df.iloc[45:].to_parquet(folder / "part-1.parquet", index=False)
    return csv, folder


@pytest.fixture
def trained_here(
    tmp_path: Path, rows_on_disk: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> Path:
    """``rows.csv`` trained by the CLI into the registry ``r`` of the current directory
    (``tmp_path``), a spec reading x0 and x1: what the output-path tests score and forecast."""
    from typer.testing import CliRunner

    from manymodels.cli import app

    monkeypatch.chdir(tmp_path)
    csv, _ = rows_on_disk
    spec = tmp_path / "spec.toml"
    spec.write_text(synthetic_ridge_toml("urls").replace('"t"', '"t"\nfeatures = ["x0", "x1"]'))
    assert CliRunner().invoke(app, ["train", str(spec), str(csv), "--registry", "r"]).exit_code == 0
    return csv


def test_train_and_score_read_file_urls_as_their_local_paths(
    tmp_path: Path, rows_on_disk: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`train(spec, "file:///x.csv")` said "file:/x.csv: data file not found" (the URL read
    as a relative path), `file://localhost/dir` was no directory, `FILE:///x.csv` neither:
    each is now the local file or Parquet directory, and trains what the plain path does."""
    import manymodels as mm

    monkeypatch.chdir(tmp_path)
    csv, folder = rows_on_disk
    plain = mm.train(spec_dict(), csv, tmp_path / "reg-plain", backend="local").run
    assert plain.n_trained == 3
    for i, url in enumerate([f"file://{csv}", f"FILE://{csv}", f"file://localhost{folder}"]):
        got = mm.train(spec_dict(), url, tmp_path / f"reg-{i}", backend="local").run
        assert got.n_trained == 3, url
        assert got.data_fingerprint == plain.data_fingerprint, url
        assert got.data_source == url  # recorded as given: a schedule finds its runs by it
    for url in (f"file://localhost{csv}", f"File:{csv}"):
        scored = mm.score(url, tmp_path / "reg-plain", backend="local")
        assert len(scored) == 90 and scored["prediction"].notna().all(), url
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "reg-0", "reg-1", "reg-2", "reg-plain", "rows", "rows.csv"
    ]  # fmt: skip  # no ./file:, ./FILE:, ./localhost


def test_the_cli_reads_file_urls_for_train_score_and_the_future_table(
    tmp_path: Path, rows_on_disk: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`manymodels score file:///x.csv` (a `Path` argument) read `file:/x.csv`, and
    `file://localhost/x.csv` as `file:/localhost/x.csv`: not found; `--future`, `actuals`
    and `retrain` likewise."""
    from typer.testing import CliRunner

    from manymodels.cli import app

    monkeypatch.chdir(tmp_path)
    csv, folder = rows_on_disk
    spec = tmp_path / "spec.toml"
    spec.write_text(synthetic_ridge_toml("urls").replace('"t"', '"t"\nfeatures = ["x0", "x1"]'))
    cli = CliRunner()
    done = cli.invoke(app, ["train", str(spec), f"file://localhost{folder}", "--registry", "r"])
    assert done.exit_code == 0, done.output
    out = tmp_path / "scores.csv"
    done = cli.invoke(app, ["score", f"FILE://{csv}", "--registry", "r", "-o", str(out)])
    assert done.exit_code == 0, done.output
    assert len(pd.read_csv(out)) == 90
    future = tmp_path / "future.csv"
    pd.DataFrame({"pid": [0, 0], "t": [30, 31], "x0": [1.0, 2.0], "x1": [0.5, 0.5]}).to_csv(
        future, index=False
    )
    ahead = tmp_path / "ahead.csv"
    args = ["forecast", "--registry", "r", "--horizon", "2", "--partitions", "pid=0"]
    done = cli.invoke(app, [*args, "--future", f"file://{future}", "-o", str(ahead)])
    assert done.exit_code == 0, done.output
    assert pd.read_csv(ahead)["t"].tolist() == [30, 31]
    done = cli.invoke(app, ["actuals", f"file://localhost{csv}", "--registry", "r"])
    assert done.exit_code == 0 and "90" in done.output, done.output
    done = cli.invoke(app, ["retrain", str(spec), f"file://localhost{csv}", "--when", "changed",
                            "--registry", "r"])  # fmt: skip
    assert done.exit_code == 0 and "nothing to train" in done.output, done.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ahead.csv", "future.csv", "r", "rows", "rows.csv", "scores.csv", "spec.toml"
    ]  # fmt: skip


def test_the_cli_writes_out_to_a_file_urls_path_and_refuses_another_url(
    tmp_path: Path, trained_here: Path
) -> None:
    """`score … -o file:///x/scores.csv` (an `--out` as the data's path is given) said
    "file:/x/scores.csv: output directory file:/x does not exist", a path no one typed, and
    `-o s3://b/scores.csv` "output directory s3:/b does not exist"; forecast's likewise. A
    file URL is now its path, %-escapes decoded; another URL one line, nothing written."""
    from typer.testing import CliRunner

    from manymodels.cli import app

    csv = trained_here
    cli = CliRunner()
    (tmp_path / "my out").mkdir()
    scores = tmp_path / "my out" / "scores.csv"
    done = cli.invoke(app, ["score", str(csv), "--registry", "r", "-o", scores.as_uri()])
    assert done.exit_code == 0, done.output
    assert len(pd.read_csv(scores)) == 90
    ahead = tmp_path / "my out" / "ahead.csv"
    args = ["forecast", "--registry", "r", "--horizon", "2", "--partitions", "pid=0"]
    done = cli.invoke(app, [*args, "-o", f"file://localhost{ahead.as_uri()[7:]}"])
    assert done.exit_code == 0, done.output
    assert pd.read_csv(ahead)["t"].tolist() == [30, 31]
    said = (
        "error: s3://b/out.csv: an output table is written to a path on this machine, not a "
        "URL: give a path (or a file:/// URL), and copy the file from there"
    )
    for command in (["score", str(csv)], args):
        done = cli.invoke(app, [*command, "--registry", "r", "-o", "S3://b/out.csv"])
        assert done.exit_code == 2, done.output
        assert done.output.strip().splitlines() == [said], command
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "my out", "r", "rows", "rows.csv", "spec.toml"
    ]  # fmt: skip  # no ./file:, ./s3:
    assert sorted(p.name for p in (tmp_path / "my out").iterdir()) == ["ahead.csv", "scores.csv"]


def test_a_refused_out_path_is_called_an_output_path_with_an_outputs_advice(
    tmp_path: Path, trained_here: Path
) -> None:
    """`score … -o /` said "data path '/' is the filesystem root '/': give the data file or
    the directory that holds it", and `-o file://otherhost/x.csv` "…; copy the file here
    (only training data is read by URL…)": advice for reading, of a path that is written.
    Each is now one line calling it the output path, with advice for an output."""
    from typer.testing import CliRunner

    from manymodels.cli import app

    csv = trained_here
    cli = CliRunner()
    said = {
        "/": "error: output path '/' is the filesystem root '/': give the file to write "
        "(/srv/scores.csv or file:///srv/scores.csv)",
        "file://otherhost/x.csv": "error: output path 'file://otherhost/x.csv' names the host "
        "'otherhost': a file URL names a path on this machine (file:///x.csv or "
        "file://localhost/x.csv); write it here and copy it there, or mount the other "
        "machine's directory",
        "file:///x.csv?v=2": "error: output path 'file:///x.csv?v=2' holds the query '?v=2': a "
        "file URL names a path only; drop it, or write a '?' in a file's name as %3F",
    }
    for out, line in said.items():
        done = cli.invoke(app, ["score", str(csv), "--registry", "r", "-o", out])
        assert done.exit_code == 2, done.output
        assert done.output.strip().splitlines() == [line]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r", "rows", "rows.csv", "spec.toml"]


def test_an_empty_out_is_one_line_saying_so(tmp_path: Path, trained_here: Path) -> None:
    """`score … -o ""` and `forecast … -o ""` (an unset $OUT) said ".: unknown output format
    (expected .parquet or .csv)", naming a path no one typed: one line saying it is empty."""
    from typer.testing import CliRunner

    from manymodels.cli import app

    csv = trained_here
    cli = CliRunner()
    ahead = ["forecast", "--horizon", "2", "--partitions", "pid=0"]
    for command in (["score", str(csv)], ahead):
        done = cli.invoke(app, [*command, "--registry", "r", "-o", ""])
        assert done.exit_code == 2, done.output
        assert done.output.strip().splitlines() == [
            "error: output is an empty path (''): name the .csv or .parquet file to write"
        ], command
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r", "rows", "rows.csv", "spec.toml"]


def test_a_data_url_naming_another_host_is_one_line_naming_it(
    tmp_path: Path, rows_on_disk: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`file://otherhost/x.csv` was "file:/otherhost/x.csv: data file not found", a path that
    was not given: now one line naming the URL and its host, and nothing is made. Its advice
    is a data path's: an artifact store's "or give its URL (sftp://, s3://…)" sent score and
    actuals to a URL they refuse (only training data's Parquet is read by one)."""

    import manymodels as mm

    monkeypatch.chdir(tmp_path)
    csv, _ = rows_on_disk
    spec = tmp_path / "spec.toml"
    spec.write_text(synthetic_ridge_toml("urls"))
    url = f"file://otherhost{csv}"
    said = (
        f"data path '{url}' names the host 'otherhost': a file URL names a path on this "
        f"machine (file://{csv} or file://localhost{csv}); mount the other machine's "
        "directory, or copy the file here (only training data is read by URL: a Parquet file "
        "or directory, sftp://, s3://…)"
    )
    refused_in_one_line(
        [["train", str(spec), url], ["score", url, "-o", "out.csv"], ["actuals", url]], "r", said
    )
    with pytest.raises(DataError) as caught:
        mm.train(spec_dict(), url, tmp_path / "r", backend="local")
    assert str(caught.value) == said
    with pytest.raises(DataError, match="names no path"):
        mm.score("file://", tmp_path / "r")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows", "rows.csv", "spec.toml"]


def test_a_local_file_with_a_colon_in_its_name_is_still_that_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only `scheme://` (and `file:/`) is a URL: `sales:v2.csv` stays the file of that name."""
    from manymodels.tables import read_table

    monkeypatch.chdir(tmp_path)
    linear_frame(1, 3).to_csv("sales:v2.csv", index=False)
    assert len(read_table("sales:v2.csv")) == 3


def test_a_file_url_of_a_path_with_a_space_or_accent_is_that_path_decoded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`Path("/x/my data/café.csv").as_uri()` is `file:///x/my%20data/caf%C3%A9.csv` (RFC 8089
    escapes a space and non-ASCII bytes): train, score and the CLI read it as the path
    `/x/my%20data/caf%C3%A9.csv`, "data file not found"; now as the file it names."""
    from typer.testing import CliRunner

    import manymodels as mm
    from manymodels.cli import app

    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "my data"
    folder.mkdir()
    csv = folder / "café.csv"
    linear_frame(3, 30).to_csv(csv, index=False)
    url = csv.as_uri()
    assert "%20" in url and "%C3%A9" in url
    assert mm.train(spec_dict(), url, tmp_path / "r", backend="local").run.n_trained == 3
    assert len(mm.score(url, tmp_path / "r", backend="local")) == 90
    done = CliRunner().invoke(app, ["score", url, "--registry", "r", "-o", "out.csv"])
    assert done.exit_code == 0, done.output
    assert len(pd.read_csv("out.csv")) == 90


def refused_in_one_line(commands: list[list[str]], registry: str, said: str) -> None:
    """Each CLI command in ``commands``, run on ``registry``, exits 2 (bad input) with the
    one line ``error: said``."""
    from typer.testing import CliRunner

    from manymodels.cli import app

    for args in commands:
        done = CliRunner().invoke(app, [*args, "--registry", registry])
        assert done.exit_code == 2, done.output
        assert done.output.strip().splitlines() == [f"error: {said}"], args


WHOLE_FROM_HERE = (
    "a table read whole comes from a path on this machine, not a URL: copy it here (only "
    "train reads a Parquet file or directory by URL, for a spec without global candidates)"
)
"""What a URL that only ``train``'s batches read is told elsewhere (``tables.read_given``)."""


@pytest.mark.parametrize("url", ["s3://bucket/sales.csv", "S3://bucket/sales.csv.gz"])
def test_a_csv_file_by_object_store_url_is_one_line_naming_the_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    """`train spec.toml s3://bucket/sales.csv` (and `actuals s3://…`, after train's and
    score's were fixed) said "s3:/bucket/sales.csv: data file not found": a URL read as a
    local path, named as no one wrote it. A CSV file is read from this machine only (a
    Parquet file or directory may be a URL): one line says so."""

    import manymodels as mm

    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "spec.toml"
    spec.write_text(synthetic_ridge_toml("urls"))
    said = (  # the scheme in lower case, as it is read
        f"{url.replace('S3:', 's3:')}: {WHOLE_FROM_HERE}"
    )
    refused_in_one_line(
        [["train", str(spec), url], ["score", url, "-o", "out.csv"], ["actuals", url]], "r", said
    )
    with pytest.raises(DataError) as caught:
        mm.train(spec_dict(), url, tmp_path / "r", backend="local")
    assert str(caught.value) == said
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.toml"]


@pytest.mark.parametrize("url", ["s3://bucket/sales.parquet", "s3://bucket/sales/"])
def test_a_parquet_url_to_score_or_actuals_is_not_told_score_reads_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    """`score s3://bucket/sales.parquet` was refused with "… copy it here (train and score
    read a Parquet file or directory by URL)": a Parquet URL, refused by score, with the
    advice to give score a Parquet URL. Only training data is read by URL (a Parquet file or
    directory, streamed); score and actuals read a path on this machine, and say so."""

    monkeypatch.chdir(tmp_path)
    refused_in_one_line(
        [["score", url, "-o", "out.csv"], ["actuals", url]], "r", f"{url}: {WHOLE_FROM_HERE}"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_data_url_escaping_a_nul_byte_is_one_line_naming_it(tmp_path: Path) -> None:
    """``file:///x%00y.csv`` decoded to a path holding a NUL byte, said as "<the decoded
    path, \\x00 and all>: data file not found", a path no one typed; now one line naming the
    URL and the byte, as an artifact store's URL is refused."""
    from typer.testing import CliRunner

    from manymodels.cli import app

    url = f"file://{tmp_path}/x%00y.csv"
    spec = tmp_path / "spec.toml"
    spec.write_text(synthetic_ridge_toml("urls"))
    done = CliRunner().invoke(app, ["train", str(spec), url, "--registry", str(tmp_path / "r")])
    assert done.exit_code == 2, done.output
    assert done.output.strip().splitlines() == [
        f"error: data path '{url}' names a path holding a NUL byte (%00)"
    ], done.output
    assert not (tmp_path / "r").exists()


def test_a_parquet_url_read_whole_is_not_told_it_is_read_by_url(tmp_path: Path) -> None:
    """``score s3://bucket/sales.parquet`` and a spec with global candidates (both read their
    table whole, from this machine) were refused with "(train and score read a Parquet file
    or directory by URL)": score reads none, and such a train neither. One line now says
    which reads a URL; nothing is written, no network asked."""
    import manymodels as mm

    url = "s3://bucket/sales.parquet"
    said = f"{url}: {WHOLE_FROM_HERE}"
    with pytest.raises(DataError) as caught:
        mm.score(url, tmp_path / "r", backend="local")
    assert str(caught.value) == said
    pooled = spec_dict(candidates=[{"estimator": "sklearn.linear_model.Ridge", "scope": "global"}])
    with pytest.raises(DataError) as caught:
        mm.train(pooled, url, tmp_path / "r", backend="local")
    assert str(caught.value) == said
    assert list(tmp_path.iterdir()) == []


ROOTS = ["file:///", "FILE:///./", "file://localhost//..", "/", "//.", "/srv/../", "/srv/x/../..",
         "file:///srv/..", "tmp/..", ".", "./"]  # fmt: skip


@pytest.mark.parametrize("given", ROOTS)
def test_the_filesystem_root_as_a_data_path_is_one_line(
    tmp_path: Path, given: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`train spec.toml file:///` (or `/`) read the root as a Parquet directory: it walked the
    whole disk, /proc and all, to fail on "/: cannot read a Parquet dataset ([Errno 13] Cannot
    list directory '/proc/self/task/…/root/proc/self/task/…"; now one line, exit 2, before
    anything is read or made. So did a path that is the root once its '..' are read
    (`/srv/../`, `tmp/..` run in /), where only '/' followed by dots was refused, and `.`
    or `./` run in / (a container's usual working directory), passed as no '..' was in it."""
    monkeypatch.chdir("/")  # where `tmp/..` is the root

    import manymodels as mm

    spec = tmp_path / "spec.toml"
    spec.write_text(synthetic_ridge_toml("urls"))
    said = (
        f"data path '{given}' is the filesystem root '/': give the data file or the "
        "directory that holds it (/srv/sales/ or file:///srv/sales/)"
    )
    registry = str(tmp_path / "r")
    refused_in_one_line(
        [["train", str(spec), given], ["score", given, "-o", str(tmp_path / "o.csv")]],
        registry,
        said,
    )
    with pytest.raises(DataError) as caught:
        mm.train(spec_dict(), given, tmp_path / "r", backend="local")
    assert str(caught.value) == said
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.toml"]


@pytest.mark.parametrize(
    ("tail", "named"),
    [
        ("?v=2", "the query '?v=2'"),
        ("?v=2#top", "the query '?v=2'"),
        ("#top", "the fragment '#top'"),
    ],
)
def test_a_data_url_with_a_query_or_fragment_is_one_line_naming_it(
    tmp_path: Path, rows_on_disk: tuple[Path, Path], tail: str, named: str
) -> None:
    """`file:///x.csv?v=2` kept its query in the path: "/x.csv?v=2: data file not found", a
    file no one named (`#top` likewise); now one line naming the part, exit 2. A `?` escaped
    as %3F (`Path.as_uri()` of a name holding one) is still part of the file's name."""
    from typer.testing import CliRunner

    from manymodels.cli import app

    csv, _ = rows_on_disk
    spec = tmp_path / "spec.toml"
    spec.write_text(synthetic_ridge_toml("urls"))
    url = f"file://{csv}{tail}"
    mark = tail[0] if tail[0] == "#" else "?"
    said = (
        f"data path '{url}' holds {named}: a file URL names a path only; drop it, or write a "
        f"'{mark}' in a file's name as {'%3F' if mark == '?' else '%23'}"
    )
    done = CliRunner().invoke(app, ["train", str(spec), url, "--registry", str(tmp_path / "r")])
    assert done.exit_code == 2, done.output
    assert done.output.strip().splitlines() == [f"error: {said}"]
    assert not (tmp_path / "r").exists()
    odd = csv.with_name("rows?v=2.csv")
    csv.rename(odd)
    assert odd.as_uri().endswith("rows%3Fv%3D2.csv")
    done = CliRunner().invoke(
        app, ["train", str(spec), odd.as_uri(), "--registry", str(tmp_path / "r2")]
    )
    assert done.exit_code == 0, done.output
