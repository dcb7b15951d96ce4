"""A run's outcome a user cannot miss: failures first, non-zero exits, the fallback on usable
rows, missing targets counted, Ctrl-C with its resume command, and no Ray for no work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from factories import interruptible, linear_frame, spec_dict
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.exceptions import RunFailed
from manymodels.partition import FALLBACK_KEY
from manymodels.pipeline import train
from manymodels.registry import Registry

runner = CliRunner()
BIN = Path(sys.executable).parent
SPEC = """
name = "outcome"
partition_by = ["pid"]
target = "y"
time_column = "t"
[[candidates]]
estimator = "sklearn.linear_model.Ridge"
"""


def write(tmp_path: Path, df: pd.DataFrame, spec: str = SPEC) -> tuple[Path, Path]:
    (tmp_path / "spec.toml").write_text(spec)
    df.to_csv(tmp_path / "data.csv", index=False)
    return tmp_path / "spec.toml", tmp_path / "data.csv"


def cli(*args: Any) -> Any:
    return runner.invoke(app, [str(a) for a in args])


# ------------------------------------------------------------------------ one bad partition
def test_an_infinite_feature_no_longer_sinks_the_fallback(tmp_path: Path) -> None:
    """One partition's inf made the pooled fit fail, and every unknown key went unserved."""
    df = linear_frame(4, 30)
    df.loc[(df.pid == 2) & (df.t == 5), "x0"] = np.inf
    df.loc[(df.pid == 3) & (df.t < 3), "y"] = np.nan
    summary = train(spec_dict(), df, tmp_path / "reg", backend="local")
    assert summary.fallback == "trained"
    assert summary.run.n_failed == 1  # pid=2 itself: Ridge refuses its inf
    with Registry.open(tmp_path / "reg") as reg:
        fb = reg.get_version(FALLBACK_KEY)
        assert fb.validation["dropped"] == {"missing_target": 3, "unusable_features": 1}
        assert fb.n_rows == 4 * 30 - 4
        assert reg.get_version("pid=3").validation["dropped"] == {"missing_target": 3}
    assert summary.rows_dropped == {"missing_target": 3}


def test_a_fallback_that_still_fails_fails_the_run(tmp_path: Path) -> None:
    """Every partition trains, the fallback cannot (its candidate rejects the pooled table):
    the run is failed and says so, the partitions stay committed."""
    df = linear_frame(3, 30)
    df["x1"] = df["pid"] * 1.0  # fine per partition (constant), pooled fine too …
    spec = spec_dict(
        candidates=[{"estimator": "factories:fails_on_many_rows", "params": {"limit": 40}}],
    )
    with pytest.raises(RunFailed, match="the fallback model failed") as caught:
        train(spec, df, tmp_path / "reg", backend="local")
    summary = caught.value.summary
    assert summary.run.status == "failed" and summary.run.n_trained == 3
    assert summary.fallback is not None and summary.fallback.startswith("failed: ")
    with Registry.open(tmp_path / "reg") as reg:
        assert not reg.has_fallback()
        assert reg.get_version("pid=1").version == 1


# ------------------------------------------------------------------------ missing targets
def test_missing_targets_are_counted_in_the_run_and_the_cli_summary(tmp_path: Path) -> None:
    df = linear_frame(3, 30)
    df.loc[df.index[df.pid == 1][:4], "y"] = np.nan
    spec, data = write(tmp_path, df)
    res = cli("train", spec, data, "--registry", tmp_path / "reg", "--backend", "local")
    assert res.exit_code == 0, res.output
    first = res.stdout.splitlines()[0]
    assert first.index("0 failed") < first.index("3 trained")  # failures named first
    assert "rows left out of training: 4 missing target" in res.stdout
    with Registry.open(tmp_path / "reg") as reg:
        assert reg.list_runs()[0].options["rows_dropped"] == {"missing_target": 4}


