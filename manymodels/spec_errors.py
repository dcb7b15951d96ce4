"""A spec's validation errors as one line per problem: ``file: key.path: message``.

Pydantic reports a value that fits no member of a union (``target_transform = "log"``: a
transform, or a list of them) once per member, each under a location naming the member's type
(``target_transform.literal['none',…]``, ``target_transform.list[…]``). A spec's author wrote
one value in one key: ``describe`` says it once, under that key, with the member the value was
meant for (the one it went deepest into, or whose shape it has) and the others as what else
the key takes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

SIMPLE_TYPES = {
    "int": "a whole number",
    "float": "a number",
    "str": "text",
    "bool": "true or false",
}
"""Names pydantic gives the members of a union that are plain types, and what they mean."""

KEY_ERRORS = frozenset({"extra_forbidden", "missing"})
"""Errors of a key, not of a value: their locations are keys as written, which a union's
member names can look like (two unknown keys ``time-column`` and ``min-rows`` read as the
members of one union, and the message named neither)."""


def describe(error: ValidationError, source: str) -> str:
    """``source: key.path: message`` per problem, joined by ``; ``."""
    lines = [
        f"{source}: {loc}: {msg}" if loc else f"{source}: {msg}"
        for loc, msg in problems(error.errors())
    ]
    return "; ".join(lines)


def problems(errors: Sequence[Any]) -> list[tuple[str, str]]:
    """(dotted key path, message) of each problem, in the order pydantic found them; the
    errors of one union's members (``_member_at``) make one problem, where its first was."""
    out: list[tuple[str, str] | list[Any]] = []  # a problem, or the errors of one union
    unions: dict[tuple[Any, ...], list[Any]] = {}
    members = [e for e in errors if e["type"] not in KEY_ERRORS]
    for err in errors:
        at = None if err["type"] in KEY_ERRORS else _member_at(err["loc"], members)
        if at is None:
            out.append((_dotted(err["loc"]), message(err)))
        elif (key := tuple(err["loc"][:at])) in unions:
            unions[key].append(err)
        else:
            unions[key] = [err]
            out.append(unions[key])
    return [_union_problem(p, errors) if isinstance(p, list) else p for p in out]


def message(err: Any) -> str:
    """One error's message in a spec's terms (a key, not a field; the value that was given)."""
    if err["type"] == "extra_forbidden":
        return "unknown key (not part of the spec format)"
    if err["type"] == "missing":
        return "required key is missing"
    if err["type"] == "list_type" and isinstance(err["input"], str):  # partition_by = "store"
        return f"{_shown(err['input'])} is not a list: write {_as_list(err['input'])}"
    if err["type"] == "literal_error":
        expected = err["ctx"]["expected"]
        if " or " not in expected:
            return f"{_shown(err['input'])} is not {expected}"
        return f"{_shown(err['input'])} is not one of {expected.replace(' or ', ', ')}"
    return str(err["msg"]).removeprefix("Value error, ")


def _member_at(loc: Sequence[Any], errors: Sequence[Any]) -> int | None:
    """Where in ``loc`` a union's member is named: a type's name (``literal[…]``,
    ``list[…]``, ``int``, ``constrained-float``) beside another member's at the same place
    in another error. Spec keys are identifiers: they are never such names."""
    for i, part in enumerate(loc):
        if not _is_member(part):
            continue
        siblings = {e["loc"][i] for e in errors if len(e["loc"]) > i and e["loc"][:i] == loc[:i]}
        if len({s for s in siblings if _is_member(s)}) >= 2:
            return i
    return None


def _is_member(part: Any) -> bool:
    return isinstance(part, str) and ("[" in part or "-" in part or part in SIMPLE_TYPES)


