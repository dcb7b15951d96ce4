"""Retraining, champion vs challenger, promote / roll back, resume after kill -9, and gc."""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from factories import linear_frame, spec_dict
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.exceptions import DataError, NothingToRollBack, UntrustedArtifact
from manymodels.execution import InProcessBackend
from manymodels.gc import collect
from manymodels.partition import FALLBACK_KEY
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.tempnames import writer_tag

BIN = Path(sys.executable).parent


def versions(reg: Registry) -> dict[str, int]:
    return {p.key: p.latest_version for p in reg.list_partitions(limit=10_000)}


def production(reg: Registry) -> dict[str, int]:
    return reg.store.alias_table("production")


def noisy(
    df: pd.DataFrame, pid: int, scale: float, seed: int = 1, *, keep_last: int = 0
) -> pd.DataFrame:
    """The partition's target replaced by noise, except its last ``keep_last`` rows (which stay
    true, so a model fitted on the noise is worse on them than one that knows the rule)."""
    out = df.copy()
    mask = (out["pid"] == pid) & (out["t"] < out["t"].max() + 1 - keep_last)
    out.loc[mask, "y"] = np.random.default_rng(seed).normal(scale=scale, size=int(mask.sum()))
    return out


# ------------------------------------------------------------------------ selective retraining
def test_changed_only_touches_exactly_the_changed_partitions(tmp_path: Path) -> None:
    df = linear_frame(6, 30)
    spec = spec_dict(min_rows=10)
    train(spec, df, tmp_path / "reg", backend="local")
    with Registry.open(tmp_path / "reg") as reg:
        before = versions(reg)
        before_prod = production(reg)

    changed = df.copy()
    changed.loc[changed["pid"] == 2, "y"] += 1.0  # one partition's data moves
    extra = linear_frame(1, 30, seed=9).assign(pid=99)  # one new partition
    summary = train(
        spec, pd.concat([changed, extra]), tmp_path / "reg", backend="local", changed_only=True
    )
    assert summary.run.n_partitions == 2
    options = dict(summary.run.options)
    assert options.pop("owner") == writer_tag()  # the process that ran it
    assert options.pop("host") == os.uname().nodename  # … and its host
    assert options == {"changed_only": True, "unchanged": 5, "backend": "local"}
    with Registry.open(tmp_path / "reg") as reg:
        after = versions(reg)
        assert after["pid=2"] == before["pid=2"] + 1
        assert after["pid=99"] == 1
        untouched = [k for k in before if k not in ("pid=2",)]
        # the pooled fallback changed too (its data did), everything else is as it was
        assert all(after[k] == before[k] for k in untouched if k != FALLBACK_KEY)
        assert after[FALLBACK_KEY] == before[FALLBACK_KEY] + 1
        assert all(production(reg)[k] == before_prod[k] for k in untouched if k != FALLBACK_KEY)

    # nothing changed now: nothing is trained, not even the fallback
    again = train(
        spec, pd.concat([changed, extra]), tmp_path / "reg", backend="local", changed_only=True
    )
    assert again.run.n_partitions == 0 and again.versions == {}


def test_named_partitions_retrain_alone_and_leave_the_fallback(tmp_path: Path) -> None:
    df = linear_frame(4, 30)
    train(spec_dict(), df, tmp_path / "reg", backend="local")
    summary = train(spec_dict(), df, tmp_path / "reg", backend="local", only=["pid=1", "pid=3"])
    assert set(summary.versions) == {"pid=1", "pid=3"}
    with Registry.open(tmp_path / "reg") as reg:
        assert versions(reg) == {"pid=0": 1, "pid=1": 2, "pid=2": 1, "pid=3": 2, FALLBACK_KEY: 1}
    with pytest.raises(DataError, match="no rows in the data for partition"):
        train(spec_dict(), df, tmp_path / "reg", backend="local", only=["pid=7"])


