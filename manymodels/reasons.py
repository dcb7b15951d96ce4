"""The one cap on a reason a user gives a move or a run (``promote --reason``, ``rollback
--reason``, ``runs abandon --reason``, a router body's ``reason``): the router refused one of
more than 500 characters (a 422) while the CLI recorded 100,000, and every listing of the
alias history (the router's partition page, ``history``, the dashboard) then carried them.

A user's text is held to ``MAX_REASON``; what is recorded may add a prefix of the
command's own ("promoted by hand: "), so the registry, which every writer goes through (the
library's ``Registry.promote(reason=…)`` too), refuses a recorded reason over
``MAX_RECORDED``.
"""

from __future__ import annotations

from manymodels.exceptions import DataError

MAX_REASON = 500
"""Characters of a reason as a user gives it, on the CLI and in a router body alike."""
MAX_RECORDED = 2 * MAX_REASON
"""Characters of a reason as recorded: the user's and a command's prefix."""


def check_reason(reason: str | None, what: str = "--reason", limit: int = MAX_REASON) -> None:
    """A ``DataError`` (one line: the CLI's exit 2, the router's 422) for a reason over
    ``limit`` characters."""
    if reason is not None and len(reason) > limit:
        raise DataError(
            f"{what} is {len(reason):,} characters long: at most {limit:,} are recorded; shorten it"
        )


def given(reason: str | None) -> str | None:
    """``reason`` as given, or ``None`` for an empty or blank one: ``promote --reason ""``
    recorded "promoted by hand: " (a label and nothing) and ``rollback --reason " "`` a blank
    reason, where the router's promote body recorded its own default. Every command and
    route then records its default ("promoted by hand: manual", "promoted via the router",
    "rollback from vN") in place of nothing."""
    return reason if reason is not None and reason.strip() else None
