"""The ``manymodels`` command.

Heavy imports (pandas, scikit-learn, Ray) happen inside commands so ``manymodels --help`` is
instant. Every error we raise on purpose is shown as one line, ``error: …``, with exit code 2
for bad input (spec, data, unknown names) and 1 for everything else — never a traceback. A bad
command line (an option out of range, an unknown option, a missing argument) is one such line
too, with exit code 2.

The commands live in modules by job: ``train``, ``score``, ``forecast``, ``registry``
(promote, rollback, retire, gc, doctor, sign, and the ``models`` and ``runs`` groups), ``intro``
(demo, version) and ``serving.command`` (serve); ``errors`` holds the error handling every group
shares and ``options`` the options several commands share. ``commands`` assembles the app in
one place. Read-only commands over a SQLite registry (``models``/``runs`` ``list``/``show``)
are answered by ``fastpath`` without typer or SQLAlchemy when their command line is one it
fully understands; everything else goes to typer. So this module imports neither: ``app``
is built on first use.
"""

from __future__ import annotations

import sys
from typing import Any


def main() -> None:
    """The ``manymodels`` command: a read-only command ``fastpath`` understands is answered
    there (in ~0.1 s instead of ~1 s), anything else by the typer app."""
    from manymodels.cli.fastpath import answer
    from manymodels.cli.pipe_closed import ReaderLeft, reader_left

    try:
        if answer(sys.argv[1:]) is None:
            from manymodels.cli.commands import app

            app()
    except (BrokenPipeError, ReaderLeft):  # `manymodels score d.csv -o - | head -1`: the
        reader_left()  # reader left; we go as `seq 100000 | head -1` goes (pipe_closed)


def __getattr__(name: str) -> Any:
    """``from manymodels.cli import app``: the typer app, built when first asked for."""
    if name == "app":
        from manymodels.cli.commands import app

        return app
    raise AttributeError(f"module 'manymodels.cli' has no attribute {name!r}")