# ------------------------------------------------------------------------ policies
@pytest.mark.parametrize(
    ("policy", "worse_promoted", "better_promoted"),
    [("always", True, True), ("if_better", False, True), ("manual", False, False)],
)
def test_promotion_policies(
    tmp_path: Path, policy: str, worse_promoted: bool, better_promoted: bool
) -> None:
    full = linear_frame(2, 56)  # periods t = 0..55; each retrain appends 8 new ones
    spec = spec_dict(promotion={"policy": policy})
    train(spec, noisy(full[full.t < 40], 0, 1.0), tmp_path / "reg", backend="local")  # v1

    # v2 is fitted on noise; the 8 new periods (t 40..47) are true, and v2 loses on them
    worse = noisy(full[full.t < 48], 0, 50.0, seed=2, keep_last=8)
    train(spec, worse, tmp_path / "reg", backend="local", only=["pid=0"])
    with Registry.open(tmp_path / "reg") as reg:
        v2 = reg.get_version("pid=0", 2)
        ev = v2.evaluation
        assert ev["policy"] == policy and ev["champion_version"] == 1
        # judged only on the periods v1 never saw: t 40..47 (the validation rows are t 38..47)
        assert ev["compared_rows"] == 8
        assert ev["challenger_score"] < ev["champion_score"]
        assert ev["promote"] is worse_promoted
        assert production(reg)["pid=0"] == (2 if worse_promoted else 1)
        if not worse_promoted:
            assert "candidate" in v2.aliases
        reason = reg.alias_history("pid=0")[-1].reason
        assert reason == ev["reason"] if worse_promoted else "new version"

    # v3 is fitted on the clean relationship: clearly better than whatever is in production
    train(spec, full, tmp_path / "reg", backend="local", only=["pid=0"])
    with Registry.open(tmp_path / "reg") as reg:
        v3 = reg.get_version("pid=0", 3)
        assert v3.evaluation["promote"] is better_promoted
        assert v3.evaluation["challenger_score"] > v3.evaluation["champion_score"]
        assert production(reg)["pid=0"] == (3 if better_promoted else (2 if worse_promoted else 1))
        if policy == "if_better":
            assert v3.evaluation["improvement"] > 0
            assert v3.evaluation["reason"].startswith("promoted:")


def test_corrected_history_is_judged_by_refitting_the_champion(tmp_path: Path) -> None:
    """Corrected history holds no period the champion never saw: scoring it as served would
    grade it on its own (wrong) training rows, and before it was kept forever. Its estimator
    and parameters are refitted on the challenger's training rows instead, both are scored on
    the same validation rows, and the reason says so."""
    df = linear_frame(2, 40)
    spec = spec_dict(promotion={"policy": "if_better"})
    train(spec, noisy(df, 0, 5.0), tmp_path / "reg", backend="local")
    train(spec, df, tmp_path / "reg", backend="local")
    with Registry.open(tmp_path / "reg") as reg:
        ev = reg.get_version("pid=0", 2).evaluation
        assert ev["basis"] == "refit" and ev["compared_rows"] == 8
        assert ev["promote"] and production(reg)["pid=0"] == 2
        assert "refitted on the same training rows" in ev["reason"]
        assert ev["challenger_score"] >= ev["champion_score"]
        # the champion as served would have been graded on its own noisy rows; refitted, it
        # is the champion's method on the corrected rows, which the challenger matches or beats
        unchanged = reg.get_version("pid=1", 2).evaluation  # the same rows: the same bytes
        assert unchanged["basis"] == "refit" and unchanged["improvement"] == 0.0
        assert not unchanged["promote"] and unchanged["reason"].startswith("identical to")


def test_min_improvement_is_relative(tmp_path: Path) -> None:
    full = linear_frame(1, 48)
    spec = spec_dict(promotion={"policy": "if_better", "min_improvement": 10.0})  # +1000 %
    train(spec, noisy(full[full.t < 40], 0, 5.0), tmp_path / "reg", backend="local")
    train(spec, full, tmp_path / "reg", backend="local")
    with Registry.open(tmp_path / "reg") as reg:
        ev = reg.get_version("pid=0", 2).evaluation
        assert ev["improvement"] > 0 and not ev["promote"]
        assert "kept champion" in ev["reason"] and production(reg)["pid=0"] == 1


