"""Text written as one line: a result a cron log reads line by line, a router's log message.

User text goes into such lines: a promotion's reason, a partition key, a path, an exception's
message quoting any of them. A newline in it split the line in two (a second line a reader took
for another result, or forged), a carriage return hid what came before, an escape sequence
coloured or moved a terminal's cursor. ``one_line`` escapes them as ``\\n``, ``\\r``, ``\\t``,
``\\x1b``…; what was recorded is left as it was given (``--json`` shows it as it is).
"""

from __future__ import annotations

# C0 and C1 controls, DEL and the Unicode line and paragraph separators: each would start a
# line, move the cursor or colour a terminal, in a log a person or a collector reads.
_CONTROLS = {
    c: f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"
    for c in (*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029)
}
_CONTROLS |= {ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"}


def one_line(text: str) -> str:
    """``text`` with every control character escaped: a message written as one line."""
    return text.translate(_CONTROLS)
