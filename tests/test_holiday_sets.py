"""A spec's holidays stored once per distinct set (``holiday_sets``, schema 13), not in every
version: 405 dates were 5.3 kB of each version's feature schema, gigabytes at 100,000
partitions. A version names its set by sha256; one written before holds its dates inline and
still forecasts; the router loads a set once by hash; ``gc`` deletes none."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from factories import SHOPS_EXPECTED, SHOPS_HOLIDAYS, open_client, trained_shops
from sqlalchemy import select, update
from typer.testing import CliRunner

from manymodels import holiday_sets
from manymodels.cli import app
from manymodels.cli.fastpath import answer
from manymodels.exceptions import RegistryError
from manymodels.forecasting import forecast
from manymodels.gc import collect
from manymodels.registry import Registry
from manymodels.registry import schema as t
from manymodels.signing import Signer
from serving.settings import Settings

DAYS = pd.bdate_range("2024-01-02", "2024-12-20")
MANY = [d.date().isoformat() for d in pd.bdate_range("2030-01-01", periods=403)] + SHOPS_HOLIDAYS


def stored(root: Path) -> dict[tuple[str, int], str]:
    """``{(key, version): feature_schema_json}`` as the registry holds it."""
    v = t.model_versions.c
    with Registry.open(root) as reg, reg.store.engine.connect() as conn:
        q = select(v.key, v.version, v.feature_schema_json)
        return {(key, n): text for key, n, text in conn.execute(q)}


def sets(root: Path) -> dict[str, list[str]]:
    h = t.holiday_sets.c
    with Registry.open(root) as reg, reg.store.engine.connect() as conn:
        return {sha: json.loads(text) for sha, text in conn.execute(select(h.sha256, h.dates_json))}


def forecast_steps(root: Path) -> tuple[list[pd.Timestamp], list[pd.Timestamp]]:
    """The steps of shop s0 by the library and of shop s1 by the router."""
    frame = forecast(root, horizon=10)
    with open_client(Settings(registry=root)) as client:
        r = client.post("/v1/partitions/shop=s1/forecast", json={"horizon": 10})
        assert r.status_code == 200, r.text
    routed = pd.to_datetime([step["time"] for step in r.json()["forecast"]]).tolist()
    return list(frame[frame["shop"] == "s0"]["t"]), routed


def test_versions_name_one_stored_set_by_hash_and_forecast_past_it(tmp_path: Path) -> None:
    root = tmp_path / "r"
    trained_shops(root, DAYS, holidays=MANY)
    trained_shops(root, DAYS, holidays=list(reversed(MANY)))  # the same set: stored once
    (sha, dates), *others = sets(root).items()
    assert not others and dates == sorted(MANY)
    texts = stored(root)
    assert len(texts) == 6  # 3 shops × 2 versions
    for text in texts.values():
        plan = json.loads(text)["forecast"]
        assert plan["holidays_sha256"] == sha and "holidays" not in plan
    inline = (
        len(text)
        - len('"holidays_sha256":"",')
        - 64
        + len('"holidays":,')
        + len(json.dumps(sorted(MANY), separators=(",", ":")))
    )
    print(f"feature schema with 405 dates: {inline} B inline → {len(text)} B by hash")
    assert len(text) < inline - 5000
    holiday_sets._KNOWN.clear()  # as a router just started: the set read from the registry
    assert forecast_steps(root) == (list(SHOPS_EXPECTED), list(SHOPS_EXPECTED))
    with Registry.open(root) as reg:
        assert reg.get_version("shop=s0").feature_schema["forecast"]["holidays"] == sorted(MANY)


def test_a_version_holding_its_dates_inline_still_forecasts(tmp_path: Path) -> None:
    """Versions written before schema 13 keep the dates in their own schema."""
    root = tmp_path / "r"
    trained_shops(root, DAYS, holidays=SHOPS_HOLIDAYS)
    v = t.model_versions.c
    with Registry.open(root) as reg, reg.store.engine.begin() as conn:
        for (key, _), text in stored(root).items():
            doc = json.loads(text)
            del doc["forecast"]["holidays_sha256"]
            doc["forecast"]["holidays"] = SHOPS_HOLIDAYS  # as an older manymodels wrote it
            conn.execute(
                update(t.model_versions)
                .where(v.key == key)
                .values(feature_schema_json=json.dumps(doc))
            )
        conn.execute(t.holiday_sets.delete())
    holiday_sets._KNOWN.clear()
    assert forecast_steps(root) == (list(SHOPS_EXPECTED), list(SHOPS_EXPECTED))
    with Registry.open(root) as reg:
        assert reg.get_version("shop=s0").schema.forecast.holidays == SHOPS_HOLIDAYS  # type: ignore[union-attr]


def test_gc_keeps_the_sets_versions_name(tmp_path: Path) -> None:
    root = tmp_path / "r"
    trained_shops(root, DAYS, holidays=SHOPS_HOLIDAYS)
    trained_shops(root, DAYS, holidays=[*SHOPS_HOLIDAYS, "2025-01-02"])  # a 2nd set
    with Registry.open(root) as reg:
        collect(reg, keep=1, grace_seconds=0)
    assert len(sets(root)) == 2
    holiday_sets._KNOWN.clear()
    with Registry.open(root) as reg:
        assert reg.get_version("shop=s0", 1).schema.forecast.holidays == SHOPS_HOLIDAYS  # type: ignore[union-attr]


def test_a_set_missing_or_altered_in_the_registry_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "r"
    trained_shops(root, DAYS, holidays=SHOPS_HOLIDAYS)
    with Registry.open(root) as reg, reg.store.engine.begin() as conn:
        conn.execute(update(t.holiday_sets).values(dates_json='["2024-12-25"]'))
    holiday_sets._KNOWN.clear()
    with Registry.open(root) as reg, pytest.raises(RegistryError, match="does not match"):
        reg.get_version("shop=s0")
    with Registry.open(root) as reg, reg.store.engine.begin() as conn:
        conn.execute(t.holiday_sets.delete())
    with Registry.open(root) as reg, pytest.raises(RegistryError, match="is not in the registry"):
        reg.get_version("shop=s0")


def test_the_cli_fast_path_reads_a_set_by_hash_as_the_typer_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``models show`` answered over ``sqlite3`` alone (``cli.fastpath``) reads the set from
    the database as ``Registry`` does: the same output, no traceback."""
    root = tmp_path / "r"
    trained_shops(root, DAYS, holidays=SHOPS_HOLIDAYS)
    holiday_sets._KNOWN.clear()  # a new CLI process: only the browser to ask
    argv = ["models", "show", "shop=s0", "--json", "--registry", str(root)]
    assert answer(argv) == 0
    fast = capsys.readouterr()
    typer_run = CliRunner().invoke(app, argv)
    assert typer_run.exit_code == 0, typer_run.output
    assert fast.out == typer_run.stdout and fast.err == ""


