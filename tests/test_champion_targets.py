"""``manymodels.champion_targets``: a run's champions predict what its spec predicts."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from factories import linear_frame, sales_files, sales_toml, spec_dict
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.exceptions import DataError
from manymodels.pipeline import train
from manymodels.registry import Registry

runner = CliRunner()


def _frame() -> pd.DataFrame:
    frame = linear_frame(3, 30)
    return frame.assign(cost=frame["y"] * -50.0 + 7.0)  # another quantity, other units


def _versions(reg: Registry) -> list[tuple[str, int]]:
    return [(v.key, v.version) for p in reg.list_partitions() for v in reg.list_versions(p.key)]


def test_a_spec_whose_target_changed_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    """The spec edited from `target = "y"` to `target = "cost"` and trained into the same
    registry retrained every partition: each challenger (a model of cost) was scored
    against its champion (a model of y), the champions that scored better were kept, and
    production then served y for some partitions and cost for the others. Refused now,
    naming a version and both targets; the registry is as it was."""
    root = tmp_path / "mmregistry"
    features = ["x0", "x1"]
    train(spec_dict(features=features), _frame(), root, backend="local")
    with Registry.open(root) as reg:
        before = _versions(reg)
        runs = len(reg.list_runs())
    edited = spec_dict(features=features, target="cost")
    with pytest.raises(DataError, match=r"in production predicts 'y'; spec 'test' predicts 'cost'"):
        train(edited, _frame(), root, backend="local")
    with Registry.open(root) as reg:
        assert _versions(reg) == before
        assert len(reg.list_runs()) == runs


def test_a_spec_edited_otherwise_still_retrains(tmp_path: Path) -> None:
    """Only the target is checked: features edited, the same target is retrained as ever."""
    root = tmp_path / "mmregistry"
    train(spec_dict(features=["x0", "x1"]), _frame(), root, backend="local")
    summary = train(spec_dict(features=["x0"]), _frame(), root, backend="local")
    assert summary.run.n_trained == 3 and summary.run.n_failed == 0


@pytest.mark.parametrize("fallback", [True, False])
def test_another_spec_over_other_partitions_is_not_judged_by_their_fallback(
    tmp_path: Path, fallback: bool
) -> None:
    """Two specs keyed alike over other partitions share a registry (north of y, south of
    cost): the south's run challenges none of the north's versions, and leaves the north's
    fallback serving (or trains none), so it trains as before; it was refused by a fallback
    it never judged ("'__fallback__' v1 in production predicts 'y'")."""
    root = tmp_path / "mmregistry"
    frame, features = _frame(), ["x0", "x1"]
    train(
        spec_dict(name="north", features=features), frame[frame["pid"] < 2], root, backend="local"
    )
    south = spec_dict(name="south", features=features, target="cost")
    south |= {} if fallback else {"fallback": {"enabled": False}}
    summary = train(south, frame[frame["pid"] >= 2], root, backend="local")
    assert summary.run.n_trained == 1 and summary.run.n_failed == 0
    with Registry.open(root) as reg:
        assert reg.store.production_info(["__fallback__"])["__fallback__"].version == 1
        assert [v.version for v in reg.list_versions("__fallback__")] == [1]  # north's


def _renamed(tmp_path: Path) -> tuple[list[str], list[str]]:
    """A registry trained from the sales sample (``target = "units"``), then the spec and
    data of the same quantity with the column renamed ``sales_units``: the command lines
    of the first run and of the renamed one."""
    spec, data, root = sales_files(tmp_path, sales_toml("sales"))
    first = ["train", str(spec), str(data), "--registry", str(root), "--backend", "local"]
    assert runner.invoke(app, first).exit_code == 0
    spec2, data2 = tmp_path / "renamed.toml", tmp_path / "renamed.csv"
    spec2.write_text(spec.read_text().replace('target = "units"', 'target = "sales_units"'))
    pd.read_csv(data).rename(columns={"units": "sales_units"}).to_csv(data2, index=False)
    return first, ["train", str(spec2), str(data2), "--registry", str(root), "--backend", "local"]


def test_a_renamed_target_is_refused_naming_the_way_through(tmp_path: Path) -> None:
    """`target = "units"` renamed `"sales_units"` (the same quantity) was refused with no
    way through but a new registry; the refusal, one line, now names `--new-target`."""
    _, renamed = _renamed(tmp_path)
    with Registry.open(tmp_path / "registry") as reg:
        before = _versions(reg)
    refused = runner.invoke(app, renamed)
    assert refused.exit_code != 0
    (line,) = refused.output.splitlines()
    assert "predicts 'units'; spec 'sales' predicts 'sales_units'" in line
    assert line.endswith(
        "train it into a registry of its own (--registry DIR), or, if 'sales_units' replaces "
        "'units' (a renamed column), train with --new-target (new_target=True): its versions "
        "replace those, uncompared"
    )
    with Registry.open(tmp_path / "registry") as reg:
        assert _versions(reg) == before


def test_new_target_replaces_the_old_targets_champions(tmp_path: Path) -> None:
    """`--new-target`: every partition's new version (the fallback's too) replaces its
    champion of 'units' uncompared, under `if_better` too, and says so; production then
    predicts 'sales_units' everywhere, and the next run of the renamed spec retrains as
    ever, comparing with those."""
    _, renamed = _renamed(tmp_path)
    result = runner.invoke(app, [*renamed, "--new-target"])
    assert result.exit_code == 0, result.output
    with Registry.open(tmp_path / "registry") as reg:
        keys = [p.key for p in reg.list_partitions()]
        assert len(keys) == 5  # 4 stores × brands of 2 stores, and the fallback
        for key in keys:
            v = reg.get_version(key)
            assert v.version == 2, key
            assert v.feature_schema["target"] == "sales_units"
            assert v.evaluation["reason"] == (
                "new target: champion v1 predicts 'units', not compared; replaced"
            )
    again = runner.invoke(app, renamed)
    assert again.exit_code == 0, again.output
    with Registry.open(tmp_path / "registry") as reg:
        for key in keys:
            assert max(v.version for v in reg.list_versions(key)) == 3
            assert "new target" not in reg.get_version(key, 3).evaluation["reason"]


@pytest.mark.parametrize("subset", [["--partitions", "store=1,brand=tropicana"], ["--append"]])
def test_new_target_of_some_partitions_is_refused(tmp_path: Path, subset: list[str]) -> None:
    """`--new-target` with `--partitions` (or `--append`, which trains the appended ones)
    replaced the named partitions' champions and left the others and the
    fallback (never retrained beside named partitions) predicting 'units': production
    served both targets, what `champion_targets` refuses. Refused now, in one line, before
    anything is written."""
    _, renamed = _renamed(tmp_path)
    with Registry.open(tmp_path / "registry") as reg:
        before = _versions(reg)
        runs = len(reg.list_runs())
    refused = runner.invoke(app, [*renamed, "--new-target", *subset])
    assert refused.exit_code != 0
    (line,) = refused.output.splitlines()
    assert line.startswith("error: --new-target (new_target=True) replaces the old target's")
    assert line.endswith("train all the data with --new-target")
    with Registry.open(tmp_path / "registry") as reg:
        assert _versions(reg) == before
        assert len(reg.list_runs()) == runs


def test_a_new_target_run_that_skipped_a_partition_does_not_score_both(tmp_path: Path) -> None:
    """`--new-target` over a partition whose new target is all missing skips it, and the
    run completes: that partition keeps its model of 'y' while the rest (and the fallback)
    predict 'cost'. `score` wrote both into one `prediction` column, exit 0; now it refuses,
    naming both targets (`manymodels.champion_targets.require_one_target`)."""
    from manymodels.exceptions import RegistryError
    from manymodels.scoring import score_table

    root = tmp_path / "mmregistry"
    features = ["x0", "x1"]
    train(spec_dict(features=features), _frame(), root, backend="local")
    lost = _frame()
    lost.loc[lost["pid"] == lost["pid"].iloc[0], "cost"] = float("nan")
    summary = train(spec_dict(features=features, target="cost"), lost, root, backend="local",
                    new_target=True)  # fmt: skip
    assert summary.run.n_trained == 2 and summary.run.status == "completed"
    with pytest.raises(RegistryError, match=r"predict 2 targets of spec 'test', 'cost' \(") as e:
        score_table(_frame(), root)
    assert "'y' (partition " in str(e.value)
    assert len(score_table(_frame()[_frame()["pid"] != 0], root).frame) == 60  # one target


def test_doctor_names_a_spec_whose_production_predicts_two_targets(tmp_path: Path) -> None:
    """The same skipped partition: `doctor` said "ok" (the run completed), and nothing but a
    refused `score` told. Now one problem names the spec, both targets and the partition
    left on the old one; another spec's target in the same registry is no problem."""
    from manymodels.doctor import check

    root = tmp_path / "mmregistry"
    features = ["x0", "x1"]
    train(spec_dict(features=features), _frame(), root, backend="local")
    other = linear_frame(2, 30).assign(pid=lambda f: f["pid"] + 100)
    train(spec_dict(name="other", features=features), other, root, backend="local")
    with Registry.open(root) as reg:
        assert check(reg).ok
    lost = _frame()
    first = lost["pid"].iloc[0]
    lost.loc[lost["pid"] == first, "cost"] = float("nan")
    train(spec_dict(features=features, target="cost"), lost, root, backend="local",
          new_target=True)  # fmt: skip
    result = runner.invoke(app, ["doctor", "--registry", str(root)])
    assert result.exit_code == 1, result.output
    (line,) = [s for s in result.output.splitlines() if s.startswith("problem: ")]
    assert line.startswith("problem: production of spec 'test' predicts 2 targets, 'cost' ("), line
    assert f"'y' (partition 'pid={first}' v1)" in line, line
    # said by doctor itself: no "(`manymodels doctor` names it …)", as a refusal says
    assert "manymodels doctor" not in line, line
    assert "(if so, it is listed as an unfinished run, with the command that finishes it)" in line


