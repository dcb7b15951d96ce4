"""A global grid point's folds and refit as separate tasks (``global_tasks``): put back
together they are the fits one task made in turn — every validation row predicted by the fold
that left it out, nothing else predicted, the refit stored once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from manymodels.artifacts import LocalArtifactStore, deserialize
from manymodels.data import prepare
from manymodels.partition import PartitionedTable, split
from manymodels.pipeline import train as train_run
from manymodels.registry.client import Registry
from manymodels.spec import Spec
from manymodels.training import global_tasks
from manymodels.training.global_fit import (
    GlobalFit,
    GlobalModel,
    build_model,
    row_keys,
    take_rows,
)
from manymodels.training.global_folds import fold_rows
from tests.test_global_candidates import panel
from tests.test_global_candidates import spec as global_spec


def kfold_spec(folds: int) -> Spec:
    return Spec.from_dict(global_spec(validation={"strategy": "kfold", "size": 2, "folds": folds}))


def table_of(spec: Spec) -> PartitionedTable:
    return split(
        panel(), partition_by=list(spec.partition_by), target=spec.target, features=["x"],
        time_column=spec.time_column,
    )  # fmt: skip


def run_all(
    spec: Spec, store: LocalArtifactStore
) -> tuple[list[global_tasks.GlobalTask], list[Any]]:
    table = table_of(spec)
    cand = next(c for c in spec.candidates if c.scope == "global")
    work = global_tasks.tasks(spec, [(None, cand, {"alpha": 0.1})])
    return work, [global_tasks.run_task(t, spec, store, table) for t in work]


def assembled(spec: Spec, store: LocalArtifactStore) -> tuple[GlobalFit, Any]:
    """Every task of ``spec``'s global candidate run in turn, put back together; and that
    candidate."""
    work, results = run_all(spec, store)
    cand = work[0].candidate
    fit = global_tasks.assemble(
        GlobalFit(cand.label, cand.estimator, {}), results, table_of(spec), spec
    )
    assert fit.error is None and fit.val_pred is not None
    return fit, cand


def test_the_refit_and_one_task_per_fold(tmp_path: Path) -> None:
    spec = kfold_spec(3)
    work, _ = run_all(spec, LocalArtifactStore(tmp_path))
    assert [t.fold for t in work] == [global_tasks.REFIT, 0, 1, 2]
    last = Spec.from_dict(global_spec())
    assert global_tasks.fold_count(last) == 1


def test_assembled_tasks_are_the_folds_fitted_in_turn(tmp_path: Path) -> None:
    spec = kfold_spec(3)
    store = LocalArtifactStore(tmp_path)
    table = table_of(spec)
    fit, cand = assembled(spec, store)

    # the reference: each fold fitted in turn, as one task did before
    everything, folds = fold_rows(table, spec)
    expected = np.full(table.n_rows, np.nan)
    for fold_train, fold_valid in folds:
        for train, valid in global_tasks.time_groups(table, spec, fold_train, fold_valid):
            model = build_model(cand, {"alpha": 0.1}, table, spec)
            model.fit(take_rows(table.X, train), table.y[train], row_keys(table, train))
            expected[valid] = model.predict(take_rows(table.X, valid), row_keys(table, valid))
            assert not np.isin(valid, train).any()  # a fold never sees the rows it predicts
    np.testing.assert_array_equal(np.isnan(fit.val_pred), np.isnan(expected))
    assert (~np.isnan(expected)).sum() == sum(len(v) for _, v in folds) > 0
    np.testing.assert_allclose(fit.val_pred, expected, rtol=1e-12)

    stored = deserialize(store.get(fit.sha256), store.formats)
    assert isinstance(stored, GlobalModel) and fit.rows == len(everything) == table.n_rows


def test_a_fold_no_partition_has_predicts_nothing(tmp_path: Path) -> None:
    spec = kfold_spec(2)
    table = table_of(spec)
    cand = next(c for c in spec.candidates if c.scope == "global")
    extra = global_tasks.GlobalTask(cand, {"alpha": 0.1}, None, 7)
    result = global_tasks.run_task(extra, spec, LocalArtifactStore(tmp_path), table)
    assert result.rows is None and result.pred is None


def test_a_failed_task_fails_its_grid_point_with_the_error(tmp_path: Path) -> None:
    spec = kfold_spec(2)
    work, results = run_all(spec, LocalArtifactStore(tmp_path))
    results[1] = ValueError("the worker ran out of memory")
    cand = work[0].candidate
    fit = global_tasks.assemble(
        GlobalFit(cand.label, cand.estimator, {}), results, table_of(spec), spec
    )
    assert fit.error is not None and "ran out of memory" in fit.error and fit.sha256 is None


@pytest.mark.parametrize("folds", [2, 3])
def test_every_task_fits_in_its_own_right(tmp_path: Path, folds: int) -> None:
    """No task depends on another's result: run in any order they give the same answer."""
    spec = kfold_spec(folds)
    store = LocalArtifactStore(tmp_path)
    table = table_of(spec)
    cand = next(c for c in spec.candidates if c.scope == "global")
    work = global_tasks.tasks(spec, [(None, cand, {"alpha": 0.1})])
    forward = [global_tasks.run_task(t, spec, store, table) for t in work]
    backward = [global_tasks.run_task(t, spec, store, table) for t in reversed(work)][::-1]
    base = GlobalFit(cand.label, cand.estimator, {})
    a = global_tasks.assemble(base, forward, table, spec)
    b = global_tasks.assemble(base, backward, table, spec)
    assert a.sha256 == b.sha256
    np.testing.assert_array_equal(a.val_pred, b.val_pred)


