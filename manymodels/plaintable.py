"""Tables and lines for a pipe, drawn as rich draws them, without importing rich.

``models list`` and ``runs list`` print one table each; importing rich (~40 ms) and laying the
table out with it (~30 ms for 50 rows) was half of what those commands cost (issue #13,
``benchmarks/cli.py``). When stdout is not a terminal, rich prints a table that fits its width
with no styles at all: fixed characters this module can draw. It does so only when it is sure
of drawing the same characters: every cell plain text (no ``[`` rich would read as markup, no
``:name:`` it could take for an emoji, no wide or combining character), the table no wider
than the console, no word of its title wider than the table. Anything else is printed by rich, as
before — ``LazyConsole`` creates its rich ``Console`` on the first such print.
``tests/test_plaintable.py`` holds the two to the same output.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

from manymodels.oneline import one_line

# rich's box.HEAVY_HEAD, the default box of rich.table.Table
_TOP, _HEAD, _HEAD_SEP, _ROW, _BOTTOM = "┏━┳┓", "┃┃┃", "┡━╇┩", "│││", "└─┴┘"
_NARROW = frozenset("—–…")  # the non-ASCII characters we print, one column wide each
_EMOJI = re.compile(r":(\S*?):")  # rich's emoji codes are :name: (names with letters)
_STYLE_TAGS = re.compile(r"\[(?:bold|bold red|red|yellow|/)\]")  # the markup console.py prints
_ENV_TERMINAL = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "JUPYTER_COLUMNS")
_PLAIN_OPTIONS = frozenset({"markup", "soft_wrap"})  # a print this module can draw with them
ENABLED = True  # tests switch it off to compare with rich


def plain_text(text: str) -> bool:
    """Whether rich prints ``text`` unchanged (markup and emoji on, highlighting off)."""
    if "[" in text or not all(" " <= c <= "~" or c in _NARROW for c in text):
        return False
    return all(name.isdigit() and name not in ("100", "1234") for name in _EMOJI.findall(text))


class Table:
    """The part of ``rich.table.Table``'s interface ``manymodels.console`` uses."""

    def __init__(self, title: str | None = None, title_justify: str = "center") -> None:
        self.title = None if title is None else one_line(title)
        self.title_justify = title_justify
        self.columns: list[tuple[str, dict[str, Any]]] = []
        self.rows: list[tuple[str, ...]] = []

    def add_column(self, header: str, **options: Any) -> None:
        self.columns.append((header, options))

    def add_row(self, *cells: str) -> None:
        """Each cell as written (the console prints no markup, no emoji), on one line: a
        newline in a key or a reason drew a second row, an escape sequence coloured the
        terminal."""
        self.rows.append(tuple(one_line(c) if isinstance(c, str) else c for c in cells))

    def to_rich(self) -> Any:
        from rich.table import Table as RichTable

        table = RichTable(title=self.title, title_justify=self.title_justify)  # type: ignore[arg-type]
        for header, options in self.columns:
            table.add_column(header, **options)
        for row in self.rows:
            table.add_row(*row)
        return table

    def plain(self, width: int) -> str | None:
        """The lines rich would print for this table at ``width`` columns on a pipe, or
        ``None`` when rich would do more than pad cells (wrap, style, replace)."""
        if not self.rows or self.title_justify != "left":
            return None
        justify = [options.get("justify", "left") for _, options in self.columns]
        if not set(justify) <= {"left", "right"}:
            return None
        if set().union(*(o for _, o in self.columns)) - {"justify", "overflow", "no_wrap"}:
            return None
        lines = [tuple(h for h, _ in self.columns), *self.rows]
        if any(len(line) != len(self.columns) for line in lines):
            return None
        if not all(isinstance(c, str) and plain_text(c) for line in lines for c in line):
            return None
        widths = [max(len(line[i]) for line in lines) for i in range(len(self.columns))]
        total = sum(widths) + 3 * len(widths) + 1
        title = self.title or ""
        if total > width or not plain_text(title):
            return None
        title_lines = _wrap(title, total) if title else []
        if title_lines is None:
            return None

        def rule(box: str) -> str:
            return box[0] + box[2].join(box[1] * (w + 2) for w in widths) + box[3]

        def row(cells: tuple[str, ...], box: str) -> str:
            padded = [
                c.rjust(w) if j == "right" else c.ljust(w)
                for c, w, j in zip(cells, widths, justify, strict=True)
            ]
            return box[0] + box[1].join(f" {c} " for c in padded) + box[2]

        out = [line.ljust(total) for line in title_lines]
        out += [rule(_TOP), row(lines[0], _HEAD), rule(_HEAD_SEP)]
        out += [row(cells, _ROW) for cells in self.rows]
        out.append(rule(_BOTTOM))
        return "\n".join(out) + "\n"


def _wrap(text: str, width: int) -> list[str] | None:
    """``text`` in lines of at most ``width`` columns, broken between words as rich breaks a
    title, or ``None`` when a word is longer than a line (rich would fold it)."""
    lines: list[str] = []
    line = ""
    for word in re.findall(r"\S+\s*", text):
        if len(word.rstrip()) > width:
            return None
        if line and len(line) + len(word.rstrip()) > width:
            lines.append(line.rstrip())
            line = ""
        line += word
    lines.append(line.rstrip())
    return lines


class LazyConsole:
    """A rich ``Console`` made on first use; tables and plain lines that rich would print
    unchanged on a pipe are written without it."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Any = None

    @property
    def rich(self) -> Any:
        """The rich ``Console`` (for ``rich.progress`` and anything else that needs one)."""
        if self._console is None:
            self._console = _pipe_console()(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.rich, name)

    def _file(self) -> Any:
        return sys.stderr if self._options.get("stderr") else sys.stdout

    def _plain_width(self) -> int | None:
        """The width rich lays out at when it prints no styles, or ``None`` (a terminal, or
        an environment that could make rich think it prints to one)."""
        width = self._options.get("width")
        if not ENABLED or width is None:
            return None
        if any(name in os.environ for name in _ENV_TERMINAL):
            return None
        isatty = getattr(self._file(), "isatty", None)
        try:
            return None if isatty is None or isatty() else int(width)
        except ValueError:
            return None

    def print(self, *objects: Any, **options: Any) -> None:
        """As rich's ``Console.print``; ``markup=True`` for a line of our own style tags (its
        user text escaped), ``soft_wrap=True`` for a line never folded at the width."""
        width = self._plain_width()
        if width is not None and len(objects) == 1 and set(options) <= _PLAIN_OPTIONS:
            (obj,) = objects
            text: str | None = None
            markup = options.get("markup", self._options.get("markup", True))
            fits = width if not options.get("soft_wrap") else sys.maxsize
            if isinstance(obj, Table):
                text = obj.plain(width) if not options else None
            elif isinstance(obj, str) and "\n" not in obj:
                line = _STYLE_TAGS.sub("", obj) if markup else obj  # a pipe shows no styles
                text = line + "\n" if len(line) <= fits and plain_text(line) else None
            if text is not None:
                self._file().write(text)
                return
        self.rich.print(*(o.to_rich() if isinstance(o, Table) else o for o in objects), **options)


def _pipe_console() -> Any:
    """rich's ``Console``, but a reader that left the pipe is a ``BrokenPipeError`` again: rich
    itself would exit 1 (``on_broken_pipe``), and the command ends as ``SIGPIPE`` would
    (``manymodels.cli.pipe_closed``)."""
    from rich.console import Console

    class PipeConsole(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True  # nothing more to write, whoever writes next
            raise BrokenPipeError

    return PipeConsole
