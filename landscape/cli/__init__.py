"""Command-line interface: ``landscape <command> --help`` lists the options.

Errors from bad input (:class:`landscape.errors.LandscapeError`) are printed as
one line, ``error: ...``, with exit code 2; under ``torchrun`` the line names
the rank (``error: rank 1 of 2: ...``) and a rank whose collective broke
because another rank failed exits with code 1 without a line of its own.
Set ``LANDSCAPE_DEBUG=1`` to see the traceback of an unexpected error.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from landscape.errors import LandscapeError


def main(argv: list[str] | None = None) -> int:
    """Run the CLI on ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    from landscape.cli.app import register
    from landscape.cli.flags import flag_message, optional_values

    app = register()
    args = hoist_global(optional_values(list(sys.argv[1:] if argv is None else argv)))

    def work() -> int:
        code = app(args=args, prog_name="landscape", standalone_mode=False)
        return code if isinstance(code, int) else 0

    return guarded(work, message=lambda exc: flag_message(exc, app, args))


#: Options of the root command that may also be written after the sub-command (``landscape train -q``).
GLOBAL_FLAGS = ("--quiet", "-q", "--verbose", "-v")


def hoist_global(args: list[str]) -> list[str]:
    """``args`` with :data:`GLOBAL_FLAGS` moved before the sub-command (up to a ``--``)."""
    end = args.index("--") if "--" in args else len(args)
    found = [a for a in args[:end] if a in GLOBAL_FLAGS]
    return [*found, *[a for a in args[:end] if a not in GLOBAL_FLAGS], *args[end:]]


def guarded(work: Callable[[], object], message: Callable[[LandscapeError], str] = str) -> int:
    """Run ``work()`` and return the exit code, turning errors into one ``error:`` line (see the module doc).

    ``work`` may return an int exit code. ``message(exc)`` words a :class:`LandscapeError` (the CLI names flags
    instead of parameters). Usage errors of typer (a bad option value or name) are one line with exit code 2 too.
    """
    import typer
    from rich.console import Console

    from landscape import distributed

    try:  # typer >= 0.26 vendors click
        from typer._click.exceptions import NoArgsIsHelpError, UsageError
    except ImportError:  # pragma: no cover - older typer uses click itself
        from click.exceptions import NoArgsIsHelpError, UsageError

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        code = work()
        code = code if isinstance(code, int) else 0
        if code == 0:
            distributed.finish()
        return code
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if code == 0:
            distributed.finish()
        return code
    except NoArgsIsHelpError as exc:
        err.print(exc.ctx.get_help() if exc.ctx is not None else str(exc), markup=False)
        return 2
    except UsageError as exc:  # a bad option value or name: one line, like every user error
        where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        err.print(f"error: {distributed.where()}{' '.join(exc.format_message().split())}{where}", markup=False)
        return 2
    except typer.Abort:
        err.print("error: interrupted")
        return 130
    except LandscapeError as exc:
        err.print(f"error: {distributed.where()}{message(exc)}", markup=False)
        return 2
    except KeyboardInterrupt:
        err.print("error: interrupted; finished work is saved and --resume continues it")
        return 130
    except Exception as exc:  # an unexpected failure still gets one line
        if os.environ.get("LANDSCAPE_DEBUG") == "1":
            raise
        if distributed.peer_lost(exc):
            return 1
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        err.print(f"error: {distributed.where()}internal error {exc.__class__.__name__}: {msg} (LANDSCAPE_DEBUG=1 "
                  "shows the traceback)", markup=False)
        return 1


def entry_point() -> None:  # pragma: no cover - console script wrapper
    """The ``landscape`` console script: :func:`main` on ``sys.argv``, its code as the exit status."""
    sys.exit(main())