def _union_problem(union: Sequence[Any], errors: Sequence[Any]) -> tuple[str, str]:
    """One problem for the errors of one union's members (``union``, of all ``errors``).

    The member the value was meant for: one whose errors lie deeper than the key (the value
    had its shape: a list whose item is wrong), else those refusing more than the value's
    type (``'log'`` is a text, the list member refuses it for not being a list). The others
    are named as what else the key takes, unless the value went deeper into one. A value
    meant for none (a table where a word or a list of words goes) is said to be none of them;
    a number out of a member's range says the range beside the others (``must be a number
    ≥ 0 or 'auto', not -1``), where pydantic's words for each member read as two problems."""
    at = _member_at(union[0]["loc"], errors)
    assert at is not None  # how ``problems`` found them
    members: dict[str, list[Any]] = {}
    for err in union:
        members.setdefault(err["loc"][at], []).append(err)
    deeper = [m for m, errs in members.items() if any(len(e["loc"]) > at + 1 for e in errs)]
    shaped = [m for m, errs in members.items() if not all(_wrong_type(e) for e in errs)]
    if not deeper and not shaped:  # meant for none ({} for a word or a list of words)
        names = [_member_name(m) for m in members]
        msg = f"{_shown(union[0]['input'])} is not {names[0]}"
        if names[1:]:
            msg += f" (or {', or '.join(names[1:])})"
        return _dotted(union[0]["loc"][:at]), msg
    meant = deeper or shaped
    chosen = [e for m in meant for e in members[m]]
    others = [_member_name(m) for m in members if m not in meant]
    if len(chosen) == 1:
        err = chosen[0]
        loc, msg = _dotted([*err["loc"][:at], *err["loc"][at + 1 :]]), message(err)
        if not deeper and (bound := _bound(err)):  # prior_rows = -1: a number, out of range
            wanted = " or ".join([f"{_member_name(meant[0])} {bound}", *others])
            return loc, f"must be {wanted}, not {_shown(err['input'])}"
    else:
        loc, msg = _dotted(union[0]["loc"][:at]), ", or ".join(message(e) for e in chosen)
    if others and not deeper:
        msg += f" (or {', or '.join(others)})"
    return loc, msg


BOUNDS = {"greater_than_equal": "≥", "greater_than": ">", "less_than_equal": "≤", "less_than": "<"}
"""Pydantic's errors of a number out of its range, and the sign each names its limit with."""


def _bound(err: Any) -> str | None:
    """``≥ 0`` for a number pydantic refused for being below 0, and so on; None for others."""
    sign = BOUNDS.get(str(err["type"]))
    if sign is None:
        return None
    limit = next(iter(err.get("ctx", {}).values()), None)
    if isinstance(limit, int | float) and not isinstance(limit, bool):
        return f"{sign} {limit:g}"  # ≥ 0, where a float's field says 0.0
    return None if limit is None else f"{sign} {limit}"


def _wrong_type(err: Any) -> bool:
    """An error saying only that the value is not of the member's type (``list_type``; a
    number, list or table given where one of some words is taken: a spec's choices are all
    words)."""
    words = err["type"] == "literal_error" and not isinstance(err["input"], str)
    return str(err["type"]).endswith("_type") or words


def _member_name(member: str) -> str:
    """What a union's member takes, in words: ``list[literal['a','b']]`` → a list of 'a', 'b';
    ``literal['auto']`` → 'auto'."""
    if member in SIMPLE_TYPES:
        return SIMPLE_TYPES[member]
    if member.startswith("constrained-"):
        return SIMPLE_TYPES.get(member.removeprefix("constrained-"), member)
    if found := re.fullmatch(r"literal\[(.*)\]", member):
        words = found.group(1)
        return "one of " + words.replace(",", ", ") if "," in words else words
    if found := re.fullmatch(r"list\[(.*)\]", member):
        inner = _member_name(found.group(1)).removeprefix("one of ")
        return f"a list of {inner}" if inner != found.group(1) else "a list"
    return member


def _as_list(text: str) -> str:
    """The TOML list a lone value meant: ``["store"]`` for a column, ``[80]`` for a number
    written as text (``levels = "80"``), and one item per comma-separated part, as a command
    line's ``--by store,brand`` is written: ``partition_by = "store,brand"`` was told to
    write ``["store,brand"]``, a column no table has."""
    parts = [part.strip() for part in text.split(",") if part.strip()] or [text]
    return f"[{', '.join(_item(part) for part in parts)}]"


def _item(text: str) -> str:
    """One value of ``_as_list``: a number as it is, text quoted as TOML (JSON's quoting)."""
    try:
        float(text)
    except ValueError:
        return json.dumps(text)
    return text.strip()


def _shown(value: Any) -> str:
    """A value as the spec's TOML wrote it (``true``, not ``True``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def _dotted(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
