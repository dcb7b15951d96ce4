"""``manymodels doctor`` through typer's CliRunner, on real registries with planted faults:
a tampered artifact, a missing one, missing training rows, an alias left pointing at a deleted
version, a half-written temp file, a run killed with SIGKILL and one that lost partitions."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from factories import linear_frame, spec_dict
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.exceptions import RunFailed
from manymodels.execution import InProcessBackend
from manymodels.pipeline import Progress, train
from manymodels.registry import Registry

BIN = Path(sys.executable).parent
SPEC = spec_dict(promotion={"policy": "manual"}, fallback={"enabled": False})


def doctor(root: Path, *args: str) -> Any:
    return CliRunner().invoke(app, ["doctor", "--registry", str(root), *args])


def report(root: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = doctor(root, "--json", *args)
    return result.exit_code, json.loads(result.stdout)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 partitions × 3 versions: v1 production, v3 candidate (it moved there from v2)."""
    root = tmp_path_factory.mktemp("doctor") / "reg"
    df = linear_frame(4, 30)
    for i in range(3):
        train(SPEC, df.assign(y=df["y"] + i), root, backend="local")
    return root


@pytest.fixture
def root(trained: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(trained, tmp_path / "reg"))


def artifact_path(root: Path, digest: str) -> Path:
    return root / "artifacts" / digest[:2] / digest[2:4] / digest


def delete_version(root: Path, key: str, version: int) -> None:
    """What a gc racing a promotion used to leave: an alias on a version with no row."""
    with sqlite3.connect(root / "registry.db") as raw:
        raw.execute("DELETE FROM model_versions WHERE key = ? AND version = ?", (key, version))
    raw.close()


def plant_faults(root: Path) -> dict[str, Any]:
    with Registry.open(root) as reg:
        tampered = reg.get_version("pid=0", 1).artifact_sha256
        missing = reg.get_version("pid=1", 1).artifact_sha256
        rows = reg.get_version("pid=3", 1).data_sha256
        reg.promote("pid=2", 2)  # production 1 → 2, then v2 is deleted under it
    assert rows is not None
    artifact_path(root, tampered).write_bytes(b"tampered with")
    artifact_path(root, missing).unlink()
    artifact_path(root, rows).unlink()
    delete_version(root, "pid=2", 2)
    temp = artifact_path(root, tampered).parent / f".tmp-{tampered}-1-dead-0"
    temp.write_bytes(b"half a model")
    os.utime(temp, (time.time() - 7200, time.time() - 7200))
    return {"tampered": tampered, "missing": missing, "rows": rows, "temp": temp}


def kinds(out: dict[str, Any]) -> list[tuple[str, str | None, int | None]]:
    return sorted((p["kind"], p["key"], p["version"]) for p in out["problems"])


def test_a_healthy_registry_is_one_ok_line(root: Path) -> None:
    result = doctor(root)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "ok: 12 version(s), 24 artifact(s) verified, 8 alias(es), 3 run(s); no problems"
    ]
    code, out = report(root)
    assert code == 0 and out["ok"] is True and out["problems"] == []
    assert out["checked"] == {
        "versions": 12,
        "artifacts": 24,
        "aliases": 8,
        "retired_partitions": 0,
        "runs": 3,
    }


def test_models_the_registry_no_longer_trusts_are_one_problem(root: Path) -> None:
    """After ``trust --trusted-formats skops`` on a registry of pickles every reader refuses
    every model, and doctor said "ok … no problems". It is one problem, counting them."""
    with Registry.open(root) as reg:
        reg.set_trusted_formats(frozenset({"skops"}))
    code, out = report(root)
    assert code == 1
    (problem,) = out["problems"]
    assert (problem["kind"], problem["versions"]) == ("untrusted_format", 4)
    assert problem["message"].startswith("4 production version(s) hold pickle artifacts, ")
    assert "manymodels trust --trusted-formats pickle,skops" in problem["message"]
    assert problem["message"].endswith("; 8 older version(s) too, which gc prunes")
    # production retrained in a trusted format: no problem, whatever older versions hold
    skops = {**SPEC, "artifacts": {"format": "skops"}, "promotion": {"policy": "always"}}
    train(skops, linear_frame(4, 30), root, backend="local")
    code, out = report(root)
    assert code == 0 and out["problems"] == [], out["problems"]


