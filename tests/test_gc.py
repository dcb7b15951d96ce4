"""Leftovers of killed writers: a temp file whose writer died on this machine goes at once, one
whose writer runs stays, another machine's waits for the grace period; an artifact a killed
gc had moved aside comes back (``manymodels.tempnames``, ``LocalArtifactStore``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from factories import forked_child_tag, linear_frame, spec_dict
from typer.testing import CliRunner

from manymodels.artifacts import LocalArtifactStore
from manymodels.cli import app
from manymodels.doctor import check
from manymodels.exceptions import RegistryError
from manymodels.gc import collect
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.tempnames import MACHINE, process, writer_alive, writer_tag

HOUR = 3600.0

# Puts 8 MB artifacts until killed: each one's temp file lives through its write and fsync.
_WRITER = """
import sys
from manymodels.artifacts import LocalArtifactStore
store = LocalArtifactStore(sys.argv[1])
block = bytes(8 << 20)
for i in range(1_000_000):
    store.put(i.to_bytes(8, "big") + block)
"""


def _temp_files(root: Path) -> list[Path]:
    return list(root.glob("??/??/.tmp-*"))


def _kill_mid_put(root: Path, timeout: float = 60.0) -> Path:
    """Start a writer, freeze it (SIGSTOP) the moment a temp file of its exists, and if the
    file is still there ``kill -9`` it: the temp file is then a real killed writer's."""
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(root)])
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = _temp_files(root)
            if found:
                os.kill(writer.pid, signal.SIGSTOP)
                if found[0].exists():  # frozen: it can no longer rename it
                    os.kill(writer.pid, signal.SIGKILL)
                    writer.wait(timeout=10)
                    return found[0]
                os.kill(writer.pid, signal.SIGCONT)
            time.sleep(0.0005)
        raise AssertionError("never caught the writer between create and rename")
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait(timeout=10)


def test_a_temp_file_of_a_writer_killed_mid_put_goes_at_once(tmp_path: Path) -> None:
    root = tmp_path / "reg"
    train(spec_dict(), linear_frame(1, 30), root, backend="local")
    leftover = _kill_mid_put(root / "artifacts")
    assert writer_alive(leftover.name) is False
    with Registry.open(root) as reg:
        found = [p for p in check(reg, grace_seconds=HOUR).problems if p.kind == "temp_files"]
        assert len(found) == 1 and "died on this machine" in found[0].message
        report = collect(reg, grace_seconds=HOUR)  # the hour of grace does not apply to it
        assert report.temp_files_deleted == 1
        assert not _temp_files(root / "artifacts")
        assert reg.load_model("pid=0").version.version == 1
        assert check(reg, grace_seconds=HOUR).ok


def _dead_writer_tag() -> str:
    """The writer tag of a process that has exited (and been reaped)."""
    code = "from manymodels.tempnames import writer_tag; print(writer_tag())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _temp(store: LocalArtifactStore, digest: str, tag: str, *, aside: bool = False) -> Path:
    folder = store.root / digest[:2] / digest[2:4]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f".tmp-{'gc-' if aside else ''}{digest}-{tag}-0123456789ab-0"
    path.write_bytes(b"half a model")
    return path


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_live_writers_stay_dead_ones_go_and_other_machines_wait(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "artifacts")
    digest, _ = store.put(b"a stored model")
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        found = process(sleeper.pid)
        assert found is not None
        ours = _temp(store, "a" * 64, writer_tag())  # this process: a live writer
        _age(ours, 2 * HOUR)  # however old
        dead = _temp(store, "b" * 64, _dead_writer_tag())
        reused = _temp(store, "c" * 64, f"{sleeper.pid}-{int(found[1]) - 1}-{MACHINE}")
        elsewhere = _temp(store, "d" * 64, f"{sleeper.pid}-{found[1]}-{'0' * 12}")
        legacy = _temp(store, "e" * 64, "1-dead")  # named before writers were
        assert store.sweep_temporaries(time.time() - HOUR, dry_run=True) == (2, 24)
        assert store.sweep_temporaries(time.time() - HOUR) == (2, 24)
        assert ours.exists() and elsewhere.exists() and legacy.exists()
        assert not dead.exists() and not reused.exists()  # a pid now running something else

        _age(elsewhere, 2 * HOUR)
        _age(legacy, 2 * HOUR)
        assert store.sweep_temporaries(time.time() - HOUR) == (2, 24)  # their grace is over
        assert ours.exists() and store.get(digest) == b"a stored model"
    finally:
        sleeper.kill()
        sleeper.wait(timeout=10)


