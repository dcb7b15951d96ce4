"""How a command prints a line of its own: its result, a ``warning:``, a ``note:``, its
``error:``. Each is one line (a cron log reads line by line), holding user text as written:
a reason, a key, a path or an exception's message quoting one printed a newline as a second
line, a carriage return over the first, an escape sequence to the terminal. ``one_line``
escapes them (``\\n``, ``\\x1b``…) in what is printed, never in what is recorded."""

from __future__ import annotations

import typer

from manymodels.oneline import one_line


def echo(text: str, *, err: bool = False) -> None:
    """``typer.echo`` of ``text`` as one line (``manymodels.oneline.one_line``)."""
    typer.echo(one_line(text), err=err)
