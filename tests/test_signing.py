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
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from factories import Tripwire, as_older_schema, linear_frame, spec_dict
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.exceptions import BadSignature
from manymodels.forecasting import forecast
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.registry import schema as t
from manymodels.scoring import score
from manymodels.signing import (
    ENV_SIGNING_KEY,
    ENV_SIGNING_KEY_FILE,
    SIGNED_META,
    Signer,
    schema_sha256,
)
from serving.local import running_server
from serving.settings import Settings

KEY = "a-signing-key-of-32-characters!!"
SIGNER = Signer(KEY.encode())
SPEC = spec_dict(promotion={"policy": "if_better"}, fallback={"enabled": False})
PART = "pid=0"


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
FS = {"features": ["x0", "x1"], "dtypes": {"x0": "float64", "x1": "float64"}}


def test_a_signature_binds_key_version_both_digests_and_the_schema() -> None:
    sig = SIGNER.sign("k=a", 1, "a" * 64, "b" * 64, FS)
    assert sig.startswith(f"hmac-sha256-v2:{SIGNER.key_id}:") and len(sig) <= 128
    SIGNER.verify(sig, "k=a", 1, "a" * 64, "b" * 64, FS)
    swapped = {**FS, "features": ["x1", "x0"]}
    for changed in [("k=b", 1, "a" * 64, "b" * 64, FS), ("k=a", 2, "a" * 64, "b" * 64, FS),
                    ("k=a", 1, "c" * 64, "b" * 64, FS), ("k=a", 1, "a" * 64, None, FS),
                    ("k=a", 1, "a" * 64, "b" * 64, swapped)]:  # fmt: skip
        with pytest.raises(BadSignature, match="does not match its digests"):
            SIGNER.verify(sig, *changed)
    with pytest.raises(BadSignature, match="not signed"):
        SIGNER.verify(None, "k=a", 1, "a" * 64, None, FS)
    with pytest.raises(BadSignature, match="another key"):
        Signer(b"another key, 16+ bytes").verify(sig, "k=a", 1, "a" * 64, "b" * 64, FS)
    with pytest.raises(BadSignature, match="does not match"):
        SIGNER.verify("garbage", "k=a", 1, "a" * 64, "b" * 64, FS)


def test_the_schema_is_signed_in_canonical_form() -> None:
    """The parsed dict and any JSON text of it (key order, spacing) verify alike."""
    sig = SIGNER.sign("k=a", 1, "a" * 64, None, json.dumps(FS))
    reordered = '{"dtypes": {"x1": "float64", "x0": "float64"}, "features": ["x0", "x1"]}'
    for schema in (FS, reordered, json.dumps(FS, indent=2)):
        SIGNER.verify(sig, "k=a", 1, "a" * 64, None, schema)
    assert schema_sha256(FS) == schema_sha256(reordered)
    with pytest.raises(BadSignature, match="does not match"):  # not a crash
        SIGNER.verify(sig, "k=a", 1, "a" * 64, None, '{"features": ["x0"')


def test_an_old_format_signature_is_refused_and_only_upgraded_when_it_verifies() -> None:
    """The first format did not cover the schema: refused with what to do; ``upgrade`` (what
    ``manymodels sign`` runs) re-signs it only if its old MAC is right for this key."""
    old = old_signature("k=a", 1, "a" * 64, "b" * 64)
    with pytest.raises(BadSignature, match=r"old format.*manymodels sign"):
        SIGNER.verify(old, "k=a", 1, "a" * 64, "b" * 64, FS)
    new = SIGNER.upgrade(old, "k=a", 1, "a" * 64, "b" * 64, FS)
    assert new is not None
    SIGNER.verify(new, "k=a", 1, "a" * 64, "b" * 64, FS)
    assert SIGNER.upgrade(old, "k=a", 1, "c" * 64, "b" * 64, FS) is None  # altered row
    assert Signer(b"another key, 16+ bytes").upgrade(old, "k=a", 1, "a" * 64, "b" * 64, FS) is None
    assert SIGNER.upgrade(new, "k=a", 1, "a" * 64, "b" * 64, FS) is None  # already new


def test_a_signature_of_the_first_signing_releases_is_upgraded_too() -> None:
    """Until 141d04d the first format's MAC was over a JSON list, under the same prefix:
    such a registry could never be re-signed (``sign`` said its signatures did not verify),
    and every load refused its models for good."""
    import hashlib
    import hmac

    message = json.dumps(["manymodels-v1", "k=a", 1, "a" * 64, None]).encode()
    mac = hmac.new(SIGNER.key, message, hashlib.sha256).hexdigest()
    first = f"hmac-sha256:{SIGNER.key_id}:{mac}"
    new = SIGNER.upgrade(first, "k=a", 1, "a" * 64, None, FS)
    assert new is not None
    SIGNER.verify(new, "k=a", 1, "a" * 64, None, FS)
    assert SIGNER.upgrade(first, "k=a", 2, "a" * 64, None, FS) is None  # another row's