def test_an_artifact_the_store_will_not_give_is_not_advised_a_restore(root: Path) -> None:
    """Unreadable is not lost (a wrong secret, a network down): restoring from a backup or
    retraining was the wrong advice."""
    with Registry.open(root) as reg:
        digest = reg.get_version("pid=0", 1).artifact_sha256
    path = artifact_path(root, digest)
    path.unlink()
    path.mkdir()  # something in its place that cannot be read
    code, out = report(root)
    assert code == 1
    (problem,) = [p for p in out["problems"] if p["sha256"] == digest]
    assert problem["kind"] == "model_unreadable", problem
    assert "check the artifact store's address and credentials" in problem["message"]
    assert "backup" not in problem["message"]


def test_every_planted_fault_is_reported_and_nothing_is_changed(root: Path) -> None:
    planted = plant_faults(root)
    before = {p: p.read_bytes() for p in (root / "artifacts").rglob("*") if p.is_file()}

    code, out = report(root)
    assert code == 1 and out["ok"] is False
    assert kinds(out) == [
        ("dangling_alias", "pid=2", 2),
        ("model_corrupted", "pid=0", 1),
        ("model_missing", "pid=1", 1),
        ("rows_missing", "pid=3", 1),
        ("temp_files", None, None),
    ]
    by_kind = {p["kind"]: p for p in out["problems"]}
    assert by_kind["model_corrupted"]["sha256"] == planted["tampered"]
    assert by_kind["dangling_alias"]["alias"] == "production"
    assert [p["kind"] for p in out["problems"] if p["repairable"]] == [
        "dangling_alias",
        "temp_files",
    ]

    result = doctor(root)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 6 and all(line.startswith("problem: ") for line in lines[:5])
    # three of them missing or corrupted: none is said to be verified
    assert lines[5].endswith("checked 11 version(s), 22 artifact(s), 8 alias(es), 3 run(s)")
    text = result.stdout
    sha = planted["tampered"][:12]
    assert f"the model artifact of pid=0 v1, sha256 {sha}…, fails its sha256 check" in text
    assert "the model artifact of pid=1 v1, sha256 " in text
    assert "the training-rows artifact of pid=3 v1, sha256 " in text
    assert text.count("is missing from the artifact store") == 2
    assert (
        "alias 'production' of pid=2 points at v2, which does not exist; --repair moves it" in text
    )
    assert result.stderr.strip().splitlines() == [
        f"error: 5 problem(s) in registry {root}, 2 of them for --repair"
    ]
    after = {p: p.read_bytes() for p in (root / "artifacts").rglob("*") if p.is_file()}
    assert after == before  # a check writes nothing
    with Registry.open(root) as reg:
        assert reg.store.alias_table("production")["pid=2"] == 2


def test_repair_fixes_what_loses_no_data_and_nothing_else(root: Path) -> None:
    planted = plant_faults(root)
    with Registry.open(root) as reg:
        n_versions = len(reg.version_digests())

    code, out = report(root, "--repair")
    assert code == 1  # the tampered and missing artifacts cannot be repaired
    repaired = {p["kind"]: p["message"] for p in out["problems"] if p["repaired"]}
    assert set(repaired) == {"dangling_alias", "temp_files"} and out["repaired"] == 2
    assert repaired["dangling_alias"].endswith("moved back to v1")

    assert not planted["temp"].exists()
    assert artifact_path(root, planted["tampered"]).read_bytes() == b"tampered with"
    with Registry.open(root) as reg:
        assert len(reg.version_digests()) == n_versions  # no version row deleted
        assert reg.store.alias_table("production")["pid=2"] == 1
        last = reg.alias_history("pid=2", "production")[-1]
        assert (last.from_version, last.to_version, last.action) == (2, 1, "rollback")
        assert last.reason == "doctor: v2 no longer exists"
        assert reg.load_model("pid=2").version.version == 1
        assert reg.store.alias_table("candidate")["pid=2"] == 3  # other aliases untouched

    code, out = report(root)
    assert kinds(out) == [
        ("model_corrupted", "pid=0", 1),
        ("model_missing", "pid=1", 1),
        ("rows_missing", "pid=3", 1),
    ]


