"""The router's warm-up covers every import its code defers to a request.

``serving.warm_up`` runs the functions registered with ``manymodels.deferred``; the code a
request runs calls the same functions, so what they import is warmed. What this cannot see is
a function-level import written outside them: the subprocess below starts as a router does
(``import serving.app``), runs the warm-up's ``load_all``, and then executes each
function-level import statement of every ``serving``/``manymodels`` module the router loads
at its start (the code requests run; training's own modules, which the warm-up imports, defer
what a fit needs to the fit), watching for a scikit-learn or SciPy module still to import.
(The warm-up thread and the freeze themselves: tests/serving/test_router_app.py.)
"""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from manymodels.registry import Registry

# Deferred imports the warm-up leaves to their first use, on purpose (each with its reason).
LEFT: tuple[str, ...] = ()

SCRIPT = """
import ast, json, sys, warnings
warnings.simplefilter('ignore')
import serving.app
from manymodels import deferred
ours = [m for n, m in list(sys.modules.items()) if n.partition('.')[0] in ('serving', 'manymodels')]
ran = deferred.load_all()
from manymodels import serialization
serialization.warm_skops({"skops"})  # a registry that trusts skops alone: skops.io
heavy = ('sklearn', 'scipy')
LEFT = set(json.loads(sys.argv[1]))
asked = []
class Watch:
    def find_spec(self, name, path=None, target=None):
        if name.partition('.')[0] in heavy:
            asked.append(name)
        return None
sys.meta_path.insert(0, Watch())
missed, seen = [], 0
for module in ours:
    path = getattr(module, '__file__', None)
    if not path or not path.endswith('.py'):
        continue
    tree = ast.parse(open(path, encoding='utf-8').read())
    statements = {}
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)) and not getattr(node, 'level', 0):
                    statements[node.lineno] = node
    for line, node in sorted(statements.items()):
        seen += 1
        if ast.unparse(node) in LEFT:
            continue
        before = len(asked)
        try:
            exec(compile(ast.Module([node], []), path, 'exec'), {})
        except Exception:
            pass  # an optional dependency not installed: nothing to warm
        if len(asked) > before:
            missed.append(f'{module.__name__}:{line}: {asked[before]}')
print(json.dumps({'ran': ran, 'seen': seen, 'missed': missed}))
"""


@pytest.mark.slow
def test_every_deferred_import_of_the_router_is_warmed() -> None:
    """A function-level import of scikit-learn or SciPy (or of a module that brings them)
    in the router's code that no ``@deferred`` function makes would be paid by the first
    request that reaches it, after the freeze: the warm-up must already have imported it."""
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(LEFT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.splitlines()[-1])
    assert found["ran"] >= 7  # the deferring modules' functions (affine, served, retrain, …)
    assert found["seen"] > 50  # the scan saw the router's function-level imports
    assert found["missed"] == [], found["missed"]


WARMED = """
import json, logging, sys, threading, warnings
warnings.simplefilter('ignore')
from fastapi.testclient import TestClient
from serving.app import create_app
from serving.settings import Settings
warmed = threading.Event()
class Seen(logging.Handler):
    def emit(self, record):
        if 'model libraries warmed' in record.getMessage():
            warmed.set()
logging.getLogger('manymodels.serving').addHandler(Seen())
logging.getLogger('manymodels.serving').setLevel(logging.INFO)
seen = []
for registry in sys.argv[1:]:  # one router after another, in this process
    warmed.clear()
    with TestClient(create_app(Settings(registry=registry))) as client:
        before = 'skops.io' in sys.modules
        done = warmed.wait(120)
        seen.append([before, done, 'skops.io' in sys.modules])
print(json.dumps(seen))
"""


@pytest.mark.skipif(importlib.util.find_spec("skops") is None, reason="skops not installed")
@pytest.mark.parametrize(
    ("trusted", "imported"),
    [(["skops"], True), (["pickle", "pickle,skops"], False)],
    ids=["skops", "pickle-then-both"],
)
def test_the_warm_up_imports_skops_only_for_a_skops_only_registry(
    shared_registry: Path, tmp_path: Path, trusted: list[str], imported: bool
) -> None:
    """A router on a registry that trusts skops artifacts alone has ``skops.io`` imported by
    the warm-up, with no request: its first skops load does not pay ~23,000 objects' import
    inside a request. One on a pickle-only registry, which never loads a skops artifact, does
    not, nor one trusting both (the default: pickles unless a spec said otherwise): these two
    routers, which must leave it unimported, start one after the other in one child."""
    roots = []
    for i, formats in enumerate(trusted):
        root = Path(shutil.copytree(shared_registry, tmp_path / f"registry{i}"))
        with Registry.open(root) as reg:
            reg.set_trusted_formats(frozenset(formats.split(",")))
        roots.append(str(root))
    done = subprocess.run(
        [sys.executable, "-c", WARMED, *roots], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.splitlines()[-1])
    assert len(seen) == len(trusted), seen
    for formats, (before, warmed, after) in zip(trusted, seen, strict=True):
        assert warmed, (formats, done.stderr[-2000:])
        assert not before, formats  # start-up itself leaves it to the warm-up
        assert after is imported, formats


