"""How the ``manymodels`` command fails: one ``error: …`` line on stderr, never a traceback.

Kept apart from the commands because every group (the top-level app and ``models``/``runs``)
uses the same class, and the rules for exit codes live in one place: 2 for bad input (spec, data,
unknown names) and for a bad command line, 1 for everything else, 130 on Ctrl-C; a reader
that left the pipe ends the process as ``SIGPIPE`` would (``manymodels.cli.pipe_closed``).
"""

from __future__ import annotations

import re
from typing import Any

import typer
from typer.core import TyperGroup

from manymodels.cli.lines import echo, echo_error

_BAD_INPUT_EXIT = 2


class Group(TyperGroup):
    """Turns our own exceptions, and typer's usage errors, into one clear line on stderr, at the
    outermost edge.

    Typer would show a bad option (``--limit 0``, ``--bogus``, a missing argument) as a usage
    line, a hint and a boxed message; every other error of ours is one ``error: …`` line that
    scripts and people read the same way, so these are too.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from manymodels.cli.metavars import name_values  # typer only, as this module

        for command in (self, *self.commands.values()):
            name_values(command)  # ``--help`` says SPEC, DATA, --registry PATH: not <str>

    def make_context(
        self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any
    ) -> Any:
        # A group's own command line is parsed here, before ``invoke``: ``manymodels --bogus``.
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except typer.TyperException as e:
            _exit_on_usage_error(e)
            raise

    def invoke(self, ctx: Any) -> Any:  # typer vendors click: its Context type is private
        from manymodels.cli.pipe_closed import ReaderLeft
        from manymodels.exceptions import DataError, ManyModelsError, SpecError

        try:
            return super().invoke(ctx)
        except BrokenPipeError as e:  # typer would exit 1 on it: main() ends the process
            raise ReaderLeft() from e
        except ManyModelsError as e:
            echo_error(str(e))  # a key or path it quotes
            bad_input = isinstance(e, SpecError | DataError | LookupError)
            ctx.exit(_BAD_INPUT_EXIT if bad_input else 1)
        except typer.TyperException as e:  # a subcommand's name, options or arguments
            _exit_on_usage_error(e)
            raise
        except Exception as e:
            why = _database_unavailable(e)
            if why is None:
                raise
            echo_error(why)
            ctx.exit(1)
        except KeyboardInterrupt:
            echo(
                "interrupted: work already committed is kept "
                "(an interrupted training run can be finished with --resume RUN_ID)",
                err=True,
            )
            ctx.exit(130)


def _database_unavailable(error: Exception) -> str | None:
    """One line for an error saying the registry's database cannot be reached or used now (a
    server stopped, frozen or cut off mid-command: a read outside a write transaction is not
    translated to a ``RegistryError``, and ended in a traceback); ``None`` for another error.
    Only the modules a command already loaded are looked at: one that never loaded SQLAlchemy
    raised none of its errors."""
    from manymodels.exceptions import database_away, first_line

    if not isinstance(error, database_away(loaded=True)):
        return None
    return f"registry database unavailable: {first_line(getattr(error, 'orig', None) or error)}"


# ``promote KEY -1``: click takes any token starting with '-' for an option, and said only
# "no such option: -1"; reading it as the argument instead (``ignore_unknown_options``, or
# reordering argv) spoils every typo'd flag, so the line says how to give one
_NEGATIVE = re.compile(r"-\d+(\.\d*)?([eE][-+]?\d+)?")


def _exit_on_usage_error(error: typer.TyperException) -> None:
    """Print ``error`` (click's BadParameter, NoSuchOption, UsageError… which typer ≥ 0.26
    vendors under the public base ``TyperException``) as one line and exit with its code (2 for
    usage errors). A group run without arguments shows its help on stdout (click signals it
    with a usage error too, and would print it on stderr; typer recognises it by name)."""
    if type(error).__name__ == "NoArgsIsHelpError":  # the help, on stdout as --help has it
        ctx = getattr(error, "ctx", None)
        if ctx is None:
            return
        typer.echo(ctx.get_help())
        raise typer.Exit(error.exit_code)
    echo_error(_usage_line(error))
    raise typer.Exit(error.exit_code)


def _usage_line(error: typer.TyperException) -> str:
    """``--limit: input should be less than or equal to 1000 (got 5000)``: which option or
    argument, then what is wrong with it, as in our other errors; other usage errors keep
    click's message (``no such option: --bogus``, ``missing argument 'data'``)."""
    if isinstance(error, typer.BadParameter) and error.message and error.param is not None:
        where = error.param.get_error_hint().replace("'", "")
        if error.param.param_type_name == "argument":
            where = where.upper()  # as the commands' help names them: SPEC, DATA, VERSION
        # pydantic prefixes a validator's own ValueError with "Value error, " (a choice's
        # "'bogus' is not one of …"): the reader wants the message, not its exception's type
        message = error.message.removeprefix("Value error, ")
        text = f"{where}: {_lower_first(message)}"
        from pydantic import ValidationError  # what typer validates values with

        problems = error.__cause__.errors() if isinstance(error.__cause__, ValidationError) else []
        given = problems[0].get("input") if problems else None
        if given is not None and repr(str(given)) not in message:  # a choice names 'bogus'
            text = f"{text.rstrip('.')} (got {given})"
    else:
        text = _lower_first(error.format_message())
        option = getattr(error, "option_name", None)  # click's NoSuchOption names it
        if isinstance(option, str) and _NEGATIVE.fullmatch(option):
            text += " (a negative number is read as an option: give the arguments after '--')"
    text = " ".join(text.split())  # one line, whatever the message
    return text[:-1] if text.endswith(".") and not text.endswith("..") else text


def _lower_first(text: str) -> str:
    """``Missing option`` → ``missing option``, like our own messages; ``VERSION …`` stays."""
    return text[:1].lower() + text[1:] if text[1:2].islower() else text
