"""Signed global models: a retrain of named partitions loads the global models of its spec's
newest full run by the sha256 that run's record (``runs.options["global"]``) names. No
version's signature covers that record, so with a signing key it carries a signature of its
own, and a retrain never unpickles a global model the key does not vouch for.

The forgery is the one ``test_signing`` makes of a version row, made of the run's record: a
pickle that creates a tripwire directory when unpickled, stored under its own sha256, and the
record pointed at it, as someone who can write the database and the store (not read the key)
would do. Before the record was signed, every retrain through the router ran that pickle in
the router's process (and signed each version that chose it).
"""

from __future__ import annotations

import json
import pickle
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from factories import RIDGE, Tripwire, linear_frame, spec_dict
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.signing import ENV_SIGNING_KEY, Signer
from serving.local import running_server
from serving.settings import Settings

KEY = "a-signing-key-of-32-characters!!"
SIGNER = Signer(KEY.encode())
SPEC = spec_dict(
    promotion={"policy": "if_better"},
    fallback={"enabled": False},
    candidates=[{"estimator": RIDGE}, {"estimator": RIDGE, "scope": "global"}],
)
PART = "pid=0"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """3 partitions trained with the key, by a full run that fitted one global model."""
    root = tmp_path / "reg"
    train(SPEC, linear_frame(3, 30), root, backend="local", signer=SIGNER)
    return root


def global_records(root: Path) -> dict[str, list[dict[str, Any]]]:
    with sqlite3.connect(root / "registry.db") as conn:
        found = conn.execute("SELECT run_id, options_json FROM runs").fetchall()
    return {run_id: json.loads(text).get("global", []) for run_id, text in found}


def forge_global(root: Path, tripwire: Path, *, keep_signature: bool) -> str:
    """Point the full run's global model record at a malicious pickle; its signature is kept
    (it then vouches for another sha256) or removed."""
    with Registry.open(root) as reg:
        sha, size = reg.artifacts.put(pickle.dumps(Tripwire(tripwire)))
    with sqlite3.connect(root / "registry.db") as conn:
        for run_id, text in conn.execute("SELECT run_id, options_json FROM runs").fetchall():
            options = json.loads(text)
            for record in options.get("global", []):
                record |= {"sha256": sha, "size": size}
                if not keep_signature:
                    record.pop("signature", None)
            conn.execute(
                "UPDATE runs SET options_json = ? WHERE run_id = ?", (json.dumps(options), run_id)
            )
    return sha


def new_rows() -> Any:
    df = linear_frame(3, 30, seed=1)
    return df[df.pid == 0].assign(t=df["t"] + 30)


def test_a_retrain_rescores_the_global_model_its_key_signed(root: Path) -> None:
    (full,) = global_records(root).values()
    assert full[0]["signature"].startswith(f"hmac-sha256-v2:{SIGNER.key_id}:")
    summary = train(SPEC, new_rows(), root, backend="local", signer=SIGNER, only=[PART])
    retrain = global_records(root)[summary.run.run_id]
    assert retrain[0].get("error") is None, retrain
    assert retrain[0]["sha256"] == full[0]["sha256"]


@pytest.mark.parametrize("keep_signature", [True, False], ids=["altered", "unsigned"])
def test_a_retrain_never_loads_a_forged_global_model(
    root: Path, tmp_path: Path, keep_signature: bool
) -> None:
    tripwire = tmp_path / "tripwire"
    forge_global(root, tripwire, keep_signature=keep_signature)
    summary = train(SPEC, new_rows(), root, backend="local", signer=SIGNER, only=[PART])
    assert not tripwire.exists()
    assert summary.run.n_trained == 1  # on its local candidate
    (record,) = global_records(root)[summary.run.run_id]
    assert record["sha256"] is None and "refusing to load it" in record["error"], record
    with Registry.open(root, signer=SIGNER) as reg:
        reg.load_model(PART, 2)  # signed, and not the forgery


def test_sign_signs_the_global_models_of_a_registry_trained_without_a_key(
    tmp_path: Path,
) -> None:
    """A registry trained before a key was set: its retrains leave the unsigned global model
    out until ``manymodels sign`` vouches for it, as for its versions."""
    root = tmp_path / "reg"
    train(SPEC, linear_frame(3, 30), root, backend="local")
    result = CliRunner().invoke(app, ["sign", "--registry", str(root)], env={ENV_SIGNING_KEY: KEY})
    assert result.exit_code == 0, result.output
    assert "signed 3 version(s) and 1 global model(s)" in result.output
    (full,) = global_records(root).values()
    assert full[0]["signature"] == SIGNER.sign_global(full[0]["sha256"])
    summary = train(SPEC, new_rows(), root, backend="local", signer=SIGNER, only=[PART])
    (record,) = global_records(root)[summary.run.run_id]
    assert record.get("error") is None and record["sha256"] == full[0]["sha256"], record
    again = CliRunner().invoke(app, ["sign", "--registry", str(root)], env={ENV_SIGNING_KEY: KEY})
    assert "signed 0 version(s) with key" in again.output  # nothing left unsigned