def test_a_new_target_run_that_skipped_a_partition_does_not_forecast_both(
    tmp_path: Path,
) -> None:
    """The sales sample's `units` renamed `sales_units`, trained `--new-target` with one
    partition's new target all missing: that partition keeps its model of 'units', the run
    completes. `forecast` wrote both targets' forecasts into one `prediction` column, exit 0
    (score refused the same registry); now it refuses in one line naming both, writes
    nothing, and a forecast of the partitions of one target still runs."""
    spec, data, root = sales_files(tmp_path, sales_toml("sales"))
    first = ["train", str(spec), str(data), "--registry", str(root), "--backend", "local"]
    assert runner.invoke(app, first).exit_code == 0
    renamed, data2 = tmp_path / "renamed.toml", tmp_path / "renamed.csv"
    renamed.write_text(spec.read_text().replace('target = "units"', 'target = "sales_units"'))
    frame = pd.read_csv(data).rename(columns={"units": "sales_units"})
    lost = (frame["store"] == frame["store"].iloc[0]) & (frame["brand"] == frame["brand"].iloc[0])
    frame.loc[lost, "sales_units"] = float("nan")
    frame.to_csv(data2, index=False)
    again = ["train", str(renamed), str(data2), "--registry", str(root), "--backend", "local"]
    trained = runner.invoke(app, [*again, "--new-target"])
    assert trained.exit_code == 0, trained.output
    out = tmp_path / "forecast.csv"
    refused = runner.invoke(
        app, ["forecast", "--registry", str(root), "--horizon", "2", "--out", str(out)]
    )
    assert refused.exit_code == 1, refused.output  # before: 0, both targets in one column
    (line,) = refused.output.splitlines()
    assert line.startswith("error: forecast: the 'production' models of these partitions "
                           "predict 2 targets of spec 'sales', 'sales_units' ("), line  # fmt: skip
    assert "'units' (partition 'store=1,brand=" in line and "--new-target" in line, line
    assert not out.exists()
    key = f"store={frame['store'].iloc[0]},brand={frame['brand'].iloc[0]}"
    with Registry.open(root) as reg:
        others = [p.key for p in reg.list_partitions() if p.key not in (key, "__fallback__")]
    named = [a for k in others for a in ("--partitions", k)]
    one = runner.invoke(app, ["forecast", "--registry", str(root), "--horizon", "2", *named])
    assert one.exit_code == 0, one.output


