"""Conformal prediction intervals (``manymodels.intervals``): the quantile against a hand
computation, empirical coverage on a synthetic panel of known noise, the ``lo-``/``hi-``
columns of ``forecast`` and ``score``, and ``?levels=`` on the router over real HTTP."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from factories import SALES_SPEC, linear_series

from manymodels import intervals
from manymodels.exceptions import DataError, SpecError
from manymodels.feature_schema import FeatureSchema
from manymodels.forecasting import forecast
from manymodels.partition import FALLBACK_KEY
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.samples import store_sales
from manymodels.scoring import score
from manymodels.spec import Spec
from serving.local import running_server
from serving.settings import Settings

RIDGE = [{"estimator": "sklearn.linear_model.Ridge", "params": {"alpha": [1.0]}}]
SALES: dict[str, Any] = {
    **SALES_SPEC,
    "name": "sales-intervals",
    "candidates": RIDGE,  # unscaled
    "intervals": {"levels": [80, 95]},
}
KEY = "store=1,brand=tropicana"


def _train(spec: dict[str, Any], data: pd.DataFrame, root: Path) -> None:
    with Registry(root) as reg:
        summary = train(spec, data, reg, backend="local")
        assert summary.run.n_failed == 0, summary.failures


def _schema(root: Path, key: str) -> dict[str, Any]:
    with Registry.open(root) as reg:
        return dict(reg.get_version(key).feature_schema)


@pytest.fixture(scope="module")
def sales_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("intervals") / "registry"
    _train(SALES, store_sales(n_stores=2), root)
    return root


# -------------------------------------------------------------------------------- the math
def test_conformal_quantile_is_the_finite_sample_rank_computed_by_hand() -> None:
    scores = np.array([0.5, 3.0, 1.0, 2.0, 4.0])  # sorted: 0.5 1 2 3 4
    # n = 5: rank ⌈6 · level / 100⌉ — 50 % → ⌈3⌉ = 3rd; 60 % → ⌈3.6⌉ = 4th; 80 % → ⌈4.8⌉ = 5th
    assert intervals.conformal_quantile(scores, 50) == 2.0
    assert intervals.conformal_quantile(scores, 60) == 3.0
    assert intervals.conformal_quantile(scores, 80) == 4.0
    assert intervals.conformal_quantile(scores, 95) == 4.0  # rank 6 > n: the largest
    assert math.isnan(intervals.conformal_quantile(np.zeros(0), 80))
    # exact where (n + 1) · level is whole: n = 19, 95 % → rank 19, not 20
    assert intervals.conformal_quantile(np.arange(1.0, 20.0), 95) == 19.0
    assert intervals._needed(80) == 4 and intervals._needed(95) == 19


def test_record_pools_folds_and_keeps_steps_only_when_each_has_enough_errors() -> None:
    y = np.zeros(2)
    folds = [(y, np.array([1.0, -5.0])), (y, np.array([-2.0, 6.0])), (y, np.array([3.0, 7.0]))]
    rec = intervals.record(folds, [50], ordered=True)
    assert rec is not None
    # pooled |errors| 1 5 2 6 3 7 → sorted 1 2 3 5 6 7, rank ⌈7 · 0.5⌉ = 4 → 5
    assert rec["rows"] == 6 and rec["quantiles"] == [5.0]
    # step 1: 1 2 3 → rank ⌈4 · 0.5⌉ = 2 → 2; step 2: 5 6 7 → 6
    assert rec["steps"] == [[2.0], [6.0]]
    # 80 % needs 4 errors per step: three folds are too few, so one pooled quantile serves
    rec80 = intervals.record(folds, [50, 80], ordered=True)
    assert rec80 is not None and "steps" not in rec80
    assert rec80["quantiles"] == [5.0, 7.0]  # rank ⌈7 · 0.8⌉ = 6 → 7
    assert "steps" not in (intervals.record(folds, [50], ordered=False) or {})


def test_short_levels_are_those_whose_rank_exceeds_the_errors() -> None:
    """80 % needs 4 errors (rank ⌈5 · 0.8⌉ = 4), 95 % needs 19 (⌈20 · 0.95⌉ = 19)."""
    rec = {"levels": [80.0, 95.0], "rows": 10, "quantiles": [1.0, 2.0]}
    assert intervals.short_levels(rec) == [intervals.ShortLevel(95.0, 19, 10)]
    assert intervals.short_levels({**rec, "rows": 19}) == []
    assert intervals.short_levels({**rec, "rows": 3}) == [
        intervals.ShortLevel(80.0, 4, 3), intervals.ShortLevel(95.0, 19, 3)
    ]  # fmt: skip
    assert intervals.short_levels(None) == []


def test_a_run_warns_of_bands_from_too_few_errors(tmp_path: Path) -> None:
    """8 validation rows calibrate an 80 % band but not a 95 % one: the run's summary, its
    console output and its JSON say how many partitions, and how few errors."""
    from typer.testing import CliRunner

    from manymodels.cli import app

    data = store_sales(n_stores=2)
    with Registry(tmp_path / "api") as reg:
        summary = train(SALES, data, reg, backend="local")
    (level,) = summary.short_intervals
    short = summary.short_intervals[level]
    assert level == 95.0 and (short.partitions, short.needed, short.fewest) == (
        summary.run.n_trained,
        19,
        8,
    )
    spec = tmp_path / "spec.toml"
    spec.write_text(
        'name = "sales-intervals"\npartition_by = ["store", "brand"]\ntarget = "units"\n'
        'time_column = "week"\nfeatures = ["price", "deal", "feat"]\nmin_rows = 20\n'
        '[validation]\nstrategy = "last"\nsize = 8\n[intervals]\nlevels = [80, 95]\n'
        '[[candidates]]\nestimator = "sklearn.linear_model.Ridge"\nparams = { alpha = [1.0] }\n',
        encoding="utf-8",
    )
    assert Spec.from_toml(spec).spec_hash == Spec.from_dict(SALES).spec_hash
    csv = tmp_path / "sales.csv"
    data.to_csv(csv, index=False)
    args = ["train", str(spec), str(csv), "--backend", "local"]
    shown = CliRunner().invoke(app, [*args, "--registry", str(tmp_path / "cli")])
    assert shown.exit_code == 0, shown.output
    assert (
        f"warning: {summary.run.n_trained} partition(s) have 95% intervals from fewer than 19 "
        "validation errors (as few as 8)"
    ) in " ".join(shown.output.split())
    as_json = CliRunner().invoke(app, [*args, "--registry", str(tmp_path / "j"), "--json"])
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.output)["short_intervals"] == [
        {"level": 95.0, "partitions": summary.run.n_trained, "needed": 19, "fewest": 8}
    ]
    enough = {**SALES, "intervals": {"levels": [80]}}
    with Registry(tmp_path / "enough") as reg:
        assert train(enough, data, reg, backend="local").short_intervals == {}


def test_bands_widths_per_step_or_pooled() -> None:
    record = {"levels": [80.0], "rows": 9, "quantiles": [2.0], "steps": [[1.0], [3.0]]}
    schema = FeatureSchema([], intervals=record)
    pred = np.array([10.0, 20.0])
    per_step = intervals.bands(pred, intervals.widths(schema, [80], steps=2), [80])
    assert per_step["lo-80"].tolist() == [9.0, 17.0] and per_step["hi-80"].tolist() == [11.0, 23.0]
    longer = intervals.widths(schema, [80], steps=3)  # more steps than recorded: pooled
    assert longer.tolist() == [[2.0, 2.0, 2.0]]
    assert intervals.bands(pred, intervals.widths(schema, [80]), [80])["hi-80"].tolist() == [
        12.0,
        22.0,
    ]
    assert intervals.column_names([80, 97.5]) == ["lo-80", "hi-80", "lo-97.5", "hi-97.5"]


def test_forecast_widths_return_to_the_targets_units_after_a_target_transform() -> None:
    record = {"levels": [80.0], "rows": 8, "quantiles": [2.0]}
    scaled = {"intervals": record, "history": {"transform": {"kind": "scale", "spread": 3.0}}}
    assert intervals.widths(FeatureSchema.parse(scaled), [80], steps=2).tolist() == [[6.0, 6.0]]
    summed = {"intervals": record, "history": {"transform": {"kind": "difference"}}}
    assert np.allclose(
        intervals.widths(FeatureSchema.parse(summed), [80], steps=4),
        [[2.0, 2.0 * 2**0.5, 2.0 * 3**0.5, 4.0]],
    )
    # errors of 2-step forecasts already: past the second step they grow as √(step / 2)
    chained = {**summed, "intervals": {**record, "units": "target", "chained": 2}}
    assert np.allclose(
        intervals.widths(FeatureSchema.parse(chained), [80], steps=4),
        [[2.0, 2.0, 2.0 * 1.5**0.5, 2.0 * 2**0.5]],
    )
    assert intervals.widths(FeatureSchema.parse(scaled), [80]).tolist() == [
        [2.0]
    ]  # rows scored as the model answers
    in_units = {**scaled, "intervals": {**record, "units": "target"}}  # errors turned back already
    assert intervals.widths(FeatureSchema.parse(in_units), [80], steps=2).tolist() == [[2.0, 2.0]]


def test_levels_are_checked_in_the_spec_and_in_requests() -> None:
    base = {"name": "s", "partition_by": ["k"], "target": "y", "candidates": RIDGE}
    spec = Spec.from_dict({**base, "intervals": {"levels": [95, 80, 97.5, 99.9]}})
    assert spec.intervals is not None and spec.intervals.levels == [80, 95, 97.5, 99.9]
    for bad, says in [
        ([0], "0 is not a coverage"), ([100], "100 is not"), ([80, 80], "twice"),
        ([0.8, 0.95], r"0.8 is not a coverage in percent above 1: .*80 for an 80 % interval"),
        ([1], "1 is not a coverage in percent above 1"),
        ([0.999999999], "0.999999999 is not a coverage in percent above 1"),
        ([80, 80.0000001], r"80.0 and 80.0000001 would both write the columns lo-80 and hi-80"),
    ]:  # fmt: skip
        with pytest.raises(SpecError, match=says):
            Spec.from_dict({**base, "intervals": {"levels": bad}})
    with pytest.raises(SpecError, match=r"99.99999999 would be named 100% \(lo-/hi- columns"):
        Spec.from_dict({**base, "intervals": {"levels": [80, 99.99999999]}})
    with pytest.raises(SpecError, match=r"\[intervals\] are for regression"):
        Spec.from_dict({**base, "task": "classification", "intervals": {"levels": [80]}})
    assert intervals.parse_levels("95, 80") == [80.0, 95.0]
    for text in ("", "abc", "0", "100", "80,,95", "0.8,0.95", "1"):
        with pytest.raises(DataError, match="levels"):
            intervals.parse_levels(text)
    # Python's float() reads "8_0" as 80 and full-width "８０" as 80: a typo answered the 80 %
    # band, and "1_0" said "no 10% interval". Levels are written in ASCII decimals.
    for text in ("8_0", "1_0", "\uff18\uff10", "80,9_5", "\u0668\u0660"):
        with pytest.raises(DataError, match=r"levels: .* is not a coverage in percent"):
            intervals.parse_levels(text)
    assert intervals.parse_levels(" 80 ,95.0,8e1,+90") == [80.0, 90.0, 95.0]
    recorded = {"intervals": {"levels": [99.99994], "quantiles": [1.0]}}
    with pytest.raises(DataError, match=r"no 99.9999% interval \(levels recorded: 99.99994;"):
        intervals.check_levels(FeatureSchema.parse(recorded), [99.9999], what="partition 'k=1' v1")
    # … and an asked level as asked: "no 80% interval (levels recorded: 80, …)" contradicted itself
    eighty = FeatureSchema.parse({"intervals": {"levels": [80.0], "quantiles": [1.0]}})
    with pytest.raises(DataError, match=r"no 80.00000000001% interval \(levels recorded: 80;"):
        intervals.check_levels(eighty, [80.00000000001], what="partition 'k=1' v1")
    with pytest.raises(DataError, match="is a classifier"):
        intervals.check_levels(
            FeatureSchema([], task="classification"), [80], what="partition 'k=1' v1"
        )


# ----------------------------------------------------------------------------- coverage
def _panel(n_series: int, n_rows: int, rng: np.random.Generator) -> pd.DataFrame:
    """Noise N(0, σ) with σ differing per series (1 … 3)."""
    return linear_series(n_series, n_rows, rng, widest=3.0)


def test_empirical_coverage_is_close_to_nominal_on_a_panel_of_known_noise(tmp_path: Path) -> None:
    """120 series, 40 validation rows each (pooled quantile: nominal 80 % → rank 33 of 40,
    an expected coverage of 33/41 = 80.5 %; 95 % → 39/41 = 95.1 %), each scored on 30 new
    rows of the same process: 3,600 answers per level."""
    rng = np.random.default_rng(20261201)
    train_rows, test_rows = 100, 30
    panel = _panel(120, train_rows + test_rows, rng)
    spec = {
        "name": "coverage",
        "partition_by": ["series"],
        "target": "y",
        "time_column": "t",
        "features": ["x"],
        "validation": {"strategy": "last", "size": 40},
        "candidates": RIDGE,
        "fallback": {"enabled": False},
        "intervals": {"levels": [80, 95]},
    }
    root = tmp_path / "registry"
    _train(spec, panel[panel["t"] < train_rows], root)
    scored = score(panel[panel["t"] >= train_rows], root, backend="local")
    for level in (80, 95):
        inside = (scored[f"lo-{level}"] <= scored["y"]) & (scored["y"] <= scored[f"hi-{level}"])
        coverage = 100 * float(inside.mean())
        assert abs(coverage - level) < 3.0, (level, coverage)
        assert (scored[f"hi-{level}"] > scored[f"lo-{level}"]).all()


# ------------------------------------------------------------------- forecast and score
def test_forecast_adds_lo_hi_columns_from_the_recorded_quantiles(sales_registry: Path) -> None:
    frame = forecast(sales_registry, [KEY], horizon=3)
    assert list(frame.columns) == [
        "store", "brand", "week", "prediction", "lo-80", "hi-80", "lo-95", "hi-95",
        "model_version",
    ]  # fmt: skip
    rec = _schema(sales_registry, KEY)["intervals"]
    assert rec["levels"] == [80.0, 95.0] and rec["rows"] == 8 and "steps" not in rec
    q80, q95 = rec["quantiles"]
    assert np.allclose(frame["hi-80"] - frame["prediction"], q80)
    assert np.allclose(frame["prediction"] - frame["lo-95"], q95)
    only = forecast(sales_registry, [KEY], horizon=2, levels=[95])
    assert "lo-80" not in only.columns and "hi-95" in only.columns
    with pytest.raises(DataError, match=r"v1 has no 90% interval \(levels recorded: 80, 95"):
        forecast(sales_registry, [KEY], horizon=2, levels=[90])


def test_forecast_uses_per_step_quantiles_of_expanding_folds(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    spec = {**SALES, "validation": {"strategy": "kfold", "folds": 5}, "intervals": {"levels": [80]}}
    _train(spec, store_sales(n_stores=2), root)
    rec = _schema(root, KEY)["intervals"]
    steps = rec["steps"]  # 5 folds: 5 errors per step, enough for 80 % (rank 5 of 5)
    assert rec["rows"] == 5 * len(steps) and len(steps) >= 3
    frame = forecast(root, [KEY], horizon=3)
    assert np.allclose(frame["hi-80"] - frame["prediction"], [s[0] for s in steps[:3]])
    longer = forecast(root, [KEY], horizon=len(steps) + 1)  # past the recorded steps: pooled
    assert np.allclose(longer["hi-80"] - longer["prediction"], rec["quantiles"][0])


def test_score_adds_each_rows_models_interval_and_checks_levels(sales_registry: Path) -> None:
    rows = store_sales(n_stores=2).drop(columns="units").iloc[[0, 70, 130]].copy()
    rows.loc[rows.index[-1], "store"] = 99  # an unknown store: the fallback answers
    scored = score(rows, sales_registry, backend="local", levels=[80])
    assert [c for c in scored.columns if c[:3] in ("lo-", "hi-")] == ["lo-80", "hi-80"]
    for _, row in scored.iterrows():
        q = _schema(sales_registry, str(row["served_by"]))["intervals"]["quantiles"][0]
        assert row["hi-80"] - row["prediction"] == pytest.approx(q)
        assert row["prediction"] - row["lo-80"] == pytest.approx(q)
    assert scored["served_by"].iloc[-1] == FALLBACK_KEY
    with pytest.raises(DataError, match="has no 90% interval"):
        score(rows, sales_registry, backend="local", levels=[90])
    clash = "already has column(s) 'lo-80', which scoring writes for prediction intervals; drop"
    with pytest.raises(DataError, match=re.escape(clash)):
        score(rows.assign(**{"lo-80": 1.0}), sales_registry, backend="local")


# ------------------------------------------------------------------------------ router
@pytest.fixture(scope="module")
def router(sales_registry: Path) -> Iterator[str]:
    with running_server(Settings(registry=sales_registry)) as url:
        yield url


ROWS = [{"price": 2.0, "deal": 1, "feat": 0}, {"price": 2.5, "deal": 0, "feat": 1}]


def test_router_answers_intervals_on_request_over_http(router: str, sales_registry: Path) -> None:
    q80, q95 = _schema(sales_registry, KEY)["intervals"]["quantiles"]
    with httpx.Client(base_url=router, timeout=30) as http:
        plain = http.post(f"/v1/partitions/{KEY}/predict", json={"rows": ROWS}).json()
        assert "intervals" not in plain  # absent unless asked
        asked = http.post(
            f"/v1/partitions/{KEY}/predict", params={"levels": "80,95"}, json={"rows": ROWS}
        )
        assert asked.status_code == 200, asked.text
        body = asked.json()
        assert body["predictions"] == plain["predictions"]
        bands = body["intervals"]
        assert sorted(bands) == ["hi-80", "hi-95", "lo-80", "lo-95"]
        for i, p in enumerate(body["predictions"]):
            assert bands["lo-80"][i] == pytest.approx(p - q80)
            assert bands["hi-95"][i] == pytest.approx(p + q95)

        batch_rows = [
            {"store": 1, "brand": "tropicana", **ROWS[0]},
            {"store": 99, "brand": "x", **ROWS[1]},
        ]
        many = http.post("/v1/predict", params={"levels": "80"}, json={"rows": batch_rows})
        assert many.status_code == 200, many.text
        answers = many.json()["predictions"]
        assert answers[0]["intervals"]["hi-80"] == pytest.approx(answers[0]["prediction"] + q80)
        fb = _schema(sales_registry, FALLBACK_KEY)["intervals"]["quantiles"][0]
        assert answers[1]["fallback"] and answers[1]["intervals"]["lo-80"] == pytest.approx(
            answers[1]["prediction"] - fb
        )

        fc = http.post(
            f"/v1/partitions/{KEY}/forecast", params={"levels": "95"}, json={"horizon": 2}
        )
        assert fc.status_code == 200, fc.text
        for point in fc.json()["forecast"]:
            assert point["intervals"]["hi-95"] == pytest.approx(point["prediction"] + q95)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (f"/v1/partitions/{KEY}/predict", {"rows": ROWS}),
        ("/v1/predict", {"rows": [{"store": 1, "brand": "tropicana", **ROWS[0]}]}),
        (f"/v1/partitions/{KEY}/forecast", {"horizon": 2}),
    ],
)
def test_a_level_the_version_did_not_record_is_a_422_naming_it(
    router: str, path: str, body: dict[str, Any]
) -> None:
    with httpx.Client(base_url=router, timeout=30) as http:
        missing = http.post(path, params={"levels": "80,90"}, json=body)
        assert missing.status_code == 422
        assert "no 90% interval" in missing.text and "levels recorded: 80, 95" in missing.text
        bad = http.post(path, params={"levels": "eighty"}, json=body)
        assert bad.status_code == 422 and "'eighty' is not a coverage" in bad.text
        fraction = http.post(path, params={"levels": "0.8"}, json=body)
        assert fraction.status_code == 422 and "80 for an 80 % interval" in fraction.text
        rounded = http.post(path, params={"levels": "99.99999999999"}, json=body)
        assert rounded.status_code == 422 and "would be named 100%" in rounded.text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (f"/v1/partitions/{KEY}/predict", {"rows": ROWS}),
        ("/v1/predict", {"rows": [{"store": 1, "brand": "tropicana", **ROWS[0]}]}),
        (f"/v1/partitions/{KEY}/forecast", {"horizon": 2}),
    ],
)
def test_levels_given_one_at_a_time_are_all_answered(
    router: str, path: str, body: dict[str, Any]
) -> None:
    """``?levels=80&levels=95`` is ``?levels=80,95`` on every route: not the last one alone."""
    with httpx.Client(base_url=router, timeout=30) as http:
        joined = http.post(path, params={"levels": "80,95"}, json=body)
        repeated = http.post(path, params=[("levels", "80"), ("levels", "95")], json=body)
        assert repeated.status_code == joined.status_code == 200, repeated.text
        assert repeated.json() == joined.json()
        assert "hi-80" in repeated.text and "hi-95" in repeated.text


# --------------------------------------------------------------------------------- CLI
def test_cli_forecast_and_score_take_levels_and_name_a_missing_one(
    sales_registry: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from manymodels.cli import app

    runner = CliRunner()
    args = ["forecast", "--horizon", "2", "--registry", str(sales_registry)]
    ok = runner.invoke(app, [*args, "--partitions", KEY, "--levels", "80", "--json"])
    assert ok.exit_code == 0, ok.output
    points = json.loads(ok.output)["forecast"]
    assert points[0]["week"].startswith("20") and "hi-80" in points[0] and "lo-95" not in points[0]
    missing = runner.invoke(app, [*args, "--levels", "90"])
    assert missing.exit_code != 0
    lines = [ln for ln in missing.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "no 90% interval" in lines[0]

    data = tmp_path / "rows.csv"
    store_sales(n_stores=2).drop(columns="units").head(3).to_csv(data, index=False)
    out = tmp_path / "scores.csv"
    scored = runner.invoke(
        app, ["score", str(data), "--out", str(out), "--registry", str(sales_registry),
              "--backend", "local", "--levels", "95"],
    )  # fmt: skip
    assert scored.exit_code == 0, scored.output
    assert {"lo-95", "hi-95"} <= set(pd.read_csv(out).columns)


@pytest.mark.parametrize("command", ["forecast", "score"])
@pytest.mark.parametrize(
    ("given", "says"),
    [
        (
            "100",
            "--levels: '100' is not a coverage in percent between 0 and 100 (e.g. --levels 80,95)",
        ),
        ("0.8", "--levels: 0.8 is not a coverage in percent above 1"),
        ("eighty", "--levels: 'eighty' is not a coverage"),
    ],
)
def test_a_bad_cli_level_is_named_by_its_flag(
    sales_registry: Path, tmp_path: Path, command: str, given: str, says: str
) -> None:
    """``manymodels forecast --levels 100`` said "levels: '100' is not a coverage … (e.g.
    levels=80,95)": the router's query name, not the flag the user typed. The router keeps
    ``levels`` (its own test above)."""
    from typer.testing import CliRunner

    from manymodels.cli import app

    if command == "forecast":
        args = ["forecast", "--horizon", "2"]
    else:
        data = tmp_path / "rows.csv"
        store_sales(n_stores=1).drop(columns="units").head(2).to_csv(data, index=False)
        args = ["score", str(data), "--out", str(tmp_path / "o.csv"), "--backend", "local"]
    result = CliRunner().invoke(app, [*args, "--registry", str(sales_registry), "--levels", given])
    assert result.exit_code != 0 and result.stdout == "", result.output
    lines = result.stderr.strip().splitlines()
    assert lines == [f"error: {lines[0].removeprefix('error: ')}"] and says in lines[0], lines


def test_a_stored_spec_with_fraction_levels_still_reads() -> None:
    """A run's spec read back from the registry trained under the rules of its day: levels
    written as fractions are refused in a new spec, not in a stored one (its retrain)."""
    base = {"name": "s", "partition_by": ["k"], "target": "y", "candidates": RIDGE}
    stored = {**base, "intervals": {"levels": [0.8]}}
    with pytest.raises(SpecError, match="not a coverage in percent above 1"):
        Spec.from_dict(stored)
    spec = Spec.from_dict(stored, stored=True)
    assert spec.intervals is not None and spec.intervals.levels == [0.8]
