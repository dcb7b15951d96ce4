"""A classifier chosen by another metric than accuracy is held to its validation error rate
alone (``PartitionHealth.naive_is_a_bar``); a version trained before that rate was recorded
has none, and was never flagged ``degraded`` whatever its actuals — silently. The monitor now
says so, per row (``note``) and under its table; and ``GET /v1/monitor?confidence=`` weighs
``degraded`` as ``manymodels monitor --confidence`` does."""

from __future__ import annotations

import json
import math
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update
from test_monitor_degraded import SPEC, frame, runner

from manymodels.cli import app
from manymodels.monitoring import store
from manymodels.monitoring.live import ErrorSums
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.registry import schema as t
from serving.local import running_server
from serving.settings import Settings


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    return unjudged(tmp_path_factory.mktemp("unjudged") / "registry")


def unjudged(root: Path) -> dict[str, object]:
    """30 classifiers chosen by balanced accuracy; ``old``'s validation record stripped of
    its error rate (as versions trained before it was recorded have it), ``new``'s kept, both
    with 100 actuals of which 70 wrong; ``edge`` a little above 1.5 × its error rate."""
    spec = {**SPEC, "metric": "balanced_accuracy"}
    assert train(spec, frame(0, 300), root, backend="local").run.n_trained == 30
    with Registry.open(root) as reg:
        engine = reg.store.engine
        versions = [reg.get_version(f"pid={p}", alias="production") for p in range(30)]
        rates = {v.key: v.validation["error_rate"] for v in versions}
        old, new = "pid=0", "pid=1"
        edge = max((k for k in rates if k not in (old, new)), key=lambda k: rates[k])
        record = dict(versions[0].validation)
        del record["error_rate"]
        v = t.model_versions.c
        with engine.begin() as conn:
            conn.execute(
                update(t.model_versions)
                .where(v.key == old, v.version == versions[0].version)
                .values(validation_json=json.dumps(record))
            )
        wrong = math.ceil(1.5 * rates[edge] * 100) + 1  # above the ratio, within the noise
        batch = [
            (old, versions[0].version, ErrorSums(100, 0.0, 0.0, 70, 0.0, 0.0, 30), None, []),
            (new, versions[1].version, ErrorSums(100, 0.0, 0.0, 70, 0.0, 0.0, 30), None, []),
        ]
        ve = next(x for x in versions if x.key == edge)
        batch.append((edge, ve.version, ErrorSums(100, 0.0, 0.0, wrong, 0.0, 0.0, 30), None, []))
        store.add_many_actuals(engine, "2026-01-01", batch)
    return {"root": root, "old": old, "new": new, "edge": edge}


def rows_of(output: str) -> dict[str, dict[str, object]]:
    return {p["key"]: p for p in json.loads(output)["partitions"]}


def test_the_monitor_says_which_classifier_it_cannot_judge(registry: dict[str, object]) -> None:
    root, old, new = str(registry["root"]), registry["old"], registry["new"]
    shown = runner.invoke(app, ["monitor", "--registry", root, "--limit", "100", "--json"])
    assert shown.exit_code == 0, shown.output
    rows = rows_of(shown.output)
    assert "degraded" in rows[new]["flags"] and rows[new]["note"] is None  # 70 % vs its rate
    assert "degraded" not in rows[old]["flags"]  # no bar: the same actuals, never flagged
    assert "not judged degraded" in str(rows[old]["note"])
    assert "balanced_accuracy" in str(rows[old]["note"])
    assert [k for k, r in rows.items() if r["note"]] == [old]
    text = runner.invoke(app, ["monitor", "--registry", root, "--limit", "100"])
    assert text.exit_code == 0, text.output
    (line,) = [x for x in text.output.splitlines() if x.startswith("note:")]
    assert "1 partition(s)" in line and f"({old})" in line and "retrain" in line


@pytest.mark.slow  # a real router (~5-12 s on a busy machine)
def test_the_router_weighs_degraded_at_the_confidence_asked(registry: dict[str, object]) -> None:
    root, old, edge = Path(str(registry["root"])), registry["old"], registry["edge"]
    cli = {}
    for confidence in ("0.5", "0.9999"):
        shown = runner.invoke(
            app, ["monitor", "--registry", str(root), "--limit", "100", "--json",
                  "--confidence", confidence],
        )  # fmt: skip
        cli[confidence] = {k: r["flags"] for k, r in rows_of(shown.output).items()}
    assert "degraded" in cli["0.5"][edge] and "degraded" not in cli["0.9999"][edge]
    with running_server(Settings(registry=root)) as url:
        for confidence, flags in cli.items():
            for sort in ("drift", "error"):
                page = httpx.get(
                    f"{url}/v1/monitor",
                    params={"limit": 100, "sort": sort, "confidence": confidence},
                )
                assert page.status_code == 200, page.text
                assert {k: r["flags"] for k, r in rows_of(page.text).items()} == flags
        one = httpx.get(f"{url}/v1/monitor", params={"key": old}).json()["partitions"][0]
        assert "not judged degraded" in one["note"]
        for bad in ("0.3", "1", "x"):
            refused = httpx.get(f"{url}/v1/monitor", params={"confidence": bad})
            assert refused.status_code == 422, (bad, refused.text)


