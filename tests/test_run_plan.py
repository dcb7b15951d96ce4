"""``manymodels.run_plan``: what a run may train into a registry before anything is recorded."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from factories import linear_frame, spec_dict
from sklearn.linear_model import Ridge
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.exceptions import DataError, RunFailed
from manymodels.partition import FALLBACK_KEY
from manymodels.pipeline import train
from manymodels.registry import Registry


def test_a_spec_keyed_otherwise_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    """`manymodels train users.toml users.csv` without --registry trained the per-user spec
    into ./mmregistry beside the per-store partitions: its partitions could not be scored
    (`score`, `/v1/predict` want the registry's key columns) and its fallback became a
    challenger to the stores' fallback. Refused now, naming both keyings; the registry is
    as it was (no run, the fallback's versions unchanged)."""
    reg_dir = tmp_path / "mmregistry"
    stores = linear_frame(3, 30)
    train(spec_dict(name="stores"), stores, reg_dir, backend="local")
    users = stores.rename(columns={"pid": "user"})
    with pytest.raises(DataError, match=r"keyed by pid; spec 'users' keys them by user"):
        train(spec_dict(name="users", partition_by=["user"]), users, reg_dir, backend="local")
    csv = tmp_path / "users.csv"
    users.to_csv(csv, index=False)
    spec = tmp_path / "users.toml"
    spec.write_text('name = "users"\npartition_by = ["user"]\ntarget = "y"\ntime_column = "t"\n'
                    '[[candidates]]\nestimator = "sklearn.linear_model.Ridge"\n')  # fmt: skip
    result = CliRunner().invoke(app, ["train", str(spec), str(csv), "--registry", str(reg_dir)])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and result.output.startswith("error: registry ")
    assert "--registry DIR" in result.output
    with Registry.open(reg_dir) as reg:
        assert len(reg.list_runs()) == 1
        assert [v.version for v in reg.list_versions(FALLBACK_KEY)] == [1]
    # the same keys (another spec of the same partitions) still train in
    summary = train(spec_dict(name="again"), stores, reg_dir, backend="local")
    assert summary.run.n_failed == 0


def test_keys_of_a_first_run_that_trained_nothing_do_not_key_the_registry(tmp_path: Path) -> None:
    """A first run whose every partition failed recorded its keys and trained nothing: the
    next spec, keyed otherwise, was refused as if the registry "holds partitions keyed by
    user" (it holds none), and a registry trained before that refusal kept the dead run's
    keys, so `score` and `/v1/predict` asked for a column no partition has. Now the spec
    trains and the registry is keyed by it."""
    reg_dir = tmp_path / "mmregistry"
    users = linear_frame(3, 30).rename(columns={"pid": "user"})
    failing = [{"estimator": "factories:fails_on_many_rows", "params": {"limit": [2]}}]
    with pytest.raises(RunFailed):
        train(spec_dict(name="users", partition_by=["user"], candidates=failing), users,
              reg_dir, backend="local")  # fmt: skip
    summary = train(spec_dict(name="stores"), linear_frame(3, 30), reg_dir, backend="local")
    assert summary.run.n_trained == 3
    with Registry.open(reg_dir) as reg:
        assert reg.partition_by == ["pid"]
    # and the registry is keyed now: the first spec is refused
    with pytest.raises(DataError, match=r"keyed by pid; spec 'users' keys them by user"):
        train(spec_dict(name="users", partition_by=["user"]), users, reg_dir, backend="local")


def test_a_spec_over_other_partitions_does_not_replace_the_registrys_fallback(
    tmp_path: Path,
) -> None:
    """Two specs keyed alike trained into one registry over other partitions (pid 0–2 and
    pid 3–5, the second's sales a thousand times the first's): the second's fallback became
    the production fallback, and the first spec's unknown keys were answered by a model of
    the second's rows. Now the second spec's partitions train and its fallback does not,
    with a warning saying why; a spec over the same partitions still replaces it."""
    reg_dir = tmp_path / "mmregistry"
    frame = linear_frame(6, 30)
    north, south = frame[frame["pid"] < 3], frame[frame["pid"] >= 3].assign(y=lambda d: d.y * 1e3)
    train(spec_dict(name="north"), north, reg_dir, backend="local")
    csv, spec = tmp_path / "south.csv", tmp_path / "south.toml"
    south.to_csv(csv, index=False)
    spec.write_text('name = "south"\npartition_by = ["pid"]\ntarget = "y"\ntime_column = "t"\n'
                    '[[candidates]]\nestimator = "sklearn.linear_model.Ridge"\n')  # fmt: skip
    result = CliRunner().invoke(app, ["train", str(spec), str(csv), "--registry", str(reg_dir)])
    assert result.exit_code == 0, result.output
    said = "fallback model (v1) was trained by spec 'north'"
    assert said in result.output and "its fallback was not trained" in result.output
    with Registry.open(reg_dir) as reg:
        (newest, _) = reg.list_runs()
        assert newest.spec_name == "south" and newest.n_trained == 3
        assert any(said in w for w in newest.options["warnings"])
        fallbacks = reg.list_versions(FALLBACK_KEY)
        assert [(v.version, v.aliases) for v in fallbacks] == [(1, ("production",))]
    again = train(spec_dict(name="north"), north, reg_dir, backend="local")  # its own: retrained
    assert again.fallback == "trained"
    both = train(spec_dict(name="stores"), frame, reg_dir, backend="local")  # the same ones
    assert both.fallback == "trained"


FITTING, GATE = threading.Event(), threading.Event()


class Gated(Ridge):
    """A Ridge whose fits wait for ``GATE``, saying ``FITTING`` first: a run held training
    with its run recorded and no partition committed."""

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> Any:
        FITTING.set()
        assert GATE.wait(120), "the test never opened the gate"
        return super().fit(X, y, sample_weight)


def gated(alpha: float = 1.0) -> Gated:
    return Gated(alpha=alpha)


def test_a_first_run_keyed_otherwise_while_the_first_trains_is_refused(tmp_path: Path) -> None:
    """Two first runs into an empty registry keyed differently: the second, started while
    the first trained (its run recorded, no partition committed yet), found no partition,
    took the registry's key columns and trained too — a registry of pid and user partitions,
    which score and /v1/predict read by one keying. Now the second is refused while the
    first is alive; the first completes, and the registry is keyed by it."""
    reg_dir = tmp_path / "mmregistry"
    stores = linear_frame(2, 30)
    slow = spec_dict(name="stores", candidates=[{"estimator": "test_run_plan:gated"}],
                     fallback={"enabled": False})  # fmt: skip
    first: dict[str, Any] = {}

    def run_first() -> None:
        try:
            first["summary"] = train(slow, stores, reg_dir, backend="local")
        except BaseException as e:  # said by the assertion below
            first["error"] = e

    FITTING.clear()
    GATE.clear()
    thread = threading.Thread(target=run_first)
    thread.start()
    try:
        assert FITTING.wait(120), first
        with Registry.open(reg_dir) as reg:
            assert not reg.store.list_partitions(limit=1) and reg.partition_by == ["pid"]
        users = linear_frame(2, 30).rename(columns={"pid": "user"})
        with pytest.raises(DataError, match=r"spec 'stores' is training into this registry"):
            train(spec_dict(name="users", partition_by=["user"]), users, reg_dir,
                  backend="local")  # fmt: skip
    finally:
        GATE.set()
        thread.join(120)
    assert "error" not in first, first
    assert first["summary"].run.n_trained == 2
    with Registry.open(reg_dir) as reg:
        assert reg.partition_by == ["pid"]
        assert {p.key for p in reg.store.list_partitions(limit=10)} == {"pid=0", "pid=1"}
        assert [r.spec_name for r in reg.list_runs()] == ["stores"]
