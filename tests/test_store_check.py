"""``registry.ownership.check_store``: a command that reads models (``serve``, ``score``,
``forecast``) refuses an artifact store that holds none of the registry's models — a misspelt
``--artifacts`` made a router say it was ready and answer every model 409 "missing" — and only
such a store: an empty registry, its own store with an artifact lost are told apart. The
router's own refusal, over real HTTP start-up, is in tests/serving/test_router_command.py; over
S3 in tests/test_artifacts_s3.py, with a store that does not answer (a different error) against
a real endpoint that refuses connections."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from factories import linear_frame, spec_dict
from sqlalchemy import delete
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.exceptions import ArtifactError
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.registry import schema as t
from manymodels.registry.ownership import ID_META, check_store


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("check") / "reg"
    train(spec_dict(), linear_frame(4, 40), root, backend="local")
    return root


@pytest.fixture
def root(trained: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(trained, tmp_path / "reg"))


def test_a_store_without_the_registrys_models_is_refused_naming_both(
    root: Path, tmp_path: Path
) -> None:
    for store in (tmp_path / "missing", tmp_path / "empty"):
        (tmp_path / "empty").mkdir(exist_ok=True)
        with Registry.open(root, artifacts=str(store)) as reg:
            mine = reg.store.get_meta(ID_META)
            with pytest.raises(ArtifactError) as caught:
                check_store(reg)
        said = str(caught.value)
        assert f"the artifact store {store} holds none of this registry's models" in said
        assert f"owners/{mine}" in said and str(root / "registry.db") in said
        assert "--artifacts" in said and "\n" not in said


def test_its_own_store_costs_one_query_and_one_lookup(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Start-up stays cheap at any size: the first sampled artifact is found; the owner marks
    are never listed."""
    with Registry.open(root) as reg:
        asked: list[str] = []
        exists = reg.artifacts.exists
        monkeypatch.setattr(reg.artifacts, "exists", lambda d: asked.append(d) or exists(d))
        monkeypatch.setattr(reg.artifacts, "owners", lambda: pytest.fail("owners listed"))
        check_store(reg)
        assert len(asked) == 1


def test_its_own_store_with_artifacts_lost_passes_on_its_mark(root: Path) -> None:
    """A store this registry marked is its own though the sampled artifacts are gone (each
    missing model says so itself, a 409); without the mark it is refused."""
    with Registry.open(root) as reg:
        sampled = reg.store.sample_artifacts()
        for _, _, digest in sampled:
            reg.artifacts.path(digest).unlink()
        check_store(reg)
        shutil.rmtree(root / "artifacts" / "owners")
        with pytest.raises(ArtifactError, match="holds none of this registry's models"):
            check_store(reg)


def test_an_empty_registry_starts_over_any_store(tmp_path: Path) -> None:
    with Registry(tmp_path / "reg", artifacts=str(tmp_path / "nothing-yet")) as reg:
        check_store(reg)


def test_a_registry_with_no_production_version_is_checked_on_its_versions(root: Path) -> None:
    with Registry.open(root) as reg:
        with reg.store.engine.begin() as conn:
            conn.execute(delete(t.aliases))
        assert reg.store.alias_table("production") == {}
        assert len(reg.store.sample_artifacts()) == 3
        check_store(reg)
    wrong = Registry.open(root, artifacts=str(root / "elsewhere"))
    with wrong, pytest.raises(ArtifactError, match="holds none of this registry's models"):
        check_store(wrong)


@pytest.mark.parametrize("command", ["score", "forecast"])
def test_score_and_forecast_refuse_it_before_reading_anything(
    root: Path, tmp_path: Path, command: str
) -> None:
    data = tmp_path / "rows.csv"
    linear_frame(4, 5).to_csv(data, index=False)
    args: dict[str, list[str]] = {
        "score": ["score", str(data), "--out", str(tmp_path / "out.csv")],
        "forecast": ["forecast", "--horizon", "2"],
    }
    wrong = tmp_path / "elsewhere"
    result: Any = CliRunner().invoke(
        app, [*args[command], "--registry", str(root), "--artifacts", str(wrong)]
    )
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: the artifact store {wrong} holds none of this registry")


