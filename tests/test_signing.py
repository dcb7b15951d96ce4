"""Signed digests (``manymodels.signing``): with a signing key, a version row the key does not
vouch for is never unpickled — not by ``load_model``, batch scoring, a retrain's champion
comparison, nor a real router — and ``doctor`` names it.

The forgery is what an attacker who can write the database (but not read the key) can do: a
pickle that creates a tripwire file when it is unpickled, stored under its own sha256, and a
version row pointing at it. Its sha256 check passes; only the signature stops it.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
from factories import linear_frame, spec_dict
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.exceptions import BadSignature
from manymodels.forecast import forecast
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.registry import schema as t
from manymodels.scoring import score
from manymodels.signing import ENV_SIGNING_KEY, ENV_SIGNING_KEY_FILE, Signer
from serving.local import running_server
from serving.settings import Settings

KEY = "a-signing-key-of-32-characters!!"
SIGNER = Signer(KEY.encode())
SPEC = spec_dict(promotion={"policy": "if_better"}, fallback={"enabled": False})
PART = "pid=0"


class Tripwire:
    """Unpickling this creates the directory ``path``: proof that forged bytes ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (str(self.path),))


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 partitions at v1, trained with the key."""
    root = tmp_path_factory.mktemp("signed") / "reg"
    train(SPEC, linear_frame(3, 30), root, backend="local", signer=SIGNER)
    return root


@pytest.fixture
def root(signed: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(signed, tmp_path / "reg"))


def forge(root: Path, tripwire: Path, *, signature: str | bool | None = False) -> str:
    """Point production of ``PART`` at a malicious pickle stored under its own sha256, as
    someone who can write the database and the store would. ``signature=False`` leaves the
    row's signature as it was; otherwise it is set to the value given."""
    with Registry.open(root) as reg:
        sha, size = reg.artifacts.put(pickle.dumps(Tripwire(tripwire)))
        version = reg.get_version(PART).version
    with sqlite3.connect(root / "registry.db") as conn:
        conn.execute(
            "UPDATE model_versions SET artifact_sha256 = ?, artifact_size = ? "
            "WHERE key = ? AND version = ?",
            (sha, size, PART, version),
        )
        if signature is not False:
            conn.execute(
                "UPDATE model_versions SET signature = ? WHERE key = ? AND version = ?",
                (signature, PART, version),
            )
    return sha


def rows(part: int = 0) -> Any:
    return linear_frame(3, 30).query(f"pid == {part}").drop(columns=["y"]).head(5)


# ------------------------------------------------------------------------------ the signer
def test_a_signature_binds_key_version_and_both_digests() -> None:
    sig = SIGNER.sign("k=a", 1, "a" * 64, "b" * 64)
    assert sig.startswith(f"hmac-sha256:{SIGNER.key_id}:") and len(sig) <= 128
    SIGNER.verify(sig, "k=a", 1, "a" * 64, "b" * 64)
    for changed in [("k=b", 1, "a" * 64, "b" * 64), ("k=a", 2, "a" * 64, "b" * 64),
                    ("k=a", 1, "c" * 64, "b" * 64), ("k=a", 1, "a" * 64, None)]:  # fmt: skip
        with pytest.raises(BadSignature, match="does not match its digests"):
            SIGNER.verify(sig, *changed)
    with pytest.raises(BadSignature, match="not signed"):
        SIGNER.verify(None, "k=a", 1, "a" * 64, None)
    with pytest.raises(BadSignature, match="another key"):
        Signer(b"another key, 16+ bytes").verify(sig, "k=a", 1, "a" * 64, "b" * 64)
    with pytest.raises(BadSignature, match="does not match"):
        SIGNER.verify("garbage", "k=a", 1, "a" * 64, "b" * 64)


def test_the_key_is_never_shown_and_must_be_long_enough(tmp_path: Path) -> None:
    assert KEY not in repr(SIGNER) and KEY not in repr(Settings(registry=tmp_path, signer=SIGNER))
    with pytest.raises(ValueError, match="at least 16 bytes"):
        Signer(b"short")
    assert Signer.from_env({}) is None
    assert Signer.from_env({ENV_SIGNING_KEY: KEY}) == SIGNER
    (tmp_path / "key").write_text(KEY + "\n")
    assert Signer.from_env({ENV_SIGNING_KEY_FILE: str(tmp_path / "key")}) == SIGNER
    with pytest.raises(ValueError, match="not both"):
        Signer.from_env({ENV_SIGNING_KEY: KEY, ENV_SIGNING_KEY_FILE: str(tmp_path / "key")})
    assert Settings.from_env({ENV_SIGNING_KEY: KEY}, registry=tmp_path).signer == SIGNER


