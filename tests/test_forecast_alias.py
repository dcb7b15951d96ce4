"""Forecasting with another version than production: ``forecast(alias=…)``, ``manymodels
forecast --alias`` and the route's ``?version=`` / ``?alias=`` — a challenger's forecast read
beside the champion's before it is promoted, as scoring already allows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from factories import open_client
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.exceptions import DataError, PartitionNotFound, RegistryError
from manymodels.forecasting import forecast
from manymodels.pipeline import train
from manymodels.registry import Registry
from manymodels.samples import store_sales
from serving.settings import Settings

KEY = "store=1,brand=tropicana"
SPEC = {
    "name": "two-versions",
    "partition_by": ["store", "brand"],
    "target": "units",
    "time_column": "week",
    "features": ["price", "deal", "feat"],
    "lags": [1, 2],
    "min_rows": 20,
    "validation": {"strategy": "last", "size": 8},
    "candidates": [{"estimator": "sklearn.linear_model.Ridge"}],
    "promotion": {"policy": "manual"},
}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """v1 in production; v2, trained on doubled sales, the ``candidate`` of every partition."""
    root = tmp_path_factory.mktemp("alias") / "registry"
    frame = store_sales(n_stores=2, weeks=40)
    train(SPEC, frame, root, backend="local")
    train(SPEC, frame.assign(units=frame["units"] * 2), root, backend="local")
    with Registry.open(root) as reg:
        assert reg.store.alias_table("candidate")[KEY] == 2
        assert reg.store.alias_table("production")[KEY] == 1
    return root


def test_forecast_at_an_alias_is_that_versions_forecast(root: Path) -> None:
    production = forecast(root, horizon=3)
    candidate = forecast(root, horizon=3, alias="candidate")
    assert set(production["model_version"]) == {1}
    assert set(candidate["model_version"]) == {2}
    assert len(candidate) == len(production)
    now, doubled = production["prediction"], candidate["prediction"]
    assert (doubled - 2 * now).abs().median() < (doubled - now).abs().median() / 5  # v2's sales
    one = forecast(root, [KEY], horizon=3, alias="candidate")
    mine = candidate[(candidate["store"] == 1) & (candidate["brand"] == "tropicana")]
    assert one["prediction"].tolist() == pytest.approx(mine["prediction"].tolist())


def test_an_alias_nothing_has_is_an_error_naming_it(root: Path) -> None:
    with pytest.raises(RegistryError, match="no partitions with the alias 'nope'"):
        forecast(root, horizon=2, alias="nope")
    with pytest.raises(PartitionNotFound, match=f"no 'nope' model for partition.*'{KEY}'"):
        forecast(root, [KEY], horizon=2, alias="nope")


def test_alias_none_is_production_in_forecast_score_and_load_model(root: Path) -> None:
    """``mm.forecast(R, keys, horizon=1, alias=None)`` said "no 'None' model for
    partition(s) …" (``mm.score`` and ``Registry.load_model`` alike: an alias named 'None'),
    where the router reads a route without ``?alias=`` as production. Now ``None`` is
    production in each; an alias that is not text is refused saying so."""
    from manymodels.samples import store_sales
    from manymodels.scoring import score

    assert forecast(root, [KEY], horizon=2, alias=None).equals(forecast(root, [KEY], horizon=2))
    every = forecast(root, horizon=2, alias=None)
    assert set(every["model_version"]) == {1}
    assert forecast(root, [KEY], horizon=2, alias=None, version=2).equals(
        forecast(root, [KEY], horizon=2, version=2)
    )
    rows = store_sales(n_stores=2, weeks=40).head(5).assign(units_lag1=9.0, units_lag2=8.0)
    assert score(rows, root, backend="local", alias=None).equals(score(rows, root, backend="local"))
    with Registry.open(root) as reg:
        assert reg.load_model(KEY, alias=None).version.version == 1
        assert reg.get_version(KEY, alias=None).version == 1
    words = "an alias is a name ('production', 'candidate', …), not int 2"
    for call in (
        lambda: forecast(root, [KEY], horizon=2, alias=2),  # type: ignore[arg-type]
        lambda: score(rows, root, backend="local", alias=2),  # type: ignore[arg-type]
    ):
        with pytest.raises(DataError) as e:
            call()
        assert str(e.value) == words


def test_cli_forecast_alias(root: Path) -> None:
    args = ["forecast", "--horizon", "2", "--registry", str(root), "--partitions", KEY, "--json"]
    result = CliRunner().invoke(app, [*args, "--alias", "candidate"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["forecast"]
    assert {r["model_version"] for r in rows} == {2}
    expected = forecast(root, [KEY], horizon=2, alias="candidate")["prediction"].tolist()
    assert [r["prediction"] for r in rows] == pytest.approx(expected)
    out = root.parent / "candidate.csv"
    args_out = ["forecast", "--horizon", "2", "--registry", str(root), "--out", str(out)]
    result = CliRunner().invoke(app, [*args_out, "--alias", "candidate"])
    assert result.stdout.strip() == f"forecast 2 period(s) of 4 partition(s) at 'candidate' → {out}"
    result = CliRunner().invoke(app, [*args, "--alias", "nope"])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip() == f"error: no 'nope' model for partition(s) '{KEY}'"


def test_cli_forecast_of_an_alias_nothing_has_is_a_bad_name(root: Path) -> None:
    """Exit 2 and one line, as ``score --alias`` of one: a misspelt alias is the user's."""
    args = ["forecast", "--horizon", "2", "--registry", str(root), "--alias", "nope"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip() == (
        f"error: the registry at {root} has no partitions with the alias 'nope': check the "
        "alias name"
    )


@pytest.fixture(scope="module")
def client(root: Path) -> Iterator[Any]:
    with open_client(Settings(registry=root)) as c:
        yield c


@pytest.mark.parametrize(("query", "version"), [("", 1), ("?alias=candidate", 2),
                                                 ("?version=2", 2), ("?version=1", 1),
                                                 ("?alias=production", 1)])  # fmt: skip
def test_route_forecasts_the_version_asked_for(
    client: Any, root: Path, query: str, version: int
) -> None:
    r = client.post(f"/v1/partitions/{KEY}/forecast{query}", json={"horizon": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["version"] == version
    frame = forecast(root, [KEY], horizon=3, alias="candidate" if version == 2 else "production")
    assert [p["prediction"] for p in body["forecast"]] == pytest.approx(frame["prediction"])


@pytest.mark.parametrize(
    ("key", "query", "status", "text"),
    [
        (KEY, "?version=9", 404, "version"),
        (KEY, "?alias=nope", 404, "nope"),
        ("store=99,brand=tropicana", "?version=1", 404, "no partition"),
        (KEY, "?version=1&alias=candidate", 422, "not both"),
        (KEY, "?version=1&version=2", 422, "given 2 times"),
        (KEY, "?alias=a&alias=b", 422, "given 2 times"),
        (KEY, "?version=x", 422, "valid integer"),
        (KEY, "?version=0", 422, "greater than or equal to 1"),
        (KEY, "?alias=no%20spaces", 422, "pattern"),
    ],
)
def test_route_refuses_a_version_it_cannot_forecast(
    client: Any, key: str, query: str, status: int, text: str
) -> None:
    r = client.post(f"/v1/partitions/{key}/forecast{query}", json={"horizon": 2})
    assert r.status_code == status, r.text
    assert text in r.text
    assert isinstance(r.json()["detail"], str | list)


def test_the_router_still_forecasts_production_after_a_candidates_forecast(client: Any) -> None:
    """The candidate's model, loaded for one request, does not answer production's."""
    first = client.post(f"/v1/partitions/{KEY}/forecast?alias=candidate", json={"horizon": 2})
    again = client.post(f"/v1/partitions/{KEY}/forecast", json={"horizon": 2})
    assert (first.json()["version"], again.json()["version"]) == (2, 1)
    v2 = [p["prediction"] for p in first.json()["forecast"]]
    v1 = [p["prediction"] for p in again.json()["forecast"]]
    assert v1 != pytest.approx(v2)


def test_forecast_of_a_version_by_number(root: Path, client: Any) -> None:
    """``forecast(version=N)`` / ``manymodels forecast --version N`` forecast that version, as
    the route's ``?version=N`` does: there was no way to forecast a version no alias points at
    (production rolled back, an old version) but through the router."""
    other = "store=1,brand=dominicks"
    frame = forecast(root, [KEY, other], horizon=3, version=2)
    assert set(frame["model_version"]) == {2}
    assert frame["prediction"].tolist() == pytest.approx(
        forecast(root, [KEY, other], horizon=3, alias="candidate")["prediction"].tolist()
    )
    route = client.post(f"/v1/partitions/{KEY}/forecast?version=1", json={"horizon": 3})
    one = forecast(root, [KEY], horizon=3, version=1)
    assert one["prediction"].tolist() == pytest.approx(
        [p["prediction"] for p in route.json()["forecast"]]
    )
    args = ["forecast", "--horizon", "2", "--registry", str(root), "--partitions", KEY]
    result = CliRunner().invoke(app, [*args, "--json", "--version", "2"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["forecast"]
    assert {r["model_version"] for r in rows} == {2}
    out = root.parent / "v1.csv"
    result = CliRunner().invoke(app, [*args, "--version", "1", "--out", str(out)])
    assert result.stdout.strip() == f"forecast 2 period(s) of 1 partition(s) at v1 → {out}"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--version", "9"], f"partition(s) '{KEY}' have no version 9"),
        (["--version", "1", "--alias", "candidate"], "give --version or --alias, not both"),
        (["--version", "0"], "error: --version: input should be greater than or equal to 1"),
        (["--version", str(2**31)], "error: --version: input should be less than or equal"),
        (["--version", "x"], "error: --version: input should be a valid integer"),
    ],
)
def test_cli_forecast_version_refused(root: Path, extra: list[str], message: str) -> None:
    args = ["forecast", "--horizon", "2", "--registry", str(root), "--partitions", KEY, *extra]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and result.stdout == ""
    assert message in result.stderr


def test_a_version_needs_the_partitions_named(root: Path) -> None:
    """A version is a partition's own number: "version 2 of every partition" is refused,
    and so is a version with an alias (the library says it as the CLI does)."""
    args = ["forecast", "--horizon", "2", "--registry", str(root), "--version", "2"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("error: --version 2 is a version of a partition")
    assert len(result.stderr.strip().splitlines()) == 1
    with pytest.raises(DataError, match="name the partitions"):
        forecast(root, horizon=2, version=2)
    with pytest.raises(DataError, match="give version or alias, not both"):
        forecast(root, [KEY], horizon=2, version=2, alias="candidate")
    with pytest.raises(DataError, match="whole number"):
        forecast(root, [KEY], horizon=2, version="2")  # type: ignore[arg-type]
    with pytest.raises(PartitionNotFound, match="no partition"):
        forecast(root, ["store=99,brand=tropicana"], horizon=2, version=1)


LACKING = ["store=1,brand=dominicks", "store=1,brand=minute_maid", "store=2,brand=dominicks"]


@pytest.fixture(scope="module")
def one_candidate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """v1 of 4 partitions in production (and a fallback); only ``KEY`` retrained, v2 its
    ``candidate``: the README's flow, where one partition has a challenger."""
    root = tmp_path_factory.mktemp("one-candidate") / "registry"
    frame = store_sales(n_stores=2, weeks=40)
    train(SPEC, frame, root, backend="local")
    mine = frame[(frame["store"] == 1) & (frame["brand"] == "tropicana")]
    train(SPEC, mine.assign(units=mine["units"] * 2), root, backend="local")
    with Registry.open(root) as reg:
        # the fallback, retrained too, has one: it is never forecast, nor counted
        assert reg.store.alias_table("candidate") == {KEY: 2, "__fallback__": 2}
    return root


def test_forecast_of_every_partition_at_an_alias_says_how_many_lack_it(
    one_candidate: Path,
) -> None:
    """``manymodels forecast --horizon 2 --alias candidate`` printed the one partition with a
    candidate and said nothing of the 3 without one: a user read it as the whole forecast.
    Now a ``note:`` line on stderr counts them (``--json``'s ``without_alias``, and the
    library's ``attrs["without_alias"]``) and names them (``without_alias_keys``,
    ``attrs["without_keys"]``: it named none, and a user had to list every partition's
    aliases to find them); a forecast at production leaves none out."""
    args = ["forecast", "--horizon", "2", "--registry", str(one_candidate)]
    result = CliRunner().invoke(app, [*args, "--alias", "candidate"])
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == (  # then the note of the features held
        "note: left out 3 partition(s) with no 'candidate' version: "
        + ", ".join(f"'{k}'" for k in LACKING)
    )
    assert "tropicana" in result.stdout
    result = CliRunner().invoke(app, [*args, "--alias", "candidate", "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["partitions"] == 1 and answer["without_alias"] == 3
    assert answer["without_alias_keys"] == LACKING
    out = one_candidate.parent / "candidate.csv"
    result = CliRunner().invoke(app, [*args, "--alias", "candidate", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"left out 3 partition(s) with no 'candidate' version: '{LACKING[0]}'," in result.stderr
    result = CliRunner().invoke(app, args)  # production: every partition has it
    assert result.exit_code == 0 and "left out" not in result.stderr, result.output
    assert forecast(one_candidate, horizon=2, alias="candidate").attrs["without_alias"] == 3
    assert forecast(one_candidate, horizon=2, alias="candidate").attrs["without_keys"] == LACKING
    assert forecast(one_candidate, horizon=2).attrs["without_keys"] == []
    assert forecast(one_candidate, horizon=2).attrs["without_alias"] == 0
    assert forecast(one_candidate, [KEY], horizon=2, alias="candidate").attrs["without_alias"] == 0


def test_the_note_names_the_first_keys_without_the_alias(tmp_path: Path) -> None:
    """Of 4 partitions without a candidate, the note names the first 3 by key and marks the
    rest with "and 1 more" (as the notes of partitions held and behind, and the errors);
    ``--json`` lists the 3."""
    root = tmp_path / "registry"
    frame = store_sales(n_stores=3, weeks=40)
    train(SPEC, frame, root, backend="local")
    third = frame[frame["store"] == 3]
    train(SPEC, third.assign(units=third["units"] * 2), root, backend="local")
    args = ["forecast", "--horizon", "2", "--registry", str(root), "--alias", "candidate"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    with Registry.open(root) as reg:
        lacking = sorted(set(reg.store.alias_table("production")) - {"__fallback__"}
                         - set(reg.store.alias_table("candidate")))  # fmt: skip
    assert len(lacking) == 4
    assert result.stderr.splitlines()[0] == (
        "note: left out 4 partition(s) with no 'candidate' version: "
        + ", ".join(f"'{k}'" for k in lacking[:3])
        + " and 1 more"
    )
    result = CliRunner().invoke(app, [*args, "--json"])
    answer = json.loads(result.stdout)
    assert (answer["without_alias"], answer["without_alias_keys"]) == (4, lacking[:3])
