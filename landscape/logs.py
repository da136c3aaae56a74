"""Plain, timestamped progress lines through Python's :mod:`logging` (logger ``"landscape"``).

Batch jobs (nohup, CI, SLURM) see no progress bars: when stdout is not a
terminal, long work prints one line per epoch, one per finished analysis and
a heartbeat whenever nothing was printed for :data:`HEARTBEAT_S` seconds
(:mod:`landscape.progress`). Every line names the run it belongs to
(:func:`run_context`). The library only logs; :func:`setup` (called by the
CLI, ``--quiet``/``--verbose``) adds the one handler, so a user of the Python
API routes the lines with ordinary ``logging`` configuration.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
from collections.abc import Iterator

#: The package's logger; the CLI's handler writes it to stdout.
LOGGER = logging.getLogger("landscape")
#: Longest silence, in seconds, while a progress bar is open and stdout is not a terminal.
HEARTBEAT_S = 60.0
#: Line format: UTC date and time, then the message (which starts with the run's name).
FORMAT = "%(asctime)s %(message)s"

_RUN: contextvars.ContextVar[str | None] = contextvars.ContextVar("landscape_run", default=None)


@contextlib.contextmanager
def run_context(name: str | None) -> Iterator[None]:
    """Name the run that the lines logged inside the block belong to."""
    token = _RUN.set(name)
    try:
        yield
    finally:
        _RUN.reset(token)


def current_run() -> str | None:
    """The run named by the innermost :func:`run_context`, or None."""
    return _RUN.get()


def named(text: str, run: str | None = None) -> str:
    """``"<run>: text"`` with ``run`` (default: :func:`current_run`); plain ``text`` without a run or naming it."""
    run = run if run is not None else current_run()
    return f"{run}: {text}" if run and run not in text else text


def info(text: str, run: str | None = None) -> None:
    """Log ``text`` at INFO, prefixed with its run (:func:`named`)."""
    LOGGER.info(named(text, run))


def lines_wanted() -> bool:
    """Whether progress goes out as plain lines: stdout is not a terminal, or ``--verbose`` was given."""
    stdout = sys.stdout
    return LOGGER.isEnabledFor(logging.DEBUG) or not (stdout is not None and stdout.isatty())


class _StdoutHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is at the time of the record (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property
    def stream(self):  # noqa: D102 - logging's attribute
        return sys.stdout

    @stream.setter
    def stream(self, value) -> None:
        pass


def setup(verbosity: int = 0) -> logging.Handler:
    """Route ``landscape`` log records to stdout with timestamps; returns the handler.

    ``verbosity`` -1 (``--quiet``): warnings only, no progress; 0: progress
    lines when stdout is not a terminal; 1 (``--verbose``): debug records and
    progress lines everywhere. Calling it again replaces the handler.
    """
    import time

    for old in [h for h in LOGGER.handlers if isinstance(h, _StdoutHandler)]:
        LOGGER.removeHandler(old)
    handler = _StdoutHandler()
    formatter = logging.Formatter(FORMAT, datefmt="%Y-%m-%dT%H:%M:%SZ")
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    LOGGER.addHandler(handler)
    LOGGER.setLevel({-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG))
    LOGGER.propagate = False
    return handler


def quiet() -> bool:
    """True when progress is switched off (``--quiet`` set the package logger to warnings only)."""
    return LOGGER.level >= logging.WARNING


def configured() -> bool:
    """Whether :func:`setup` (the CLI) or the user gave the package logger a handler."""
    return bool(LOGGER.handlers)


def console(stderr: bool = False):
    """A rich console for final tables: the terminal's width, or unwrapped (very wide) when not a terminal."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    wide = not (stream is not None and stream.isatty())
    return Console(highlight=False, stderr=stderr, width=10_000 if wide else None, soft_wrap=wide)
