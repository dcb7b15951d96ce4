"""Tests for manymodels.pipeline: end-to-end runs on real Ray and in process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from factories import RIDGE, linear_frame, spec_dict

import manymodels
from manymodels import console
from manymodels.exceptions import DataError, PartitionNotFound, TrainingError
from manymodels.execution import InProcessBackend
from manymodels.partition import FALLBACK_KEY
from manymodels.pipeline import Progress, train
from manymodels.registry import Registry
from manymodels.samples import synthetic
from manymodels.scoring import score
from manymodels.spec import Spec


def outcomes(reg: Registry, run_id: str, status: str) -> dict[str, tuple[str, str]]:
    return {o.key: (o.error_type, o.message) for o in reg.store.run_outcomes(run_id, status=status)}


# ------------------------------------------------------------------------------ isolation
def test_poisoned_partitions_fail_alone_on_ray(ray_session: Any, tmp_path: Path) -> None:
    df = synthetic(8, 30)
    df.loc[df.pid == 1, "y"] = np.nan  # all-NaN target
    df.loc[df.pid == 2, "x0"] = np.nan  # a degenerate column Ridge refuses
    spec = spec_dict(fallback={"enabled": False}, missing_target="error")
    summary = train(spec, df, tmp_path / "reg", backend="ray")
    run = summary.run
    assert (run.status, run.n_partitions, run.n_trained, run.n_failed) == ("completed", 8, 6, 2)
    with Registry.open(tmp_path / "reg") as reg:
        failed = outcomes(reg, run.run_id, "failed")
        assert failed == {
            "pid=1": (
                "ValueError",
                "target 'y' has 30 missing value(s) of 30 "
                '(missing_target = "error"; "drop" leaves those rows out)',
            ),
            "pid=2": (
                "ValueError",
                "all 1 candidate fit(s) failed; first: ValueError: Input X contains NaN. "
                "(missing values in feature(s) 'x0': up to 30 of 30 rows)",
            ),
        }
        assert {o.key for o in summary.failures} == {"pid=1", "pid=2"}
        assert len(outcomes(reg, run.run_id, "trained")) == 6
        for pid in (0, 3, 4, 5, 6, 7):
            assert reg.get_version({"pid": pid}).version == 1
        with pytest.raises(PartitionNotFound):
            reg.get_partition({"pid": 1})
        assert reg.count_partitions() == 6


def test_a_single_class_partition_is_a_constant_model_not_a_failure(tmp_path: Path) -> None:
    df = synthetic(5, 40, task="classification")
    df.loc[df.pid == 3, "y"] = 1  # a constant target: LogisticRegression cannot fit one class
    spec = spec_dict(
        task="classification",
        candidates=[{"estimator": "sklearn.linear_model.LogisticRegression"}],
        fallback={"enabled": False},
    )
    summary = train(spec, df, tmp_path / "reg", backend="local")
    assert (summary.run.n_trained, summary.run.n_failed) == (5, 0), summary.failures
    assert summary.chosen.get("single_class") == 1
    with Registry.open(tmp_path / "reg") as reg:
        loaded = reg.load_model("pid=3")
        assert loaded.version.validation["chosen"] == "single_class"
        rows = df[df.pid == 3].head(3)
        assert list(loaded.predict(rows)) == [1, 1, 1]
        assert (loaded.predict_proba(rows)[:, list(loaded.model.classes_).index(1)] > 0.5).all()


# ------------------------------------------------------------------------------ keys, fallback
def test_composite_keys_end_to_end_on_ray(
    ray_session: Any, samples_dir: Path, tmp_path: Path
) -> None:
    summary = train(
        samples_dir / "store_sales.toml", samples_dir / "store_sales.csv", tmp_path / "reg",
        backend="ray",
    )  # fmt: skip
    run = summary.run
    assert (run.n_partitions, run.n_trained, run.n_skipped, run.n_failed) == (36, 34, 2, 0)
    assert run.spec_hash == Spec.from_toml(samples_dir / "store_sales.toml").spec_hash
    assert summary.versions[FALLBACK_KEY] == 1
    with Registry.open(tmp_path / "reg") as reg:
        part = reg.get_partition({"store": 1, "brand": "tropicana"})
        assert part.key == "store=1,brand=tropicana"
        assert part.key_values == {"store": 1, "brand": "tropicana"}
        loaded = reg.load_model("store=1,brand=tropicana")
        sales = pd.read_csv(samples_dir / "store_sales.csv")
        rows = sales[(sales.store == 1) & (sales.brand == "tropicana")]
        assert loaded.model.predict(rows[["price", "deal", "feat"]].to_numpy()).shape == (60,)
        assert loaded.version.n_rows == 60
        assert reg.has_fallback()
        assert reg.count_partitions() == 35  # 34 partitions + the fallback


def test_min_rows_partitions_are_skipped_and_served_by_the_fallback(tmp_path: Path) -> None:
    df = linear_frame(5, 30)
    df = df[~(df.pid.isin([1, 3]) & (df.t >= 12))]  # two partitions with 12 rows
    summary = train(spec_dict(min_rows=20), df, tmp_path / "reg", backend="local")
    run = summary.run
    assert (run.n_partitions, run.n_trained, run.n_skipped, run.n_failed) == (5, 3, 2, 0)
    with Registry.open(tmp_path / "reg") as reg:
        skipped = outcomes(reg, run.run_id, "skipped")
        assert skipped == {
            "pid=1": ("PartitionSkipped", "12 rows < min_rows 20"),
            "pid=3": ("PartitionSkipped", "12 rows < min_rows 20"),
        }
        fallback = reg.get_version(FALLBACK_KEY)
        assert fallback.n_rows == 3 * 30 + 2 * 12
        assert reg.has_fallback()
        assert reg.get_partition(FALLBACK_KEY).key_values == {}
        with pytest.raises(PartitionNotFound):
            reg.get_partition("pid=1")


# ------------------------------------------------------------------------------ strict
def test_strict_raises_and_marks_the_run_failed(tmp_path: Path) -> None:
    df = linear_frame(4, 30)
    df.loc[df.pid == 2, "y"] = np.nan
    with pytest.raises(TrainingError, match=r"partition 'pid=2' failed \(ValueError: target"):
        train(spec_dict(fallback={"enabled": False}, missing_target="error"), df,
              tmp_path / "reg", backend="local", strict=True)  # fmt: skip
    with Registry.open(tmp_path / "reg") as reg:
        (run,) = reg.list_runs()
        assert run.status == "failed"
        assert run.error is not None
        assert "pid=2" in run.error
        assert run.ended_at is not None


# ------------------------------------------------------------------------------ resume
class StopAfterFirstChunk:
    """A progress callback that interrupts the run once one chunk has been committed."""

    def __init__(self) -> None:
        self.seen: list[Progress] = []

    def __call__(self, progress: Progress) -> None:
        self.seen.append(progress)
        if progress.done:
            raise KeyboardInterrupt


def test_resume_finishes_an_interrupted_run(tmp_path: Path) -> None:
    df = linear_frame(12, 20)
    spec = spec_dict()
    stop = StopAfterFirstChunk()
    with pytest.raises(KeyboardInterrupt):
        train(spec, df, tmp_path / "reg", backend="local", progress=stop)
    with Registry.open(tmp_path / "reg") as reg:
        (run,) = reg.list_runs()
        assert run.status == "interrupted"
        first = reg.store.recorded_keys(run.run_id)
    done_first = stop.seen[-1].done
    assert 0 < done_first < 12
    assert FALLBACK_KEY in first  # the fallback task runs before the chunks
    assert len(first - {FALLBACK_KEY}) == done_first

    summary = train(spec, df, tmp_path / "reg", backend="local", resume=run.run_id)
    assert summary.run.run_id == run.run_id
    assert summary.run.status == "completed"
    assert (summary.run.n_partitions, summary.run.n_trained) == (12, 12)
    assert set(summary.versions) == {f"pid={i}" for i in range(12)} - first
    with Registry.open(tmp_path / "reg") as reg:
        assert len(reg.list_runs()) == 1
        for i in range(12):
            assert [v.version for v in reg.list_versions({"pid": i})] == [1]
        assert [v.version for v in reg.list_versions(FALLBACK_KEY)] == [1]
        assert len(reg.store.run_outcomes(run.run_id)) == 13


def test_resume_refuses_a_different_spec(tmp_path: Path) -> None:
    df = linear_frame(3, 20)
    with pytest.raises(KeyboardInterrupt):
        train(spec_dict(), df, tmp_path / "reg", backend="local", progress=StopAfterFirstChunk())
    with Registry.open(tmp_path / "reg") as reg:
        run_id = reg.list_runs()[0].run_id
    with pytest.raises(TrainingError, match="different spec"):
        train(spec_dict(seed=7), df, tmp_path / "reg", backend="local", resume=run_id)


def test_resume_keeps_the_partitions_the_run_set_out_to_train(tmp_path: Path) -> None:
    """A full run resumed with ``only`` would end completed with partitions never trained;
    a run of named partitions resumed without them would train every partition: both are
    refused, and the run is left to resume as it was started."""
    df = linear_frame(12, 20)
    root = tmp_path / "reg"
    with pytest.raises(KeyboardInterrupt):
        train(spec_dict(), df, root, backend="local", progress=StopAfterFirstChunk())
    with Registry.open(root) as reg:
        full = reg.list_runs()[0].run_id
    with pytest.raises(TrainingError, match=f"run {full} trains every partition: resume it"):
        train(spec_dict(), df, root, backend="local", resume=full, only=["pid=0"])
    with pytest.raises(TrainingError, match="started without --changed-only"):
        train(spec_dict(), df, root, backend="local", resume=full, changed_only=True)
    with Registry.open(root) as reg:
        assert reg.get_run(full).status == "interrupted"  # nothing reopened
    done = train(spec_dict(), df, root, backend="local", resume=full)
    assert done.run.status == "completed" and done.run.n_trained == 12

    named = ["pid=1", "pid=2", "pid=3"]
    with pytest.raises(KeyboardInterrupt):
        train(spec_dict(), df, root, backend="local", only=named, progress=StopAfterFirstChunk())
    with Registry.open(root) as reg:
        part = reg.list_runs()[0].run_id
    assert part != full
    for wrong in (None, ["pid=1"], ["pid=7", "pid=8", "pid=9"]):  # the same count, too
        with pytest.raises(TrainingError, match="3 partition\\(s\\) named when it started"):
            train(spec_dict(), df, root, backend="local", resume=part, only=wrong)
    with pytest.raises(TrainingError, match="started without --changed-only: resume it without"):
        train(spec_dict(), df, root, backend="local", resume=part, only=named, changed_only=True)
    finished = train(spec_dict(), df, root, backend="local", resume=part, only=named)
    assert finished.run.status == "completed" and finished.run.n_partitions == 3


# ------------------------------------------------------------------------------ runs
def test_progress_reports_every_chunk(tmp_path: Path) -> None:
    seen: list[Progress] = []
    summary = train(spec_dict(), linear_frame(9, 20), tmp_path / "reg", backend="local",
                    progress=seen.append)  # fmt: skip
    assert seen[0] == Progress(total=9, trained=0, skipped=0, failed=0)
    assert [p.done for p in seen] == sorted(p.done for p in seen)
    assert seen[-1] == Progress(total=9, trained=9, skipped=0, failed=0)
    assert summary.run.n_done == 9


def test_retraining_adds_candidates_unless_policy_always(tmp_path: Path) -> None:
    df = linear_frame(2, 20)
    reg_path = tmp_path / "reg"
    train(spec_dict(), df, reg_path, backend="local")
    second = train(spec_dict(promotion={"policy": "manual"}), df, reg_path, backend="local")
    assert second.versions == {"pid=0": 2, "pid=1": 2, FALLBACK_KEY: 2}
    always = spec_dict(promotion={"policy": "always"})
    train(always, df.assign(y=df["y"] + 1), reg_path, backend="local")
    with Registry.open(reg_path) as reg:
        assert reg.get_partition("pid=0").aliases == {"production": 3, "candidate": 2}
        assert [r.status for r in reg.list_runs()] == ["completed"] * 3


def test_a_run_whose_champion_moved_meanwhile_says_it_promoted_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another run or a rollback moves production while a run trains: the run's verdicts no
    longer apply, so its summary and its stored versions must not say it promoted them."""
    df, root = linear_frame(2, 20), tmp_path / "reg"
    always = spec_dict(promotion={"policy": "always"}, fallback={"enabled": False})
    train(always, df, root, backend="local")
    train(always, df.assign(y=df["y"] + 1), root, backend="local")  # v2 in production

    def roll_back_once(progress: Progress) -> None:  # after planning, before any commit
        if progress.done == 0:
            with Registry.open(root) as other:
                other.rollback("pid=0", reason="a colleague's rollback")

    third = train(always, df.assign(y=df["y"] + 2), root, backend="local",
                  progress=roll_back_once)  # fmt: skip
    assert third.decisions == {"overruled": 1, "promoted": 1}
    with Registry.open(root) as reg:
        assert reg.get_partition("pid=0").aliases == {"production": 1, "candidate": 3}
        assert reg.get_partition("pid=1").aliases["production"] == 3
        moved = reg.get_version("pid=0", 3)
        assert moved.decision is not None and not moved.decision.promote
        assert "production moved during the run" in moved.evaluation["reason"]
    console.run_summary(third, ["--registry", str(root)], str(root))
    text = " ".join(capsys.readouterr().out.split())
    assert "retrained: 1 promoted to production, 0 kept the champion" in text
    assert "not promoted: 1 partition whose production moved during the run" in text


