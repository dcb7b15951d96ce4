"""A candidate that fails on some partitions (an estimator that takes no missing values, on a
partition whose feature nobody filled in) is said so in the run's summary, naming the feature:
before, the partition quietly served naive and the summary read "no candidate beat it"."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from factories import train_cli
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.registry.client import Registry

SPEC = """
name = "shops"
partition_by = ["store"]
target = "sales"
time_column = "day"
features = ["price", "size"]
min_rows = 10

[validation]
strategy = "last"
size = 5

[[candidates]]
estimator = "sklearn.linear_model.Ridge"
params = { alpha = [1.0] }

[[candidates]]
estimator = "sklearn.ensemble.HistGradientBoostingRegressor"   # takes missing values
params = { max_iter = [20] }

[fallback]
enabled = false
"""


def table(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    frames = []
    for k in range(3):
        price = rng.uniform(1, 3, 30)
        frames.append(
            pd.DataFrame(
                {
                    "store": f"s{k}",
                    "day": pd.date_range("2024-01-01", periods=30).strftime("%Y-%m-%d"),
                    "price": price,
                    # store s1's size: given every other day only
                    "size": np.where(np.arange(30) % 2, np.nan, 101.0) if k == 1 else 100.0 + k,
                    "sales": 50 - 8 * price + rng.normal(0, 1, 30),
                }
            )
        )
    data = tmp_path / "shops.csv"
    pd.concat(frames).to_csv(data, index=False)
    spec = tmp_path / "shops.toml"
    spec.write_text(SPEC)
    return spec, data


def test_a_candidate_failed_on_a_partition_is_warned_of_naming_the_feature(
    tmp_path: Path,
) -> None:
    spec, data = table(tmp_path)
    reg = tmp_path / "reg"
    result = CliRunner().invoke(app, ["train", str(spec), str(data), "--registry", str(reg)])
    assert result.exit_code == 0, result.output
    (line,) = [x for x in result.output.splitlines() if "candidate Ridge failed" in x]
    assert line.startswith("warning: candidate Ridge failed on 1 partition ")
    assert "store=s1" in line and "feature(s) 'size'" in line, line
    with Registry(reg) as r:
        ridge, hgb = r.get_version("store=s1").candidates
        assert "missing values in feature(s) 'size'" in str(ridge.get("error"))
        assert hgb.get("error") is None
        assert r.get_version("store=s0").candidates[0].get("error") is None

    again = CliRunner().invoke(
        app, ["train", str(spec), str(data), "--registry", str(tmp_path / "r2"), "--json"]
    )
    assert again.exit_code == 0, again.output
    (failed,) = json.loads(again.stdout)["candidate_failures"]
    assert failed["candidate"] == "Ridge" and failed["partitions"] == 1
    assert failed["key"] == "store=s1" and "'size'" in failed["error"]


def test_no_warning_when_every_candidate_fits(tmp_path: Path) -> None:
    spec, data = table(tmp_path)
    full = pd.read_csv(data).fillna({"size": 101.0})
    full.to_csv(data, index=False)
    result = CliRunner().invoke(
        app, ["train", str(spec), str(data), "--registry", str(tmp_path / "reg")]
    )
    assert result.exit_code == 0, result.output
    assert "failed on" not in result.output


def test_single_class_and_small_partitions_are_no_candidate_failure(tmp_path: Path) -> None:
    """A classifier's partition of one class, or below min_rows, records its candidates as
    "not fitted: …" on purpose (the summary counts those partitions apart): no warning."""
    rng = np.random.default_rng(1)
    rows = []
    for k, n in enumerate([40, 40, 40, 6]):
        temp = rng.normal(50, 10, n)
        label = np.zeros(n, int) if k == 0 else (temp + rng.normal(0, 5, n) > 50).astype(int)
        rows.append(pd.DataFrame({"asset": f"a{k}", "temp": temp, "fail": label}))
    toml = (
        'name = "pumps"\ntask = "classification"\npartition_by = ["asset"]\ntarget = "fail"\n'
        'features = ["temp"]\nmin_rows = 10\n[validation]\nstrategy = "holdout"\nsize = 0.25\n'
        '[[candidates]]\nestimator = "sklearn.linear_model.LogisticRegression"\n'
    )
    result, _ = train_cli(tmp_path, toml, pd.concat(rows))
    assert result.exit_code == 0, result.output
    assert "single-class" in result.output and "too few rows" in result.output, result.output
    assert "failed on" not in result.output, result.output


GLOBAL_SPEC = """
name = "shops"
partition_by = ["shop"]
target = "y"
time_column = "day"
features = ["x"]
[validation]
strategy = "last"
size = 3
[fallback]
enabled = false
[[candidates]]
estimator = "sklearn.linear_model.LinearRegression"
[[candidates]]
estimator = "sklearn.linear_model.Ridge"
scope = "global"
params = { alpha = 0.1 }
"""


def test_a_partition_the_stored_global_model_cannot_judge_is_said_in_the_summary(
    tmp_path: Path,
) -> None:
    """``train --append`` of a new shop: the stored global model (not refitted by a run of
    some partitions) saw no row of it before its validation rows, so the shop chose among the
    local candidates; ``models show`` recorded why, and the summary said nothing of it (only
    "0 of 1 trained partitions serve a global model"). Now one warning line: how many, the
    first key, why. A full run that judges it everywhere says nothing of the kind."""
    runner = CliRunner()
    rng = np.random.default_rng(0)
    frames = []
    for k in range(8):
        x = np.arange(12) + rng.uniform(0, 1, 12)
        y = 2.0 * x + 3.0 * (k % 5) + rng.normal(0, 2.0, 12)
        days = pd.date_range("2024-01-01", periods=12)
        frames.append(pd.DataFrame({"shop": f"s{k}", "day": days, "x": x, "y": y}))
    df = pd.concat(frames, ignore_index=True)
    (tmp_path / "spec.toml").write_text(GLOBAL_SPEC)
    df[df["shop"] != "s5"].to_csv(tmp_path / "old.csv", index=False)
    df[df["shop"] == "s5"].to_csv(tmp_path / "new.csv", index=False)
    base = [str(tmp_path / "spec.toml")]
    where = ["--registry", str(tmp_path / "reg"), "--backend", "local"]
    full = runner.invoke(app, ["train", *base, str(tmp_path / "old.csv"), *where])
    assert full.exit_code == 0, full.output
    assert "not judged" not in full.output, full.output
    args = ["train", *base, str(tmp_path / "new.csv"), "--append", *where]
    appended = runner.invoke(app, args)
    assert appended.exit_code == 0, appended.output
    lines = [ln for ln in appended.output.splitlines() if "global model Ridge" in ln]
    assert len(lines) == 1, appended.output
    assert lines[0].startswith("warning: global model Ridge was not judged on 1 partition ")
    assert "the first, shop=s5: ValueError: the stored global model is judged only" in lines[0]
    assert "manymodels models show shop=s5" in lines[0]

    df.assign(y=df["y"] + 1)[df["shop"] == "s5"].to_csv(tmp_path / "new.csv", index=False)
    as_json = runner.invoke(app, [*args, "--json"])
    assert as_json.exit_code == 0, as_json.output
    unjudged = json.loads(as_json.output)["global_unjudged"]
    assert [(u["candidate"], u["partitions"], u["key"]) for u in unjudged] == [
        ("Ridge", 1, "shop=s5")
    ], unjudged


def test_the_warnings_command_names_the_registry_it_warns_of(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its `manymodels models show KEY` is there to be copied: trained into `--registry reg`,
    it said no registry, so it read ./mmregistry (here none: an error; elsewhere another
    registry's partition)."""
    spec, data = table(tmp_path)
    monkeypatch.chdir(tmp_path)  # no ./mmregistry here
    result = CliRunner().invoke(app, ["train", str(spec), str(data), "--registry", "reg"])
    assert result.exit_code == 0, result.output
    (line,) = [x for x in result.output.splitlines() if "candidate Ridge failed" in x]
    command = line.split("); ")[-1].removesuffix(" lists each candidate's error")
    words = shlex.split(command)
    assert words[:3] == ["manymodels", "models", "show"], line
    shown = CliRunner().invoke(app, [*words[1:], "--json"])
    assert shown.exit_code == 0, shown.output
    assert "missing values in feature(s) 'size'" in shown.output