@pytest.mark.parametrize("metric", ["f1_macro", "neg_brier_score"])
def test_a_classifier_of_a_less_common_scorer_is_read_as_a_classifier(
    tmp_path: Path, metric: str
) -> None:
    """A classifier chosen by a scorer the monitor did not list (``f1_macro``; the
    ``neg_brier_score`` a ``fallback_metric`` records) whose most probable class and naive
    answer were right on all 2,000 actuals, its labels at a ``[decision]`` threshold wrong on
    5 %: it read as a regression, its label errors as a mean absolute error against naive's 0
    (live/naive ∞), and was flagged ``degraded``. Now: accuracy 0, labels 0.05, not flagged."""
    from manymodels.monitoring import report

    root = tmp_path / "registry"
    train({**SPEC, "metric": metric}, frame(0, 300)[lambda d: d.pid < 2], root, backend="local")
    with Registry.open(root) as reg:
        engine = reg.store.engine
        v = reg.get_version("pid=0", alias="production")
        sums = ErrorSums(2000, 100.0, 2000.0, 0, 0.0, 0.0, 0)  # 100 of 2,000 labels wrong
        store.add_many_actuals(engine, "2026-01-01", [("pid=0", v.version, sums, None, [])])
        if metric == "neg_brier_score":  # as a fallback_metric records it
            col = t.model_versions.c
            with engine.begin() as conn:
                conn.execute(
                    update(t.model_versions).where(col.key == "pid=0").values(metric=metric)
                )
        (row,) = report.health(engine, keys=["pid=0"])
    assert row.metric == metric and row.live_metric == "accuracy"
    assert row.live_error == 0.0 and row.label_error == 0.05
    assert row.flags(report.Thresholds()) == []


def test_a_classifier_without_probabilities_is_judged_on_its_labels(tmp_path: Path) -> None:
    """A ``RidgeClassifier`` (labels, no probabilities) chosen by balanced accuracy recorded no
    validation error rate (only ``predict_proba``'s fits had one measured), so it was never
    flagged ``degraded`` — each of its 100 actuals per partition wrong or not — and the
    monitor's note told to retrain it "to record one", which recorded none again. Now its
    labels' error rate on the validation rows is recorded and is its bar."""
    root = tmp_path / "registry"
    spec = {
        **SPEC,
        "metric": "balanced_accuracy",
        "candidates": [{"estimator": "sklearn.linear_model.RidgeClassifier"}],
    }
    assert train(spec, frame(0, 300)[lambda d: d.pid < 3], root, backend="local").run.n_trained
    with Registry.open(root) as reg:
        rate = reg.get_version("pid=0", alias="production").validation.get("error_rate")
    assert rate is not None and 0 < rate < 0.5
    flipped = frame(1, 100)[lambda d: d.pid < 3].assign(y=lambda d: 1 - d.y)
    flipped.to_csv(tmp_path / "actuals.csv", index=False)
    posted = runner.invoke(app, ["actuals", str(tmp_path / "actuals.csv"), "--registry", str(root)])
    assert posted.exit_code == 0, posted.output
    shown = runner.invoke(app, ["monitor", "--registry", str(root), "--json"])
    assert shown.exit_code == 0, shown.output
    rows = rows_of(shown.output)
    assert [r["note"] for r in rows.values()] == [None] * 3
    assert all("degraded" in r["flags"] for r in rows.values()), rows


def test_a_constant_of_too_few_rows_is_not_said_to_be_an_old_version(tmp_path: Path) -> None:
    """A partition below ``min_rows`` gets a constant-probability version with no validation
    rows (``training.small``), recorded under the ``fallback_metric`` (``neg_log_loss``). With
    actuals, the monitor's note said of it "a classifier chosen by neg_log_loss, trained before
    its validation error rate was recorded (retrain it to record one)" under a spec of metric
    accuracy, just trained: a retrain on the same rows records none again. Now the note says
    what it is."""
    import pandas as pd

    root = tmp_path / "registry"
    small = frame(5, 8)[lambda d: d.pid == 2]
    data = pd.concat([frame(0, 300)[lambda d: d.pid < 2], small], ignore_index=True)
    assert train({**SPEC, "min_rows": 20}, data, root, backend="local").run.n_trained == 3
    frame(1, 100)[lambda d: d.pid < 3].to_csv(tmp_path / "actuals.csv", index=False)
    posted = runner.invoke(app, ["actuals", str(tmp_path / "actuals.csv"), "--registry", str(root)])
    assert posted.exit_code == 0, posted.output
    shown = runner.invoke(app, ["monitor", "--registry", str(root), "--json"])
    assert shown.exit_code == 0, shown.output
    rows = rows_of(shown.output)
    assert rows["pid=0"]["note"] is None and rows["pid=1"]["note"] is None
    note = str(rows["pid=2"]["note"])
    assert "below min_rows" in note and "trained before" not in note, note
    text = runner.invoke(app, ["monitor", "--registry", str(root)])
    (line,) = [x for x in text.output.splitlines() if x.startswith("note:")]
    assert "(pid=2)" in line and "below min_rows" in line and "retrain" not in line, line