def test_only_restricts_the_run(tmp_path: Path) -> None:
    summary = train(spec_dict(fallback={"enabled": False}), linear_frame(5, 20), tmp_path / "reg",
                    backend="local", only=["pid=1", "pid=4"])  # fmt: skip
    assert summary.run.n_partitions == 2
    assert set(summary.versions) == {"pid=1", "pid=4"}


def test_bad_input_creates_no_run(tmp_path: Path) -> None:
    df = linear_frame(2, 20).drop(columns=["x1"])
    with pytest.raises(DataError, match="'x1'"):
        train(spec_dict(features=["x0", "x1"]), df, tmp_path / "reg", backend="local")
    assert not (tmp_path / "reg").exists()  # checked before the registry is even created
    # …and an existing registry is left exactly as it was
    train(spec_dict(), linear_frame(2, 20), tmp_path / "reg", backend="local")
    with pytest.raises(DataError, match="'x1'"):
        train(spec_dict(features=["x0", "x1"]), df, tmp_path / "reg", backend="local")
    with Registry.open(tmp_path / "reg") as reg:
        assert len(reg.list_runs()) == 1


@pytest.mark.parametrize("append", [False, True])
def test_a_missing_data_file_makes_no_registry(tmp_path: Path, append: bool) -> None:
    """``append`` opens the registry before it reads the data (its kept rows): a typo in the
    data's name made ``nd/reg/registry.db``, an empty registry, then said "data file not
    found". It is said before any registry is opened now, as without ``append``."""
    missing = tmp_path / "rows.csv"
    with pytest.raises(DataError, match=f"^{missing}: data file not found$"):
        manymodels.train(spec_dict(), str(missing), tmp_path / "nd" / "reg", append=append)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_an_unknown_backend_records_no_run(tmp_path: Path) -> None:
    # refused once the run was recorded, it stayed 'running' for ever (doctor: unhealthy)
    with pytest.raises(TrainingError, match=r"^unknown backend 'Ray' "):
        train(spec_dict(), linear_frame(2, 20), tmp_path / "reg", backend="Ray")
    assert not (tmp_path / "reg").exists()
    train(spec_dict(), linear_frame(2, 20), tmp_path / "reg", backend="local")
    with pytest.raises(TrainingError, match=r"^unknown backend 'Ray' "):
        train(spec_dict(), linear_frame(2, 20), tmp_path / "reg", backend="Ray")
    with Registry.open(tmp_path / "reg") as reg:
        assert [r.status for r in reg.list_runs()] == ["completed"]
        assert reg.unfinished_runs() == []