@pytest.mark.parametrize("command", ["score", "forecast"])
def test_a_mix_is_found_where_another_spec_predicts_the_old_targets_name(
    tmp_path: Path, command: str
) -> None:
    """Spec north predicts 'y' on pids 0–1, spec south 'y' on pids 2–3; south is trained
    `--new-target` to 'cost' with pid 3's cost all missing, so pid 3 keeps its model of 'y'.
    The check asked the spec of each target's first version only: north's pid 0 for 'y',
    south's pid 2 for 'cost', two specs of their own targets, and `score` (and `forecast`)
    wrote pid 2's cost beside pid 3's y, exit 0. Every version's spec is read now (once two
    targets are found): south's two are refused; north's and pid 2 together still run."""
    from manymodels.exceptions import RegistryError
    from manymodels.forecasting import forecast
    from manymodels.scoring import score_table

    root = tmp_path / "mmregistry"
    both = linear_frame(4, 30).assign(cost=lambda f: f["y"] * -50.0 + 7.0)
    shape = {"features": ["x0", "x1"]} if command == "score" else {"lags": [1]}
    y, cost = both.drop(columns="cost"), both.drop(columns="y")
    train(spec_dict(name="north", **shape), y[y["pid"] < 2], root, backend="local")
    south = spec_dict(name="south", fallback={"enabled": False}, **shape)
    train(south, y[y["pid"] >= 2], root, backend="local")
    lost = cost[cost["pid"] >= 2].copy()
    lost.loc[lost["pid"] == 3, "cost"] = float("nan")
    summary = train({**south, "target": "cost"}, lost, root, backend="local", new_target=True)
    assert summary.run.n_trained == 1 and summary.run.status == "completed"

    def run(pids: list[int]) -> pd.DataFrame:
        if command == "score":
            return score_table(both[both["pid"].isin(pids)], root).frame
        return forecast(root, [f"pid={p}" for p in pids], horizon=2)

    with pytest.raises(RegistryError, match=r"predict 2 targets of spec 'south', ") as e:
        run([0, 1, 2, 3])  # before: pid 2 predicted cost, pid 3 y, in one column
    assert "'cost' (partition 'pid=2' v2)" in str(e.value), e.value
    assert "'y' (partition 'pid=3' v1)" in str(e.value), e.value
    assert sorted(run([0, 1, 2])["pid"].unique()) == [0, 1, 2]  # north's y, south's cost


