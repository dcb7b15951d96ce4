"""How ``--help`` names the value of each argument and option: ``SPEC``, ``DATA``,
``--registry PATH``, ``--backend [auto|ray|local]``, as click has always written them.

Typer 0.29 writes a parameter's Python type instead: ``data <str>``, ``--registry <path>``,
``--max-failed-fraction <float range>``, and ``{spec} {data}`` in the usage line. ``<str>``
said nothing of a data path, a key or a run id, and the help's prose names the arguments
in upper case ("each partition of DATA"), which the usage line did not. Set once per
command when its group is built (``manymodels.cli.errors.Group``), so no command's
signature has to spell a metavar out.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperArgument, TyperOption

# typer's type labels, as click names them
_CLICK_NAMES = {
    "str": "TEXT",
    "path": "PATH",
    "int": "INTEGER",
    "float": "FLOAT",
    "bool": "BOOLEAN",
}


class NamedArgument(TyperArgument):
    """An argument shown by its name alone (``SPEC``, ``DATA``, ``RUN_ID``): its help says
    what it is, and its Python type (``<str>``) did not."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def _usage_display_name(self) -> str:
        """``SPEC``, ``[SPEC]`` when optional, as click writes it (typer wrote ``{spec}``)."""
        name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
        return f"{name}..." if self.nargs != 1 else name


class NamedOption(TyperOption):
    """An option whose value is shown as click names it (``TEXT``, ``PATH``, ``INTEGER
    RANGE``, ``[auto|ray|local]``), not by typer's Python type (``<str>``). A choice is
    listed as its values are typed, one alone too: ``<mlflow>`` upper-cased read "--format
    MLFLOW", which the command refused ("'MLFLOW' is not one of 'mlflow'")."""

    def display_type_rich(self, ctx: Any) -> str | None:
        if self.metavar is not None:
            return self.metavar
        shown = self.display_type(ctx)
        label = shown[1:-1] if shown.startswith("<") else shown
        if self.type_descriptor.is_choice:  # its values as typed: ``--format [mlflow]``
            return f"[{label.removeprefix('list[').removesuffix(']')}]"
        return click_name(label)


def click_name(label: str) -> str:
    """``str`` → ``TEXT``, ``float range`` → ``FLOAT RANGE``, ``list[str]`` → ``TEXT`` (a
    repeated option: its help says so), ``a|b`` → ``[a|b]``."""
    if label.startswith("list[") and label.endswith("]"):
        label = label[5:-1]
    if "|" in label:
        return f"[{label}]"
    words = label.split(" ")
    return " ".join(_CLICK_NAMES.get(w, w.upper()) for w in words)


def name_values(command: Any) -> None:
    """Give each argument of ``command`` its upper-case name (``SPEC``) and each option a
    click-style value name; a group's commands are named when it is built."""
    for param in getattr(command, "params", ()):
        if type(param) is TyperArgument:
            param.__class__ = NamedArgument
            param.metavar = (param.metavar or param.name or "").upper() or None
        elif type(param) is TyperOption:
            param.__class__ = NamedOption