# ------------------------------------------------------------------------------ load paths
def test_signed_versions_load_and_score(signed: Path) -> None:
    with Registry.open(signed, signer=SIGNER) as reg:
        assert all(v.signature for v in reg.list_versions(PART))
        assert reg.load_model(PART).model is not None
        assert len(reg.training_rows(PART)) == 30
        frame = score(linear_frame(3, 30).drop(columns=["y"]), reg, backend="local")
        assert len(forecast(reg, [PART], horizon=2)) == 2
    assert frame["prediction"].notna().all()


@pytest.mark.parametrize("signature", [False, None], ids=["altered-row", "unsigned-row"])
def test_a_forged_pickle_is_never_unpickled(
    root: Path, tmp_path: Path, signature: str | bool | None
) -> None:
    """The row keeps its old signature (which no longer matches), or has none."""
    tripwire = tmp_path / "tripwire"
    forge(root, tripwire, signature=signature)
    with Registry.open(root, signer=SIGNER) as reg:
        with pytest.raises(BadSignature):
            reg.load_model(PART)
        with pytest.raises(BadSignature):
            score(rows(), reg, backend="local")
        with pytest.raises(BadSignature):
            forecast(reg, [PART], horizon=2)
    result = CliRunner().invoke(
        app, ["score", "--registry", str(root), "--backend", "local", "-o", str(tmp_path / "o.csv"),
              str(_csv(tmp_path))], env={ENV_SIGNING_KEY: KEY},
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert not tripwire.exists()


def test_without_a_key_the_forgery_runs(root: Path, tmp_path: Path) -> None:
    """The threat signing answers: the sha256 alone vouches for nothing the database says."""
    tripwire = tmp_path / "tripwire"
    forge(root, tripwire)
    with Registry.open(root) as reg:
        reg.load_model(PART)
    assert tripwire.exists()


def test_a_wrong_key_refuses_every_version(signed: Path) -> None:
    wrong = Signer(b"not the key it was signed with")
    with Registry.open(signed, signer=wrong) as reg, pytest.raises(BadSignature, match="another"):
        reg.load_model(PART)


def test_a_retrain_never_loads_a_forged_champion(root: Path, tmp_path: Path) -> None:
    """The champion is checked in the driver: the worker is told why, and never loads it."""
    tripwire = tmp_path / "tripwire"
    forge(root, tripwire)
    df = linear_frame(3, 30)
    summary = train(SPEC, df[df.pid == 0], root, backend="local", signer=SIGNER, only=[PART])
    assert summary.run.n_trained == 1 and not tripwire.exists()
    with Registry.open(root, signer=SIGNER) as reg:
        new = reg.get_version(PART, 2)
        assert "BadSignature" in new.evaluation["reason"], new.evaluation
        assert new.aliases == ("candidate",)  # kept: the champion could not be evaluated
        reg.load_model(PART, 2)  # the new version is signed


def test_appending_never_reads_rows_the_key_does_not_vouch_for(root: Path) -> None:
    """Another partition's training rows swapped in for pid=0's: refused before reading."""
    with sqlite3.connect(root / "registry.db") as conn:
        conn.execute(
            "UPDATE model_versions SET data_sha256 = (SELECT data_sha256 FROM model_versions "
            "WHERE key = 'pid=1') WHERE key = ?",
            (PART,),
        )
    df = linear_frame(3, 30)
    new = df[df.pid == 0].assign(t=df["t"] + 100)
    with pytest.raises(BadSignature, match="does not match"):
        train(SPEC, new, root, backend="local", signer=SIGNER, append=True)
    with Registry.open(root, signer=SIGNER) as reg, pytest.raises(BadSignature):
        reg.training_rows(PART)


@pytest.mark.slow  # a real uvicorn router: 5.6–11 s on the busy 2-core machine (imports, start-up)
def test_a_router_refuses_a_forged_version_as_a_tampered_one(
    root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """409 as for a tampered artifact; the start-up line names the key by its id only."""
    tripwire = tmp_path / "tripwire"
    forge(root, tripwire)
    body = {"rows": [{"t": 1, "x0": 0.5, "x1": -0.5}]}
    with (
        caplog.at_level(logging.INFO, logger="manymodels.serving"),
        running_server(Settings(registry=root, signer=SIGNER)) as url,
    ):
        bad = httpx.post(f"{url}/v1/partitions/{PART}/predict", json=body)
        good = httpx.post(f"{url}/v1/partitions/pid=1/predict", json=body)
    assert bad.status_code == 409, bad.text
    assert "signature" in bad.json()["detail"] and "not served" in bad.json()["detail"]
    assert good.status_code == 200, good.text
    assert not tripwire.exists()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert f'"signing_key_id": "{SIGNER.key_id}"' in logged and KEY not in logged


# ------------------------------------------------------------------------------ migration
def test_a_schema_2_registry_is_upgraded_and_its_versions_signed(tmp_path: Path) -> None:
    """Versions registered before the key are refused until ``manymodels sign`` signs them;
    a signature that does not verify is never replaced."""
    root = tmp_path / "reg"
    train(SPEC, linear_frame(3, 30), root, backend="local")
    with sqlite3.connect(root / "registry.db") as conn:  # what manymodels wrote before signing
        conn.execute("ALTER TABLE model_versions DROP COLUMN signature")
        conn.execute("UPDATE meta SET value = '2' WHERE name = 'schema_version'")
    with Registry.open(root, signer=SIGNER) as reg:
        assert reg.store.get_meta("schema_version") == t.SCHEMA_VERSION == "3"
        assert reg.count_partitions() == 3
        with pytest.raises(BadSignature, match="manymodels sign"):
            reg.load_model(PART)
    with sqlite3.connect(root / "registry.db") as conn:
        conn.execute("UPDATE model_versions SET signature = 'hmac-sha256:00:00' WHERE key = ?",
                     ("pid=2",))  # fmt: skip
    runner = CliRunner()
    result = runner.invoke(
        app, ["sign", "--registry", str(root), "--json"], env={ENV_SIGNING_KEY: KEY}
    )
    assert result.exit_code == 1 and "1 version(s) carry a signature" in result.stderr
    assert [s["key"] for s in json.loads(result.stdout)["signed"]] == ["pid=0", "pid=1"]
    with Registry.open(root, signer=SIGNER) as reg:
        reg.load_model(PART)
        with pytest.raises(BadSignature):
            reg.load_model("pid=2")
    result = runner.invoke(app, ["sign", "--registry", str(root)], env={ENV_SIGNING_KEY: ""})
    assert result.exit_code == 2 and result.stderr.startswith("error: set MANYMODELS_SIGNING_KEY")


# ------------------------------------------------------------------------------ doctor
def test_doctor_lists_bad_and_missing_signatures(root: Path, tmp_path: Path) -> None:
    forge(root, tmp_path / "tripwire")
    with sqlite3.connect(root / "registry.db") as conn:
        conn.execute("UPDATE model_versions SET signature = NULL WHERE key = 'pid=1'")
    runner = CliRunner()
    result = runner.invoke(
        app, ["doctor", "--registry", str(root), "--json"], env={ENV_SIGNING_KEY: KEY}
    )
    assert result.exit_code == 1
    found = {p["kind"]: p for p in json.loads(result.stdout)["problems"]}
    assert set(found) == {"signature_invalid", "signature_missing"}
    assert found["signature_invalid"]["key"] == PART
    assert found["signature_missing"]["key"] == "pid=1"
    assert "manymodels sign" in found["signature_missing"]["message"]
    assert not (tmp_path / "tripwire").exists()
    assert json.loads(result.stdout)["signatures_checked"] is True
    result = runner.invoke(
        app,
        ["doctor", "--registry", str(root), "--json"],
        env={ENV_SIGNING_KEY: "another key, 16+ bytes"},
    )
    found = {p["kind"]: p["versions"] for p in json.loads(result.stdout)["problems"]}
    assert found == {"signature_other_key": 2, "signature_missing": 1}  # one line per key
    # without the key, doctor checks what it can: the forged bytes match their sha256
    result = runner.invoke(app, ["doctor", "--registry", str(root)], env={ENV_SIGNING_KEY: ""})
    assert result.exit_code == 0, result.output


def _csv(tmp_path: Path) -> Path:
    path = tmp_path / "rows.csv"
    rows().to_csv(path, index=False)
    return path


def test_a_router_retrain_never_calls_a_factory_named_in_the_database(
    root: Path, tmp_path: Path
) -> None:
    """The spec a retrain reads back from ``runs`` is not signed: a database writer could name
    ``os:mkdir`` as a factory. With a key the router refuses factories from there (409)."""
    tripwire = tmp_path / "tripwire"
    evil = {
        **SPEC,
        "candidates": [{"estimator": "os:mkdir", "params": {"path": [str(tripwire)]}}],
    }
    with sqlite3.connect(root / "registry.db") as conn:
        conn.execute("UPDATE runs SET spec_json = ?", (json.dumps(evil),))
    token = "a-router-admin-token"
    settings = Settings(registry=root, signer=SIGNER, admin_token=token, retrain_backend="local")
    frame = linear_frame(3, 30).query("pid == 0")
    body = {"rows": json.loads(frame.to_json(orient="records"))}
    with running_server(settings) as url:
        r = httpx.post(
            f"{url}/v1/partitions/{PART}/retrain",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
    assert r.status_code == 409, r.text
    assert "factory 'os:mkdir'" in r.json()["detail"]
    assert not tripwire.exists()
