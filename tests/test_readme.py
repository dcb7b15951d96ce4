"""The README is executed: every code block in it runs here, so it cannot drift.

As FastAPI tests its documentation examples, each block of README.md is claimed by one test
below, by the start of its first line; a block no test claims fails
``test_every_block_is_claimed``, and the few that cannot run say why in ``NOT_RUN``.

- bash blocks run with the installed ``manymodels`` (and the real ``curl``), command by command,
  in a fresh directory holding a copy of ``data-samples/``; the blocks of one story share it.
  ``manymodels serve`` runs in the background (on a free port instead of 8000) until the story
  ends, with ``MANYMODELS_ADMIN_TOKEN`` set as the README asks for the admin examples; a retrain
  job is polled until it finishes, as the README says to. A full-line comment right under a
  command (no blank line between) is that command's output: each such line must match a line
  of what it printed, in order, ``…`` standing for anything. A command must exit 0, unless an
  ``error:`` line is shown for it.
- ``$``-prompted blocks are commands and the lines they print, checked the same way.
- the Python block runs as a script; a comment on a ``print(...)`` line is what it prints.
- the spec block is validated by ``Spec.from_dict``; the source map names modules that exist.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import types
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeRegressor

from manymodels.spec import Spec

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent
TOKEN = "readme-admin-token"

# Every block of the README, by the start of its first line, and the test that runs it.
STORY = (  # bash blocks, run in this order in one directory: train → serve → score → retrain…
    "manymodels train data-samples/store_sales.toml data-samples/store_sales.csv",
    "# one partition: the key in the path",
    "# new rows arrive: two weeks of store 2",
    'curl -s -X POST -H "Authorization: Bearer $MANYMODELS_ADMIN_TOKEN"',
    "manymodels score data-samples/store_sales.csv",
    "# prediction intervals: [intervals] in the spec",
    "# a classifier's steps labelled at a threshold",
    "manymodels export-registry backup.tar",
)
PYTHON_EXAMPLE = "import manymodels as mm"
SPEC_EXAMPLE = 'name = "store-sales"'
ERROR_EXAMPLE = "$ cut -d, -f1-3,5- data-samples/store_sales.csv > no_price.csv"
SOURCE_MAP = "manymodels/   spec, partition,"
NOT_RUN = {
    "# 1. the main job, end to end": "a fresh virtual environment from a clone: CI itself runs "
    "it (.ci/run runs the second command), and tests/test_demo.py runs `manymodels demo`",
}
CLAIMS = (*STORY, PYTHON_EXAMPLE, SPEC_EXAMPLE, ERROR_EXAMPLE, SOURCE_MAP, *NOT_RUN)
POLLED = ("/v1/jobs/",)  # the README says to poll a retrain job until it finishes
RUNNING = re.compile(r'"status":"(queued|running)"')
ASSIGNMENT = re.compile(r"([A-Za-z_]\w*)=\S.*", re.S)  # VAR=value: later commands see $VAR


@dataclass(frozen=True)
class Block:
    lang: str
    first_line: str
    text: str
    line: int  # of the opening fence

    def __str__(self) -> str:
        return f"README.md:{self.line} ```{self.lang}"


@dataclass
class Command:
    text: str
    line: int
    expected: list[str] = field(default_factory=list)


def readme_blocks() -> list[Block]:
    blocks, lines = [], README.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        fence = re.fullmatch(r"```(\w*)\s*", lines[i])
        if fence is None:
            i += 1
            continue
        end = lines.index("```", i + 1)
        body = lines[i + 1 : end]
        blocks.append(Block(fence[1], body[0] if body else "", "\n".join(body) + "\n", i + 1))
        i = end + 1
    return blocks


def claimed(claim: str) -> Block:
    found = [b for b in readme_blocks() if b.first_line.startswith(claim)]
    assert len(found) == 1, f"{len(found)} README blocks start with {claim!r}"
    return found[0]


def shell_commands(block: Block) -> list[Command]:
    """A bash block's commands, each with the output comment lines right under it."""
    lines, out, i = block.text.splitlines(), [], 0
    last: Command | None = None
    while i < len(lines):
        line, number = lines[i], block.line + 1 + i
        i += 1
        if not line.strip():
            last = None
        elif line.startswith("#"):
            if last is not None:  # right under a command: its output; otherwise prose
                last.expected.append(line.removeprefix("#").removeprefix(" "))
        else:
            text = [line]
            heredoc = re.search(r"<<-?\s*'?(\w+)'?", line)
            while i < len(lines) and (
                text[-1] != heredoc[1] if heredoc else not _complete("\n".join(text))
            ):
                text.append(lines[i])
                i += 1
            last = Command("\n".join(text), number)
            out.append(last)
    return out


def prompted_commands(block: Block) -> list[Command]:
    """A ``$``-prompted block: each command with the lines it prints."""
    out: list[Command] = []
    for i, line in enumerate(block.text.splitlines()):
        if line.startswith("$ "):
            out.append(Command(line[2:], block.line + 1 + i))
        else:
            assert out, f"{block}: output before any command"
            out[-1].expected.append(line)
    return out