@pytest.mark.parametrize(
    ("backend", "named"),
    [(None, "NoneType None$"), (4, "int 4$"), (InProcessBackend, "type <class '")],  # a class
)
def test_a_backend_that_is_neither_a_name_nor_a_backend_records_no_run(
    tmp_path: Path, backend: object, named: str
) -> None:
    # backend=None failed inside the recorded run: AttributeError 'NoneType' … 'workers'
    message = f"^backend must be 'auto', 'ray', 'local' or a Backend object, not {named}"
    with pytest.raises(TrainingError, match=message):
        train(spec_dict(), linear_frame(2, 20), tmp_path / "reg", backend=backend)  # type: ignore[arg-type]
    assert not (tmp_path / "reg").exists()
    train(spec_dict(), linear_frame(2, 20), tmp_path / "reg", backend="local")
    with pytest.raises(TrainingError, match=message):
        score(linear_frame(2, 20), tmp_path / "reg", backend=backend)  # type: ignore[arg-type]
    with Registry.open(tmp_path / "reg") as reg:
        assert [r.status for r in reg.list_runs()] == ["completed"]


def test_run_records_its_inputs(tmp_path: Path) -> None:
    df = linear_frame(3, 20)
    spec = Spec.from_dict(spec_dict())
    first = train(spec, df, tmp_path / "reg", backend="local").run
    shuffled = df.sample(frac=1.0, random_state=5)
    second = train(spec, shuffled, tmp_path / "reg", backend="local").run
    assert first.spec_hash == second.spec_hash == spec.spec_hash
    assert first.data_fingerprint == second.data_fingerprint  # row order does not matter
    assert first.data_source == "<DataFrame>"
    assert first.spec["candidates"][0]["estimator"] == RIDGE
    edited = df.assign(y=df.y + 1)
    assert train(spec, edited, tmp_path / "reg", backend="local").run.data_fingerprint != (
        first.data_fingerprint
    )


# ------------------------------------------------------------------------------ scale
@pytest.mark.slow
def test_two_thousand_partitions_on_ray(ray_session: Any, tmp_path: Path) -> None:
    spec = {
        "name": "synthetic-2000",
        "partition_by": ["pid"],
        "target": "y",
        "time_column": "t",
        "candidates": [{"estimator": RIDGE, "params": {"alpha": [1.0]}}],
        "fallback": {"enabled": False},
    }
    summary = train(spec, synthetic(2000, 30), tmp_path / "reg", backend="ray")
    run = summary.run
    assert (run.status, run.n_partitions, run.n_trained, run.n_failed) == (
        "completed", 2000, 2000, 0
    )  # fmt: skip
    assert len(summary.versions) == 2000
    with Registry.open(tmp_path / "reg") as reg:
        assert reg.count_partitions() == 2000
        assert len(reg.store.alias_table("production")) == 2000
        assert reg.get_version({"pid": 1999}).n_rows == 30
