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

import json
import subprocess
import sys

# Deferred imports the warm-up leaves to their first use, on purpose: skops is an optional
# artifact format, and importing ``skops.io`` (scikit-learn's test utilities with it: ~23,000
# objects, seconds under load) in every router's warm-up, most of which serve no skops
# artifact, would cost them all for the few that do (a first skops load pays it, as before).
LEFT = ("import skops.io",)

SCRIPT = """
import ast, json, sys, warnings
warnings.simplefilter('ignore')
import serving.app
from manymodels import deferred
ours = [m for n, m in list(sys.modules.items()) if n.partition('.')[0] in ('serving', 'manymodels')]
ran = deferred.load_all()
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
