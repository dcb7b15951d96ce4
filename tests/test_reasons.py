"""One cap on a reason a user gives (``manymodels.reasons``): the router refused a reason of
more than 500 characters while ``promote --reason`` / ``rollback --reason`` / ``runs abandon
--reason`` recorded 100,000 of them, carried by every listing of the alias history after."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import linear_frame, open_client, spec_dict
from typer.testing import CliRunner

from manymodels.cli import app
from manymodels.exceptions import DataError
from manymodels.pipeline import train
from manymodels.reasons import MAX_REASON, MAX_RECORDED
from manymodels.registry import Registry
from serving.settings import Settings


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "reg"
    spec = spec_dict(promotion={"policy": "manual"})
    train(spec, linear_frame(1, 30), root, backend="local")
    train(spec, linear_frame(1, 30, seed=1), root, backend="local")
    return root


@pytest.mark.parametrize(
    "command", [["promote", "pid=0", "2"], ["rollback", "pid=0"], ["runs", "abandon", "r1"]]
)
def test_cli_refuses_a_reason_the_router_refuses(root: Path, command: list[str]) -> None:
    long = "x" * (MAX_REASON + 1)
    result = CliRunner().invoke(app, [*command, "--registry", str(root), "--reason", long])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == (
        f"error: --reason is {MAX_REASON + 1} characters long: at most {MAX_REASON} are "
        "recorded; shorten it\n"
    )
    with Registry.open(root) as reg:  # nothing moved
        assert [m.to_version for m in reg.alias_history("pid=0", "production")] == [1]


def test_a_reason_at_the_cap_is_recorded_as_the_router_records_it(root: Path) -> None:
    reason = "y" * MAX_REASON
    args = ["promote", "pid=0", "2", "--registry", str(root), "--reason", reason]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    auth = {"Authorization": "Bearer t0ken"}
    with open_client(Settings(registry=root, admin_token="t0ken")) as c:
        url = "/v1/partitions/pid=0/rollback"
        over = c.post(url, json={"reason": reason + "y"}, headers=auth)
        assert over.status_code == 422, over.text
        done = c.post(url, json={"reason": reason}, headers=auth)
        assert done.status_code == 200, done.text
        page = c.get("/v1/partitions/pid=0", headers=auth)
        assert page.status_code == 200 and reason in page.text


def test_the_registry_refuses_an_overlong_recorded_reason(root: Path) -> None:
    """``Registry.promote(reason=…)`` of the library goes through the same registry writes."""
    with Registry.open(root) as reg:
        with pytest.raises(DataError, match=f"at most {MAX_RECORDED:,} are recorded"):
            reg.promote("pid=0", 2, reason="z" * (MAX_RECORDED + 1))
        with pytest.raises(DataError, match="at most"):
            reg.rollback("pid=0", reason="z" * (MAX_RECORDED + 1))
        assert reg.get_version("pid=0").version == 1


@pytest.mark.parametrize("command", [["promote"], ["rollback"], ["runs", "abandon"]])
def test_help_states_the_cap_the_command_enforces(command: list[str]) -> None:
    """`--help` said only "Recorded in the alias history." (or "Why, recorded on the run."):
    the 500-character cap was first met as an error."""
    result = CliRunner().invoke(app, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    (line,) = [x for x in result.output.splitlines() if x.strip().startswith("--reason")]
    assert f"(at most {MAX_REASON} characters)" in line, line


@pytest.mark.parametrize("blank", ["", "   "])
def test_a_blank_reason_is_none_given_on_the_cli_as_in_the_router(root: Path, blank: str) -> None:
    """``promote --reason ""`` recorded "promoted by hand: " (a label and nothing), and a
    blank rollback reason was recorded blank; the router's promote took "" as none given.
    Now both record each command's default, as when no reason is given."""
    auth = {"Authorization": "Bearer t0ken"}
    for command in (["promote", "pid=0", "2"], ["rollback", "pid=0"]):
        args = [*command, "--registry", str(root), "--reason", blank]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
    with open_client(Settings(registry=root, admin_token="t0ken")) as c:
        for url, body in (("promote", {"version": 2}), ("rollback", {})):
            done = c.post(
                f"/v1/partitions/pid=0/{url}", json=body | {"reason": blank}, headers=auth
            )
            assert done.status_code == 200, done.text
    with Registry.open(root) as reg:
        reasons = [m.reason for m in reg.alias_history("pid=0", "production")][1:]
        assert reasons == [
            "promoted by hand: manual",
            "rollback from v2",
            "promoted via the router",
            "rollback from v2",
        ]
        reg.promote("pid=0", 2, reason=blank)  # the library's too
        assert reg.alias_history("pid=0", "production")[-1].reason == "manual promotion"