# ------------------------------------------------------------------------ exit codes
def test_no_partition_trained_exits_non_zero_and_shows_the_failures(tmp_path: Path) -> None:
    df = linear_frame(3, 30)
    df["x0"] = np.nan  # every partition fails, and the fallback is left nothing
    spec, data = write(tmp_path, df, SPEC + "[fallback]\nenabled = false\n")
    res = cli("train", spec, data, "--registry", tmp_path / "reg", "--backend", "local")
    assert res.exit_code == 1, res.output
    assert "3 failed" in res.stdout.splitlines()[0]
    assert "pid=0" in res.stdout  # the failures table came before the error
    (line,) = res.stderr.strip().splitlines()  # one line, naming the first failure's reason
    assert line.startswith(
        "error: no partition trained: 3 of 3 failed, 0 skipped (the first, pid=0: "
    )
    with Registry.open(tmp_path / "reg") as reg:
        assert reg.list_runs()[0].status == "failed"


def test_no_partition_trained_names_a_partitions_reason_when_the_fallback_failed_too(
    tmp_path: Path,
) -> None:
    """The fallback's outcome sorts first (``__fallback__`` before ``pid=…``): read as the
    run's first failure, it hid every partition's, and the line named no reason."""
    spec = spec_dict(
        candidates=[{"estimator": "factories:fails_on_many_rows", "params": {"limit": 20}}],
    )  # 24 training rows a partition, 72 pooled: each one fails, the fallback too
    with pytest.raises(RunFailed) as caught:
        train(spec, linear_frame(3, 30), tmp_path / "reg", backend="local")
    assert caught.value.summary.fallback is not None
    assert caught.value.summary.fallback.startswith("failed: ")
    assert str(caught.value).startswith(
        "no partition trained: 3 of 3 failed, 0 skipped (the first, pid=0: all 1 candidate "
    )


@pytest.mark.parametrize(("fraction", "code"), [("0.2", 1), ("0.25", 0), ("1", 0)])
def test_max_failed_fraction(tmp_path: Path, fraction: str, code: int) -> None:
    df = linear_frame(4, 30)
    df.loc[df.pid == 1, "x0"] = np.nan  # 1 of 4 partitions fails: 25 %
    spec, data = write(tmp_path, df)
    res = cli(
        "train", spec, data, "--registry", tmp_path / "reg", "--backend", "local",
        "--max-failed-fraction", fraction,
    )  # fmt: skip
    assert res.exit_code == code, res.output
    if code:
        assert res.stderr.strip() == (
            "error: 1 of 4 partitions failed (25.0%), more than --max-failed-fraction 0.2 allows"
        )
    with Registry.open(tmp_path / "reg") as reg:
        assert reg.count_partitions() == 4  # 3 partitions + the fallback, kept either way


def test_max_failed_fraction_out_of_range_is_a_usage_error(tmp_path: Path) -> None:
    spec, data = write(tmp_path, linear_frame(2, 30))
    res = cli("train", spec, data, "--registry", tmp_path / "reg", "--max-failed-fraction", "2")
    assert res.exit_code == 2
    assert res.stderr.startswith("error: --max-failed-fraction")
    assert not (tmp_path / "reg").exists()