def old_signature(key: str, version: int, artifact: str, data: str | None) -> str:
    """A first-format signature, as manymodels wrote before the schema was signed."""
    return f"hmac-sha256:{SIGNER.key_id}:{SIGNER._mac(key, version, artifact, data, None)}"


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
    """500, as a tampered artifact's (it was a 409, a status that tells the client to change
    its request), for a forged pickle (pid=0) as for a signed model
    whose feature schema was altered (pid=2, features swapped); the start-up line names the
    key by its id only."""
    tripwire = tmp_path / "tripwire"
    forge(root, tripwire)
    with sqlite3.connect(root / "registry.db") as conn:
        conn.execute(
            "UPDATE model_versions SET feature_schema_json = replace(feature_schema_json, "
            '\'"features":["x0","x1"]\', \'"features":["x1","x0"]\') '
            "WHERE key = 'pid=2'"
        )
        assert conn.total_changes == 1
    body = {"rows": [{"t": 1, "x0": 0.5, "x1": -0.5}]}
    with (
        caplog.at_level(logging.INFO, logger="manymodels.serving"),
        running_server(Settings(registry=root, signer=SIGNER)) as url,
    ):
        bad = httpx.post(f"{url}/v1/partitions/{PART}/predict", json=body)
        good = httpx.post(f"{url}/v1/partitions/pid=1/predict", json=body)
        swapped = httpx.post(f"{url}/v1/partitions/pid=2/predict", json=body)
    assert bad.status_code == 500, bad.text
    assert swapped.status_code == 500 and "signature" in swapped.json()["detail"], swapped.text
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
        as_older_schema(conn.execute, "2")
    with Registry.open(root, signer=SIGNER) as reg:
        assert reg.store.get_meta("schema_version") == t.SCHEMA_VERSION == "15"
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


# ------------------------------------------------------------------------------ feature schema
def tamper_schema(root: Path, change: str) -> None:
    """Rewrite ``PART``'s stored feature schema as a database writer would: its two features
    swapped (each fed the other's column), or a decision threshold set."""
    with sqlite3.connect(root / "registry.db") as conn:
        (text,) = conn.execute(
            "SELECT feature_schema_json FROM model_versions WHERE key = ?", (PART,)
        ).fetchone()
        schema = json.loads(text)
        if change == "swap":
            schema["features"] = schema["features"][::-1]
        else:
            schema["decision"] = {"threshold": 0.99}
        conn.execute(
            "UPDATE model_versions SET feature_schema_json = ? WHERE key = ?",
            (json.dumps(schema), PART),
        )


@pytest.mark.parametrize("change", ["swap", "threshold"])
def test_a_tampered_feature_schema_is_refused(root: Path, tmp_path: Path, change: str) -> None:
    """The model is the signed one; only how it is fed (or labelled) changed."""
    tamper_schema(root, change)
    with Registry.open(root, signer=SIGNER) as reg:
        with pytest.raises(BadSignature, match="does not match"):
            reg.load_model(PART)
        with pytest.raises(BadSignature, match="does not match"):
            score(rows(), reg, backend="local")
        reg.load_model("pid=1")  # the others are untouched
    result = CliRunner().invoke(
        app, ["doctor", "--registry", str(root), "--json"], env={ENV_SIGNING_KEY: KEY}
    )
    assert result.exit_code == 1
    found = [(p["kind"], p["key"]) for p in json.loads(result.stdout)["problems"]]
    assert found == [("signature_invalid", PART)]