def test_train_over_its_own_directorys_lost_models_replaces_them(
    root: Path, tmp_path: Path
) -> None:
    """The registry's own artifacts/ wiped (a disk replaced): `train` refused it as a store
    holding none of the models ("is it the store … was trained into (--artifacts …)?"), though
    no URL names it and a retrain is the repair doctor advises, so nothing could mend the
    registry. It trains now, replacing each champion it cannot load; an --artifacts store
    elsewhere holding none of the models is still refused, nothing recorded."""
    with Registry.open(root, artifacts=str(tmp_path / "misspelt")) as wrong:
        before = wrong.count_runs()
        with pytest.raises(ArtifactError, match="holds none of this registry's models"):
            train(spec_dict(), linear_frame(4, 40), wrong, backend="local")
        assert wrong.count_runs() == before
    shutil.rmtree(root / "artifacts")
    train(spec_dict(), linear_frame(4, 40), root, backend="local")
    with Registry.open(root) as reg:
        check_store(reg)
        for key in ("pid=0", "pid=3"):
            ev = reg.get_version(key, 2).evaluation
            assert ev["promote"] and ev["reason"].startswith("champion v1 cannot be loaded (")
            reg.load_model(key)  # production loads again


def test_its_own_directory_emptied_is_called_lost_not_misspelt(root: Path) -> None:
    """No URL names a registry's own artifacts/, yet its loss was refused with "is it the
    store … was trained into (--artifacts, MANYMODELS_ARTIFACTS)?" and doctor's "run doctor
    with that store": both sent the user after a flag they never gave. Now the one line
    says the models were lost and how to mend it; doctor the same, once."""
    shutil.rmtree(root / "artifacts")
    with Registry.open(root) as reg, pytest.raises(ArtifactError) as caught:
        check_store(reg)
    said = str(caught.value)
    assert "its models were lost: restore the directory from a backup, or train again" in said
    assert "--artifacts" not in said and "\n" not in said
    done = CliRunner().invoke(app, ["doctor", "--registry", str(root)])
    problems = [line for line in done.output.splitlines() if line.startswith("problem:")]
    assert done.exit_code == 1 and len(problems) == 1, done.output
    assert "its models were lost" in problems[0] and "run doctor with that store" not in problems[0]


def test_train_on_its_database_named_apart_without_its_store_is_refused(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`train --registry-db sqlite:///reg/registry.db --registry b` (its store forgotten, no
    `--artifacts`) took b/artifacts for the registry's own directory's, lost: the run trained
    and wrote every new version there, the older ones' staying in reg/artifacts — the registry
    split across two stores. The database named apart does not record its store: refused, in
    one line asking for it, nothing recorded and no artifact written."""
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "rows.csv"
    linear_frame(4, 40).to_csv(data, index=False)
    spec = tmp_path / "spec.toml"
    spec.write_text(  # spec_dict() as a file: the same spec as the registry's runs
        'name = "test"\npartition_by = ["pid"]\ntarget = "y"\ntime_column = "t"\n'
        '[[candidates]]\nestimator = "sklearn.linear_model.Ridge"\n'
    )
    with Registry.open(root) as reg:
        before = reg.count_runs()
    args = ["train", str(spec), str(data), "--registry", "b"]
    done: Any = CliRunner().invoke(app, [*args, "--registry-db", f"sqlite:///{root}/registry.db"])
    assert done.exit_code == 1, done.output
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: the artifact store {tmp_path / 'b' / 'artifacts'} ")
    assert "was trained into (--artifacts, MANYMODELS_ARTIFACTS)?" in lines[0]
    assert not any(p.is_file() for p in (tmp_path / "b").rglob("*"))
    with Registry.open(root) as reg:
        assert reg.count_runs() == before
        check_store(reg)
