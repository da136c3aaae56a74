"""Command-line interface: ``landscape <command> --help`` lists the options.

Errors from bad input (:class:`landscape.errors.LandscapeError`) are printed as
one line, ``error: ...``, with exit code 2; under ``torchrun`` the line names
the rank (``error: rank 1 of 2: ...``) and a rank whose collective broke
because another rank failed exits with code 1 without a line of its own.
Set ``LANDSCAPE_DEBUG=1`` to see the traceback of an unexpected error.
SIGINT (Ctrl-C) and SIGTERM unwind the command (every lock is released,
finished files stay) and print ``error: interrupted (resume with ...)``,
exit code 130. Warnings are one line each, ``warning: ...``.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator

from landscape.errors import LandscapeError


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived; unlike ``KeyboardInterrupt``, typer does not swallow it."""


def resume_hint(args: list[str]) -> str:
    """The command line that continues an interrupted ``landscape ARGS`` (``train`` needs ``--resume``)."""
    again = list(args)
    command = next((a for a in again if not a.startswith("-")), None)  # after global flags such as -q
    if command == "train" and "--resume" not in again:
        again = [a for a in again if a != "--overwrite"] + ["--resume"]
    return "landscape " + shlex.join(again)


@contextlib.contextmanager
def _signals() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into :class:`Interrupted` for the block (main thread only), then restore them."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        for sig, handler in before.items():  # a second signal acts at once (e.g. if a thread is stuck)
            signal.signal(sig, handler)
        raise Interrupted(signal.Signals(signum).name)

    before = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def _print_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Write a warning as one ``warning: ...`` line on stderr."""
    sys.stderr.write(f"warning: {' '.join(str(message).split())}\n")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI on ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    from landscape.cli.app import register
    from landscape.cli.flags import flag_message, optional_values

    app = register()
    args = hoist_global(optional_values(list(sys.argv[1:] if argv is None else argv)))

    def work() -> int:
        code = app(args=args, prog_name="landscape", standalone_mode=False)
        return code if isinstance(code, int) else 0

    return guarded(work, message=lambda exc: flag_message(exc, app, args), resume=resume_hint(args))


#: Options of the root command that may also be written after the sub-command (``landscape train -q``).
GLOBAL_FLAGS = ("--quiet", "-q", "--verbose", "-v")


def hoist_global(args: list[str]) -> list[str]:
    """``args`` with :data:`GLOBAL_FLAGS` moved before the sub-command (up to a ``--``)."""
    end = args.index("--") if "--" in args else len(args)
    found = [a for a in args[:end] if a in GLOBAL_FLAGS]
    return [*found, *[a for a in args[:end] if a not in GLOBAL_FLAGS], *args[end:]]


def guarded(work: Callable[[], object], message: Callable[[LandscapeError], str] = str,
            resume: str = "the same command") -> int:
    """Run ``work()`` and return the exit code, turning errors into one ``error:`` line (see the module doc).

    ``work`` may return an int exit code. ``message(exc)`` words a :class:`LandscapeError` (the CLI names flags
    instead of parameters). Usage errors of typer (a bad option value or name) are one line with exit code 2 too.
    SIGINT/SIGTERM during ``work`` print ``error: interrupted (resume with RESUME)`` and return 130.
    """
    import typer
    from rich.console import Console

    from landscape import distributed

    try:  # typer >= 0.26 vendors click
        from typer._click.exceptions import NoArgsIsHelpError, UsageError
    except ImportError:  # pragma: no cover - older typer uses click itself
        from click.exceptions import NoArgsIsHelpError, UsageError

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    interrupted = f"error: {distributed.where()}interrupted (resume with {resume})"
    try:
        with _signals(), _warning_lines():
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
    except (typer.Abort, Interrupted, KeyboardInterrupt):
        err.print(interrupted, markup=False)
        return 130
    except LandscapeError as exc:
        err.print(f"error: {distributed.where()}{message(exc)}", markup=False)
        return 2
    except Exception as exc:  # an unexpected failure still gets one line
        if os.environ.get("LANDSCAPE_DEBUG") == "1":
            raise
        if distributed.peer_lost(exc):
            return 1
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        err.print(f"error: {distributed.where()}internal error {exc.__class__.__name__}: {msg} (LANDSCAPE_DEBUG=1 "
                  "shows the traceback)", markup=False)
        return 1


@contextlib.contextmanager
def _warning_lines() -> Iterator[None]:
    """Print each warning of the block as one ``warning: ...`` line on stderr (the user sees every one)."""
    with warnings.catch_warnings():
        warnings.showwarning = _print_warning
        yield


def entry_point() -> None:  # pragma: no cover - console script wrapper
    """The ``landscape`` console script: :func:`main` on ``sys.argv``, its code as the exit status."""
    sys.exit(main())
