"""Rich progress bars for long work, shared by every layer.

API functions take ``progress: bool`` and open a bar with :func:`progress_bar`;
the bar is silent when ``progress`` is False or stderr is not a terminal
(tests, CI logs), so library use stays quiet. Under ``torchrun`` only rank 0
shows bars.
"""

from __future__ import annotations

import contextlib
import sys
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


class _Bar:
    """Handle returned by :func:`progress_bar`: ``advance(n)`` and ``update(**fields)``."""

    def __init__(self, progress: Progress | None, task_id):
        self._progress = progress
        self._task = task_id

    def advance(self, n: float = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def update(self, description: str | None = None, total: float | None = None, **fields) -> None:
        """Change the description, the total, or the ``info`` text shown after the bar."""
        if self._progress is None:
            return
        kwargs = {} if total is None else {"total": total}
        if description is not None:
            kwargs["description"] = description
        if fields:
            kwargs["info"] = "  ".join(f"{k}={v}" for k, v in fields.items())
        self._progress.update(self._task, **kwargs)


@contextlib.contextmanager
def progress_bar(description: str, total: float | None, enabled: bool = True) -> Iterator[_Bar]:
    """Context manager yielding a bar with ``advance`` and ``update``."""
    from landscape.distributed import global_rank

    console = Console(stderr=True)
    if not enabled or global_rank() != 0 or not (console.is_terminal or _forced()):
        yield _Bar(None, None)
        return
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
        yield _Bar(prog, task)


def _forced() -> bool:
    """``LANDSCAPE_PROGRESS=1`` forces bars on even without a terminal."""
    import os

    return os.environ.get("LANDSCAPE_PROGRESS") == "1" and sys.stderr is not None