def test_a_closed_registry_is_not_asked_for_another_ones_set(tmp_path: Path) -> None:
    """Registry A open, then B opened (the newest store, asked first), closed, its files
    removed: ``a.get_version`` raised SQLAlchemy's "unable to open database file" (B, closed,
    was still asked, reopened). Now a closed registry is no longer asked."""
    import shutil

    trained_shops(tmp_path / "a", DAYS, holidays=SHOPS_HOLIDAYS)
    trained_shops(tmp_path / "b", DAYS)
    with Registry.open(tmp_path / "a") as a:
        b = Registry.open(tmp_path / "b")
        b.close()
        shutil.rmtree(tmp_path / "b")
        holiday_sets._KNOWN.clear()  # as a process that never read the set
        assert a.get_version("shop=s0").schema.forecast.holidays == SHOPS_HOLIDAYS  # type: ignore[union-attr]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]
    del b


def test_a_registry_that_cannot_answer_does_not_stop_the_search(tmp_path: Path) -> None:
    """Registry A open, then B (the newest store, asked first) whose ``holiday_sets`` cannot
    be read: ``a.get_version`` raised B's "no such table" though A holds the set. Now B's
    failure is passed over for A; with no registry holding it, B's error is what is raised."""
    from sqlalchemy.exc import OperationalError

    trained_shops(tmp_path / "a", DAYS, holidays=SHOPS_HOLIDAYS)
    trained_shops(tmp_path / "b", DAYS)
    with Registry.open(tmp_path / "a") as a, Registry.open(tmp_path / "b") as b:
        with b.store.engine.begin() as conn:
            t.holiday_sets.drop(conn)
        holiday_sets._KNOWN.clear()  # as a process that never read the set
        assert a.get_version("shop=s0").schema.forecast.holidays == SHOPS_HOLIDAYS  # type: ignore[union-attr]
        with a.store.engine.begin() as conn:
            conn.execute(t.holiday_sets.delete())
        holiday_sets._KNOWN.clear()
        with pytest.raises(OperationalError, match="no such table"):
            a.get_version("shop=s1")


def test_a_signed_registry_loads_promotes_and_forecasts_versions_naming_a_set(
    tmp_path: Path,
) -> None:
    """A version's row is signed with its holidays by hash, as stored, while
    ``feature_schema`` shows them inline: checked as shown, ``forecast``, ``promote`` and
    ``load_artifact`` of every such version of a signed registry raised "its registry row was
    altered". A version written before schema 13, signed with its dates inline, still
    verifies; a set's dates altered in the registry are still refused."""
    signer = Signer(b"a signing key of 16+ bytes")
    root = tmp_path / "r"
    trained_shops(root, DAYS, holidays=SHOPS_HOLIDAYS)
    trained_shops(root, DAYS, holidays=SHOPS_HOLIDAYS)
    v = t.model_versions.c
    with Registry.open(root) as reg, reg.store.engine.begin() as conn:
        text = stored(root)["shop=s1", 1]
        doc = json.loads(text)
        del doc["forecast"]["holidays_sha256"]
        doc["forecast"]["holidays"] = SHOPS_HOLIDAYS  # as an older manymodels wrote and signed it
        conn.execute(
            update(t.model_versions)
            .where(v.key == "shop=s1", v.version == 1)
            .values(feature_schema_json=json.dumps(doc))
        )
    with Registry.open(root, signer=signer) as reg:
        assert len(reg.sign_unsigned()) == 6
        frame = forecast(reg, horizon=10)
        assert list(frame[frame["shop"] == "s0"]["t"]) == list(SHOPS_EXPECTED)
        reg.load_artifact(reg.get_version("shop=s1", 1))  # inline, signed so
        reg.promote("shop=s2", 2)
        assert reg.get_version("shop=s2").version == 2
    holiday_sets._KNOWN.clear()
    with Registry.open(root) as reg, reg.store.engine.begin() as conn:
        conn.execute(update(t.holiday_sets).values(dates_json='["2024-12-25"]'))
    with (
        Registry.open(root, signer=signer) as reg,
        pytest.raises(RegistryError, match="does not match its sha256"),
    ):
        forecast(reg, horizon=10)