def _complete(text: str) -> bool:
    if text.endswith("\\"):
        return False
    try:
        shlex.split(text, comments=True)
    except ValueError:  # an open quote: the command goes on
        return False
    return True


def matches(expected: list[str], output: str) -> bool:
    """Each expected line matches one line of output, in order; ``…`` stands for anything."""
    lines = [line.rstrip() for line in output.splitlines()]
    at = 0
    for want in expected:
        pattern = re.compile(".*?".join(re.escape(part) for part in want.rstrip().split("…")))
        while at < len(lines) and not pattern.fullmatch(lines[at]):
            at += 1
        if at == len(lines):
            return False
        at += 1
    return True


# ------------------------------------------------------------------------------ the shell
class Shell:
    """Runs commands as a reader would type them, one ``bash`` each, sharing a directory, the
    variables they set, ``$?``, and the router ``manymodels serve`` started."""

    def __init__(self, cwd: Path) -> None:
        assert (BIN / "manymodels").exists(), f"the manymodels command is not installed in {BIN}"
        self.cwd = cwd
        self.doc = "README.md"  # where the commands are read, for a failure's message
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MANYMODELS_")}
        self.env.pop("RAY_ADDRESS", None)
        self.env.update(PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", COLUMNS="200",
                        MANYMODELS_ADMIN_TOKEN=TOKEN)  # fmt: skip
        self.status = 0
        self.port = _free_port()
        self.server: subprocess.Popen[bytes] | None = None

    def run(self, command: Command) -> None:
        text = command.text.replace("127.0.0.1:8000", f"127.0.0.1:{self.port}")
        where = f"{self.doc}:{command.line}: {command.text}"
        if re.match(r"manymodels serve\b", text):
            self._serve(text.replace("manymodels serve", f"manymodels serve --port {self.port}", 1))
            return
        failing = any(line.startswith("error:") for line in command.expected)
        polled = any(url in text for url in POLLED)
        deadline = time.monotonic() + 180
        while True:
            done = self._bash(text)
            output = done.stdout + done.stderr
            if not (polled and RUNNING.search(output)) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert (done.returncode != 0) == failing, f"{where}\nexit {done.returncode}\n{output}"
        assert matches(command.expected, output), (
            f"{where}\nthe README shows:\n"
            + "\n".join(command.expected)
            + f"\nit printed:\n{output}"
        )
        self.status = done.returncode
        assignment = ASSIGNMENT.fullmatch(text)
        if assignment:
            self.env[assignment[1]] = done.stdout

    def _bash(self, text: str) -> subprocess.CompletedProcess[str]:
        assignment = ASSIGNMENT.fullmatch(text)
        script = f"(exit {self.status})\n{text}"  # $? is the previous command's status
        if assignment:
            script += f'\nprintf %s "${assignment[1]}"'
        return subprocess.run(
            ["bash", "-o", "pipefail", "-c", script], cwd=self.cwd, env=self.env,
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip

    def _serve(self, text: str) -> None:
        assert self.server is None, "one router per story"
        with (self.cwd / "serve.log").open("wb") as log:
            self.server = subprocess.Popen(
                ["bash", "-c", f"exec {text}"], cwd=self.cwd, env=self.env, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.server.poll() is None, f"the router exited:\n{self.log()}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2):
                    return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"the router was not ready within 90 s:\n{self.log()}")

    def log(self) -> str:
        return (self.cwd / "serve.log").read_text(errors="replace")

    def close(self) -> None:
        """Stop the router, then whatever it started (an embedded Ray) in its session."""
        if self.server is None:
            return
        self.server.send_signal(signal.SIGTERM)
        try:
            self.server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.server.kill()
            self.server.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.server.pid, signal.SIGKILL)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _unavailable(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run this test: {why}")
    pytest.skip(why)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "data-samples", tmp_path / "data-samples")
    return tmp_path


@pytest.fixture
def shell(workdir: Path) -> Iterator[Shell]:
    sh = Shell(workdir)
    try:
        yield sh
    finally:
        sh.close()


# ------------------------------------------------------------------------------ the tests
def test_every_block_is_claimed() -> None:
    """A new block fails here until a test runs it (or NOT_RUN says why nothing can)."""
    blocks = readme_blocks()
    for block in blocks:
        claims = [c for c in CLAIMS if block.first_line.startswith(c)]
        assert len(claims) == 1, (
            f"{block} ({block.first_line!r}) is claimed by {len(claims)} entries of "
            "tests/test_readme.py: a block no test runs has drifted, or will"
        )
    for claim in CLAIMS:
        claimed(claim)
    in_readme_order = [c for b in blocks for c in STORY if b.first_line.startswith(c)]
    assert in_readme_order == list(STORY), "the story's blocks run in README order"


def test_shown_output_is_matched_line_by_line() -> None:
    printed = 'run 3f2a completed: 0 failed\nregistry: mmregistry\n{"predictions":[1314.86176]}\n'
    assert matches(["run … completed: 0 failed", '{"predictions":[1314.86…]}'], printed)
    assert not matches(['{"predictions":[1345.03…]}'], printed)  # a drifted number
    assert not matches(["registry: mmregistry", "run … completed: 0 failed"], printed)  # order
    assert not matches(["completed: 0 failed"], printed)  # a whole line, not a part of one


