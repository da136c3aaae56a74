"""Progress of long work, shared by every layer: rich bars in a terminal, plain lines elsewhere.

API functions take ``progress: bool`` and open a bar with :func:`progress_bar`.
The rich bar shows when ``progress`` is on and stderr is a terminal
(``LANDSCAPE_PROGRESS=1`` forces it). When stdout is not a terminal (or with
``--verbose``), the same bar logs plain lines instead (:mod:`landscape.logs`):
a heartbeat whenever nothing was logged for :data:`landscape.logs.HEARTBEAT_S`
seconds, and one line when the work finishes (what, units done, wall time),
each naming its run. Under ``torchrun`` only rank 0 shows bars or lines.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from landscape import logs


class _Lines:
    """The plain-line side of a bar: counts units, logs a heartbeat after silence and a line at the end."""

    def __init__(self, description: str, total: float | None, unit: str):
        self.description, self.total, self.done, self.info, self.unit = description, total, 0.0, "", unit
        self.name = description  # the finished line names the work, not its last stage
        self.run = logs.current_run()
        self.start = time.monotonic()

    def status(self) -> str:
        of = f"/{self.total:g}" if self.total is not None else ""
        info = f"  {self.info}" if self.info else ""
        return f"{self.description}: {self.done:g}{of} {self.unit} done, {time.monotonic() - self.start:.0f} s{info}"

    def finished(self) -> None:
        logs.info(f"{self.name}: finished {self.done:g} {self.unit} in {time.monotonic() - self.start:.1f} s",
                  self.run)


class _Heartbeat:
    """One daemon thread: logs the status of the innermost open bar after ``HEARTBEAT_S`` s of silence."""

    lock = threading.Lock()
    open: list[_Lines] = []
    last = time.monotonic()
    thread: threading.Thread | None = None

    @classmethod
    def push(cls, lines: _Lines) -> None:
        with cls.lock:
            cls.open.append(lines)
            cls.last = time.monotonic()
            if cls.thread is None or not cls.thread.is_alive():
                cls.thread = threading.Thread(target=cls.loop, name="landscape-heartbeat", daemon=True)
                cls.thread.start()

    @classmethod
    def pop(cls, lines: _Lines) -> None:
        with cls.lock:
            if lines in cls.open:
                cls.open.remove(lines)
            cls.last = time.monotonic()

    @classmethod
    def loop(cls) -> None:
        while True:
            time.sleep(min(1.0, logs.HEARTBEAT_S / 4))
            with cls.lock:
                if not cls.open:
                    cls.thread = None
                    return
                if time.monotonic() - cls.last >= logs.HEARTBEAT_S:
                    inner = cls.open[-1]
                    logs.info(inner.status(), inner.run)
                    cls.last = time.monotonic()


class _Bar:
    """Handle returned by :func:`progress_bar`: ``advance(n)``, ``update(**fields)`` and ``note(text)``."""

    def __init__(self, progress: Progress | None, task_id, lines: _Lines | None = None):
        self._progress = progress
        self._task = task_id
        self._lines = lines

    def advance(self, n: float = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)
        if self._lines is not None:
            self._lines.done += n

    def update(self, description: str | None = None, total: float | None = None, **fields) -> None:
        """Change the description, the total, or the ``info`` text shown after the bar."""
        info = "  ".join(f"{k}={v}" for k, v in fields.items())
        if self._lines is not None:
            self._lines.description = description or self._lines.description
            self._lines.total = self._lines.total if total is None else total
            self._lines.info = info or self._lines.info
        if self._progress is None:
            return
        kwargs = {} if total is None else {"total": total}
        if description is not None:
            kwargs["description"] = description
        if fields:
            kwargs["info"] = info
        self._progress.update(self._task, **kwargs)

    def note(self, text: str) -> None:
        """Log one line (e.g. an epoch's summary) when plain lines are on; it resets the heartbeat."""
        if self._lines is not None:
            logs.info(text, self._lines.run)
            with _Heartbeat.lock:
                _Heartbeat.last = time.monotonic()


@contextlib.contextmanager
def progress_bar(description: str, total: float | None, enabled: bool = True, unit: str = "units") -> Iterator[_Bar]:
    """Context manager yielding a bar with ``advance``, ``update`` and ``note`` (see the module doc).

    ``unit`` names what ``advance`` counts in the plain lines (``"steps"``, ``"HVPs"``).
    """
    from landscape.distributed import global_rank

    console = Console(stderr=True)
    if not enabled or global_rank() != 0 or logs.quiet():
        yield _Bar(None, None)
        return
    lines = _Lines(description, total, unit) if logs.lines_wanted() else None
    if lines is not None:
        _Heartbeat.push(lines)
    try:
        if not (console.is_terminal or _forced()):
            yield _Bar(None, None, lines)
        else:
            columns = [
                TextColumn("{task.description}", markup=False, style="bold"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[info]}", markup=False),
            ]
            with Progress(*columns, console=console, transient=False) as prog:
                task = prog.add_task(description, total=total, info="")
                yield _Bar(prog, task, lines)
        if lines is not None:
            lines.finished()
    finally:
        if lines is not None:
            _Heartbeat.pop(lines)


def _forced() -> bool:
    """``LANDSCAPE_PROGRESS=1`` forces bars on even without a terminal."""
    import os

    return os.environ.get("LANDSCAPE_PROGRESS") == "1" and sys.stderr is not None
