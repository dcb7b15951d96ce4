"""``manymodels.shuffle``: a Parquet dataset's rows on their way to the chunks, on a plain install.

fsspec comes with ``manymodels[s3]`` (s3fs), not with ``pip install manymodels``; the dev
environment has it, which hid that the local copy needed it. These tests take it away
(``sys.modules[name] = None`` makes its import fail, as on an install without it)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from factories import linear_frame, spec_dict

from manymodels.artifacts import open_store
from manymodels.exceptions import ArtifactError, DataError
from manymodels.pipeline import train
from manymodels.registry import Registry


@pytest.fixture
def no_fsspec(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "fsspec" or m.startswith("fsspec.")]:
        monkeypatch.delitem(sys.modules, name)
    for name in ("fsspec", "fsspec.core", "fsspec.registry"):
        monkeypatch.setitem(sys.modules, name, None)


def _dataset(where: Path) -> Path:
    where.mkdir()
    df = linear_frame(4, 30)
    df.iloc[:60].to_parquet(where / "part-0.parquet")
    df.iloc[60:].to_parquet(where / "part-1.parquet")
    return where


@pytest.mark.usefixtures("no_fsspec")
def test_a_parquet_directory_trains_without_fsspec(tmp_path: Path) -> None:
    """It failed with a ``ModuleNotFoundError: No module named 'fsspec'`` traceback, the
    README's install and deployment.md's ``manymodels train spec.toml sales/``; and the
    temporary copy it had made was left behind (its removal failed on the same import)."""
    data = _dataset(tmp_path / "sales")
    shuffles = tmp_path / "shuffles"
    shuffles.mkdir()
    summary = train(spec_dict(), data, tmp_path / "reg", backend="local", shuffle_dir=str(shuffles))
    assert summary.run.n_trained == 4 and summary.run.n_failed == 0
    with Registry.open(tmp_path / "reg") as reg:
        assert len(reg.load_model("pid=3").predict([{"x0": 0.1, "x1": 0.2}])) == 1
    assert list(shuffles.iterdir()) == []  # the copy is removed once trained


@pytest.mark.usefixtures("no_fsspec")
def test_urls_without_fsspec_are_one_line_naming_the_extra(tmp_path: Path) -> None:
    data = _dataset(tmp_path / "sales")
    with pytest.raises(DataError, match=r"needs fsspec.*manymodels\[s3\]"):
        train(spec_dict(), data, tmp_path / "reg", backend="local", shuffle_dir="s3://b/tmp")
    with pytest.raises(ArtifactError, match=r"needs a package that is missing.*manymodels\[s3\]"):
        open_store("s3://bucket/prefix")


@pytest.mark.usefixtures("no_fsspec")
def test_a_shuffle_dir_given_as_a_file_url_is_that_local_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--shuffle-dir file://localhost/x` made the relative `./localhost/x`, and
    `FILE:///x` was taken for a remote URL (here: "needs fsspec"): both are the directory
    `/x`, as `--artifacts` and the data path read them, and the copy goes when trained."""
    monkeypatch.chdir(tmp_path)
    data = _dataset(tmp_path / "sales")
    shuffles = tmp_path / "shuffles"
    shuffles.mkdir()
    for i, url in enumerate([f"file://localhost{shuffles}", f"FILE://{shuffles}"]):
        summary = train(spec_dict(), data, tmp_path / f"reg{i}", backend="local", shuffle_dir=url)
        assert summary.run.n_trained == 4, url
    assert list(shuffles.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reg0", "reg1", "sales", "shuffles"]


def test_a_shuffle_dir_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    """``--shuffle-dir`` naming a file (or a path through one: a typo, a mount not there)
    printed a 60-line ``NotADirectoryError`` traceback from ``os.makedirs``; now one ``error:``
    line names the path, before any registry is made. The command users run, once, in its own
    process (its real exit code and stderr); the path through a file by the same typer app in
    this one (a process costs ~3 s of imports)."""
    import subprocess

    from factories import sales_toml

    from manymodels.samples import store_sales

    spec, data = tmp_path / "spec.toml", tmp_path / "sales"
    spec.write_text(sales_toml("shuffle-file"))
    data.mkdir()
    store_sales(n_stores=2).to_parquet(data / "part-0.parquet")
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a directory")
    done = subprocess.run(
        [sys.executable, "-m", "manymodels", "train", spec, data, "--registry",
         tmp_path / "reg", "--backend", "local", "--shuffle-dir", a_file],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip() == f"error: {a_file}: cannot write there (Not a directory)"
    through = a_file / "tmp"
    result = _train_command(spec, data, tmp_path / "reg", through)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.strip() == (
        f"error: {through}: cannot write there ({a_file} is not a directory)"
    ), result.stderr
    assert not (tmp_path / "reg").exists()


def _train_command(spec: Path, data: Path, registry: Path, shuffle_dir: Path) -> Any:
    """``manymodels train … --shuffle-dir`` by the typer app, in this process."""
    from typer.testing import CliRunner

    from manymodels.cli import app

    argv = [spec, data, "--registry", registry, "--backend", "local", "--shuffle-dir", shuffle_dir]
    return CliRunner().invoke(app, ["train", *map(str, argv)])


def test_a_shuffle_url_missing_a_slash_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--shuffle-dir s3:/bucket/tmp`` (docs/deployment.md §6's ``s3://models/tmp/`` with a
    ``/`` missing) made the local directories ``./s3:/bucket/tmp`` and then failed in pyarrow
    ("Missing bucket name in S3 URI"), leaving them; now refused first, as ``--artifacts``
    is, and nothing is made."""
    monkeypatch.chdir(tmp_path)
    data = _dataset(tmp_path / "sales")
    here = sorted(tmp_path.iterdir())
    with pytest.raises(DataError, match=r"^s3:/b/tmp: a shuffle directory URL's scheme is "):
        train(spec_dict(), data, tmp_path / "reg", backend="local", shuffle_dir="s3:/b/tmp")
    assert sorted(tmp_path.iterdir()) == here  # no ./s3: directory, no registry


def test_a_shuffle_dir_whose_parent_is_missing_is_refused_and_nothing_made(
    tmp_path: Path,
) -> None:
    """``--shuffle-dir /nonexistent/a/b`` (a typo, a mount not there) made the directory and
    every missing parent (``os.makedirs``), trained, and left them behind; now refused as
    ``mkdir`` without ``-p`` would, in one line, before any registry is made. A directory
    whose parent exists is still made (the run's copy inside it removed once trained)."""
    data = _dataset(tmp_path / "sales")
    spec = tmp_path / "spec.toml"
    spec.write_text(
        'name = "s"\npartition_by = ["pid"]\ntarget = "y"\ntime_column = "t"\n'
        '[[candidates]]\nestimator = "sklearn.linear_model.Ridge"\n'
    )
    gone = tmp_path / "gone" / "a" / "b"
    result = _train_command(spec, data, tmp_path / "reg", gone)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert (
        result.stderr.strip() == f"error: {gone}: cannot write there ({gone.parent} does not exist)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sales", "spec.toml"]
    fresh = tmp_path / "fresh"
    summary = train(spec_dict(), data, tmp_path / "reg", backend="local", shuffle_dir=str(fresh))
    assert summary.run.n_trained == 4 and list(fresh.iterdir()) == []
