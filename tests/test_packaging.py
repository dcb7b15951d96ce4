"""What the shipped packages import must be installed by ``pip install manymodels`` alone.

CI installs the ``dev`` extra, which would hide a runtime import that only a dev dependency
provides (the demo once imported httpx that way and failed on a fresh install).
"""

from __future__ import annotations

import ast
import fnmatch
import os
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIRST_PARTY = {"manymodels", "serving"}


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


# Extras that ship no feature: what tests and benchmarks need, never imported by the packages.
NOT_FEATURES = {"dev", "bench"}


def _runtime_closure(*, extras: bool = False) -> set[str]:
    """The runtime dependencies and, recursively, what they require (without extras); with
    ``extras``, those of the optional features too (``pip install 'manymodels[skops]'``)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    todo = [_name(r) for r in project["dependencies"]]
    if extras:
        for extra, requirements in project.get("optional-dependencies", {}).items():
            if extra not in NOT_FEATURES:
                todo += [_name(r) for r in requirements]
    seen: set[str] = set()
    while todo:
        dist = todo.pop()
        if dist in seen:
            continue
        seen.add(dist)
        try:
            requires = metadata.requires(dist) or []
        except metadata.PackageNotFoundError:
            continue
        todo += [_name(r) for r in requires if "extra ==" not in r]
    return seen


def _imported_modules() -> dict[str, str]:
    """Top-level third-party modules imported anywhere in the shipped packages → a file."""
    found: dict[str, str] = {}
    for package in FIRST_PARTY:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in FIRST_PARTY and top not in sys.stdlib_module_names:
                        found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def test_every_runtime_import_is_a_runtime_dependency() -> None:
    """Or an optional feature's (skops, mlflow, apscheduler), imported only where the feature
    is used: e.g. ``tests/test_skops_artifacts.py`` imports the package without skops."""
    closure = _runtime_closure(extras=True)
    providers = metadata.packages_distributions()
    missing = {}
    for module, where in _imported_modules().items():
        dists = {d.lower().replace("_", "-") for d in providers.get(module, [])}
        if not dists & closure:
            missing[module] = (where, sorted(dists))
    assert not missing, f"imported but not installed by the runtime dependencies: {missing}"


def test_the_package_ships_its_py_typed_marker() -> None:
    """PEP 561: without ``manymodels/py.typed`` a user's mypy skipped the package ("module is
    installed, but missing library stubs or py.typed marker"), so ``KeyLike``,
    ``KeySelection`` and every signature were ``Any``. The wheel (hatch's ``packages``) holds
    every file of the package that git does not ignore and no ``exclude`` names."""
    wheel = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]
    wheel = wheel["targets"]["wheel"]
    dropped = [*wheel.get("exclude", []), *(ROOT / ".gitignore").read_text().split()]
    for package in ("manymodels", "serving"):  # serving: Ray Serve's import path names it
        assert (ROOT / package / "py.typed").is_file(), package
        assert package in wheel["packages"]
        for pattern in dropped:
            for name in ("py.typed", f"{package}/py.typed"):
                assert not fnmatch.fnmatch(name, pattern.strip("/")), (pattern, name)


USER_CODE = """
from manymodels.key_selection import KeyLike, KeySelection


def first(keys: KeySelection, key: KeyLike) -> None: ...


reveal_type(first)
"""


@pytest.mark.slow  # mypy reads numpy's and pandas' types: ~15 s of CPU
def test_a_user_s_mypy_sees_the_key_types(tmp_path: Path) -> None:
    """A user's mypy, in a directory of their own, checks against our annotations."""
    (tmp_path / "user.py").write_text(USER_CODE)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this tree, as an installed package
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--cache-dir", os.devnull, "user.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert "py.typed" not in checked.stdout, checked.stdout
    assert "key: str | typing.Mapping[str, Any] | tuple[Any, ...]" in checked.stdout
    assert checked.returncode == 0, checked.stdout
