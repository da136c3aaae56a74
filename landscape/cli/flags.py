"""Library errors name parameters (``top_k``); the CLI shows them as the flags that set them (``--top-k``)."""

from __future__ import annotations

import re

import typer

from landscape.errors import LandscapeError


def budget_memory_option(what: str):
    """The ``--budget-memory GiB`` option of an analysis command; ``what`` names what the budget covers."""
    return typer.Option(None, "--budget-memory", show_default="what is available",
                        help=f"GiB {what} may take; more is refused before work.")


#: Library parameter name -> the command parameter that sets it, where the two differ.
ALIASES = {"data_root": "data", "analyses": "set_"}


def command_flags(app: typer.Typer, args: list[str]) -> dict[str, str]:
    """``{parameter name: its long flag}`` of the (sub-)command that ``args`` invoke; empty if none."""
    root = command = typer.main.get_command(app)
    for word in args:  # descend through sub-command groups (``data inspect``), past global options (``-q train``)
        sub = getattr(command, "commands", {}).get(word)
        if sub is None:
            if command is root:  # a global option or its value, before the command
                continue
            break
        command = sub
    flags = {}
    for param in command.params:
        longs = [o for o in param.opts if o.startswith("--")]
        if longs and param.name:
            flags[param.name] = longs[0]
    for library, cli in ALIASES.items():  # library parameters that a command spells differently
        if cli in flags:
            flags.setdefault(library, flags[cli])
    return flags


def flag_message(exc: LandscapeError, app: typer.Typer, args: list[str]) -> str:
    """The error's message with every parameter it names (``exc.params``) written as its flag."""
    message = str(exc)
    flags = command_flags(app, args)
    for name in exc.params:
        if name in flags:
            message = re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", flags[name], message)
    return message


#: Flags with an optional value: ``--pretrained PATH`` is ``--weights PATH`` (``--pretrained`` alone: timm's hub),
#: ``--tensorboard DIR`` is ``--tensorboard-dir DIR`` (``--tensorboard`` alone: inside each run folder).
OPTIONAL_VALUES = {"--pretrained": "--weights", "--tensorboard": "--tensorboard-dir"}


def optional_values(args: list[str]) -> list[str]:
    """``args`` with ``FLAG VALUE`` rewritten as ``OTHER VALUE`` for :data:`OPTIONAL_VALUES` (VALUE not a flag).

    ``--pretrained`` is a switch, so a value after it would otherwise be an
    unexpected argument: the rewrite never changes a command that parses.
    """
    out, i = [], 0
    while i < len(args):
        if args[i] in OPTIONAL_VALUES and i + 1 < len(args) and not args[i + 1].startswith("-"):
            out += [OPTIONAL_VALUES[args[i]], args[i + 1]]
            i += 2
        else:
            out.append(args[i])
            i += 1
    return out