def test_an_artifact_a_killed_gc_moved_aside_comes_back(tmp_path: Path) -> None:
    """gc moves an artifact aside before judging its age; killed in between, it leaves the
    artifact under a temp name, and a referenced version's file missing."""
    store = LocalArtifactStore(tmp_path / "artifacts")
    digest, _ = store.put(b"a referenced model")
    aside = _temp(store, digest, _dead_writer_tag(), aside=True)
    os.replace(store.path(digest), aside)
    assert store.sweep_temporaries(time.time() - HOUR) == (1, 0)  # put back, nothing freed
    assert store.get(digest) == b"a referenced model" and not aside.exists()

    stale = _temp(store, digest, _dead_writer_tag(), aside=True)  # the name was taken since
    assert store.sweep_temporaries(time.time() - HOUR) == (1, len(b"half a model"))
    assert not stale.exists() and store.get(digest) == b"a referenced model"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_is_its_own_writer() -> None:
    pid, child_tag = forked_child_tag()
    name = f".tmp-{'f' * 64}-{child_tag}-0"
    assert child_tag.startswith(f"{pid}-") and writer_alive(name) is False


def test_gc_refuses_a_store_another_registry_marked_and_deletes_nothing(tmp_path: Path) -> None:
    """Two registries trained on the same data share most artifact files (sha256 names), so
    gc's "references none of them" guard passed when ``--artifacts`` named the other's store,
    and gc deleted that registry's newer models — production included."""
    df = linear_frame(2, 40)
    a, b = tmp_path / "a", tmp_path / "b"
    train(spec_dict(), df, a, backend="local")
    train(spec_dict(), df, b, backend="local")
    newer = df.assign(y=df["y"] + 1.0)  # b's next versions: files a never references
    train(spec_dict(), newer, b, backend="local")
    held = sorted((b / "artifacts").glob("??/??/*"))
    with Registry.open(a, artifacts=b / "artifacts") as wrong:
        for dry_run in (True, False):
            with pytest.raises(RegistryError, match="also holds the models of another registry"):
                collect(wrong, grace_seconds=0, dry_run=dry_run)
    assert sorted((b / "artifacts").glob("??/??/*")) == held
    with Registry.open(b) as reg:
        assert check(reg).unresolved == []
        assert collect(reg, grace_seconds=0).artifacts_deleted == 0  # its own store: allowed


def test_a_database_restored_from_before_its_id_is_told_which_mark_to_remove(
    tmp_path: Path,
) -> None:
    """A registry.db restored from a backup taken before the registry had an id gets a new
    one, and its old mark reads as another registry's (two machines can share a database
    path, so only the id tells): gc refuses, naming the file, and runs once it is removed."""
    from manymodels.registry.ownership import ID_META

    root = tmp_path / "reg"
    train(spec_dict(), linear_frame(2, 40), root, backend="local")
    with Registry.open(root) as reg:
        (old,) = reg.artifacts.owners()
        reg.store.set_meta(ID_META, None)  # as the backup had it
    train(spec_dict(), linear_frame(2, 40).assign(y=lambda d: d["y"] + 1), root, backend="local")
    with Registry.open(root) as reg:
        mark = root / "artifacts" / "owners" / old
        with pytest.raises(RegistryError, match=f"remove its mark: {mark}"):
            collect(reg, grace_seconds=0)
        mark.unlink()
        assert collect(reg, grace_seconds=0).artifacts_deleted == 0


