"""A partition taken out of production (``manymodels retire``), as a running router (real
uvicorn) sees it: answered as a partition with no model — the fallback where the registry has
one, else the 404 an unknown key gets — once its alias refresh reads the retirement; and put
back by the router's own rollback."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx
from routerkit import KEY, TOKEN, admin, feature_rows

from manymodels.registry import Registry
from serving.local import running_server
from serving.settings import Settings


def _predict(base: str, key: str = KEY) -> httpx.Response:
    return httpx.post(f"{base}/v1/partitions/{key}/predict", json={"rows": feature_rows(2)})


def _table_size(base: str) -> float:
    """The router's ``manymodels_alias_table_size`` gauge: the partitions it serves."""
    text = httpx.get(f"{base}/metrics").text
    (line,) = [s for s in text.splitlines() if s.startswith("manymodels_alias_table_size ")]
    return float(line.split()[1])


def _until(base: str, done: object, what: str) -> httpx.Response:
    """The first answer for which ``done`` holds, within ten refresh intervals."""
    started = time.monotonic()
    while not done(r := _predict(base)):  # type: ignore[operator]
        assert time.monotonic() - started < 2.0, f"{what}: {r.status_code} {r.text}"
        time.sleep(0.05)
    return r


def test_a_retired_partition_is_served_by_the_fallback_until_rolled_back(
    server: str, registry_path: Path
) -> None:
    first = _predict(server).json()
    assert (first["version"], first["fallback"]) == (1, False)
    size = _table_size(server)
    with Registry.open(registry_path) as other:  # the CLI, in another process
        other.retire([KEY], reason="old target")
    r = _until(server, lambda r: r.json()["fallback"], "retirement not picked up")
    assert r.status_code == 200 and r.json()["predictions"] != first["predictions"]
    assert _table_size(server) == size - 1  # the key left the table, not kept as None
    back = httpx.post(f"{server}/v1/partitions/{KEY}/rollback", headers=admin())
    assert back.status_code == 200, back.text
    assert (back.json()["from_version"], back.json()["to_version"]) == (None, 1)
    now = _predict(server).json()  # the router's own move: applied at once
    assert (now["version"], now["fallback"], now["predictions"]) == (
        1, False, first["predictions"]
    )  # fmt: skip
    assert _table_size(server) == size


def test_a_retired_partition_without_a_fallback_is_a_404(
    trained_no_fallback: Path, tmp_path: Path
) -> None:
    root = Path(shutil.copytree(trained_no_fallback, tmp_path / "registry"))
    settings = Settings(registry=root, admin_token=TOKEN, refresh_seconds=0.2)
    with running_server(settings) as base:
        assert _predict(base).status_code == 200
        with Registry.open(root) as other:
            other.retire([KEY])
        r = _until(base, lambda r: r.status_code != 200, "retirement not picked up")
        assert r.status_code == 404 and KEY in r.json()["detail"], r.text


def test_the_routers_retire_is_served_at_once_recorded_and_rolled_back(
    registry_path: Path,
) -> None:
    """``POST /v1/partitions/{key}/retire``: the CLI's ``retire`` had no HTTP twin. Served
    by the fallback from the next request (a refresh a minute away: the router's own move),
    answered and recorded as the history's "retire" entry; a second one was a 404, as for
    a key never seen: it is a 200 answering that entry (its time and reason), ``moved``
    false, and writes nothing; the router's rollback puts production back."""
    settings = Settings(registry=registry_path, admin_token=TOKEN, refresh_seconds=60)
    with running_server(settings) as base:
        first = _predict(base).json()
        size = _table_size(base)
        r = httpx.post(
            f"{base}/v1/partitions/{KEY}/retire", json={"reason": "store closed"}, headers=admin()
        )
        assert r.status_code == 200, r.text
        move = r.json()
        assert move["partition"] == KEY and move["alias"] == "production", move
        assert (move["from_version"], move["to_version"], move["action"]) == (1, None, "retire")
        assert (move["reason"], move["moved"]) == ("store closed", True)
        now = _predict(base).json()
        assert now["fallback"] is True and now["predictions"] != first["predictions"], now
        assert _table_size(base) == size - 1
        rows = [{**row, "units": 100.0} for row in feature_rows(2)]
        actuals = httpx.post(f"{base}/v1/partitions/{KEY}/actuals", json={"rows": rows})
        said = actuals.json()["detail"]  # not told to train it on rows of its own, as if new
        assert actuals.status_code == 404 and "train the partition" not in said, actuals.text
        assert said.endswith("; it was retired from v1 (a rollback puts it back in production)")
        forecast = httpx.post(f"{base}/v1/partitions/{KEY}/forecast", json={"horizon": 2})
        said = forecast.json()["detail"]  # as the actuals' 404 and the race's say (load)
        assert forecast.status_code == 404, forecast.text
        assert said.endswith("; it was retired from v1 (a rollback puts it back in production)")
        detail = httpx.get(f"{base}/v1/partitions/{KEY}").json()
        assert detail["aliases"] == {"retired": 1}
        assert detail["alias_history"][-1] == move | {"moved": True}
        with Registry.open(registry_path) as reg:  # what `manymodels models show` reads
            assert reg.alias_history(KEY)[-1].action == "retire"
        again = httpx.post(f"{base}/v1/partitions/{KEY}/retire", headers=admin())
        assert again.status_code == 200 and again.json() == move | {"moved": False}, again.text
        assert (
            httpx.get(f"{base}/v1/partitions/{KEY}").json()["alias_history"]
            == (detail["alias_history"])
        )
        back = httpx.post(f"{base}/v1/partitions/{KEY}/rollback", headers=admin())
        assert back.status_code == 200 and back.json()["action"] == "rollback", back.text
        assert _predict(base).json()["predictions"] == first["predictions"]


def test_a_retire_the_router_refuses_is_json_and_changes_nothing(
    server: str, registry_path: Path
) -> None:
    """Its refusals are promote's and rollback's: the token, a member it does not take (a
    422 naming it), a reason past the cap, an unknown key, the fallback model."""
    url = f"{server}/v1/partitions/{KEY}/retire"
    refused = {
        401: httpx.post(url, json={"reason": "x"}),
        422: httpx.post(url, json={"rason": "x"}, headers=admin()),
        404: httpx.post(f"{server}/v1/partitions/store=99,brand=x/retire", headers=admin()),
    }
    for status, r in refused.items():
        assert r.status_code == status and r.json()["detail"], r.text
    assert "'rason'" in str(refused[422].json()["detail"])
    long = httpx.post(url, json={"reason": "x" * 501}, headers=admin())
    assert long.status_code == 422 and long.json()["detail"], long.text
    fallback = httpx.post(f"{server}/v1/partitions/__fallback__/retire", headers=admin())
    assert 400 <= fallback.status_code < 500 and fallback.json()["detail"], fallback.text
    assert _predict(server).json()["fallback"] is False
    with Registry.open(registry_path) as reg:
        assert all(m.action != "retire" for m in reg.alias_history(KEY))


def test_the_openapi_documents_retire_as_its_twins(server: str) -> None:
    paths = httpx.get(f"{server}/openapi.json").json()["paths"]
    retire, promote = (paths[f"/v1/partitions/{{key}}/{a}"]["post"] for a in ("retire", "promote"))
    assert retire["tags"] == promote["tags"] == ["admin"] and retire["summary"]
    assert {"401", "403", "404", "422", "503"} <= set(retire["responses"])
    answer = retire["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == promote["responses"]["200"]["content"]["application/json"]["schema"]
