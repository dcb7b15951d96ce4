"""``manymodels scheduler --registry-db postgresql://…`` with a password the server refuses:
the scheduler warned "missed firings not looked for", then waited for the next firing, failed
it, and waited for the one after — for ever, one failure a firing (a week apart for a weekly
schedule), while its service manager saw it running. A refused login is not a server briefly
away: it exits 1 at once with one line naming the database and the refusal. A server that
is down is still waited for, as before."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pgcluster import PORT, PostgresServer, running_own_server

from manymodels.exceptions import RegistryError
from manymodels.registry import Registry
from manymodels.registry.pg_connect import authentication_failed

SPEC = """name = "s"
task = "regression"
partition_by = ["pid"]
target = "y"
features = ["x"]
[[candidates]]
estimator = "sklearn.linear_model.LinearRegression"
[schedule]
cron = "0 3 1 1 *"
"""


@pytest.fixture(scope="module")
def login_server() -> Iterator[PostgresServer]:
    """A server of this module's own: it asks a password of every role but ``postgres``."""
    yield from running_own_server()


def test_a_refused_login_stops_the_scheduler_with_one_line(
    login_server: PostgresServer, tmp_path: Path
) -> None:
    url = login_server.password_database("mm", "right")
    with Registry(tmp_path / "reg", db_url=url):
        pass  # the right password opens it
    wrong = url.replace("mm:right@", "mm:wrong@")
    (tmp_path / "spec.toml").write_text(SPEC)
    (tmp_path / "data.csv").write_text("pid,x,y\n1,1,2\n")
    command = [sys.executable, "-m", "manymodels.cli", "scheduler", "spec.toml", "data.csv",
               "--registry-db", wrong, "--artifacts", str(tmp_path / "art")]  # fmt: skip
    try:  # the old scheduler waited for the next 1 January
        done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"the scheduler still waits: {e.stderr!r}") from e
    assert done.returncode != 0, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and "password authentication failed" in lines[0]
    assert f"{login_server.root}".replace("/", "%2F") in lines[0]  # names the database
    assert "wrong" not in lines[0] and "mm:***@" in lines[0]  # not its password


def test_a_refused_login_is_told_from_a_server_that_is_down(
    login_server: PostgresServer, tmp_path: Path
) -> None:
    """The rule the scheduler goes by: a refused login stops it; a server that does not
    answer (stopped, restarting) is retried at the next firing, as before."""
    url = login_server.password_database("mm2", "right")
    with pytest.raises(RegistryError) as refused:
        Registry(tmp_path / "a", db_url=url.replace("mm2:right@", "mm2:wrong@")).close()
    assert authentication_failed(refused.value)
    nowhere = f"postgresql+psycopg://mm2:right@/x?host={tmp_path}&port={PORT}"  # no server
    with pytest.raises(RegistryError) as down:
        Registry(tmp_path / "b", db_url=nowhere).close()
    assert not authentication_failed(down.value)


@pytest.mark.slow  # waits for the next minute's firing
def test_a_firing_refused_its_login_stops_the_scheduler(
    login_server: PostgresServer, tmp_path: Path
) -> None:
    """``--no-catch-up`` looks at nothing at start: its first firing meets the refused login.
    It failed that firing and waited for the next, for ever; it stops after that firing's
    line now, exit 1."""
    url = login_server.password_database("mm3", "right")
    (tmp_path / "spec.toml").write_text(SPEC.replace("0 3 1 1 *", "* * * * *"))
    (tmp_path / "data.csv").write_text("pid,x,y\n1,1,2\n")
    wrong = url.replace("mm3:right@", "mm3:wrong@")
    command = [sys.executable, "-m", "manymodels.cli", "scheduler", "spec.toml", "data.csv",
               "--registry-db", wrong, "--artifacts", str(tmp_path / "art"),
               "--no-catch-up"]  # fmt: skip
    try:  # the first firing within 60 s; the old scheduler then waited for the next
        done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=150)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"the scheduler still runs: {e.stdout!r} {e.stderr!r}") from e
    assert done.returncode == 1, done.stdout + done.stderr
    said = done.stdout + done.stderr
    assert said.count("password authentication failed") == 1, said
    assert "wrong" not in said