def refit_spec(folds: int, refit: bool | int, last: int = 0) -> Spec:
    validation = {"strategy": "kfold", "size": 2, "folds": folds, "global_refit": refit}
    if last:
        validation["global_refit_last"] = last
    return Spec.from_dict(global_spec(validation=validation))


@pytest.mark.parametrize(
    ("folds", "refit", "starts"),
    [(3, True, [0, 1, 2]), (3, False, [0]), (5, 2, [0, 2, 4]), (3, 7, [0])],
)
def test_global_refit_spaces_the_validation_fits(
    tmp_path: Path, folds: int, refit: bool | int, starts: list[int]
) -> None:
    """``[validation] global_refit``, as mlforecast's ``cross_validation(refit=…)``: a fit
    on every fold, once, or every ``k`` folds; the refit on every row always."""
    work = global_tasks.tasks(
        refit_spec(folds, refit), [(None, refit_spec(2, True).candidates[1], {})]
    )
    assert [t.fold for t in work] == [global_tasks.REFIT, *starts]


@pytest.mark.parametrize(
    ("folds", "refit", "last", "starts"),
    [
        (5, False, 1, [0, 4]),
        (5, 2, 2, [0, 2, 3, 4]),
        (2, False, 1, [0, 1]),
        (4, 3, 4, [0, 1, 2, 3]),
    ],
)
def test_global_refit_last_gives_the_last_folds_a_fit_each(
    folds: int, refit: bool | int, last: int, starts: list[int]
) -> None:
    """``[validation] global_refit_last``: the last folds get a fit each whatever
    ``global_refit`` spaces the others at (a panel of 2 folds keeps both of its fits)."""
    spec = refit_spec(folds, refit, last)
    work = global_tasks.tasks(spec, [(None, refit_spec(2, True).candidates[1], {})])
    assert [t.fold for t in work] == [global_tasks.REFIT, *starts]


def test_the_last_fold_is_judged_by_its_own_fit_and_the_earlier_by_one(tmp_path: Path) -> None:
    """With ``global_refit = false`` and ``global_refit_last = 1`` the first folds' rows are
    predicted as ``false`` alone predicts them (one fit before the first fold), the last
    fold's as a fit on every fold predicts it (a fit on the rows before it), from real fits;
    the stored model is the same refit on every row."""
    spec = refit_spec(4, False, 1)
    table = table_of(spec)
    fit, _ = assembled(spec, LocalArtifactStore(tmp_path / "last"))
    once, _ = assembled(refit_spec(4, False), LocalArtifactStore(tmp_path / "once"))
    each, _ = assembled(refit_spec(4, True), LocalArtifactStore(tmp_path / "each"))
    _, folds_rows = fold_rows(table, spec)
    early = np.concatenate([v for _, v in folds_rows[:-1]])
    final = folds_rows[-1][1]
    np.testing.assert_allclose(fit.val_pred[early], once.val_pred[early], rtol=1e-12)
    np.testing.assert_allclose(fit.val_pred[final], each.val_pred[final], rtol=1e-12)
    assert not np.allclose(once.val_pred[final], each.val_pred[final])  # the fits differ
    assert (~np.isnan(fit.val_pred)).sum() == sum(len(v) for _, v in folds_rows) > 0
    assert fit.sha256 == once.sha256 == each.sha256