@pytest.mark.slow
def test_story_train_serve_score_retrain(shell: Shell) -> None:
    """The bash blocks, one story in one directory: train on Ray, browse, serve, score over HTTP,
    retrain from the CLI and over HTTP, promote, roll back, collect garbage, score, forecast."""
    if shutil.which("curl") is None:
        _unavailable("the README's HTTP examples use curl, which is not installed")
    python_at: int | None = claimed(PYTHON_EXAMPLE).line
    for first_line in STORY:
        block = claimed(first_line)
        if python_at is not None and block.line > python_at:
            # as a reader follows the README: the Python example runs where it stands, in the
            # same directory (it once retrained ./mmregistry, so the CLI's `promote … 1` below
            # printed "production v3 → v1", not the v2 shown)
            run_python_example(shell.cwd)
            python_at = None
        for command in shell_commands(block):
            shell.run(command)
    assert shell.server is not None and shell.server.poll() is None, shell.log()


def test_python_example(workdir: Path, request: pytest.FixtureRequest) -> None:
    """The Python block alone, for a run without the slow story; where the story runs too, it
    runs this block itself (``run_python_example``, the same checks) where the README puts it,
    and a second run here would prove nothing more (~5 s of CPU: a training)."""
    story = [i for i in request.session.items if i.name == "test_story_train_serve_score_retrain"]
    if story and story[0].get_closest_marker("skip") is None:
        pytest.skip("test_story_train_serve_score_retrain runs the Python example in its story")
    run_python_example(workdir)


def run_python_example(workdir: Path) -> None:
    block = claimed(PYTHON_EXAMPLE)
    script = workdir / "example.py"
    script.write_text(block.text, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-W", "error", str(script)], cwd=workdir, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    shown = [m[1] for m in re.finditer(r"^\s*print\(.*\)  # (.*)$", block.text, re.M)]
    assert shown, "the example shows what it prints"
    assert matches(shown, done.stdout), f"the README shows {shown}; it printed:\n{done.stdout}"


def make_pipeline_factory(max_depth: int | None = None) -> Pipeline:
    """What the spec example's ``mypackage.models:make_pipeline`` stands for: a factory."""
    return make_pipeline(StandardScaler(), DecisionTreeRegressor(max_depth=max_depth))


def test_spec_example(monkeypatch: pytest.MonkeyPatch) -> None:
    package, module = types.ModuleType("mypackage"), types.ModuleType("mypackage.models")
    module.make_pipeline = make_pipeline_factory  # type: ignore[attr-defined]
    package.models = module  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mypackage", package)
    monkeypatch.setitem(sys.modules, "mypackage.models", module)
    spec = Spec.from_dict(tomllib.loads(claimed(SPEC_EXAMPLE).text))
    assert list(spec.partition_by) == ["store", "brand"]
    assert [c.estimator for c in spec.candidates] == [
        "sklearn.linear_model.Ridge",
        "mypackage.models:make_pipeline",
    ]


def test_error_example(shell: Shell) -> None:
    commands = prompted_commands(claimed(ERROR_EXAMPLE))
    for command in commands:
        shell.run(command)
    assert not (shell.cwd / "mmregistry").exists()  # and the registry is as it was: none


def test_source_map_names_exist() -> None:
    """The Development section's map of the source tree names modules that exist."""
    text = claimed(SOURCE_MAP).text
    entries = re.split(r"^(?=\S)", text, flags=re.M)
    missing = []
    for entry in filter(None, entries):
        top, _, rest = entry.partition("/")
        assert (ROOT / top).is_dir(), top
        if not (ROOT / top / "__init__.py").exists():
            continue  # data-samples/, benchmarks/, tests/: described, not listed
        rest = rest.split(":", 1)[-1]  # "the FastAPI router: settings, …"
        where = [ROOT / top]
        for token in re.findall(r"\w+/|\(|\)|\w+", rest):
            if token == "(":
                continue
            if token == ")":
                where.pop()
            elif token.endswith("/"):
                where.append(where[-1] / token[:-1])
                if not (where[-1] / "__init__.py").exists():
                    missing.append(str(where[-1].relative_to(ROOT)))
            elif not (where[-1] / f"{token}.py").exists() and not (where[-1] / token).is_dir():
                missing.append(str((where[-1] / token).relative_to(ROOT)))
    assert not missing, f"the README's source map names modules that do not exist: {missing}"


def test_source_map_names_every_subpackage() -> None:
    """Every subpackage is in the map: `manymodels/monitoring/` was left out of it, so the map
    read as complete to a newcomer looking for where drift is computed."""
    text = claimed(SOURCE_MAP).text
    packages = [
        init.parent.relative_to(ROOT)
        for top in ("manymodels", "serving")
        for init in (ROOT / top).glob("*/__init__.py")
    ]
    unnamed = [str(p) for p in packages if not re.search(rf"\b{p.name}/ \(", text)]
    assert not unnamed, f"the README's source map leaves out {unnamed}"
