"""Every command that opens a registry reads the database and artifact store it is given —
``--registry-db URL`` and ``--artifacts DIR``, or ``MANYMODELS_REGISTRY_DB`` and
``MANYMODELS_ARTIFACTS`` — on each database of the contract suite.

``--registry`` names an empty directory throughout, so a command that ignored the flags would
fail ("no registry") or, worse, read another registry; the last test proves it does fail."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from factories import sales_toml
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.cli.options import repeated_flags
from manymodels.registry import Registry
from manymodels.samples import store_sales

KEY = "store=1,brand=tropicana"
SIGNING = {"MANYMODELS_SIGNING_KEY": "a-signing-key-of-32-characters!!"}
SPEC = sales_toml(
    "elsewhere",
    """[promotion]
policy = "manual"
[schedule]
cron = "*/1 * * * * *"
""",
)
runner = CliRunner()
# import-registry restores a SQLite snapshot into a new directory; demo makes its own registry
LOCAL_ONLY = {"import-registry", "demo"}


def cli(*args: str | Path, env: dict[str, str] | None = None, code: int = 0) -> Any:
    result = runner.invoke(app, [str(a) for a in args], env=env)
    assert result.exit_code == code, result.output
    return result


def test_every_command_that_opens_a_registry_takes_its_database_and_store() -> None:
    def commands(group: Any, prefix: str = "") -> Any:
        for name, command in group.commands.items():
            if getattr(command, "commands", None):
                yield from commands(command, f"{prefix}{name} ")
            else:
                yield f"{prefix}{name}", {p.name for p in command.params}

    found = dict(commands(typer.main.get_command(app)))
    opening = {name for name, params in found.items() if "registry" in params} - LOCAL_ONLY
    assert {"forecast", "monitor", "actuals", "retrain", "scheduler", "sign", "trust",
            "export", "import", "export-registry", "models list"} <= opening  # fmt: skip
    lacking = sorted(n for n in opening if not {"registry_db", "artifacts"} <= found[n])
    assert lacking == []


@pytest.mark.slow
def test_every_registry_command_works_on_the_database_and_store_it_is_given(
    db_url: str,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root, store = tmp_path / "registry", tmp_path / "store"
    root.mkdir()
    monkeypatch.chdir(root)  # where ./mmregistry would be made: nothing may appear here
    spec, data = tmp_path / "spec.toml", tmp_path / "sales.csv"
    spec.write_text(SPEC)
    frame = store_sales(n_stores=2, weeks=30)
    frame.to_csv(data, index=False)
    flags: list[str | Path] = ["--registry-db", db_url, "--artifacts", store]
    env = {"MANYMODELS_REGISTRY_DB": db_url, "MANYMODELS_ARTIFACTS": str(store)}

    said = cli("train", spec, data, *flags, "--backend", "local").stdout
    # the command it says to run next names the same registry, and runs as printed
    nxt = shlex.split(said.strip().splitlines()[-1].split(" · next: ", 1)[1])
    assert nxt[:2] == ["manymodels", "serve"] and "--registry" not in nxt, nxt
    listed = json.loads(cli("models", "list", *nxt[2:], "--json").stdout)
    assert KEY in {p["key"] for p in listed["items"]}
    cli("train", spec, data, "--backend", "local", env=env)  # candidates
    # a --registry beside a database and store named elsewhere would be ignored: refused
    for moot in (cli("monitor", "--registry", tmp_path / "staging", env=env, code=2),
                 cli("serve", "--registry", tmp_path / "staging", env=env, code=2)):  # fmt: skip
        assert moot.stderr.startswith(f"error: --registry {tmp_path / 'staging'} (or MANYMODELS_")
    assert list(root.iterdir()) == []  # nothing went to --registry's own directory

    # forecast: production, and the candidates (trained second), by flags and by variables
    made = json.loads(cli("forecast", "--horizon", "2", *flags, "--json").stdout)["forecast"]
    assert made and {r["model_version"] for r in made} == {1}
    args = ["forecast", "--horizon", "2", "--alias", "candidate", "--json"]
    made = json.loads(cli(*args, env=env).stdout)["forecast"]
    assert made and {r["model_version"] for r in made} == {2}

    # an MLflow export of the candidate, imported back as a new partition
    exported = tmp_path / "mlflow-model"
    cli("export", KEY, exported, "--format", "mlflow", "--alias", "candidate", *flags)
    imported = cli("import", exported, "--key", "store=9,brand=tropicana", *flags).stdout
    assert imported.startswith(f"imported {exported} as store=9,brand=tropicana v1"), imported
    assert "new registry" not in imported

    # actuals, then monitor shows them
    actuals = tmp_path / "actuals.csv"
    frame[(frame["store"] == 1) & (frame["brand"] == "tropicana")].tail(5).to_csv(actuals)
    recorded = json.loads(cli("actuals", actuals, *flags, "--json").stdout)["recorded"]
    assert [(r["key"], r["rows"]) for r in recorded] == [(KEY, 5)]
    page = json.loads(cli("monitor", "--json", env=env).stdout)
    assert {p["key"]: p["live_rows"] for p in page["partitions"]}[KEY] == 5

    # retrain what the monitor flags (nothing), then what changed (nothing, then one partition)
    dry = cli("retrain", spec, data, "--when", "stale", "--dry-run", *flags, "--json")
    assert json.loads(dry.stdout) == {
        "selected": [], "retrain": [], "unchanged": 0, "when": ["stale"], "trained": False,
    }  # fmt: skip
    same = cli("retrain", spec, data, "--when", "changed", *flags, "--backend", "local", "--json")
    assert json.loads(same.stdout)["run"] is None  # nothing changed: no run recorded
    changed = frame.copy()
    mine = (changed["store"] == 1) & (changed["brand"] == "tropicana")
    changed.loc[mine, "units"] *= 3
    changed.to_csv(data, index=False)
    args = ["retrain", spec, data, "--when", "changed", "--backend", "local"]
    ran = json.loads(cli(*args, "--json", env=env).stdout)["run"]
    assert ran["n_trained"] == 1, ran

    # the scheduler fires once on the same registry (a separate process, as users run it),
    # on another partition's new data (a firing that changes nothing records no run)
    theirs = (changed["store"] == 2) & (changed["brand"] == "tropicana")
    changed.loc[theirs, "units"] *= 2
    changed.to_csv(data, index=False)
    fired = subprocess.run(
        [sys.executable, "-m", "manymodels.cli", "scheduler", str(spec), str(data),
         *map(str, flags), "--backend", "local", "--max-runs", "1"],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert fired.returncode == 0, fired.stderr
    runs = json.loads(cli("runs", "list", *flags, "--json").stdout)["items"]
    assert len(runs) == 5  # 2 trainings, the import, the retrain that changed one, the firing
    assert [r["options"].get("trigger") for r in runs].count("schedule") == 1

    # trust and sign write the given database; a signed forecast then verifies
    cli("trust", *flags, "--trusted-formats", "pickle,skops")
    said = json.loads(cli("trust", "--json", env=env).stdout)
    assert said["trusted_formats"] == ["pickle", "skops"]
    signed = json.loads(cli("sign", *flags, "--json", env=SIGNING).stdout)
    assert len(signed["signed"]) >= 8 and signed["bad_signatures"] == 0
    args = ["forecast", "--horizon", "1", "--partitions", KEY]
    cli(*args, env={**env, **SIGNING})

    # a backup copies SQLite databases only, and says so of another
    tar = tmp_path_factory.mktemp("backups") / "registry.tar"  # not beside the database
    if db_url.startswith("sqlite"):
        assert cli("export-registry", tar, *flags).stdout.startswith("exported ")
        assert tar.is_file()
    else:
        refused = cli("export-registry", tar, *flags, code=1)
        assert "copies SQLite registries only" in refused.stderr and not tar.exists()

    assert list(root.iterdir()) == []
    with Registry.open(root, db_url=db_url, artifacts=str(store)) as reg:
        assert reg.store.alias_table("candidate")[KEY] == 3  # the changed run's version


def test_without_the_flags_the_empty_directory_is_no_registry(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    root.mkdir()
    for args in (["forecast", "--horizon", "1"], ["monitor"], ["trust"]):
        failed = cli(*args, "--registry", root, code=1)
        assert failed.stderr.strip() == f"error: no registry at {root} (train something first)"


@pytest.mark.slow
def test_with_a_database_and_a_store_named_no_directory_is_needed_or_made(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``export`` the variables once, as docs/deployment.md says, and run from anywhere: the
    default ``./mmregistry`` is neither required nor created, messages name the database, and
    an import reads the registry's trust policy from it (a pickle is refused unread)."""
    store, data, spec = tmp_path / "store", tmp_path / "sales.csv", tmp_path / "spec.toml"
    spec.write_text(SPEC)
    store_sales(n_stores=2, weeks=30).to_csv(data, index=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    env = {"MANYMODELS_REGISTRY_DB": db_url, "MANYMODELS_ARTIFACTS": str(store)}
    cli("train", spec, data, "--backend", "local", env=env)
    assert json.loads(cli("monitor", "--json", env=env).stdout)["total"] >= 1
    exported = tmp_path / "mlflow-model"
    cli("export", KEY, exported, "--format", "mlflow", env=env)  # a pickled sklearn model
    said = cli("trust", "--trusted-formats", "skops", env=env).stdout
    where = db_url.split("@")[-1] if "@" in db_url else db_url
    assert (
        said.startswith("registry ") and where.split("/")[-1] in said and "mmregistry" not in said
    )
    refused = cli("import", exported, "--key", "store=9,brand=x", env=env, code=1)
    assert "pickle" in refused.stderr and "new registry" not in refused.output
    # only --registry-db: the artifacts are --registry's, and the database still decides
    only_db = cli("import", exported, "--key", "store=9,brand=x", "--registry", store.parent / "r",
                  "--registry-db", db_url, code=1)  # fmt: skip
    assert "pickle" in only_db.stderr
    assert list(elsewhere.iterdir()) == []


def test_the_flags_a_printed_command_repeats(monkeypatch: pytest.MonkeyPatch) -> None:
    """Options given on the command line are repeated, as runnable values (a database URL
    without its password, never a bare SQLite path); the environment's are not."""
    monkeypatch.delenv("MANYMODELS_REGISTRY_DB", raising=False)
    monkeypatch.delenv("MANYMODELS_ARTIFACTS", raising=False)
    url = "postgresql+psycopg://mm:hunter2@db/reg"
    assert repeated_flags(Path("mmregistry"), None, None) == []
    assert repeated_flags(Path("r"), "sqlite:////tmp/r.db", None) == [
        "--registry",
        "r",
        "--registry-db",
        "sqlite:////tmp/r.db",
    ]
    assert repeated_flags(Path("r"), url, "s3://b/p") == [
        "--registry-db",
        "postgresql+psycopg://mm@db/reg",
        "--artifacts",
        "s3://b/p",
    ]
    monkeypatch.setenv("MANYMODELS_REGISTRY_DB", url)
    assert repeated_flags(Path("r"), url, "s3://b/p") == ["--artifacts", "s3://b/p"]