def test_repair_of_only_repairable_faults_leaves_an_ok_registry(root: Path) -> None:
    with Registry.open(root) as reg:
        reg.promote("pid=2", 2)
    delete_version(root, "pid=2", 2)
    result = doctor(root, "--repair")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].startswith("repaired: alias 'production' of pid=2")
    assert doctor(root).exit_code == 0


def test_an_alias_is_not_moved_onto_a_version_that_fails_its_check(root: Path) -> None:
    with Registry.open(root) as reg:
        reg.promote("pid=2", 2)
        earlier = reg.get_version("pid=2", 1).artifact_sha256
    delete_version(root, "pid=2", 2)
    artifact_path(root, earlier).write_bytes(b"tampered with")
    code, out = report(root, "--repair")
    assert code == 1 and out["repaired"] == 0
    (dangling,) = [p for p in out["problems"] if p["kind"] == "dangling_alias"]
    assert not dangling["repairable"]
    assert (
        "v1, the newest it pointed at before, has an artifact that is corrupted"
        in (dangling["message"])
    )
    with Registry.open(root) as reg:
        assert reg.store.alias_table("production")["pid=2"] == 2


class _FirstTaskDies(InProcessBackend):
    """The first task dies as a crashed worker's does: its partitions are ``lost``."""

    def map_unordered(self, fn: Any, items: Any, *shared: Any) -> Any:
        for i, result in super().map_unordered(fn, items, *shared):
            yield i, (RuntimeError("worker died (OOM)") if i == 0 else result)


class _StopsAfterFirstChunk(InProcessBackend):
    """A registry's disk fills after the first chunk's versions are written: the run stops,
    ``failed``, with the other partitions never trained and no outcome recorded for them."""

    def map_unordered(self, fn: Any, items: Any, *shared: Any) -> Any:
        for n, (i, result) in enumerate(super().map_unordered(fn, items, *shared)):
            if n == 1:
                raise OSError(28, "No space left on device")
            yield i, result


def test_a_run_failed_before_every_partition_had_an_outcome_is_resumable(
    tmp_path: Path,
) -> None:
    """``doctor`` said "ok … no problems" about such a run, yet ``--resume`` trains what it
    left (found by the outage attack: a full disk, PostgreSQL's sessions ended mid-commit)."""
    root = tmp_path / "reg"
    with pytest.raises(OSError, match="No space left"):
        train(SPEC, linear_frame(12, 30), root, backend=_StopsAfterFirstChunk())
    code, out = report(root)
    assert code == 1
    (problem,) = [p for p in out["problems"] if p["kind"] == "unfinished_run"]
    assert "failed (OSError: [Errno 28] No space left on device) with " in problem["message"]
    assert "of 12 partition(s) not trained: finish it with: " in problem["message"]
    train(SPEC, linear_frame(12, 30), root, backend="local", resume=problem["run_id"])
    assert report(root)[0] == 0


