"""A spec's ``holidays`` kept in a file: ``holidays = "holidays.csv"`` (a path relative to the
spec file, or absolute) beside the inline list ``holidays = ["2024-12-25", ...]``. A market's
or an office's closed days are a list kept by someone else, years of them, which users
copied into every spec by hand.

The file is a CSV whose first column holds the dates (``2024-12-25``), one a row; a first
line naming the column (``date``) is a header, further columns (a holiday's name) are left
alone, blank lines are skipped (leading ones too: the header is the first row holding
anything), and Excel's ``sep=,`` first line names the delimiter (quoted or padded too, as a
spreadsheet saves it again: ``"sep=,"``, ``sep=,,``). It is read once, where the
spec is read: the version records the dates, not the path, so a registry never reads it
again.
"""

from __future__ import annotations

import csv
import datetime
import re
from pathlib import Path

from manymodels.spec_rules import iso_date

EMPTY = 'is empty: write a list of dates, ["2024-12-25"], or the path of a CSV file of them'
"""``holidays = ""``: which, as a path, was the spec's own folder."""

# Excel's hint, quoted as a spreadsheet re-saving it quotes a cell holding its delimiter
# ("sep=,"), then the empty cells that pad it to the table's width (sep=,, of a table of three)
_SEP = re.compile(r'(?:"sep=(?P<quoted>[^"\r\n]?)"|sep=(?P<bare>[^"\r\n]?))(?P<pad>.*)', re.I)


def read_holidays(path: Path) -> list[str]:
    """The dates of a holidays CSV as sorted ISO text; ``ValueError`` in one line naming
    the file, and the row (as a spreadsheet numbers it, the header being row 1) of a bad
    date."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's BOM is no header
    except FileNotFoundError:
        raise ValueError(
            f"{path}: no such file (a CSV of dates, one a row, or write a list of dates)"
        ) from None
    except IsADirectoryError:  # not "cannot read it (IsADirectoryError: [Errno 21] …)"
        raise ValueError(f"{path} is a folder, not a CSV file of dates") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: cannot read it ({type(e).__name__}: {e})") from None
    lines = text.splitlines()
    sep_row, delimiter = _sep_line(lines, path)
    dates: set[str] = set()
    header_may_come = True  # the first row holding anything (after ``sep=``) may be a header
    try:
        for row, cells in enumerate(csv.reader(lines, delimiter=delimiter), start=1):
            first = cells[0].strip() if cells else ""
            if row == sep_row or not any(c.strip() for c in cells):
                continue
            if header_may_come:
                header_may_come = False
                if first and not any(ch.isdigit() for ch in first):
                    continue  # a header: "date", "Holiday"
            if not first:
                raise ValueError(f"{path} row {row}: no date in its first column")
            try:
                dates.add(iso_date(first))
            except ValueError as e:
                raise ValueError(f"{path} row {row}: {e}") from None
    except csv.Error as e:
        raise ValueError(f"{path}: not a CSV file ({e})") from None
    if not dates:
        raise ValueError(f"{path} holds no dates")
    return sorted(dates)


def _sep_line(lines: list[str], path: Path) -> tuple[int, str]:
    """The row of Excel's ``sep=,`` line (``sep=;`` where a comma is the decimal mark) and
    the delimiter it names: the first line holding anything, saved as a spreadsheet does for
    Excel to split the file; it was taken for the header, and the real header under it was
    "row 2: 'date' is not a date". So was the line a spreadsheet saves again: quoted
    (``"sep=,"``) or padded with the table's empty cells (``sep=,,``), which are read as
    ``sep=,``. ``ValueError`` in one line for a ``sep=`` line naming no delimiter, or two
    (``sep=``, ``sep=;,``): which one splits the file is not known. ``(0, ",")`` when there
    is none."""
    for row, line in enumerate(lines, start=1):
        if line.strip():
            found = _SEP.fullmatch(line.strip(" "))
            if found is None:
                return 0, ","
            delimiter = found["quoted"] if found["quoted"] is not None else found["bare"]
            if delimiter and not found["pad"].strip(delimiter):
                return row, delimiter
            what = "more than one delimiter" if delimiter else "no delimiter"
            raise ValueError(
                f"{path} row {row}: Excel's separator line {line.strip()!r} names {what}: "
                "write the one the file uses (sep=, or sep=;), or drop the line"
            )
    return 0, ","


def one_date_hint(value: str) -> str | None:
    """What to write when ``holidays`` is one date as text (``"2024-12-25"``), not a file's
    path: a list of it."""
    try:
        datetime.date.fromisoformat(value.strip())
    except ValueError:
        return None
    return f'{value!r} is one date, not a list of dates nor a CSV file; write ["{value}"]'