def test_a_corrected_history_replaces_the_champion_despite_min_improvement(
    tmp_path: Path,
) -> None:
    """The same times, corrected to another rule: refitted on the corrected rows the champion
    is the challenger's own method and ties it exactly, and min_improvement kept the stale
    model (y = 2x answering where the truth is y = -3x) for ever."""
    x = np.linspace(-1, 1, 40)
    first = pd.DataFrame({"pid": 0, "t": np.arange(40), "x0": x, "x1": 0.0, "y": 2 * x})
    spec = spec_dict(promotion={"policy": "if_better", "min_improvement": 0.05})
    train(spec, first, tmp_path / "reg", backend="local")
    train(spec, first.assign(y=-3 * x), tmp_path / "reg", backend="local", changed_only=True)
    with Registry.open(tmp_path / "reg") as reg:
        ev = reg.get_version("pid=0", 2).evaluation
        assert ev["basis"] == "refit" and ev["improvement"] == 0.0, ev
        assert ev["promote"] and production(reg)["pid=0"] == 2
        assert "the same method: the challenger has the corrected rows" in ev["reason"]
        assert reg.load_model("pid=0").predict([{"x0": 1.0, "x1": 0.0}])[0] < 0


def test_a_champion_that_cannot_load_is_replaced_and_says_why(tmp_path: Path) -> None:
    """A champion whose artifact is corrupted (or missing) is served by nobody — the router
    answers 500, ``score`` fails — and ``doctor`` says to train the partition again: that
    retrain used to keep it ("could not be evaluated; kept"), so production stayed broken.
    Two partitions: with one, the pooled fallback is byte-identical to its model, and storing
    it repairs the tampered file before the champion is read."""
    df = linear_frame(2, 40)
    train(spec_dict(), df, tmp_path / "reg", backend="local")
    with Registry.open(tmp_path / "reg") as reg:
        path = reg.artifacts.path(reg.get_version("pid=0", 1).artifact_sha256)  # type: ignore[attr-defined]
    path.write_bytes(b"tampered")
    train(spec_dict(), noisy(df, 0, 0.5), tmp_path / "reg", backend="local")
    with Registry.open(tmp_path / "reg") as reg:
        ev = reg.get_version("pid=0", 2).evaluation
        assert ev["promote"] and production(reg)["pid=0"] == 2
        assert (
            ev["reason"].startswith("champion v1 cannot be loaded (")
            and "corrupted" in ev["reason"]
        )
        reg.load_model("pid=0")  # production loads again


# ------------------------------------------------------------------------ promote / rollback
def test_promote_and_rollback_round_trip(tmp_path: Path) -> None:
    df = linear_frame(1, 40)
    spec = spec_dict(promotion={"policy": "manual"})
    for _ in range(3):
        train(spec, df, tmp_path / "reg", backend="local")
    with Registry.open(tmp_path / "reg") as reg:
        with pytest.raises(NothingToRollBack):
            reg.rollback("pid=0")
        reg.promote("pid=0", 2)
        reg.promote("pid=0", 3)
        assert reg.rollback("pid=0").to_version == 2
        assert reg.rollback("pid=0").to_version == 1  # a second rollback goes further back
        with pytest.raises(NothingToRollBack):
            reg.rollback("pid=0")
        actions = [m.action for m in reg.alias_history("pid=0", "production")]
        assert actions == ["first", "promote", "promote", "rollback", "rollback"]
        assert reg.promote("pid=0", 1).to_version == 1  # idempotent: nothing new written
        assert len(reg.alias_history("pid=0", "production")) == 5


def test_promote_and_rollback_from_the_cli(tmp_path: Path) -> None:
    df = linear_frame(1, 40)
    spec = spec_dict(promotion={"policy": "manual"})
    train(spec, df, tmp_path / "reg", backend="local")
    train(spec, df, tmp_path / "reg", backend="local")
    runner = CliRunner()
    reg = str(tmp_path / "reg")
    out = runner.invoke(app, ["promote", "pid=0", "2", "--registry", reg, "--json"])
    assert out.exit_code == 0, out.output
    assert (json.loads(out.stdout)["from_version"], json.loads(out.stdout)["to_version"]) == (1, 2)
    out = runner.invoke(app, ["rollback", "pid=0", "--registry", reg])
    assert out.exit_code == 0 and "production v2 → v1" in out.stdout
    bad = runner.invoke(app, ["promote", "pid=0", "9", "--registry", reg])
    assert bad.exit_code == 2
    assert bad.stderr.strip() == "error: partition 'pid=0' has no version 9"
    none = runner.invoke(app, ["rollback", "pid=0", "--registry", reg])
    assert none.exit_code == 1 and none.stderr.startswith("error: partition 'pid=0' has no earlier")
    with Registry.open(tmp_path / "reg") as r:
        assert production(r)["pid=0"] == 1