def test_a_run_that_trained_nothing_says_no_global_share(tmp_path: Path) -> None:
    """Lags longer than every shop's 12 days leave no row to fit: the global model failed
    and no partition trained, yet the summary said "0 of 0 trained partitions serve a global
    model" beside the global model's failure. Now the share is said only of partitions
    trained; the failure and the one error line stay."""
    spec = GLOBAL_SPEC.replace('features = ["x"]\n', 'features = ["x"]\nlags = [20]\n')
    (tmp_path / "spec.toml").write_text(spec)
    days = pd.date_range("2024-01-01", periods=12)
    df = pd.concat(
        pd.DataFrame({"shop": f"s{k}", "day": days, "x": np.arange(12.0), "y": k + 0.5})
        for k in range(4)
    )
    df.to_csv(tmp_path / "d.csv", index=False)
    where = ["--registry", str(tmp_path / "reg"), "--backend", "local"]
    result = CliRunner().invoke(
        app, ["train", str(tmp_path / "spec.toml"), str(tmp_path / "d.csv"), *where]
    )
    assert result.exit_code != 0, result.output
    assert "warning: global model Ridge failed" in result.output, result.output
    assert "serve a global model" not in result.output, result.output


def test_a_single_class_partition_choosing_a_global_model_is_no_candidate_failure(
    tmp_path: Path,
) -> None:
    """Since one-class partitions score the global candidates (c0490c9), one that chose a
    global model counted its local candidates' "not fitted: its training rows hold one class"
    as failures: "warning: candidate LogisticRegression failed on 1 partition"."""
    rng = np.random.default_rng(3)
    frames = []
    for u in range(12):
        x = rng.normal(0, 1, 16)
        if u == 0:  # low x (no click) while it trains, high in its validation rows
            x = np.concatenate([-np.abs(x[:12]) - 1.0, np.abs(x[12:]) + 1.0])
        y = (x + rng.normal(0, 0.3, 16) > 0).astype(int)
        days = pd.date_range("2024-01-01", periods=16)
        frames.append(pd.DataFrame({"user": f"u{u:02d}", "day": days, "x": x, "click": y}))
    toml = (
        'name = "clicks"\ntask = "classification"\npartition_by = ["user"]\ntarget = "click"\n'
        'time_column = "day"\nfeatures = ["x"]\nmetric = "neg_log_loss"\n'
        '[validation]\nstrategy = "last"\nsize = 4\n[fallback]\nenabled = false\n'
        '[[candidates]]\nestimator = "sklearn.linear_model.LogisticRegression"\n'
        '[[candidates]]\nestimator = "sklearn.linear_model.LogisticRegression"\n'
        'scope = "global"\n'
    )
    result, reg = train_cli(tmp_path, toml, pd.concat(frames))
    assert result.exit_code == 0, result.output
    with Registry(reg) as registry:
        version = registry.get_version("user=u00")
    assert version.validation["chosen"] == "global", version.validation  # the case at hand
    assert "single_class" in version.evaluation
    assert "failed on" not in result.output, result.output