def test_a_restored_copy_is_a_registry_of_its_own_to_the_originals_store(tmp_path: Path) -> None:
    """``import-registry`` copied the registry's id, so the copy's gc, pointed at the
    original's store, read the original's mark as its own and deleted the original's newer
    models. The copy gets a new id: the original's mark is another's, and gc refuses."""
    from manymodels.backup import export_registry
    from manymodels.restore import import_registry

    df = linear_frame(2, 40)
    original = tmp_path / "original"
    train(spec_dict(), df, original, backend="local")
    with Registry.open(original) as reg:
        export_registry(reg, tmp_path / "backup.tar")
    import_registry(tmp_path / "backup.tar", tmp_path / "copy")
    train(spec_dict(), df.assign(y=df["y"] + 1.0), original, backend="local")  # newer models
    held = sorted((original / "artifacts").glob("??/??/*"))
    copy = Registry.open(tmp_path / "copy", artifacts=original / "artifacts")
    with copy, pytest.raises(RegistryError, match="also holds the models of another registry"):
        collect(copy, grace_seconds=0)
    assert sorted((original / "artifacts").glob("??/??/*")) == held
    with Registry.open(original) as reg:
        assert check(reg).unresolved == []


@pytest.mark.parametrize(
    ("owner", "beat_hours_ago", "keeps"),
    [
        ("me", 3.0, True),  # its process is this one: alive, however silent
        ("dead", 0.0, False),  # killed on this machine: nothing will load what it wrote
        ("elsewhere", 1.0, True),  # another machine's, heard an hour ago: silence is no death
        ("elsewhere", 30.0, False),  # … but a day of silence no longer keeps everything young
        ("elsewhere", None, False),  # from before heartbeats, nothing here vouches for it
        # stamped 3 h ahead (a clock running ahead there): it proves nothing to RunBusy, but
        # gc errs the safe way and keeps what may be that run's
        ("elsewhere", -3.0, True),
    ],
)
def test_a_run_still_training_keeps_what_was_written_since_it_started(
    tmp_path: Path, owner: str, beat_hours_ago: float | None, keeps: bool
) -> None:
    """A run writes artifacts before their versions, and one that pools its intervals holds
    its versions for as long as its pool takes: gc keeps whatever is younger than the start
    of a run still training (less 10 minutes of clock skew), and no more."""
    import dataclasses
    from datetime import UTC, datetime, timedelta

    from factories import dead_process_tag, make_run, other_machine_tag
    from sqlalchemy import update

    from manymodels.registry import schema as t

    root = tmp_path / "reg"
    train(spec_dict(), linear_frame(3, 30), root, backend="local")
    with Registry(root) as reg:
        before, since = reg.artifacts.put(b"older than the run")[0], reg.artifacts.put(b"since")[0]
        _age(reg.artifacts.path(before), 3 * HOUR)
        _age(reg.artifacts.path(since), 2 * HOUR)
        started = (datetime.now(UTC) - timedelta(hours=2.5)).isoformat(timespec="microseconds")
        tag = {"me": writer_tag(), "dead": dead_process_tag(), "elsewhere": other_machine_tag()}
        run = dataclasses.replace(
            make_run("held"), started_at=started, options={"owner": tag[owner]}
        )
        reg.store.create_run(run)
        beat = (
            None if beat_hours_ago is None
            else (datetime.now(UTC) - timedelta(hours=beat_hours_ago)).isoformat()
        )  # fmt: skip
        with reg.store.engine.begin() as conn:
            conn.execute(update(t.runs).where(t.runs.c.run_id == "held").values(heartbeat_at=beat))
        report = collect(reg, grace_seconds=HOUR)
        assert not reg.artifacts.exists(before)  # older than the run: garbage still goes
        assert reg.artifacts.exists(since) is keeps
        assert report.kept_for_run == ("held" if keeps else None)