@pytest.mark.parametrize(("folds", "refit"), [(3, False), (4, 2)])
def test_one_fit_predicts_the_folds_until_the_next(
    tmp_path: Path, folds: int, refit: bool | int
) -> None:
    """Each validation row is predicted by the model fitted on the training rows of the last
    fit's fold at or before its own — rows that end before any of the folds it predicts."""
    spec = refit_spec(folds, refit)
    table = table_of(spec)
    fit, cand = assembled(spec, LocalArtifactStore(tmp_path))

    step = folds if refit is False else int(refit)
    _, folds_rows = fold_rows(table, spec)
    expected = np.full(table.n_rows, np.nan)
    for start in range(0, len(folds_rows), step):
        predicted = np.concatenate([v for _, v in folds_rows[start : start + step]])
        groups = global_tasks.time_groups(table, spec, folds_rows[start][0], predicted)
        for train, valid in groups:
            model = build_model(cand, {"alpha": 0.1}, table, spec)
            model.fit(take_rows(table.X, train), table.y[train], row_keys(table, train))
            assert not np.isin(valid, train).any()  # no later fold's row was seen
            expected[valid] = model.predict(take_rows(table.X, valid), row_keys(table, valid))
    assert (~np.isnan(expected)).sum() == sum(len(v) for _, v in folds_rows) > 0
    np.testing.assert_allclose(fit.val_pred, expected, rtol=1e-12)

    each, _ = assembled(refit_spec(folds, True), LocalArtifactStore(tmp_path / "every"))
    first = folds_rows[0][1]  # the first fold's fit is the same either way; later ones differ
    np.testing.assert_allclose(fit.val_pred[first], each.val_pred[first], rtol=1e-12)
    assert not np.allclose(fit.val_pred[folds_rows[-1][1]], each.val_pred[folds_rows[-1][1]])
    assert fit.sha256 == each.sha256  # the stored model is the refit on every row either way


def shocked_panel(seed: int = 0) -> pd.DataFrame:
    """Every shop's sales are one market-wide value per day (a shock all share) plus a little
    noise; half the shops end 20 days before the others."""
    rng = np.random.default_rng(seed)
    days = pd.date_range("2024-01-01", periods=60, freq="D")
    shock = rng.normal(0, 10, len(days))
    frames = []
    for k in range(8):
        n = 40 if k % 2 == 0 else 60
        y = shock[:n] + rng.normal(0, 0.1, n)
        frames.append(
            pd.DataFrame({"shop": f"s{k}", "day": days[:n], "x": rng.normal(size=n), "y": y})
        )
    return pd.concat(frames, ignore_index=True)


def test_a_global_model_is_not_judged_on_days_it_learnt_from_longer_partitions(
    tmp_path: Path,
) -> None:
    """A fold's global fit took every partition's rows before *its own* validation rows: the
    long shops' rows of days 36-40 taught it the short shops' validation days, so a tree on
    the day of the year "predicted" their market-wide shocks (validation MAE ~0.1 where no
    model can know a shock to come: ~9), which selection and conformal intervals took for
    its skill. Each partition's rows are now predicted by a fit on rows
    before its first validation day."""
    s = global_spec(
        features=["x"], calendar=["day_of_year"], validation={"strategy": "last", "size": 5},
        metric="neg_mean_absolute_error", selection={"naive_candidate": False},
        candidates=[
            {"estimator": "sklearn.linear_model.Ridge"},
            {"estimator": "sklearn.tree.DecisionTreeRegressor", "scope": "global",
             "params": {"random_state": 0}},
        ],
    )  # fmt: skip
    train_run(s, shocked_panel(), tmp_path / "reg", backend="local")
    with Registry(tmp_path / "reg") as reg:
        for k in range(0, 8, 2):  # the short shops
            v = reg.get_version(f"shop=s{k}")
            (glob,) = [c for c in v.candidates if "global" in str(c.get("label", c))]
            assert glob["score"] < -3, glob  # a shock to come is not known
    spec = Spec.from_dict(s)
    table = prepare(spec, shocked_panel())[0]
    _, folds = fold_rows(table, spec)
    ((train_rows, valid_rows),) = folds
    groups = global_tasks.time_groups(table, spec, train_rows, valid_rows)
    assert len(groups) == 2  # the short shops' cutoff and the long shops'
    stamps = pd.DatetimeIndex(table.time).asi8
    for rows, predicted in groups:
        assert stamps[rows].max() < stamps[predicted].min()