def test_old_format_signatures_are_refused_until_sign_re_signs_them(root: Path) -> None:
    """Signatures written before the schema was signed: refused with what to do, listed by
    doctor; ``manymodels sign`` re-signs those whose old signature verifies, never an
    altered one."""
    with sqlite3.connect(root / "registry.db") as conn:
        found = conn.execute(
            "SELECT key, version, artifact_sha256, data_sha256 FROM model_versions"
        ).fetchall()
        for key, version, artifact, data in found:
            old = old_signature(key, version, artifact, data)
            if key == "pid=2":
                old = old_signature(key, version + 1, artifact, data)  # an altered row's
            conn.execute(
                "UPDATE model_versions SET signature = ? WHERE key = ? AND version = ?",
                (old, key, version),
            )
    with Registry.open(root, signer=SIGNER) as reg, pytest.raises(BadSignature) as refused:
        reg.load_model(PART)
    assert "old format" in str(refused.value) and "`manymodels sign`" in str(refused.value)
    runner, env = CliRunner(), {ENV_SIGNING_KEY: KEY}
    result = runner.invoke(app, ["doctor", "--registry", str(root), "--json"], env=env)
    problems = json.loads(result.stdout)["problems"]
    assert [(p["kind"], p["versions"]) for p in problems] == [("signature_old_format", 3)]
    assert "manymodels sign" in problems[0]["message"]
    result = runner.invoke(app, ["sign", "--registry", str(root), "--json"], env=env)
    assert result.exit_code == 1 and "1 version(s) carry a signature" in result.stderr
    assert [s["key"] for s in json.loads(result.stdout)["signed"]] == ["pid=0", "pid=1"]
    with Registry.open(root, signer=SIGNER) as reg:
        reg.load_model(PART)
        reg.load_model("pid=1")
        with pytest.raises(BadSignature, match="old format"):
            reg.load_model("pid=2")


# ------------------------------------------------------------------------------ switched off
def test_forecast_takes_a_signer_as_score_does(root: Path, tmp_path: Path) -> None:
    """A path opened by ``forecast`` checks with ``signer``; a ``Registry`` checks with its
    own, and a different signer beside one is a mistake, not silently ignored."""
    assert len(forecast(root, [PART], horizon=2, signer=SIGNER)) == 2
    forge(root, tmp_path / "tripwire")
    with pytest.raises(BadSignature):
        forecast(root, [PART], horizon=2, signer=SIGNER)
    with Registry.open(root) as reg:
        for run in (
            lambda: forecast(reg, [PART], horizon=2, signer=SIGNER),
            lambda: score(rows(), reg, backend="local", signer=SIGNER),
        ):
            with pytest.raises(ValueError, match=r"Registry\.open"):
                run()
    assert not (tmp_path / "tripwire").exists()


def test_a_signed_registry_opened_without_a_key_says_so(root: Path, tmp_path: Path) -> None:
    """The first signature records the key id in ``meta``; CLI commands that load models
    then print one ``warning:`` line without a key (and none with it)."""
    with Registry.open(root) as reg:
        assert reg.store.get_meta(SIGNED_META) == reg.signed_by == SIGNER.key_id
    runner = CliRunner()
    score_args = ["score", "--registry", str(root), "--backend", "local", "-o",
                  str(tmp_path / "o.csv"), str(_csv(tmp_path))]  # fmt: skip
    forecast_args = ["forecast", "--registry", str(root), "--horizon", "2"]
    for args in (score_args, forecast_args, ["doctor", "--registry", str(root)]):
        result = runner.invoke(app, args, env={ENV_SIGNING_KEY: ""})
        assert result.exit_code == 0, result.output
        warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
        assert len(warnings) == 1 and SIGNER.key_id in warnings[0], result.stderr
        assert "NOT checked" in warnings[0] and ENV_SIGNING_KEY in warnings[0]
        result = runner.invoke(app, args, env={ENV_SIGNING_KEY: KEY})
        assert result.exit_code == 0 and "warning:" not in result.stderr, result.output
    unsigned = tmp_path / "unsigned"
    train(SPEC, linear_frame(1, 30), unsigned, backend="local")
    result = runner.invoke(app, ["doctor", "--registry", str(unsigned)], env={ENV_SIGNING_KEY: ""})
    assert result.exit_code == 0 and "warning:" not in result.stderr


@pytest.mark.slow  # a `manymodels serve` process up to its docs line: 5.6 s on the busy machine
def test_serve_warns_when_a_signed_registry_has_no_key(signed: Path) -> None:
    """``manymodels serve`` says so before serving (read up to its ``docs:`` line)."""
    env = {k: v for k, v in os.environ.items() if k not in (ENV_SIGNING_KEY, ENV_SIGNING_KEY_FILE)}
    cmd = [sys.executable, "-m", "manymodels.cli", "serve", "--registry", str(signed),
           "--port", "0", "--no-access-log"]  # fmt: skip
    lines: list[str] = []
    with subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env) as proc:
        assert proc.stderr is not None
        try:
            for line in proc.stderr:
                lines.append(line)
                if line.startswith(("docs:", "error:")):
                    break
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    warnings = [line for line in lines if line.startswith("warning:")]
    assert len(warnings) == 1 and SIGNER.key_id in warnings[0], "".join(lines)