def test_a_run_that_commits_while_gc_reads_its_references_keeps_its_artifacts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run writes an artifact, and commits its version and finishes just after gc has read
    what versions reference: gc looked at the runs training before that read, so the run
    was one of them and what it wrote since it started stays, however small the grace."""
    import dataclasses

    from factories import make_run, new_version

    root = tmp_path / "reg"
    train(spec_dict(), linear_frame(3, 30), root, backend="local")
    with Registry(root) as reg:
        run = dataclasses.replace(make_run("late"), options={"owner": writer_tag()})
        reg.store.create_run(run)  # training, in this process
        sha, size = reg.artifacts.put(b"the late run's model")
        _age(reg.artifacts.path(sha), 60.0)  # older than the grace below
        read = reg.store.referenced_digests

        def then_the_run_commits(**kwargs: object) -> set[str]:
            seen = read(**kwargs)  # type: ignore[arg-type]
            reg.store.record("late", [new_version("pid=9", sha, size)], [], libraries={})
            reg.store.finish_run("late", "completed")
            return seen

        monkeypatch.setattr(reg.store, "referenced_digests", then_the_run_commits)
        report = collect(reg, grace_seconds=1)
        assert reg.artifacts.exists(sha)
        assert report.kept_for_run == "late"
        assert check(reg).unresolved == []


def test_the_rows_of_a_queued_retrain_job_are_referenced(tmp_path: Path) -> None:
    """A router stores a retrain's rows, then queues its job; the run that will name them
    does not exist yet: gc keeps them while the job is queued or running, and not after."""
    from manymodels.registry.jobs import JobRecord, router_id
    from manymodels.registry.store import now

    root = tmp_path / "reg"
    train(spec_dict(), linear_frame(3, 30), root, backend="local")
    with Registry(root) as reg:
        sha, size = reg.artifacts.put(b"posted rows, as parquet")
        _age(reg.artifacts.path(sha), 60.0)
        stamp = now()
        job = JobRecord(
            job_id="j1", partition="pid=1", status="queued", backend="local", owner=router_id(),
            created_at=stamp, heartbeat_at=stamp,
            data={"sha256": sha, "size": size, "rows": 3, "format": "json"},
        )  # fmt: skip
        reg.jobs.submit(job, lease=60.0)
        collect(reg, grace_seconds=1)
        assert reg.artifacts.exists(sha)
        reg.jobs.finish("j1", "failed", history=10, error="no run")
        collect(reg, grace_seconds=1)
        assert not reg.artifacts.exists(sha)  # nothing names them any more


# gc in a child process, SIGKILLed (a real kill -9, deterministic) the moment it judges the age
# of the artifact it moved aside: between moving it aside and moving it back.
_GC_KILLED_MID_JUDGEMENT = """
import os, signal, sys
real = os.stat
def stat(path, *args, **kwargs):
    if ".tmp-gc-" in os.fspath(path):
        os.kill(os.getpid(), signal.SIGKILL)
    return real(path, *args, **kwargs)
os.stat = stat
from manymodels.gc import collect
from manymodels.registry import Registry
with Registry.open(sys.argv[1]) as reg:
    collect(reg, grace_seconds=3600)
