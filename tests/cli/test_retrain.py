"""``manymodels retrain --when changed --dry-run``: the partitions it lists are those the
run then retrains, decided by the run's own code (``run_input.would_retrain``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from manymodels.cli import app as cli_app
from manymodels.registry import Registry

runner = CliRunner()
SPEC_TOML = (
    'name = "changed"\npartition_by = ["pid"]\ntarget = "y"\nfeatures = ["x0"]\n'
    '[[candidates]]\nestimator = "sklearn.linear_model.Ridge"\n'
    '[validation]\nstrategy = "holdout"\nsize = 0.2\n[fallback]\nenabled = false\n'
    '[promotion]\npolicy = "always"\n'
)


def _frame(seed: int = 0, rows: int = 40, pids: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows * pids)
    pid = np.repeat(np.arange(pids), rows)
    return pd.DataFrame({"pid": pid, "x0": x, "y": 2 * x + pid + rng.normal(size=x.size)})


class Grown(NamedTuple):
    """A trained registry whose data then grew (``grown``), and the command that retrains
    what changed: ``retrain SPEC DATA --when changed --registry … --backend local``."""

    args: list[str]
    data: Path
    registry: Path


@pytest.fixture
def grown(tmp_path: Path) -> Grown:
    """5 partitions trained from ``DATA`` (``d.parquet``), which then has new rows of pid=1
    and pid=3 only: what ``--when changed`` retrains."""
    spec, data, registry = tmp_path / "spec.toml", tmp_path / "d.parquet", tmp_path / "reg"
    spec.write_text(SPEC_TOML)
    first = _frame()
    first.to_parquet(data)
    base = ["--registry", str(registry), "--backend", "local"]
    done = runner.invoke(cli_app, ["train", str(spec), str(data), *base])
    assert done.exit_code == 0, done.output
    more = _frame(seed=1)[lambda d: d.pid.isin([1, 3])].head(50)
    pd.concat([first, more], ignore_index=True).to_parquet(data)
    return Grown(["retrain", str(spec), str(data), "--when", "changed", *base], data, registry)


def test_retrain_when_changed_dry_run_lists_what_the_run_retrains(grown: Grown) -> None:
    """5 partitions trained; DATA then has new rows of pid=1 and pid=3 only. `--when changed
    --dry-run` was refused ("changed is decided by training"); now it lists pid=1 and pid=3,
    records nothing, and the real run then retrains exactly those."""
    args, data, registry = grown
    listed = runner.invoke(cli_app, [*args, "--dry-run"])
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.splitlines() == ["pid=1", "pid=3"]
    as_json = runner.invoke(cli_app, [*args, "--dry-run", "--json"])
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout) == {
        "selected": None, "retrain": ["pid=1", "pid=3"], "unchanged": 3,
        "when": ["changed"], "trained": False,
    }  # fmt: skip
    runs = runner.invoke(cli_app, ["runs", "list", "--json", "--registry", str(registry)])
    assert json.loads(runs.stdout)["total"] == 1  # the dry runs recorded no run
    result = runner.invoke(cli_app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    with Registry.open(registry) as reg:
        run_id = json.loads(result.stdout)["run"]["run_id"]
        trained = [o.key for o in reg.store.run_outcomes(run_id, status="trained")]
    assert sorted(trained) == ["pid=1", "pid=3"] == json.loads(as_json.stdout)["retrain"]
    again = runner.invoke(cli_app, [*args, "--dry-run"])  # now all unchanged
    assert again.exit_code == 0, again.output
    assert again.stdout.splitlines() == [
        f"nothing to retrain: all 5 partitions in {data} have the data they were last "
        "trained (or skipped) on"
    ]


def test_retrain_dry_run_over_a_misspelt_store_is_refused_as_the_run_is(
    grown: Grown, tmp_path: Path
) -> None:
    """`retrain --when changed --dry-run --artifacts <a misspelt store>` listed the changed
    partitions (exit 0) where the run itself is refused ("holds none of this registry's
    models"): a dry run must not promise a run that cannot happen. Now the same one line."""
    args = [*grown.args, "--artifacts", str(tmp_path / "misspelt")]
    run = runner.invoke(cli_app, args)
    listed = runner.invoke(cli_app, [*args, "--dry-run"])
    assert run.exit_code == listed.exit_code == 1, listed.output
    said = [line for line in listed.output.splitlines() if line]
    assert len(said) == 1 and "holds none of this registry's models" in said[0], listed.output
    assert said == [line for line in run.output.splitlines() if line]


def test_a_retrain_whose_data_holds_no_flagged_partition_says_which_file_and_flags(
    grown: Grown,
) -> None:
    """Every partition stale (``--max-age-days 0``), DATA holding none of them: the error
    said "no rows in the data for partition(s) pid=0, …", keys the user never named, in a
    data file it did not name."""
    other = grown.data.with_name("other.parquet")
    _frame(pids=7)[lambda d: d.pid >= 5].to_parquet(other)  # partitions never trained
    args = [*grown.args[:2], str(other), "--when", "stale", "--max-age-days", "0", *grown.args[5:]]
    result = runner.invoke(cli_app, args)
    assert result.exit_code == 2, result.output
    assert result.output == (
        f"error: {other}: no rows in the data for any of the 5 partition(s) the monitor flags: "
        "pid=0, pid=1, pid=2, pid=3, pid=4\n"
    )


def _grow_every_partition(data: Path) -> None:
    before = pd.read_parquet(data)
    pd.concat([before, _frame(seed=7, rows=5)], ignore_index=True).to_parquet(data)


@pytest.mark.parametrize("command", ["train", "retrain"])
def test_the_summary_says_unchanged_partitions_were_skipped_only_when_some_were(
    grown: Grown, command: str
) -> None:
    """Every `train --changed-only` and `retrain` summary said "skipped 0 partitions whose
    data is unchanged" when none was: now said only of some; --json keeps its count, 0 too."""
    changed_only = ["train", *grown.args[1:3], "--changed-only", *grown.args[5:]]
    args = grown.args if command == "retrain" else changed_only
    some = runner.invoke(cli_app, args)  # pid=1 and pid=3 grew
    assert some.exit_code == 0, some.output
    assert "skipped 3 partitions whose data is unchanged" in some.stdout.splitlines()
    _grow_every_partition(grown.data)
    none = runner.invoke(cli_app, args)
    assert none.exit_code == 0, none.output
    assert "5 trained" in none.stdout
    assert "whose data is unchanged" not in none.stdout, none.stdout
    _grow_every_partition(grown.data)
    as_json = runner.invoke(cli_app, [*args, "--json"])
    assert as_json.exit_code == 0, as_json.output
    options = json.loads(as_json.stdout)["run"]["options"]
    assert options["changed_only"] is True and options["unchanged"] == 0, options


def test_nothing_to_retrain_names_a_flagged_partition_rolled_back_from_its_newest(
    grown: Grown,
) -> None:
    """A partition rolled back from the version trained on its rows stays flagged, and a
    retrain of it said only "the data its newest version was trained on": now it names the
    partition whose newest version is not served, and the command that serves it."""
    assert runner.invoke(cli_app, grown.args).exit_code == 0  # pid=1 and pid=3 → v2
    base = grown.args[5:]
    back = runner.invoke(cli_app, ["rollback", "pid=1", *base[:2]])
    assert back.exit_code == 0, back.output
    stale = [*grown.args[:3], "--when", "stale", "--max-age-days", "0", *base]
    result = runner.invoke(cli_app, stale)
    assert result.exit_code == 0, result.output
    (line,) = result.stdout.splitlines()
    assert line.startswith("nothing to retrain: all 5 flagged partitions have the data"), line
    assert line.endswith(
        "; pid=1's newest version v2, trained on these rows, is not in production (v1 is: "
        f"rolled back, or not promoted): manymodels promote pid=1 2 --registry {grown.registry} "
        "serves it"
    ), line


def test_the_promote_hint_names_no_partition_the_data_has_no_rows_of(grown: Grown) -> None:
    """pid=0 and pid=1 rolled back from their newest versions, then pid=0 gone from DATA: the
    hint walked the flagged keys, the absent one too, and said "pid=0's newest version v2,
    trained on these rows" of a partition DATA holds no row of. Now it names pid=1."""
    _grow_every_partition(grown.data)
    assert runner.invoke(cli_app, grown.args).exit_code == 0  # each of the five → v2
    base = grown.args[5:]
    for key in ("pid=0", "pid=1"):
        back = runner.invoke(cli_app, ["rollback", key, *base[:2]])
        assert back.exit_code == 0, back.output
    pd.read_parquet(grown.data)[lambda d: d.pid != 0].to_parquet(grown.data)
    stale = [*grown.args[:3], "--when", "stale", "--max-age-days", "0", *base]
    result = runner.invoke(cli_app, stale)
    assert result.exit_code == 0, result.output
    assert "have no rows in" in result.stderr and "not retrained: pid=0\n" in result.stderr
    (line,) = result.stdout.splitlines()
    assert line.endswith(
        "; pid=1's newest version v2, trained on these rows, is not in production (v1 is: "
        f"rolled back, or not promoted): manymodels promote pid=1 2 --registry {grown.registry} "
        "serves it"
    ), line


def test_the_promote_hint_names_no_partition_past_the_absent_ones_listed(tmp_path: Path) -> None:
    """13 partitions, DATA then holding pid=3's rows alone: the run lists the first ten of
    the 12 absent keys (pid=0 … pid=7, in text order), so pid=8 and pid=9 are absent unlisted.
    With pid=0 and pid=9 rolled back, the hint named pid=0 (listed absent) — and skipping
    the listed ones alone, pid=9: neither has rows in DATA. Now nothing is named until pid=3,
    which has, is rolled back too."""
    spec, data, registry = tmp_path / "spec.toml", tmp_path / "d.parquet", tmp_path / "reg"
    spec.write_text(SPEC_TOML)
    base = ["--registry", str(registry), "--backend", "local"]
    for seed in (0, 1):  # each partition → v2, promoted
        _frame(seed=seed, pids=13).to_parquet(data)
        done = runner.invoke(cli_app, ["train", str(spec), str(data), *base])
        assert done.exit_code == 0, done.output
    _frame(seed=1, pids=13)[lambda d: d.pid == 3].to_parquet(data)
    stale = ["retrain", str(spec), str(data), "--when", "stale", "--max-age-days", "0", *base]
    lines = []
    for key in ("pid=0 pid=9", "pid=3"):
        for one in key.split():
            back = runner.invoke(cli_app, ["rollback", one, *base[:2]])
            assert back.exit_code == 0, back.output
        result = runner.invoke(cli_app, stale)
        assert result.exit_code == 0, result.output
        assert "12 flagged partition(s) have no rows in" in result.stderr, result.stderr
        (line,) = result.stdout.splitlines()
        lines.append(line)
    said = "nothing to retrain: the flagged partition has the data its newest version was "
    assert lines[0] == f"{said}trained on, under this spec; no run recorded", lines[0]
    assert lines[1].startswith(f"{said}trained on") and "; pid=3's newest version v2" in lines[1]
