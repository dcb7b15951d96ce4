"""A command whose arguments may be typed as negative numbers: ``promote KEY -1``.

click takes any token that starts with ``-`` for an option, so ``promote KEY -1`` said "no such
option: -1", not why the version is refused. ``ignore_unknown_options`` would fix that and spoil
every typo'd flag (``--reasn x`` became "unexpected extra argument"); this moves only the
negative numbers that no option takes as its value behind ``--``, where click reads arguments.
"""

from __future__ import annotations

import re
from typing import Any

from typer.core import TyperCommand

_NUMBER = re.compile(r"-\d+(\.\d*)?([eE][-+]?\d+)?")


class NegativeArguments(TyperCommand):
    """``TyperCommand`` that reads a negative number where an argument stands as that argument,
    so its own refusal is said (``VERSION: input should be greater than or equal to 1``)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, as_arguments(args, self._valued()))

    def _valued(self) -> set[str]:
        """The option names that take a value (``--reason TEXT``): a number after one is it."""
        return {
            name
            for param in self.params
            if param.param_type_name == "option" and not getattr(param, "is_flag", False)
            for name in param.opts
        }


def as_arguments(args: list[str], valued: set[str]) -> list[str]:
    """``args`` with each negative number that is not an option's value moved behind ``--``
    (in order; arguments are read after any other argument before it)."""
    if "--" in args:  # the user said where the arguments start
        return args
    kept: list[str] = []
    moved: list[str] = []
    for i, arg in enumerate(args):
        after_option = i > 0 and args[i - 1] in valued
        (moved if _NUMBER.fullmatch(arg) and not after_option else kept).append(arg)
    return [*kept, "--", *moved] if moved else args