def test_the_cli_rollback_records_a_reason_as_the_router_s(tmp_path: Path) -> None:
    """``POST …/rollback`` takes ``{"reason": …}`` for the alias history; ``manymodels
    rollback`` had no --reason (exit 2, "No such option"), so a rollback by hand could only
    be recorded as "rollback from vN"."""
    df = linear_frame(1, 40)
    spec = spec_dict(promotion={"policy": "manual"})
    for _ in range(3):
        train(spec, df, tmp_path / "reg", backend="local")
    with Registry.open(tmp_path / "reg") as r:
        r.promote("pid=0", 2)
        r.promote("pid=0", 3)
    runner = CliRunner()
    reg = str(tmp_path / "reg")
    out = runner.invoke(app, ["rollback", "pid=0", "--registry", reg, "--reason", "bad week"])
    assert out.exit_code == 0, out.output
    out = runner.invoke(app, ["rollback", "pid=0", "--registry", reg])
    assert out.exit_code == 0, out.output
    with Registry.open(tmp_path / "reg") as r:
        history = r.alias_history("pid=0", "production")
    assert [(m.action, m.reason) for m in history[-2:]] == [
        ("rollback", "bad week"),
        ("rollback", "rollback from v2"),  # as before when no reason is given
    ]


def test_promoting_the_version_already_served_says_nothing_changed(tmp_path: Path) -> None:
    """It printed the move that first put it there, "production vNone → v1 (first
    version)", as if production had just moved."""
    train(spec_dict(), linear_frame(1, 40), tmp_path / "reg", backend="local")
    runner = CliRunner()
    reg = str(tmp_path / "reg")
    out = runner.invoke(app, ["promote", "pid=0", "1", "--registry", reg])
    assert out.exit_code == 0, out.output
    assert out.stdout.startswith("pid=0: production is already v1 (since ")
    assert out.stdout.rstrip().endswith("nothing changed") and "None" not in out.stdout
    with sqlite3.connect(tmp_path / "reg" / "registry.db") as conn:  # a clock ahead elsewhere
        conn.execute("UPDATE alias_history SET at = '2999-01-01T00:00:00.000000+00:00'")
    conn.close()
    shown = json.loads(
        runner.invoke(app, ["promote", "pid=0", "1", "--registry", reg, "--json"]).stdout
    )
    assert shown["moved"] is False and shown["to_version"] == 1


def test_a_promotion_says_whether_it_moved_production(tmp_path: Path) -> None:
    """Decided in its write transaction, not by a read before it (a promotion racing another
    said the opposite of what it did)."""
    spec = spec_dict(promotion={"policy": "manual"})
    train(spec, linear_frame(1, 40), tmp_path / "reg", backend="local")
    train(spec, linear_frame(1, 40, seed=1), tmp_path / "reg", backend="local")
    with Registry.open(tmp_path / "reg") as reg:
        assert reg.promote("pid=0", 1).moved is False  # production is v1 already
        assert reg.promote("pid=0", 2).moved is True
        assert reg.promote("pid=0", 2).moved is False
        assert all(m.moved for m in reg.alias_history("pid=0", "production"))


def test_promote_refuses_a_version_no_reader_could_load(tmp_path: Path) -> None:
    """Production once moved to a version whose model was gone, or stored in a format the
    registry no longer trusts: the promotion said "production v2 → v1", and every reader
    (the router, ``score``) then failed on it. Nothing moves now, and the error says why."""
    df = linear_frame(1, 40)
    spec = spec_dict(promotion={"policy": "manual"})
    for _ in range(3):
        train(spec, df.assign(y=df["y"] * (1 + _)), tmp_path / "reg", backend="local")
    root = str(tmp_path / "reg")
    with Registry.open(root) as reg:
        gone = reg.get_version("pid=0", 2).artifact_sha256
        path = tmp_path / "reg" / "artifacts" / gone[:2] / gone[2:4] / gone
        path.unlink()
    missing = CliRunner().invoke(app, ["promote", "pid=0", "2", "--registry", root])
    assert missing.exit_code != 0
    (line,) = missing.stderr.strip().splitlines()
    assert line.startswith("error: ") and gone[:12] in line, line
    with Registry.open(root) as reg:
        reg.set_trusted_formats(frozenset({"skops"}))
    with Registry.open(root) as reg:
        with pytest.raises(UntrustedArtifact):
            reg.promote("pid=0", 3)
        assert production(reg)["pid=0"] == 1
        assert [m.action for m in reg.alias_history("pid=0", "production")] == ["first"]


