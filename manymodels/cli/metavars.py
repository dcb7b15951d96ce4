"""How ``--help`` names the value of each argument and option: ``SPEC``, ``DATA``,
``--registry PATH``, ``--backend [auto|ray|local]``, as click has always written them.

Typer 0.29 writes a parameter's Python type instead: ``data <str>``, ``--registry <path>``,
``--max-failed-fraction <float range>``, and ``{spec} {data}`` in the usage line. ``<str>``
said nothing of a data path, a key or a run id, and the help's prose names the arguments
in upper case ("each partition of DATA"), which the usage line did not. Set once per
command when its group is built (``manymodels.cli.errors.Group``), so no command's
signature has to spell a metavar out.

The classes override typer's own help hooks (``display_type_rich``, ``display_type``,
``_usage_display_name``, ``display_name_raw``, ``type_descriptor``), which typer has from
0.29.0 (0.28.0 has none of them: pyproject's floor). A typer without one of the hooks keeps
its own classes, and so its own help text (``hooks_present``), and an override that meets
a typer's internals other than it expects (an ``AttributeError``) answers as typer does:
``--help`` never fails for the sake of a name.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperArgument, TyperOption

_HOOKS = (
    (TyperOption, "display_type_rich"),
    (TyperOption, "display_type"),
    (TyperArgument, "display_type_rich"),
    (TyperArgument, "_usage_display_name"),
    (TyperArgument, "display_name_raw"),
)

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
        try:
            raw = self.display_name_raw
        except AttributeError:  # another typer's internals: its own usage line
            return str(super()._usage_display_name())
        name = raw if self.required else f"[{raw}]"
        return f"{name}..." if self.nargs != 1 else name


class NamedOption(TyperOption):
    """An option whose value is shown as click names it (``TEXT``, ``PATH``, ``INTEGER
    RANGE``, ``[auto|ray|local]``), not by typer's Python type (``<str>``). A choice is
    listed as its values are typed, one alone too: ``<mlflow>`` upper-cased read "--format
    MLFLOW", which the command refused ("'MLFLOW' is not one of 'mlflow'")."""

    def display_type_rich(self, ctx: Any) -> str | None:
        if self.metavar is not None:
            return self.metavar
        try:
            shown = self.display_type(ctx)
            choice = self.type_descriptor.is_choice
        except AttributeError:  # another typer's internals: its own value name
            return super().display_type_rich(ctx)
        label = shown[1:-1] if shown.startswith("<") else shown
        if choice:  # its values as typed: ``--format [mlflow]``
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


def hooks_present() -> bool:
    """Whether this typer has every help hook the classes override (typer 0.29 on)."""
    return all(hasattr(cls, name) for cls, name in _HOOKS)


def name_values(command: Any) -> None:
    """Give each argument of ``command`` its upper-case name (``SPEC``) and each option a
    click-style value name; a group's commands are named when it is built. Under a typer
    without the hooks (``hooks_present``) the arguments are named alone, and typer's own
    classes write the rest of the help."""
    hooked = hooks_present()
    for param in getattr(command, "params", ()):
        if type(param) is TyperArgument:
            if hooked:
                param.__class__ = NamedArgument
            param.metavar = (param.metavar or param.name or "").upper() or None
        elif type(param) is TyperOption and hooked:
            param.__class__ = NamedOption