def test_retiring_the_partition_a_new_target_run_skipped_is_the_way_out(tmp_path: Path) -> None:
    """The skipped partition had no way out: a rerun skipped it again, `--partitions` is
    refused with `--new-target`, and no command took it out of production. The refusal now
    names `manymodels retire`; once retired, score answers its rows from the fallback (of
    the new target), doctor's `mixed_targets` clears, and `rollback` puts it back on the
    old target's version (refused again)."""
    from manymodels.doctor import check
    from manymodels.exceptions import RegistryError
    from manymodels.scoring import score_table

    root = tmp_path / "mmregistry"
    features = ["x0", "x1"]
    train(spec_dict(features=features), _frame(), root, backend="local")
    lost = _frame()
    lost.loc[lost["pid"] == 0, "cost"] = float("nan")
    train(spec_dict(features=features, target="cost"), lost, root, backend="local",
          new_target=True)  # fmt: skip
    with pytest.raises(RegistryError, match=r"\(manymodels retire 'pid=0'; rollback undoes it\)"):
        score_table(_frame(), root)
    with Registry.open(root) as reg:
        assert [p.kind for p in check(reg).problems] == ["mixed_targets"]
    done = runner.invoke(app, ["retire", "pid=0", "--reason", "y is gone", "--registry", str(root)])
    assert done.exit_code == 0, done.output
    assert done.output == "pid=0: production v1 → retired (retired by hand: y is gone)\n"
    scored = score_table(_frame(), root).frame
    assert set(scored.loc[scored["pid"] == 0, "served_by"]) == {"__fallback__"}
    with Registry.open(root) as reg:
        assert [p.kind for p in check(reg).problems] == []
    back = runner.invoke(app, ["rollback", "pid=0", "--registry", str(root)])
    assert back.exit_code == 0, back.output
    assert back.output == "pid=0: production nothing → v1 (rollback of v1's retirement)\n"
    with pytest.raises(RegistryError, match="predict 2 targets"):
        score_table(_frame(), root)