# ------------------------------------------------------------------------ bad tables
def test_a_header_only_csv_says_the_table_has_no_rows(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("pid,t,x0,x1,y\n")
    spec, _ = write(tmp_path, linear_frame(1, 5))
    res = cli("train", spec, tmp_path / "empty.csv", "--registry", tmp_path / "reg")
    assert res.exit_code == 2
    assert (
        res.stderr.strip()
        == f"error: {tmp_path / 'empty.csv'}: the table has no rows (only a header?)"
    )
    assert not (tmp_path / "reg").exists()


# ------------------------------------------------------------------------ no work, no Ray
def test_changed_only_with_nothing_changed_starts_no_backend(tmp_path: Path) -> None:
    """11 s of Ray start-up to do nothing: the plan comes first, the backend only for work."""
    script = f"""
import sys
from factories import linear_frame, spec_dict
from manymodels.pipeline import train
df = linear_frame(3, 30)
train(spec_dict(), df, {str(tmp_path / "reg")!r}, backend="local")
summary = train(spec_dict(), df, {str(tmp_path / "reg")!r}, backend="ray", changed_only=True)
print(summary.run.n_partitions, summary.startup_seconds, "ray" in sys.modules)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=Path(__file__).parent, capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["0", "0.0", "False"]


# ------------------------------------------------------------------------ lost partitions
def test_lost_partitions_are_not_called_failed_and_the_advice_names_the_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk under the artifact store loses partitions: the summary said "N failed"
    though the registry records them ``lost``, and the error's `runs show` and `--resume`
    commands left out --registry-db/--artifacts, so copied as printed they opened ./mmregistry."""
    import errno
    import shlex

    import manymodels.artifacts

    written = [0]
    real_write = manymodels.artifacts.write_all

    def fills_up(fd: int, data: bytes) -> None:
        written[0] += 1
        if written[0] > 6:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(fd, data)

    monkeypatch.setattr(manymodels.artifacts, "write_all", fills_up)
    monkeypatch.chdir(tmp_path)  # where ./mmregistry would be
    spec, data = write(tmp_path, linear_frame(12, 30), SPEC + "[fallback]\nenabled = false\n")
    db, store = f"sqlite:///{tmp_path / 'elsewhere.db'}", str(tmp_path / "store")
    res = cli("train", spec, data, "--registry-db", db, "--artifacts", store, "--backend", "local")
    assert res.exit_code == 1, res.output
    with Registry(db_url=db, artifacts=store) as reg:
        run = reg.list_runs()[0]
        lost = len(reg.store.run_outcomes(run.run_id, status="lost"))
        assert 0 < lost < 12 and run.n_failed == lost  # the row counts them in n_failed
    first, last = res.stdout.splitlines()[0], res.stdout.strip().splitlines()[-1]
    assert f"failed: {lost} lost, 0 failed, {12 - lost} trained" in first
    assert f" · 0 failed · {lost} lost · " in last
    where = f"--registry-db {db} --artifacts {store}"
    assert f"next: manymodels runs show {run.run_id} {where}" in last
    error = res.stderr.strip().splitlines()[-1]
    assert error.startswith(f"error: {lost} of 12 partition(s) were lost to infrastructure")
    assert f"see `manymodels runs show {run.run_id} {where}`" in error
    again = ["manymodels", "train", str(spec), str(data), "--registry-db", db, "--artifacts",
             store, "--backend", "local", "--resume", run.run_id]  # fmt: skip
    assert error.endswith(f"once fixed, finish the run with: {shlex.join(again)}")
    said = " ".join(res.stdout.split())  # "run failed: …", wrapped by Rich
    assert f"run failed: {error.removeprefix('error: ')}" in said

    monkeypatch.setattr(manymodels.artifacts, "write_all", real_write)  # room again
    shown = cli(*shlex.split(error.split("see `", 1)[1].split("`")[0])[1:])
    assert shown.exit_code == 0 and run.run_id in shown.stdout, shown.output
    resumed = cli(*again[1:], "--json")
    assert resumed.exit_code == 0, resumed.output
    out = json.loads(resumed.stdout)["run"]
    assert (out["run_id"], out["status"], out["n_trained"]) == (run.run_id, "completed", 12)
    assert json.loads(resumed.stdout)["lost"] == 0


# ------------------------------------------------------------------------ Ctrl-C
@pytest.mark.slow
def test_ctrl_c_prints_the_exact_resume_command_and_it_works(tmp_path: Path) -> None:
    from manymodels.samples import synthetic

    n = 3000
    synthetic(n, 40).to_parquet(tmp_path / "big.parquet")
    spec, _ = write(tmp_path, linear_frame(1, 5))
    reg = tmp_path / "reg"
    with interruptible():
        proc = subprocess.Popen(
            [BIN / "manymodels", "train", spec, tmp_path / "big.parquet", "--registry", reg,
             "--backend", "local"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and _committed(reg / "registry.db") == 0:
            assert proc.poll() is None, "the run ended before its first commit was seen"
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be interrupted"
        os.kill(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    with Registry.open(reg) as r:
        run = r.list_runs()[0]
        assert run.status == "interrupted"
    line = err.strip().splitlines()[-1]
    assert line.startswith(
        f"interrupted: run {run.run_id} keeps what it committed; finish it with: "
    )
    command = line.split("finish it with: ", 1)[1]
    assert command.endswith(f"--resume {run.run_id}")
    import shlex

    words = shlex.split(command)
    res = subprocess.run(
        [BIN / words[0], *words[1:], "--json"], capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout)["run"]
    assert (out["run_id"], out["status"], out["n_trained"]) == (run.run_id, "completed", n)


def _committed(db: Path) -> int:
    """Versions committed so far, read with sqlite3 while the run writes (and before the
    registry exists at all)."""
    import sqlite3

    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return int(conn.execute("select count(*) from model_versions").fetchone()[0])
    except sqlite3.Error:
        return 0


def test_every_partition_too_small_but_the_fallback_serving_them_is_a_success(
    tmp_path: Path,
) -> None:
    """A valid setup: tiny partitions, one pooled model serves them all."""
    summary = train(spec_dict(min_rows=50), linear_frame(10, 8), tmp_path / "reg",
                    backend="local")  # fmt: skip
    assert (summary.run.status, summary.run.n_skipped, summary.fallback) == (
        "completed", 10, "trained"
    )  # fmt: skip
    # … and what a spec's mistake looks like too, so it says so, with the first reason
    (warning,) = summary.run.options["warnings"]
    assert warning.startswith("no partition trained a model in this run: all 10 were skipped")
    assert "(the first, pid=" in warning and "< min_rows 50" in warning
    partly = train(spec_dict(min_rows=10), linear_frame(3, 12).query("pid != 1 or t < 5"),
                   tmp_path / "reg3", backend="local")  # fmt: skip
    assert partly.run.n_skipped == 1  # one skipped of three is no spec's mistake: not said
    assert not [w for w in partly.run.options.get("warnings", []) if "skipped" in w]
    # without a fallback nothing would serve them: that run trained nothing, and fails
    with pytest.raises(
        RunFailed, match=r"0 of 10 failed, 10 skipped \(the first, pid=.*< min_rows 50"
    ):
        train(spec_dict(min_rows=50, fallback={"enabled": False}), linear_frame(10, 8),
              tmp_path / "reg2", backend="local")  # fmt: skip


def test_a_skipped_partition_says_how_many_rows_were_left_out(tmp_path: Path) -> None:
    df = linear_frame(2, 30)
    df.loc[df.index[df.pid == 1][:25], "y"] = np.nan
    summary = train(spec_dict(), df, tmp_path / "reg", backend="local")
    with Registry.open(tmp_path / "reg") as reg:
        (skipped,) = reg.store.run_outcomes(summary.run.run_id, status="skipped")
    assert skipped.message == ("5 rows < min_rows 10 (25 more left out: 25 missing target)")


def test_changed_only_again_with_only_too_small_partitions_left_is_a_success(
    tmp_path: Path,
) -> None:
    """Partitions below min_rows have no version; skipped on the same data under the same spec
    they are unchanged (they were trained, and skipped, at every run: test_contract_changed_only),
    and a run with nothing else to train, the fallback from before serving them, did its job."""
    df = pd.concat(
        [linear_frame(3, 30), linear_frame(2, 5, seed=3).assign(pid=lambda d: d.pid + 10)]
    )
    train(spec_dict(), df, tmp_path / "reg", backend="local")
    again = train(spec_dict(), df, tmp_path / "reg", backend="local", changed_only=True)
    assert (again.run.status, again.run.n_partitions, again.run.n_skipped) == ("completed", 0, 0)
    assert again.run.options["unchanged"] == 5


def test_a_run_that_trained_nothing_names_a_partitions_reason_not_the_fallbacks(
    tmp_path: Path,
) -> None:
    """The fallback's outcome sorts first among the run's (``__fallback__``): a run whose
    partitions and fallback were all skipped (lags longer than every series) must still
    name a partition's reason in its one line."""
    with pytest.raises(RunFailed) as raised:
        train(spec_dict(lags=[100]), linear_frame(3, 30), tmp_path / "reg", backend="local")
    assert raised.value.summary.fallback is not None
    assert raised.value.summary.fallback.startswith("skipped")  # the fallback was skipped too
    assert "0 of 3 failed, 3 skipped (the first, pid=0: " in str(raised.value)
    assert "30 undefined lags" in str(raised.value)