BROKEN_SKOPS = """
import gc, json, logging, sys, threading, warnings
warnings.simplefilter('ignore')
sys.path.insert(0, sys.argv[1])  # a skops whose skops.io fails to import, first on the path
import serving.app  # as a router starts: the modules whose imports load_all defers
from serving.warm_up import WarmUp
said, ended = [], threading.Event()
class Keep(logging.Handler):
    def emit(self, record):
        said.append(record.getMessage())
        if record.getMessage().startswith(('{"event": "model libraries warmed"', 'warming the')):
            ended.set()
logging.getLogger('manymodels.serving').addHandler(Keep())
logging.getLogger('manymodels.serving').setLevel(logging.INFO)
frozen = gc.get_freeze_count()
WarmUp(lambda: {'skops'}).start()
done = ended.wait(240)
print(json.dumps([done, gc.get_freeze_count() - frozen, said]))
"""


def test_a_broken_skops_install_is_logged_and_the_warm_up_still_freezes(
    tmp_path: Path,
) -> None:
    """``skops.io`` was warmed in the same ``try`` as the deferred imports: a skops install
    whose import fails (an optional extra, broken by an upgrade of scikit-learn) skipped the
    freeze of everything the warm-up had just imported, so each full collection walked its
    ~65,000 objects again. The failure is logged, the freeze still happens, and the warm-up's
    line says skops was not warmed and why. The broken install is a real package first on
    the path (its ``skops.io`` raises on import), in a child process."""
    package = tmp_path / "skops"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "io.py").write_text("raise ImportError('skops.io: a broken install')\n")
    done = subprocess.run(
        [sys.executable, "-c", BROKEN_SKOPS, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    ended, frozen, said = json.loads(done.stdout.splitlines()[-1])
    assert ended, said
    assert "warming skops.io failed" in said
    assert "warming the model libraries failed" not in said
    assert frozen > 0, frozen  # what load_all imported, frozen all the same (was 0)
    line = json.loads(next(s for s in said if "model libraries warmed" in s))
    assert line["skops"] is False and line["skops_error"] == "ArtifactError", line


def test_a_warm_up_stopped_while_it_reads_the_policy_logs_no_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The router's stop closed the registry and only then stopped the warm-up, whose thread
    reads the trust policy from it: a stop that came as it read logged 'warming skops.io
    failed' at ERROR with a traceback, on a normal shutdown. The lifespan stops the warm-up
    first, and a read failing once stopped is the stop's doing: nothing logged, nothing
    frozen. A real registry whose policy this version cannot read; in this process (what the
    warm-up imports is imported here already, and a stopped one freezes nothing). The policy
    read at the registry's opening is cached for ``FORMATS_TTL``, which a router's warm-up
    outlives: no cache here, so that the warm-up reads it."""
    import gc
    import threading

    import serving.app  # noqa: F401  # as a router starts: the modules load_all warms
    from manymodels.registry import model_access
    from manymodels.serialization import TRUSTED_META
    from serving.warm_up import WarmUp

    monkeypatch.setattr(model_access, "FORMATS_TTL", 0.0)

    reg = Registry(tmp_path / "reg", create=True)
    reg.store.set_meta(TRUSTED_META, "onnx")  # a policy this version cannot read
    read = threading.Event()

    def formats() -> frozenset[str]:  # the router's shutdown, as it comes while it reads
        warm.stop()
        reg.close()
        try:
            return reg.trusted_formats
        finally:
            read.set()

    warm = WarmUp(formats)
    frozen = gc.get_freeze_count()
    keep = _Kept()  # on the logger itself: a router's logging setup stops its propagation
    served = logging.getLogger("manymodels.serving")
    served.addHandler(keep)
    try:
        warm.start()
        assert read.wait(240)
        warm._thread.join(60)
    finally:
        served.removeHandler(keep)
    assert not warm._thread.is_alive()
    assert keep.said == [], keep.said
    assert gc.get_freeze_count() == frozen


class _Kept(logging.Handler):
    """Every record's level and message, kept."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.said: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.said.append((record.levelname, record.getMessage()))