def test_a_global_classifier_survives_an_early_cutoff_of_one_class(tmp_path: Path) -> None:
    """Short shops' validation starts on day 25, and every row before it is 'no': a fit on
    those rows alone cannot be a classifier ("needs samples of at least 2 classes"), and that
    one error of an extra fit dropped the global candidate for every shop, the long ones
    included, which it had been fitted and scored for before ``time_groups``. The short
    shops' rows are now left unscored by it, as when no row precedes their cutoff."""
    rng = np.random.default_rng(0)
    days = pd.date_range("2024-01-01", periods=60, freq="D")
    frames = []
    for k in range(8):
        n = 30 if k % 2 == 0 else 60
        x = rng.normal(size=n)
        y = np.where(np.arange(n) < 25, "no", np.where(x > 0, "yes", "no"))
        frames.append(pd.DataFrame({"shop": f"s{k}", "day": days[:n], "x": x, "y": y}))
    s = global_spec(
        task="classification", metric="accuracy", validation={"strategy": "last", "size": 5},
        candidates=[
            {"estimator": "sklearn.dummy.DummyClassifier"},
            {"estimator": "sklearn.linear_model.LogisticRegression", "scope": "global"},
        ],
    )  # fmt: skip
    summary = train_run(s, pd.concat(frames, ignore_index=True), tmp_path / "reg", backend="local")
    (record,) = summary.run.options["global"]
    assert record.get("error") is None and record["sha256"], record
    with Registry(tmp_path / "reg") as reg:
        for k in range(1, 8, 2):  # the long shops: the global candidate is scored
            v = reg.get_version(f"shop=s{k}")
            scored = [c for c in v.candidates if "(global)" in str(c.get("label"))]
            assert scored and scored[0].get("score") is not None, v.candidates


def test_a_global_candidate_survives_an_early_cutoff_it_cannot_fit(tmp_path: Path) -> None:
    """Short shops' validation starts on day 8, before which the panel holds 56 rows: a
    KNeighborsRegressor of 60 neighbours cannot predict from them ("Expected n_neighbors <=
    n_samples_fit"), and that one error of an early cutoff's fit dropped the global candidate
    for every shop, the long ones included (each had 55 days × 8 shops before its cutoff).
    Now the short shops are left unscored by it, saying why, as for a cutoff of one class."""
    rng = np.random.default_rng(0)
    days = pd.date_range("2024-01-01", periods=60, freq="D")
    frames = []
    for k in range(8):
        n = 12 if k % 2 == 0 else 60
        x = rng.normal(size=n)
        y = 3 * x + k + rng.normal(scale=0.1, size=n)
        frames.append(pd.DataFrame({"shop": f"s{k}", "day": days[:n], "x": x, "y": y}))
    s = global_spec(
        min_rows=10, validation={"strategy": "last", "size": 5},
        candidates=[
            {"estimator": "sklearn.linear_model.LinearRegression"},
            {"estimator": "sklearn.neighbors.KNeighborsRegressor", "scope": "global",
             "params": {"n_neighbors": 60}},
        ],
    )  # fmt: skip
    summary = train_run(s, pd.concat(frames, ignore_index=True), tmp_path / "reg", backend="local")
    (record,) = summary.run.options["global"]
    assert record.get("error") is None and record["sha256"], record
    with Registry(tmp_path / "reg") as reg:
        for k in range(8):
            v = reg.get_version(f"shop=s{k}")
            (scored,) = [c for c in v.candidates if "(global)" in str(c.get("label"))]
            if k % 2:  # the long shops: scored
                assert scored.get("score") is not None and not scored.get("error"), scored
            else:
                assert scored.get("score") is None
                assert "before this one's validation starts failed" in scored["error"]
                assert "n_neighbors" in scored["error"]