def test_a_router_retrain_never_loads_a_forged_global_model(root: Path, tmp_path: Path) -> None:
    """Over real HTTP, as the README's retrain example posts: the job succeeds on the
    partition's own candidates, and the forged pickle never runs in the router."""
    tripwire = tmp_path / "tripwire"
    forge_global(root, tripwire, keep_signature=True)
    token = "a-router-admin-token"
    settings = Settings(registry=root, signer=SIGNER, admin_token=token, retrain_backend="local")
    body = {"rows": json.loads(new_rows().to_json(orient="records"))}
    auth = {"Authorization": f"Bearer {token}"}
    with running_server(settings) as url, httpx.Client(base_url=url, timeout=60) as http:
        r = http.post(f"/v1/partitions/{PART}/retrain", json=body, headers=auth)
        assert r.status_code == 202, r.text
        deadline = time.monotonic() + 60  # a bound for "does not hang", not a timing
        while True:
            job = http.get(f"/v1/jobs/{r.json()['job_id']}", headers=auth).json()
            if job["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert job["status"] == "succeeded", job
    assert not tripwire.exists()
    records = global_records(root)[job["run_id"]]
    assert "does not match its sha256" in records[0]["error"]


def test_doctor_lists_global_model_records_that_are_not_signed_or_do_not_verify(
    root: Path, tmp_path: Path
) -> None:
    """``doctor`` listed unsigned versions but not unsigned global model records, which
    ``manymodels sign`` signs too and a retrain leaves out: the operator learned of them only
    from a retrain's record."""
    train(SPEC, new_rows(), root, backend="local", signer=SIGNER, only=[PART])  # a retrain too
    env = {ENV_SIGNING_KEY: KEY}
    doctor = ["doctor", "--registry", str(root), "--json"]
    clean = CliRunner().invoke(app, doctor, env=env)
    assert clean.exit_code == 0 and json.loads(clean.stdout)["problems"] == [], clean.output

    with sqlite3.connect(root / "registry.db") as conn:  # as before a key was set
        for run_id, text in conn.execute("SELECT run_id, options_json FROM runs").fetchall():
            options = json.loads(text)
            for record in options.get("global", []):
                record.pop("signature", None)
            conn.execute(
                "UPDATE runs SET options_json = ? WHERE run_id = ?", (json.dumps(options), run_id)
            )
    found = CliRunner().invoke(app, doctor, env=env)
    assert found.exit_code == 1, found.output
    (problem,) = json.loads(found.stdout)["problems"]
    assert problem["kind"] == "global_signature_missing", problem
    assert "2 global model record(s) of runs" in problem["message"]  # the full run and the retrain
    assert problem["message"].endswith(f"manymodels sign --registry {root}")
    signed = CliRunner().invoke(app, ["sign", "--registry", str(root)], env=env)
    assert "and 2 global model(s)" in signed.output, signed.output
    assert json.loads(CliRunner().invoke(app, doctor, env=env).stdout)["problems"] == []

    forge_global(root, tmp_path / "tripwire", keep_signature=True)
    forged = json.loads(CliRunner().invoke(app, doctor, env=env).stdout)["problems"]
    assert [p["kind"] for p in forged] == ["global_signature_invalid"] * 2, forged  # both runs
    assert not (tmp_path / "tripwire").exists()


def test_sign_exits_1_while_a_global_model_record_does_not_verify(
    root: Path, tmp_path: Path
) -> None:
    """``sign`` exits 1 while a version's signature does not verify; a run's global model
    record pointed at a forgery, its signature kept, left it at 0 ("signed 0 version(s)")."""
    forge_global(root, tmp_path / "tripwire", keep_signature=True)
    result = CliRunner().invoke(app, ["sign", "--registry", str(root)], env={ENV_SIGNING_KEY: KEY})
    assert result.exit_code == 1, result.output
    assert (
        "error: 1 global model record(s) carry a signature that does not verify with this key; "
        f"see: manymodels doctor --registry {root}"
    ) in result.output
    assert not (tmp_path / "tripwire").exists()