def test_rollback_skips_a_version_no_reader_could_load(tmp_path: Path) -> None:
    """A rollback moved production onto a version whose model was gone ("production v2 → v1"),
    and every reader then failed on it: such a version is skipped as a deleted one is."""
    df = linear_frame(1, 40)
    spec = spec_dict(promotion={"policy": "manual"})
    for i in range(3):
        train(spec, df.assign(y=df["y"] * (1 + i)), tmp_path / "reg", backend="local")
    with Registry.open(tmp_path / "reg") as reg:
        reg.promote("pid=0", 2)
        reg.promote("pid=0", 3)
        gone = reg.get_version("pid=0", 2).artifact_sha256
        (tmp_path / "reg" / "artifacts" / gone[:2] / gone[2:4] / gone).unlink()
        assert reg.rollback("pid=0").to_version == 1  # past v2, whose model is gone
        reg.promote("pid=0", 3)
        reg.set_trusted_formats(frozenset({"skops"}))  # v1: a pickle, refused now
    with Registry.open(tmp_path / "reg") as reg:
        with pytest.raises(NothingToRollBack) as caught:
            reg.rollback("pid=0")
        assert "that still exists and can be loaded" in str(caught.value)
        assert production(reg)["pid=0"] == 3


# ------------------------------------------------------------------------ resume after kill -9
def _wait_for(db: Path, query: str, ok: Any, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if db.exists():
            try:
                with sqlite3.connect(db, timeout=1) as conn:
                    value = conn.execute(query).fetchone()
                if value is not None and ok(value[0]):
                    return value[0]
            except sqlite3.OperationalError:
                pass
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {query}")


@pytest.mark.slow
def test_kill_9_mid_run_then_resume(tmp_path: Path) -> None:
    from manymodels.samples import synthetic

    n = 3000
    data = tmp_path / "big.parquet"
    synthetic(n, 40).to_parquet(data)
    spec = tmp_path / "spec.toml"
    spec.write_text(
        'name = "kill"\npartition_by = ["pid"]\ntarget = "y"\ntime_column = "t"\n'
        '[[candidates]]\nestimator = "sklearn.linear_model.Ridge"\n'
        "params = { alpha = [0.1, 1.0, 10.0] }\n"
    )
    reg = tmp_path / "reg"
    db = reg / "registry.db"
    proc = subprocess.Popen(
        [BIN / "manymodels", "train", spec, data, "--registry", reg, "--backend", "local"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        committed = _wait_for(
            db, "select count(*) from run_partitions where key != '__fallback__'", lambda c: c > 0
        )
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert 0 < committed < n, "the kill must land mid-run"

    with Registry.open(reg) as r:
        run = r.list_runs()[0]
        assert run.status == "running"  # it died without saying so
        for p in r.list_partitions(limit=n + 1):  # never a half-written version
            v = r.get_version(p.key)
            assert r.artifacts.exists(v.artifact_sha256)

    res = subprocess.run(
        [BIN / "manymodels", "train", spec, data, "--registry", reg, "--backend", "local",
         "--resume", run.run_id, "--json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout)["run"]
    assert out["run_id"] == run.run_id and out["status"] == "completed"
    assert out["n_trained"] == n
    with Registry.open(reg) as r:
        assert r.count_partitions() == n + 1
        assert all(p.latest_version == 1 for p in r.list_partitions(limit=n + 1))
        report = collect(r, grace_seconds=0, dry_run=True)
        # artifacts of the killed chunk may be orphans; nothing a version references is one
        referenced = r.store.referenced_digests()
        assert all(r.artifacts.exists(d) for d in referenced)
        assert report.versions_deleted == []


# ------------------------------------------------------------------------ gc
def test_gc_retention_and_orphans(tmp_path: Path) -> None:
    df = linear_frame(2, 40)
    spec = spec_dict(promotion={"policy": "manual"}, fallback={"enabled": False})
    for i in range(3):
        train(spec, df.assign(y=df["y"] + i), tmp_path / "reg", backend="local")
    with Registry.open(tmp_path / "reg") as reg:
        orphan, _ = reg.artifacts.put(b"left behind by a crashed run")
        old = reg.get_version("pid=0", 2).artifact_sha256
        # the candidate alias moved off v2 seconds ago: no alias grace, to test retention alone
        dry = collect(reg, keep=1, grace_seconds=0, alias_grace_seconds=0, dry_run=True)
        assert sorted(dry.versions_deleted) == [("pid=0", 2), ("pid=1", 2)]
        assert reg.artifacts.exists(old) and reg.artifacts.exists(orphan)  # dry run: untouched

        young = collect(reg, grace_seconds=3600)
        assert young.artifacts_deleted == 0 and young.artifacts_kept_young == 1

        report = collect(reg, keep=1, grace_seconds=0, alias_grace_seconds=0)
        assert sorted(report.versions_deleted) == [("pid=0", 2), ("pid=1", 2)]
        assert not reg.artifacts.exists(old) and not reg.artifacts.exists(orphan)
        # production (v1) and the newest (v3, the candidate) survive and still load
        assert [v.version for v in reg.list_versions("pid=0")] == [3, 1]
        assert reg.load_model("pid=0").version.version == 1
        assert reg.load_model("pid=0", alias="candidate").version.version == 3


def test_gc_removes_old_leftovers_of_killed_writers_only(tmp_path: Path) -> None:
    train(spec_dict(), linear_frame(1, 30), tmp_path / "reg", backend="local")
    with Registry.open(tmp_path / "reg") as reg:
        digest = reg.get_version("pid=0", 1).artifact_sha256
        folder = Path(reg.artifacts.url) / digest[:2] / digest[2:4]
        old, fresh = folder / f".tmp-{digest}-1-dead-0", folder / f".tmp-{digest}-2-live-0"
        old.write_bytes(b"half a model")
        fresh.write_bytes(b"being written")
        os.utime(old, (time.time() - 7200, time.time() - 7200))

        dry = collect(reg, grace_seconds=3600, dry_run=True)
        assert dry.temp_files_deleted == 1 and old.exists()
        report = collect(reg, grace_seconds=3600)
        assert (report.temp_files_deleted, report.bytes_freed) == (1, len(b"half a model"))
        assert not old.exists() and fresh.exists()
        assert reg.load_model("pid=0").version.version == 1  # the real artifact is untouched

    out = CliRunner().invoke(
        app, ["gc", "--registry", str(tmp_path / "reg"), "--grace-seconds", "0"]
    )
    assert out.exit_code == 0 and "1 leftover temp file(s)" in out.stdout, out.output


def test_gc_cli(tmp_path: Path) -> None:
    train(spec_dict(), linear_frame(1, 30), tmp_path / "reg", backend="local")
    out = CliRunner().invoke(app, ["gc", "--registry", str(tmp_path / "reg"), "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["artifacts_deleted"] == 0


def test_gc_keeps_training_data_a_run_records_as_its_source(tmp_path: Path) -> None:
    df = linear_frame(1, 30)
    with Registry(tmp_path / "reg") as reg:
        sha, _ = reg.artifacts.put(df.to_parquet(index=False))
        summary = train(
            spec_dict(), df, reg, backend="local", source=f"artifact:{sha}", notes={"rows": 30}
        )
        run = reg.get_run(summary.run.run_id)
        assert run.data_source == f"artifact:{sha}" and run.options["rows"] == 30
        report = collect(reg, grace_seconds=0)
        assert report.artifacts_deleted == 0 and reg.artifacts.exists(sha)
        assert pd.read_parquet(io.BytesIO(reg.artifacts.get(sha))).equals(df)


class _FirstTaskDies(InProcessBackend):
    """A backend whose first task dies the way a crashed worker's does: the Backend protocol
    yields the exception in place of the result."""

    def map_unordered(self, fn: Any, items: Any, *shared: Any) -> Any:
        for i, result in super().map_unordered(fn, items, *shared):
            yield i, (RuntimeError("worker died (OOM)") if i == 0 else result)


def test_resume_retrains_partitions_whose_task_died(tmp_path: Path) -> None:
    from manymodels.exceptions import TrainingError

    df = linear_frame(12, 30)
    spec = spec_dict(fallback={"enabled": False})
    from manymodels.exceptions import RunFailed

    with pytest.raises(RunFailed, match="lost to infrastructure faults") as caught:
        train(spec, df, tmp_path / "reg", backend=_FirstTaskDies())
    first = caught.value.summary
    run = first.run
    assert run.status == "failed" and 0 < run.n_failed < 12  # incomplete: never "completed"
    assert f"--resume {run.run_id}" in str(caught.value)
    assert {f.status for f in first.failures} == {"lost"}
    assert "worker died" in first.failures[0].message

    with pytest.raises(TrainingError, match="different data"):
        train(spec, df.assign(y=df["y"] + 1), tmp_path / "reg", backend="local", resume=run.run_id)
    resumed = train(spec, df, tmp_path / "reg", backend="local", resume=run.run_id)
    assert resumed.run.run_id == run.run_id
    assert (resumed.run.n_trained, resumed.run.n_failed) == (12, 0)
    with Registry.open(tmp_path / "reg") as reg:
        assert all(p.latest_version == 1 for p in reg.list_partitions(limit=100))
    with pytest.raises(TrainingError, match="already completed"):
        train(spec, df, tmp_path / "reg", backend="local", resume=run.run_id)


# ------------------------------------------------------------------------ gc vs rollback
def test_rollback_after_gc_skips_deleted_versions(tmp_path: Path) -> None:
    """gc --keep deletes versions production once pointed at; a later rollback must not move
    production (of a partition or of the fallback) onto one of them."""
    from serving.service import ModelService

    df = linear_frame(2, 40)
    spec = spec_dict(promotion={"policy": "always"})
    for i in range(4):
        train(spec, df.assign(y=df["y"] + i), tmp_path / "reg", backend="local")
    runner = CliRunner()
    where = ["--registry", str(tmp_path / "reg")]
    out = runner.invoke(
        app, ["gc", *where, "--keep", "2", "--grace-seconds", "0", "--alias-grace-seconds", "0",
              "--json"],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    assert ["pid=0", 1] in json.loads(out.stdout)["versions_deleted"]

    out = runner.invoke(app, ["rollback", "pid=0", *where])
    assert out.exit_code == 0 and "production v4 → v3" in out.stdout, out.output
    none = runner.invoke(app, ["rollback", "pid=0", *where])  # v2 and v1 are gone
    assert none.exit_code == 1 and "no earlier 'production' version" in none.stderr
    with Registry.open(tmp_path / "reg") as reg:
        assert reg.load_model("pid=0").version.version == 3
        assert reg.rollback(FALLBACK_KEY).to_version == 3
        with pytest.raises(NothingToRollBack):
            reg.rollback(FALLBACK_KEY)
        assert reg.load_model(FALLBACK_KEY).version.version == 3
        service = ModelService(reg)
        service.start()
        target = service.resolve("pid=12345")  # an unknown key: served by the fallback
        assert (target.key, target.version) == (FALLBACK_KEY, 3)
        assert service.model(target).version == 3


def _three_versions(root: Path) -> None:
    """One partition (pid=0) trained three times on other targets under a manual policy:
    versions 1, 2 and 3, production on v1."""
    df = linear_frame(1, 40)
    spec = spec_dict(promotion={"policy": "manual"}, fallback={"enabled": False})
    for i in range(3):
        train(spec, df.assign(y=df["y"] + i), root, backend="local")


def test_rollback_skips_a_deleted_version_to_an_older_one_that_exists(tmp_path: Path) -> None:
    _three_versions(tmp_path / "reg")
    with Registry.open(tmp_path / "reg") as reg:
        reg.promote("pid=0", 2)
        reg.promote("pid=0", 3)  # production history 1 → 2 → 3
        reg.set_alias("pid=0", "pinned", 1, reason="kept for audit")  # v1 survives gc
        report = collect(reg, keep=1, grace_seconds=0, alias_grace_seconds=0)
        assert report.versions_deleted == [("pid=0", 2)]
        move = reg.rollback("pid=0")
        assert (move.from_version, move.to_version, move.reason) == (3, 1, "rollback from v3")
        assert reg.load_model("pid=0").version.version == 1
        with pytest.raises(NothingToRollBack):
            reg.rollback("pid=0")
        reg.promote("pid=0", 3)
        assert reg.rollback("pid=0").to_version == 1  # the replayed history stays consistent


def test_rollback_never_moves_production_onto_itself(tmp_path: Path) -> None:
    """Production went 1 → 2 and back to 1 by hand; gc deleted v2. A rollback's history
    leads to v2, gone, then to v1, production itself: it 'moved' v1 onto v1 (from_version 1,
    to_version 1, a 200 saying moved over HTTP) and wrote that move to the history. Nothing
    earlier is left: NothingToRollBack, and nothing written."""
    _three_versions(tmp_path / "reg")
    with Registry.open(tmp_path / "reg") as reg:
        reg.promote("pid=0", 2)
        reg.promote("pid=0", 1)  # production history 1 → 2 → 1
        report = collect(reg, keep=1, grace_seconds=0, alias_grace_seconds=0)
        assert report.versions_deleted == [("pid=0", 2)]
        before = reg.alias_history("pid=0", "production")
        with pytest.raises(NothingToRollBack):
            reg.rollback("pid=0")
        assert reg.alias_history("pid=0", "production") == before
        reg.promote("pid=0", 3)
        assert reg.rollback("pid=0").to_version == 1  # an earlier version other than itself


def test_forecast_says_when_a_production_version_is_missing(tmp_path: Path) -> None:
    from manymodels.exceptions import RegistryError
    from manymodels.forecasting import forecast

    train(spec_dict(), linear_frame(2, 40), tmp_path / "reg", backend="local")
    with sqlite3.connect(tmp_path / "reg" / "registry.db") as raw:  # what a racing gc leaves
        raw.execute("DELETE FROM model_versions WHERE key = 'pid=1' AND version = 1")
    raw.close()
    with pytest.raises(RegistryError, match=r"'pid=1 v1' is missing from the registry"):
        forecast(tmp_path / "reg", horizon=2)
    with pytest.raises(RegistryError, match="missing from the registry"):
        forecast(tmp_path / "reg", ["pid=1"], horizon=2)
    assert len(forecast(tmp_path / "reg", ["pid=0"], horizon=2)) == 2


def test_without_a_time_column_the_champion_is_refitted_not_graded_on_its_own_rows(
    tmp_path: Path,
) -> None:
    """No time column: which validation rows the champion saw cannot be told, and scored as
    served it graded itself on its training rows (MAE 0.0 for a tree) and was never beaten."""
    df = linear_frame(2, 40)
    spec = spec_dict(
        time_column=None,
        candidates=[{"estimator": "sklearn.tree.DecisionTreeRegressor"}],
        promotion={"policy": "if_better"},
    )
    train(spec, df, tmp_path / "reg", backend="local")
    corrected = df.assign(y=np.where(df.index == 5, df.y + 100, df.y))
    train(spec, corrected, tmp_path / "reg", backend="local")
    with Registry.open(tmp_path / "reg") as reg:
        ev = reg.get_version("pid=0", 2).evaluation
        assert ev["basis"] == "refit" and ev["champion_score"] < 0
        assert ev["promote"], ev["reason"]


def test_the_same_data_again_is_kept_not_promoted(tmp_path: Path) -> None:
    """A tie promotes the fresher model, but byte-identical bytes are not fresher: moving
    production would only lengthen the alias history (and make rollback a no-op)."""
    df = linear_frame(2, 40)
    for _ in range(3):
        train(spec_dict(), df, tmp_path / "reg", backend="local")
    with Registry.open(tmp_path / "reg") as reg:
        ev = reg.get_version("pid=0", 3).evaluation
        assert not ev["promote"] and ev["reason"] == "identical to champion v1 (same bytes); kept"
        assert production(reg)["pid=0"] == 1
        assert [m.action for m in reg.alias_history("pid=0", "production")] == ["first"]
