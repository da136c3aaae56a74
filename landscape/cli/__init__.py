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

    app = register()
    args = list(sys.argv[1:] if argv is None else argv)
    from landscape.cli.flags import flag_message

    # typer handles its own usage errors (bad option values, --help) and exits.
    return guarded(lambda: app(args=args, prog_name="landscape", standalone_mode=True),
                   message=lambda exc: flag_message(exc, app, args))


def guarded(work: Callable[[], object], message: Callable[[LandscapeError], str] = str) -> int:
    """Run ``work()`` and return the exit code, turning errors into one ``error:`` line (see the module doc).

    ``message(exc)`` words a :class:`LandscapeError` (the CLI names flags instead of parameters).
    """
    from rich.console import Console

    from landscape import distributed

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        work()
        distributed.finish()
        return 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if code == 0:
            distributed.finish()
        return code
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