def test_a_flagged_retrain_under_an_edited_spec_resumes_as_it_started(tmp_path: Path) -> None:
    """`retrain --when degraded` is a changed-only run of the flagged partitions (and, after
    an edit of the spec, of those whose newest version another spec made). Stopped midway,
    doctor advised resuming it "with the same --partitions" alone, which the resume refused
    ("started with --changed-only"); and resumed with --changed-only, it left the partitions
    not yet retrained out as unchanged, and completed. Now the advice names --changed-only,
    and the resume retrains them all, as the run set out to."""
    root = tmp_path / "reg"
    data = linear_frame(12, 30)
    train(SPEC, data, root, backend="local")
    edited = {**SPEC, "candidates": [{"estimator": "sklearn.linear_model.Ridge",
                                      "params": {"alpha": [0.1, 10.0]}}]}  # fmt: skip
    keys = [f"pid={p}" for p in range(12)]
    with pytest.raises(OSError, match="No space left"):
        train(edited, data, root, backend=_StopsAfterFirstChunk(), only=keys, changed_only=True,
              spec_edits=True)  # fmt: skip
    _, out = report(root)
    (problem,) = [p for p in out["problems"] if p["kind"] == "unfinished_run"]
    assert "with the same --partitions (12) and --changed-only" in problem["message"]
    with Registry.open(root) as reg:
        assert sum(reg.store.latest_versions(keys).values()) < 24  # some not retrained yet
    train(edited, data, root, backend="local", resume=problem["run_id"], only=keys,
          changed_only=True)  # fmt: skip
    with Registry.open(root) as reg:
        assert set(reg.store.latest_versions(keys).values()) == {2}
    assert report(root)[0] == 0


def test_the_resume_advice_names_the_database_and_store_as_given(tmp_path: Path) -> None:
    """A registry in a database and a store apart from any directory: the advice named its
    URL as ``--registry`` (a directory), unquoted, without ``--artifacts`` — run as given it
    made directories named after the URL, and resumed nothing."""
    db = tmp_path / "a dir" / "meta.db"
    db.parent.mkdir()
    url, store = f"sqlite:///{db}", str(tmp_path / "a dir" / "store")
    reg = Registry(tmp_path / "unused", db_url=url, artifacts=store)
    with reg, pytest.raises(RunFailed):
        train(SPEC, linear_frame(12, 30), reg, backend=_FirstTaskDies())
    result = CliRunner().invoke(
        app, ["doctor", "--registry-db", url, "--artifacts", store, "--json"]
    )
    (message,) = [p["message"] for p in json.loads(result.stdout)["problems"]]
    flags = shlex.join(["--registry-db", url, "--artifacts", store])
    assert f"finish it with: manymodels train SPEC DATA {flags} --resume " in message


def _spec_and_data(tmp_path: Path) -> tuple[Path, Path]:
    """A spec file (Ridge per ``pid``) and a CSV of 600 partitions: a run long enough for a
    ``manymodels train`` process to be killed in it."""
    spec = tmp_path / "spec.toml"
    spec.write_text(
        'name = "doctor"\npartition_by = ["pid"]\ntarget = "y"\ntime_column = "t"\n'
        '[[candidates]]\nestimator = "sklearn.linear_model.Ridge"\n'
    )
    data = tmp_path / "data.csv"
    linear_frame(600, 30).to_csv(data, index=False)
    return spec, data


