"""``--changed-only`` and partitions below ``min_rows``, on every database: a partition skipped
for too few rows has no version whose fingerprint tells whether its data changed, so each
changed-only run (each firing of a schedule's ``when = ["changed"]``) trained it again, to skip
it again. It is judged now by the outcome recorded when it was skipped, found by key along
``ix_run_partitions_key`` (schema 10)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from factories import executed, linear_frame, spec_dict
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.partition import FALLBACK_KEY
from manymodels.pipeline import train
from manymodels.registry import Registry

runner = CliRunner()


def frame() -> pd.DataFrame:
    """Three partitions of 30 rows, and two (pid 10 and 11) of 5: below ``min_rows`` 10."""
    small = linear_frame(2, 5, seed=3).assign(pid=lambda d: d.pid + 10)
    return pd.concat([linear_frame(3, 30), small], ignore_index=True)


def outcomes(reg: Registry, run_id: str) -> dict[str, str]:
    """The run's partitions that trained no version, and how."""
    return {o.key: o.status for o in reg.store.run_outcomes(run_id) if o.status != "trained"}


def test_a_partition_skipped_on_the_same_data_is_not_trained_again(reg: Registry) -> None:
    df = frame()
    first = train(spec_dict(min_rows=10), df, reg, backend="local")
    assert outcomes(reg, first.run.run_id) == {"pid=10": "skipped", "pid=11": "skipped"}

    again = train(spec_dict(min_rows=10), df, reg, backend="local", changed_only=True)
    assert (again.run.n_partitions, again.run.n_skipped) == (0, 0)  # was (2, 2), every run
    assert again.run.options["unchanged"] == 5
    assert outcomes(reg, again.run.run_id) == {}

    more = df[df.pid == 10].head(4).assign(t=lambda d: d.t + 100)
    grown = pd.concat([df, more], ignore_index=True)
    moved = train(spec_dict(min_rows=10), grown, reg, backend="local", changed_only=True)
    assert moved.run.n_partitions == 1  # its data changed since it was skipped: judged again
    assert outcomes(reg, moved.run.run_id) == {"pid=10": "skipped"}  # 9 rows, still too few

    # the skip was the spec's verdict too: a spec that lets small partitions train trains them
    lowered = train(spec_dict(min_rows=3), grown, reg, backend="local", changed_only=True)
    assert set(lowered.versions) >= {"pid=10", "pid=11"}


def test_a_skipped_fallback_is_not_due_again_on_the_same_table(reg: Registry) -> None:
    """With a ``target_transform`` the pooled fallback is always skipped (it could answer in
    no partition's units), so every changed-only run had it due: never a run of nothing."""
    spec = spec_dict(min_rows=10, target_transform="scale", lags=[1])
    first = train(spec, frame(), reg, backend="local")
    assert outcomes(reg, first.run.run_id)[FALLBACK_KEY] == "skipped"
    again = train(spec, frame(), reg, backend="local", changed_only=True)
    assert again.run.n_partitions == 0
    assert outcomes(reg, again.run.run_id) == {}


def test_the_skipped_partitions_are_looked_up_by_key(
    db_url: str, tmp_path: Path, plans: Callable[..., list[tuple[str, str]]]
) -> None:
    """The lookup walks ``ix_run_partitions_key`` (key, status), never every outcome of every
    run: 100,000 partitions × every run's rows is what a full run leaves."""
    with Registry(tmp_path / "registry", db_url=db_url) as reg:
        train(spec_dict(min_rows=10), frame(), reg, backend="local")
        with executed(reg.store.engine) as ran:
            train(spec_dict(min_rows=10), frame(), reg, backend="local", changed_only=True)
        seen = [(text, params) for text, params in ran if "FROM run_partitions JOIN runs" in text]
        assert seen
        for _, plan in plans(reg, seen):
            assert "ix_run_partitions_key" in plan, plan


def test_a_changed_only_run_of_nothing_changed_records_no_run(db_url: str, tmp_path: Path) -> None:
    """`train --changed-only` on the data trained before recorded a run of nothing each time
    ("0 trained · 0 skipped · 0 failed"): at every firing of a frequent schedule one more
    empty run, burying the runs that trained. Now one line says why, exit 0, and no run."""
    data = tmp_path / "data.csv"
    frame().to_csv(data, index=False)
    spec = tmp_path / "spec.toml"
    spec.write_text(
        'name = "test"\npartition_by = ["pid"]\ntarget = "y"\ntime_column = "t"\nmin_rows = 10\n'
        '[[candidates]]\nestimator = "sklearn.linear_model.Ridge"\n'
    )
    where = ["--registry-db", db_url, "--artifacts", str(tmp_path / "artifacts")]
    args = ["train", str(spec), str(data), *where, "--backend", "local", "--changed-only"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    for extra in ([], ["--json"]):
        again = runner.invoke(app, [*args, *extra])
        assert again.exit_code == 0, again.output
        if extra:
            shown = json.loads(again.stdout)
            assert (shown["run"], shown["trained"], shown["unchanged"]) == (None, False, 5)
        else:
            assert again.stdout.strip() == (
                "nothing to train: all 5 partitions have the data they were last trained (or "
                "skipped) on; no run recorded"
            )
    with Registry(db_url=db_url, artifacts=str(tmp_path / "artifacts")) as reg:
        assert len(reg.list_runs()) == 1


def test_other_holidays_retrain_business_days_on_the_same_data(reg: Registry) -> None:
    """A business-day table's holidays are its calendar (steps, lags): the newest versions'
    runs' holidays read back on either database, and only a change of dates retrains."""
    days = pd.bdate_range("2024-01-02", "2024-12-20")
    df = pd.concat(
        [pd.DataFrame({"shop": f"s{i}", "t": days, "y": 100.0 + i + days.day}) for i in range(3)],
        ignore_index=True,
    )
    closed = ["2024-12-25", "2025-01-01"]
    spec = spec_dict(partition_by=["shop"], target="y", time_column="t", lags=[1])
    train({**spec, "holidays": closed}, df, reg, backend="local")
    same = train({**spec, "holidays": closed[::-1]}, df, reg, backend="local", changed_only=True)
    assert same.run.n_partitions == 0 and "holidays_changed" not in same.run.options
    more = train(
        {**spec, "holidays": [*closed, "2024-12-26"]}, df, reg, backend="local", changed_only=True
    )
    assert more.run.n_partitions == 3 and more.run.options["holidays_changed"] == 3
