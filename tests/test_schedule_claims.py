"""Two schedulers of one schedule on one registry: each firing is claimed in the registry
(``manymodels.registry.firings``), so it trains once, not once per scheduler."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.registry.firings import claim, schedule_id
from manymodels.samples import store_sales
from manymodels.schedule import due_time, trigger
from manymodels.spec import Spec

BIN = Path(sys.executable).parent
SPEC = """
name = "claimed"
partition_by = ["store", "brand"]
target = "units"
time_column = "week"
features = ["price", "deal", "feat"]
min_rows = 20

[validation]
strategy = "last"
size = 8

[[candidates]]
estimator = "sklearn.linear_model.Ridge"

[schedule]
cron = "*/5 * * * * *"
when = ["all"]
"""


@pytest.mark.slow
def test_two_schedulers_of_one_schedule_train_each_firing_once(tmp_path: Path) -> None:
    """Both started together, two firings each, every 5 s: they share at least one firing,
    which one of them trains and the other says it skipped. Before, both trained every
    firing: four runs, each partition trained twice at the shared firings."""
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    data = tmp_path / "sales.csv"
    store_sales(n_stores=2).to_csv(data, index=False)
    root = tmp_path / "registry"
    with Registry(root) as reg:  # the registry exists before either starts
        train(Spec.from_dict(tomllib.loads(SPEC)), data, reg, backend="local")
    cmd = [str(BIN / "manymodels"), "scheduler", str(spec), str(data), "--registry", str(root),
           "--backend", "local", "--max-runs", "2"]  # fmt: skip
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    lines = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, (out, err)
        lines += out.strip().splitlines()
    assert len(lines) == 4, lines
    trained = [line for line in lines if " run " in line]
    skipped = [line for line in lines if " skipped: another scheduler" in line]
    assert len(trained) + len(skipped) == 4 and skipped, lines
    with Registry.open(root) as reg:
        runs = [r for r in reg.list_runs() if r.options.get("trigger") == "schedule"]
    assert len(runs) == len(trained)
    dues = [r.options["due"] for r in runs]
    assert len(set(dues)) == len(dues), dues  # no firing trained twice
    for line in skipped:  # the firing skipped is one the other trained
        assert line.split(" ran the ")[1].split(" firing")[0] in dues, (line, dues)


def test_a_firing_is_claimed_once_and_never_after_a_later_one(tmp_path: Path) -> None:
    with Registry(tmp_path / "registry") as reg:
        name = schedule_id("s", "0 3 * * 1", "UTC", ["changed"])
        assert name != schedule_id("s", "0 3 * * 1", "UTC", ["drifted"])
        monday = datetime(2026, 12, 7, 3, tzinfo=UTC)
        assert claim(reg.store, name, monday)
        assert not claim(reg.store, name, monday)
        assert not claim(reg.store, name, monday.astimezone(ZoneInfo("Asia/Tokyo")))  # same
        assert not claim(reg.store, name, datetime(2026, 11, 30, 3, tzinfo=UTC))
        assert claim(reg.store, name, datetime(2026, 12, 14, 3, tzinfo=UTC))


def test_the_due_firing_is_the_newest_not_after_now_even_in_an_autumn_night() -> None:
    """In the hour repeated in autumn, 02:30 fires twice (APScheduler's arithmetic): each
    is its own firing, told apart in UTC (compared in the zone they were one wall time, and
    the look-up never ended)."""
    paris = ZoneInfo("Europe/Paris")
    when = trigger("30 2 * * *", "Europe/Paris")
    for now, due in [
        ("2026-10-25T00:31:00+00:00", "2026-10-25T00:30:00+00:00"),  # the first 02:30
        ("2026-10-25T01:31:00+00:00", "2026-10-25T01:30:00+00:00"),  # the second
        ("2026-10-26T01:29:00+00:00", "2026-10-25T01:30:00+00:00"),
        ("2026-03-29T01:31:00+00:00", "2026-03-29T01:30:00+00:00"),  # 02:30 skipped: 03:30
    ]:
        found = due_time(when, datetime.fromisoformat(now).astimezone(paris))
        assert found is not None and found.astimezone(UTC).isoformat() == due, now
    weekly = trigger("0 3 * * 1", "UTC")
    late = datetime(2026, 12, 7, 9, 0, 1, tzinfo=UTC)  # a firing run six hours late
    assert due_time(weekly, late) == datetime(2026, 12, 7, 3, tzinfo=UTC)