def test_fold_rows_holds_memory_linear_in_the_rows_at_many_partitions() -> None:
    """Each global task computes every partition's fold rows. Each partition's rows were cut
    from an ``arange`` over the whole table — O(partitions × rows) work — and a partition
    below ``min_rows`` (trained on in every fold) kept that cut, a view holding the whole
    table-long array alive: 3,000 such partitions of 6 rows held ~430 MB, 20,000 took 90 s
    and 40,000 were killed for memory. Now each holds its own rows only."""
    import tracemalloc

    n_parts = 3_000
    sizes = np.where(np.arange(n_parts) % 2 == 0, 6, 10)  # the even shops below min_rows
    df = pd.DataFrame(
        {
            "shop": np.repeat(np.arange(n_parts), sizes),
            "day": np.concatenate([np.arange(n) for n in sizes]),
            "x": np.linspace(0.0, 1.0, int(sizes.sum())),
            "y": np.linspace(1.0, 2.0, int(sizes.sum())),
        }
    )
    spec = Spec.from_dict(
        global_spec(min_rows=8, validation={"strategy": "kfold", "size": 1, "folds": 2})
    )
    table = split(df, partition_by=["shop"], target="y", features=["x"], time_column="day")
    tracemalloc.start()
    try:
        everything, folds = fold_rows(table, spec)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 1024**2, f"fold_rows peaked at {peak / 1024**2:.0f} MiB"
    # the rows are those of each partition's splits: the last row of every partition long
    # enough validates fold 1, the one before it fold 0; the short ones train every fold
    assert len(everything) == table.n_rows and len(folds) == 2
    last = table.offsets[1:][1::2] - 1
    short = np.concatenate([np.arange(table.offsets[i], table.offsets[i + 1])
                            for i in range(0, n_parts, 2)])  # fmt: skip
    np.testing.assert_array_equal(folds[1][1], last)
    np.testing.assert_array_equal(folds[0][1], last - 1)
    for train, valid in folds:
        assert np.isin(short, train).all() and not np.isin(valid, train).any()


@pytest.mark.parametrize(
    "validation",
    [
        {"strategy": "kfold", "size": 2, "folds": 3},
        {"strategy": "last", "size": 3},
        {"strategy": "holdout", "size": 0.3},
    ],
)
def test_fold_rows_are_each_partitions_own_splits(validation: dict[str, Any]) -> None:
    """``fold_rows`` computes a row count's time-ordered splits once for every partition of
    that count; each partition's folds are still its own ``validation_splits`` — a shuffled
    holdout seeded by its key — and a partition below ``min_rows`` trains every fold."""
    from manymodels.training.splits import validation_splits

    sizes = [12, 9, 12, 4, 12, 9, 15]  # shops of equal lengths, and one below min_rows
    df = pd.concat(
        [
            pd.DataFrame(
                {
                    "shop": f"s{k}",
                    "day": pd.date_range("2024-01-01", periods=n),
                    "x": np.arange(n, dtype=float),
                    "y": np.arange(n, dtype=float) * (k + 1),
                }
            )
            for k, n in enumerate(sizes)
        ],
        ignore_index=True,
    )
    spec = Spec.from_dict(global_spec(min_rows=6, validation=validation))
    table = split(df, partition_by=["shop"], target="y", features=["x"], time_column="day")
    _, folds = fold_rows(table, spec)
    for i, key in enumerate(table.keys):
        rows = np.arange(table.offsets[i], table.offsets[i + 1])
        if len(rows) < 6:
            assert all(np.isin(rows, train).all() for train, _ in folds)
            continue
        own = validation_splits(len(rows), spec, key=key)
        assert len(own) == len(folds)
        for (train, valid), (tr, va) in zip(folds, own, strict=True):
            np.testing.assert_array_equal(valid[np.isin(valid, rows)], rows[va])
            np.testing.assert_array_equal(train[np.isin(train, rows)], rows[tr])
    if validation["strategy"] == "holdout":  # seeded by the key: equal lengths, other rows
        _, valid = folds[0]
        firsts = [np.sort(valid[np.isin(valid, table.offsets[i] + np.arange(12))])
                  - table.offsets[i] for i in (0, 2, 4)]  # fmt: skip
        assert len({tuple(f) for f in firsts}) > 1