@pytest.mark.slow
def test_killed_and_lossy_runs_are_listed_as_resumable(tmp_path: Path) -> None:
    root = tmp_path / "reg"
    spec, data = _spec_and_data(tmp_path)
    with pytest.raises(RunFailed, match="lost to infrastructure faults") as caught:
        train(SPEC, linear_frame(12, 30), root, backend=_FirstTaskDies())
    lossy = caught.value.summary
    assert lossy.run.n_failed > 0

    proc = subprocess.Popen(
        [BIN / "manymodels", "train", spec, data, "--registry", root, "--backend", "local"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        killed = _wait_for_running_run(root / "registry.db", other_than=lossy.run.run_id)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()

    code, out = report(root)
    assert code == 1
    runs = {p["run_id"]: p["message"] for p in out["problems"] if p["kind"] == "unfinished_run"}
    assert set(runs) == {lossy.run.run_id, killed}
    assert "still marked running" in runs[killed]
    assert f"--registry {root} --resume {killed}" in runs[killed]
    assert "partition(s) lost to infrastructure faults" in runs[lossy.run.run_id]

    # what the problem says to do works: the killed run resumes, and is no longer listed
    done = CliRunner().invoke(
        app,
        ["train", str(spec), str(data), "--registry", str(root), "--backend", "local",
         "--resume", killed],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    code, out = report(root)
    # the kill may also have cut an artifact's write short: a temp file --repair removes
    left = [p for p in out["problems"] if p["kind"] != "temp_files"]
    assert [p["run_id"] for p in left] == [lossy.run.run_id], out


@pytest.mark.slow
def test_a_killed_run_whose_data_moved_on_is_abandoned_and_doctor_is_clean(
    tmp_path: Path,
) -> None:
    """A run killed before next week's rows replaced its data cannot be resumed (other data)
    and no run on the new data does its work again: doctor exited 1 on it for ever, with no
    way to give it up. `runs abandon` closes it, its reason recorded; doctor is clean, and a
    resume of it is refused. A completed run, or one abandoned already, is not abandoned."""
    root = tmp_path / "reg"
    spec, data = _spec_and_data(tmp_path)
    proc = subprocess.Popen(
        [BIN / "manymodels", "train", spec, data, "--registry", root, "--backend", "local"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        killed = _wait_for_running_run(root / "registry.db", other_than="")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    linear_frame(600, 31).to_csv(data, index=False)  # the data moved on
    run = CliRunner().invoke(
        app, ["train", str(spec), str(data), "--registry", str(root), "--backend", "local"]
    )
    assert run.exit_code == 0, run.output
    code, out = report(root, "--repair")  # the kill may have left an artifact's temp file
    runs = [p["run_id"] for p in out["problems"] if p["kind"] != "temp_files"]
    assert code == 1 and runs == [killed], out

    cli = CliRunner()
    resume = ["train", str(spec), str(data), "--registry", str(root), "--backend", "local",
              "--resume", killed]  # fmt: skip
    assert "different data" in cli.invoke(app, resume).output
    gave_up = cli.invoke(
        app, ["runs", "abandon", killed, "--registry", str(root), "--reason", "data moved on"]
    )
    assert gave_up.exit_code == 0, gave_up.output
    assert f"run {killed} abandoned (failed: abandoned: data moved on)" in gave_up.output
    code, out = report(root)
    assert code == 0 and out["problems"] == [], out
    with Registry.open(root) as reg:
        closed = reg.get_run(killed)
        latest = reg.list_runs(limit=1)[0]
    assert closed.status == "failed" and closed.options["abandoned"]["reason"] == "data moved on"
    refused = cli.invoke(app, resume)
    assert refused.exit_code != 0 and f"run {killed} was abandoned" in refused.output
    again = cli.invoke(app, ["runs", "abandon", killed, "--registry", str(root)])
    assert again.exit_code != 0 and "already abandoned" in again.output
    done = cli.invoke(app, ["runs", "abandon", latest.run_id, "--registry", str(root)])
    assert done.exit_code != 0 and "is completed with nothing left to finish" in done.output


def _wait_for_running_run(db: Path, *, other_than: str, timeout: float = 120) -> str:
    """The id of a run the subprocess has started, once it has committed a partition."""
    deadline = time.monotonic() + timeout
    query = (
        "SELECT r.run_id FROM runs r JOIN run_partitions p ON p.run_id = r.run_id "
        "WHERE r.status = 'running' AND r.run_id != ? LIMIT 1"
    )
    while time.monotonic() < deadline:
        try:
            with sqlite3.connect(db, timeout=1) as conn:
                row = conn.execute(query, (other_than,)).fetchone()
            conn.close()
            if row is not None:
                return str(row[0])
        except sqlite3.OperationalError:
            pass
        time.sleep(0.02)
    raise AssertionError("the training subprocess never committed a partition")


def test_an_interrupted_run_done_again_by_a_later_full_run_is_no_problem(tmp_path: Path) -> None:
    """After Ctrl-C a user ran the same command again instead of ``--resume``: the
    interrupted run was reported for ever, and resuming it trained every partition again.
    A later run of only some partitions, or of other data, does not do its work."""
    root = tmp_path / "reg"
    data = linear_frame(6, 30)

    def interrupt(progress: Progress) -> None:
        if progress.done:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(SPEC, data, root, backend="local", progress=interrupt)
    train(SPEC, data, root, backend="local", only=["pid=1"])  # some partitions only
    train(SPEC, data.assign(y=data["y"] + 1), root, backend="local")  # other data
    code, out = report(root)
    assert code == 1 and [p["kind"] for p in out["problems"]] == ["unfinished_run"]
    train(SPEC, data, root, backend="local")  # the same command again, to the end
    code, out = report(root)
    assert code == 0 and out["problems"] == [], out


def test_a_run_of_named_or_appended_partitions_done_again_the_same_way_is_no_problem(
    tmp_path: Path,
) -> None:
    """A router's retrain killed with its router (a run of one partition's appended rows):
    its rows posted again and trained, ``doctor`` still reported the dead run for ever, and
    a health check on it stayed red: only a full run could do its work again. A run of the
    same partitions on the same data does; one of other partitions does not."""
    root = tmp_path / "reg"
    data = linear_frame(4, 30)
    train(SPEC, data, root, backend="local")
    new = linear_frame(4, 32, seed=5).query("pid == 1 and t >= 30")

    def interrupt(progress: Progress) -> None:
        raise KeyboardInterrupt

    for kwargs in ({"only": ["pid=1", "pid=2"]}, {"append": True}):
        rows = new if kwargs.get("append") else data
        with pytest.raises(KeyboardInterrupt):
            train(SPEC, rows, root, backend="local", progress=interrupt, **kwargs)
        train(SPEC, data, root, backend="local", only=["pid=3"])  # other partitions
        code, out = report(root)
        assert code == 1 and [p["kind"] for p in out["problems"]] == ["unfinished_run"], out
        train(SPEC, rows, root, backend="local", **kwargs)  # the same, to the end
        code, out = report(root)
        assert code == 0 and out["problems"] == [], out


def test_an_appended_run_recorded_before_its_partitions_digest_is_done_again_too(
    tmp_path: Path,
) -> None:
    """Runs before 08f1770 recorded the count of their partitions, not their digest: a
    router's retrain killed under such a release, its rows posted again and trained under
    this one, stayed a problem for ever (its rows name the same partitions)."""
    root, new = _old_append_interrupted(tmp_path, "pid == 1")
    assert report(root)[0] == 1
    train(SPEC, new, root, backend="local", append=True)  # the same rows, to the end
    code, out = report(root)
    assert code == 0 and out["problems"] == [], out


def test_an_old_appended_run_narrowed_by_partitions_is_not_done_by_other_partitions(
    tmp_path: Path,
) -> None:
    """The same rows appended with ``--partitions pid=1`` and with ``--partitions pid=2``
    name one partition each: counted alike, the second hid the first, never trained."""
    root, new = _old_append_interrupted(tmp_path, "pid in (1, 2)", only=["pid=1"])
    train(SPEC, new, root, backend="local", append=True, only=["pid=2"])
    code, out = report(root)
    assert code == 1 and [p["kind"] for p in out["problems"]] == ["unfinished_run"], out


def _old_append_interrupted(
    tmp_path: Path, rows: str, only: list[str] | None = None
) -> tuple[Path, Any]:
    """A registry of 4 partitions, and a run appending the new ``rows`` (a query) stopped
    by Ctrl-C and recorded as releases before 08f1770 recorded it; returns both."""
    root = tmp_path / "reg"
    train(SPEC, linear_frame(4, 30), root, backend="local")
    new = linear_frame(4, 32, seed=5).query(f"({rows}) and t >= 30")

    def interrupt(progress: Progress) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(SPEC, new, root, backend="local", progress=interrupt, append=True, only=only)
    _as_recorded_before_the_digest(root)
    return root, new


def _as_recorded_before_the_digest(root: Path) -> None:
    """The interrupted run's options as releases before 08f1770 recorded them."""
    with sqlite3.connect(root / "registry.db") as conn:
        (run_id, text), *_ = conn.execute(
            "SELECT run_id, options_json FROM runs WHERE status = 'interrupted'"
        ).fetchall()
        options = {k: v for k, v in json.loads(text).items() if k != "only_sha256"}
        conn.execute(
            "UPDATE runs SET options_json = ? WHERE run_id = ?", (json.dumps(options), run_id)
        )
    conn.close()
