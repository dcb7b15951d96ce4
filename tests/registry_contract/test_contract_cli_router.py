"""End to end on every database: ``manymodels train --registry-db URL`` (artifacts in
``--registry``), browse, promote and roll back by the command line — the URL given by the flag
or by ``MANYMODELS_REGISTRY_DB`` — a real router (uvicorn) serving from it that follows a
promotion and a rollback made by the command line, then runs, doctor, gc and score."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from factories import sales_toml
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.samples import store_sales
from serving.local import running_server
from serving.settings import Settings

KEY = "store=1,brand=tropicana"
SPEC = sales_toml(
    "contract",
    """params = { alpha = [1.0] }
[promotion]
policy = "manual"
""",
)
runner = CliRunner()


def cli(*args: str | Path, env: dict[str, str] | None = None) -> Any:
    result = runner.invoke(app, [str(a) for a in args], env=env)
    assert result.exit_code == 0, result.output
    return result


def served_version(base: str) -> int:
    row = {"price": 2.0, "deal": 0, "feat": 1}
    r = httpx.post(f"{base}/v1/partitions/{KEY}/predict", json={"rows": [row]}, timeout=30)
    assert r.status_code == 200, r.text
    return int(r.json()["version"])


def wait_for_version(base: str, version: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while served_version(base) != version:
        assert time.monotonic() < deadline, f"the router never served v{version}"
        time.sleep(0.05)


@pytest.mark.slow
def test_train_browse_promote_rollback_score_and_serve(db_url: str, tmp_path: Path) -> None:
    root, spec, data = tmp_path / "registry", tmp_path / "spec.toml", tmp_path / "sales.csv"
    spec.write_text(SPEC)
    frame = store_sales(n_stores=2, weeks=30)
    frame.to_csv(data, index=False)
    by_flag: list[str | Path] = ["--registry", root, "--registry-db", db_url]
    by_env = {"MANYMODELS_REGISTRY_DB": db_url}

    cli("train", spec, data, *by_flag, "--backend", "local")
    cli("train", spec, data, "--registry", root, "--backend", "local", env=by_env)  # v2s
    if not db_url.startswith("sqlite"):
        assert not (root / "registry.db").exists()  # the metadata went to the URL's database
    listed = json.loads(cli("models", "list", *by_flag, "--json").stdout)
    assert listed["total"] == len(listed["items"]) >= 4
    assert KEY in {p["key"] for p in listed["items"]}
    shown = json.loads(cli("models", "show", KEY, "--registry", root, "--json", env=by_env).stdout)
    assert shown["partition"]["aliases"] == {"production": 1, "candidate": 2}

    settings = Settings(registry=root, registry_db=db_url, refresh_seconds=0.05)
    with running_server(settings) as base:
        assert served_version(base) == 1
        cli("promote", KEY, "2", *by_flag)
        wait_for_version(base, 2)
        cli("rollback", KEY, "--registry", root, env=by_env)
        wait_for_version(base, 1)

    runs = json.loads(cli("runs", "list", *by_flag, "--json").stdout)["items"]
    assert len(runs) == 2 and {r["status"] for r in runs} == {"completed"}
    cli("runs", "show", runs[0]["run_id"], "--registry", root, env=by_env)
    assert cli("doctor", *by_flag).stdout.startswith("ok:")
    gone = json.loads(cli("gc", *by_flag, "--keep", "1", "--dry-run", "--json").stdout)
    assert gone["versions_deleted"] == []  # v1 production, v2 candidate: both aliased

    out = tmp_path / "scores.csv"
    cli("score", data, "--out", out, *by_flag, "--backend", "local")
    scored = pd.read_csv(out)
    assert len(scored) == len(frame) and scored["prediction"].notna().all()


def test_an_unreachable_registry_db_is_one_error_line_without_its_password(
    tmp_path: Path,
) -> None:
    url = f"postgresql+psycopg://mm:hunter2@/registry?host={tmp_path}/no-server"
    (tmp_path / "registry").mkdir()
    result = runner.invoke(app, ["models", "list", "--registry", str(tmp_path / "registry"),
                                 "--registry-db", url])  # fmt: skip
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot open registry database")
    assert "hunter2" not in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://mm:hunter2@host:abc/db", "postgresql://***@host:abc/db"),
        ("postgresql//mm:hunter2@host/db", "postgresql//***@host/db"),  # no ":" after the scheme
        ("postgresql://mm:hun@ter2@host/db", "postgresql://***@host/db"),  # an unencoded "@"
        ("postgresql+psycopg://mm@127.0.0.1:1/db?password=hunter2&connect_timeout=2", "***"),
    ],
)
def test_a_malformed_url_or_a_password_in_its_query_is_one_line_without_it(
    url: str, shown: str, tmp_path: Path
) -> None:
    """A port that is not a number (a ``ValueError`` SQLAlchemy lets through) was a
    traceback; a password given as a query parameter was printed as given."""
    (tmp_path / "store").mkdir()
    result = runner.invoke(app, ["models", "list", "--registry-db", url, "--artifacts",
                                 str(tmp_path / "store")])  # fmt: skip
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot open registry database")
    assert shown in lines[0] and "hunter2" not in result.output


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_a_url_without_a_driver_is_served_by_psycopg(
    postgres: Any, tmp_path: Path, scheme: str
) -> None:
    """Heroku's and Render's ``postgres://``, as a DATABASE_URL comes, was refused ('Can't
    load plugin: sqlalchemy.dialects:postgres'); ``postgresql://`` is psycopg2 before
    SQLAlchemy 2.1, which the postgres extra does not install."""
    url = scheme + "://" + postgres.database().split("://", 1)[1]
    registry = tmp_path / "registry"
    registry.mkdir()
    from manymodels.registry import Registry

    with Registry(registry, db_url=url) as reg:  # creates the schema
        assert reg.store.engine.dialect.driver == "psycopg"
    args = ["--registry", str(registry), "--registry-db", url]
    result = runner.invoke(app, ["models", "list", *args, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["total"] == 0
