"""How a command prints a line of its own: its result, a ``warning:``, a ``note:``, its
``error:``. Each is one line (a cron log reads line by line), holding user text as written:
a reason, a key, a path or an exception's message quoting one printed a newline as a second
line, a carriage return over the first, an escape sequence to the terminal. ``one_line``
escapes them (``\\n``, ``\\x1b``…) in what is printed, never in what is recorded. An ``error:``
line is also cut to ``ERROR_CHARS`` (``error_line``)."""

from __future__ import annotations

import typer

from manymodels.oneline import one_line

# the longest error line printed whole: an error quotes what it was given, and a 100,000-
# character key or run id made a 100 KB line that scrolled its own beginning out of sight
ERROR_CHARS = 2000


def echo(text: str, *, err: bool = False) -> None:
    """``typer.echo`` of ``text`` as one line (``manymodels.oneline.one_line``)."""
    typer.echo(one_line(text), err=err)


def echo_error(message: str) -> None:
    """``error: message`` on stderr, as one line of at most about ``ERROR_CHARS``."""
    typer.echo(error_line(message), err=True)


def error_line(message: str) -> str:
    """``error: message`` on one line; past ``ERROR_CHARS`` its middle is cut, and said so: the
    beginning says what is wrong, the end often what to do (``… in the registry``)."""
    text = one_line(f"error: {message}")
    if len(text) <= ERROR_CHARS:
        return text
    head, tail = ERROR_CHARS * 2 // 3, ERROR_CHARS // 4
    return f"{text[:head]}…[{len(text) - head - tail:,} characters cut]…{text[-tail:]}"