def test_a_new_target_run_that_leaves_partitions_on_the_old_target_says_so(
    tmp_path: Path,
) -> None:
    """`train --new-target` over data where one partition's new target is all missing skipped
    it, kept its model of 'units' in production, and completed (exit 0) saying nothing but
    "3 skipped": the mix was first heard of when `score` refused the registry. It now says
    so once, in one warning line on stderr (and `old_target` in --json): how many, the first
    key, and the way out. The sample's two partitions too small to train, skipped too, have
    no production version and are no part of it; once the one is retired, the next run
    says nothing."""
    import json

    _, renamed = _renamed(tmp_path)
    data = Path(renamed[2])
    frame = pd.read_csv(data)
    store, brand = frame["store"].iloc[0], frame["brand"].iloc[0]
    frame.loc[(frame["store"] == store) & (frame["brand"] == brand), "sales_units"] = None
    frame.to_csv(data, index=False)
    key = f"store={store},brand={brand}"

    result = runner.invoke(app, [*renamed, "--new-target"])
    assert result.exit_code == 0, result.output
    assert "3 skipped of 6 partitions" in result.stdout  # one of them in production
    (line,) = [s for s in result.stderr.splitlines() if "old target" in s]
    assert line == (
        "warning: 1 partition still serves a model of the old target 'units' in production "
        f"beside 'sales_units' (the first, '{key}'): this --new-target run skipped or failed "
        "it, and score and forecast refuse the registry until it is retired (manymodels "
        f"retire '{key}'; rollback undoes it) or trained again with rows of 'sales_units' "
        "(train --new-target)"
    )
    again = runner.invoke(app, [*renamed, "--new-target", "--json"])
    assert again.exit_code == 0, again.output
    said = json.loads(again.stdout)
    assert said["old_target"] | {"warning": ""} == {
        "partitions": 1, "first": key, "target": "units", "warning": ""
    }  # fmt: skip
    assert said["warnings"] == [said["old_target"]["warning"]]
    assert said["old_target"]["warning"] == line.removeprefix("warning: ")

    root = renamed[renamed.index("--registry") + 1]
    assert runner.invoke(app, ["retire", key, "--registry", root]).exit_code == 0
    after = runner.invoke(app, [*renamed, "--new-target", "--json"])
    assert after.exit_code == 0, after.output
    assert json.loads(after.stdout)["old_target"] is None
    assert json.loads(after.stdout)["warnings"] == []


def test_the_old_target_line_counts_every_partition_left_behind(tmp_path: Path) -> None:
    """Two of three partitions' new target all missing: the run's one line counts both and
    names the first by its key; the one partition trained is not among them."""
    root = tmp_path / "mmregistry"
    features = ["x0", "x1"]
    train(spec_dict(features=features), _frame(), root, backend="local")
    lost = _frame()
    lost.loc[lost["pid"] != 2, "cost"] = float("nan")
    summary = train(spec_dict(features=features, target="cost"), lost, root, backend="local",
                    new_target=True)  # fmt: skip
    left = summary.run.options["old_target"]
    assert (left["partitions"], left["first"], left["target"]) == (2, "pid=0", "y")
    assert left["warning"].startswith(
        "2 partitions still serve models of the old target 'y' in production beside 'cost' "
        "(the first, 'pid=0'): this --new-target run skipped or failed them, and score and "
        "forecast refuse the registry until they are retired (manymodels retire 'pid=0' …;"
    )
    assert summary.run.options["warnings"] == [left["warning"]]