"""


def _doctor(root: Path, *args: str) -> Any:
    done = CliRunner().invoke(app, ["doctor", "--registry", str(root), "--json", *args])
    return json.loads(done.stdout)


def _left_aside_by_a_killed_gc(root: Path) -> tuple[LocalArtifactStore, str]:
    """A registry trained at ``root`` and a run's artifact stored there before its version
    commits (a young orphan), which a gc killed mid-judgement left moved aside: its store and
    digest."""
    train(spec_dict(), linear_frame(1, 30), root, backend="local")
    store = LocalArtifactStore(root / "artifacts")
    digest, _ = store.put(b"a run's model, its version not yet committed")
    killed = subprocess.run(
        [sys.executable, "-c", _GC_KILLED_MID_JUDGEMENT, str(root)], capture_output=True
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    return store, digest


def test_an_artifact_a_gc_killed_mid_judgement_left_aside_still_loads_and_is_named(
    tmp_path: Path,
) -> None:
    """A run's artifact stored before its version commits is a young orphan: gc moves it
    aside, finds it young and moves it back. Killed in between, it left the name missing: the
    version the run then committed did not load until the next gc or ``doctor --repair``, and
    doctor called the artifact a "half-written temp file of killed writers" that "--repair
    removes". Now ``get`` reads it where it lies, and doctor says what happened and that
    --repair (or the next gc) puts it back."""
    root = tmp_path / "reg"
    store, digest = _left_aside_by_a_killed_gc(root)
    assert not store.path(digest).exists()  # the state the kill left
    assert store.get(digest) == b"a run's model, its version not yet committed"

    (found,) = [p for p in _doctor(root)["problems"] if p["kind"] == "temp_files"]
    assert (
        f"1 artifact(s) a gc killed mid-way left moved aside under a temp name ({digest[:12]}"
        in found["message"]
    )
    assert "half-written" not in found["message"]
    assert found["message"].endswith(
        "--repair puts them back under their names (as does the next gc)"
    )
    (done,) = [p for p in _doctor(root, "--repair")["problems"] if p["kind"] == "temp_files"]
    assert done["message"].endswith(": put back under their names")
    assert store.path(digest).read_bytes() == b"a run's model, its version not yet committed"
    assert not _temp_files(root / "artifacts")


def test_an_older_releases_gc_aside_is_put_back_not_deleted(tmp_path: Path) -> None:
    """Before writer tags, gc moved an artifact aside as ``.tmp-gc-<digest>-<pid>-<random>-
    <counter>``. Such a leftover (a gc of that release killed mid-way) was taken for a
    half-written file: ``doctor --repair`` and ``gc`` deleted it, and with it the only copy of
    an artifact a version references. Now it is recognised, loads meanwhile, and goes back."""
    root = tmp_path / "reg"
    train(spec_dict(), linear_frame(1, 30), root, backend="local")
    with Registry.open(root) as reg:
        digest = reg.load_model("pid=0").version.artifact_sha256
    store = LocalArtifactStore(root / "artifacts")
    aside = store.path(digest).with_name(f".tmp-gc-{digest}-4242-0123456789ab-7")
    os.replace(store.path(digest), aside)
    _age(aside, 2 * HOUR)  # its writer cannot be judged: it waits for the grace
    with Registry.open(root) as reg:
        assert reg.load_model("pid=0").version.version == 1  # read where it lies
        (found,) = [p for p in check(reg, grace_seconds=HOUR).problems if p.kind == "temp_files"]
        assert "1 artifact(s) a gc killed mid-way left moved aside" in found.message
        check(reg, repair=True, grace_seconds=HOUR)
    assert store.path(digest).exists() and not aside.exists()
    with Registry.open(root) as reg:
        assert check(reg, grace_seconds=HOUR).ok and reg.load_model("pid=0").version.version == 1


def test_the_next_gc_says_it_put_back_what_a_killed_gc_left_aside(tmp_path: Path) -> None:
    """The next gc puts such an artifact back, and said it had deleted "1 leftover temp
    file(s)"; now it says it put an artifact back."""
    root = tmp_path / "reg"
    store, digest = _left_aside_by_a_killed_gc(root)
    done = CliRunner().invoke(app, ["gc", "--registry", str(root)])
    assert done.exit_code == 0, done.output
    said = " ".join(done.stdout.split())  # the console wraps long lines
    assert "leftover temp file" not in said, said
    assert "put back 1 artifact(s) a gc killed mid-way had left moved aside" in said
    assert store.path(digest).exists()
