"""``models list``, ``models show``, ``runs list`` and ``runs show`` without typer or SQLAlchemy.

A person browsing a registry runs these one after another, and each waited ~1 s, almost all
of it imports: typer ~0.1 s, SQLAlchemy ~0.3 s, against ~0.05 s for Python and ``manymodels``
(issue #13, ``benchmarks/cli.py``). ``answer`` handles the command lines it fully understands
— one of these commands, with ``--registry``, ``--json``, ``--limit`` and ``--offset`` in
range — over a SQLite registry (``manymodels.registry.browse``), and prints exactly what the
typer command prints (``manymodels.cli.views``, shared by both).

Everything else returns ``None`` before printing anything, and ``manymodels.cli.main`` hands
the command line to typer: ``--help``, an unknown or bad option (typer's ``error:`` line),
``--explain``, ``--registry-db`` or ``--artifacts`` (or their variables), a signing key (it
is checked), an unknown key or run (the error says so), a registry to create or upgrade.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the browser (sqlite3, json) loads in ``answer``, once a command matched
    from manymodels.registry.browse import Browser

MAX_INT = 2**31 - 1  # as manymodels.cli.options.MAX_INT, which imports typer
# Variables that make the typer command do more than read a SQLite file: let it.
_TYPER_ONLY_ENV = (
    "MANYMODELS_REGISTRY_DB",
    "MANYMODELS_ARTIFACTS",
    "MANYMODELS_SIGNING_KEY",
    "MANYMODELS_SIGNING_KEY_FILE",
)
# command → its integer options with their bounds (as the typer commands declare them)
_COMMANDS: dict[tuple[str, str], dict[str, tuple[int, int]]] = {
    ("models", "list"): {"--limit": (1, 10_000), "--offset": (0, MAX_INT)},
    ("models", "show"): {},
    ("runs", "list"): {"--limit": (1, 10_000), "--offset": (0, MAX_INT)},
    ("runs", "show"): {},
}
_TAKES_ARGUMENT = {("models", "show"), ("runs", "show")}
_DEFAULTS = {
    ("models", "list"): {"--limit": 50, "--offset": 0},
    ("runs", "list"): {"--limit": 20, "--offset": 0},
}


class _Parsed:
    """A command line ``answer`` understood: the command, its argument and options."""

    def __init__(self, command: tuple[str, str], argument: str | None, ints: dict[str, int],
                 registry: Path, json_out: bool) -> None:  # fmt: skip
        self.command = command
        self.argument = argument
        self.ints = ints
        self.registry = registry
        self.json_out = json_out


def parse(argv: Sequence[str]) -> _Parsed | None:
    """``argv`` (without the program name) if it is one of these commands written in a way
    typer would accept with the same meaning; ``None`` for anything else."""
    if len(argv) < 2 or (argv[0], argv[1]) not in _COMMANDS:
        return None
    if any(os.environ.get(name) is not None for name in _TYPER_ONLY_ENV):
        return None
    command = (argv[0], argv[1])
    bounds = _COMMANDS[command]
    ints = dict(_DEFAULTS.get(command, {}))
    registry = os.environ.get("MANYMODELS_REGISTRY", "mmregistry")
    if not registry:
        return None
    json_out, argument, seen = False, None, set()
    rest = list(argv[2:])
    while rest:
        token = rest.pop(0)
        name, eq, value = token.partition("=")
        if name in seen:
            return None  # typer takes the last; not worth the thought
        if token == "--json":
            json_out = True
        elif name == "--registry" or name in bounds:
            if not eq:
                if not rest:
                    return None
                value = rest.pop(0)
            if name == "--registry":
                if not value:
                    return None
                registry = value
            elif not (value.isascii() and value.isdigit()):
                return None
            elif not bounds[name][0] <= int(value) <= bounds[name][1]:
                return None  # typer's error line says which bound
            else:
                ints[name] = int(value)
        elif token.startswith("-") or argument is not None or command not in _TAKES_ARGUMENT:
            return None
        else:
            argument = token
            continue
        seen.add(name)
    if (command in _TAKES_ARGUMENT) != (argument is not None):
        return None
    return _Parsed(command, argument, ints, Path(registry), json_out)


def answer(argv: Sequence[str]) -> int | None:
    """Run ``argv`` here and return its exit code (0), or ``None`` having printed nothing:
    then typer runs it."""
    parsed = parse(argv)
    if parsed is None:
        return None
    from manymodels.exceptions import RegistryError
    from manymodels.registry.browse import Unsure, open_browser

    browser = open_browser(parsed.registry)
    if browser is None:
        return None
    try:
        with browser:
            show = _READ[parsed.command](browser, parsed)
    except (Unsure, ValueError, RegistryError):  # a row's JSON unreadable, a holiday set
        return None  # missing or altered: Registry says so
    show()
    return 0


def _models_list(b: Browser, p: _Parsed) -> Callable[[], None]:
    from manymodels.cli import views

    items = b.list_partitions(limit=p.ints["--limit"], offset=p.ints["--offset"])
    total = b.count_partitions()
    fallback = b.has_fallback()
    offset = p.ints["--offset"]
    return lambda: views.models_list(
        items, total=total, offset=offset, json_out=p.json_out, fallback=fallback
    )


def _models_show(b: Browser, p: _Parsed) -> Callable[[], None]:
    from manymodels.cli import views

    assert p.argument is not None
    part = b.get_partition(b.key(p.argument))
    versions = b.list_versions(part.key)
    history = b.alias_history(part.key)
    return lambda: views.models_show(part, versions, history, json_out=p.json_out)


def _runs_list(b: Browser, p: _Parsed) -> Callable[[], None]:
    from manymodels.cli import views

    offset = p.ints["--offset"]
    runs = b.list_runs(limit=p.ints["--limit"], offset=offset)
    total = b.count_runs()
    lost = b.lost_counts([r.run_id for r in runs])
    return lambda: views.runs_list(runs, lost, total=total, offset=offset, json_out=p.json_out)


def _runs_show(b: Browser, p: _Parsed) -> Callable[[], None]:
    from manymodels.cli import views

    assert p.argument is not None
    run = b.get_run(p.argument)
    failed = b.run_outcomes(run.run_id, views.FAILED)
    lost = b.run_outcomes(run.run_id, views.LOST)
    skipped = b.run_outcomes(run.run_id, views.SKIPPED)
    n_lost = b.lost_counts([run.run_id]).get(run.run_id, 0)
    return lambda: views.runs_show(run, failed, lost, skipped, n_lost=n_lost, json_out=p.json_out)


_READ: dict[tuple[str, str], Callable[[Browser, _Parsed], Callable[[], None]]] = {
    ("models", "list"): _models_list,
    ("models", "show"): _models_show,
    ("runs", "list"): _runs_list,
    ("runs", "show"): _runs_show,
}
