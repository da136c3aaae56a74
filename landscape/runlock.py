"""An exclusive lock on a run folder, so two writers never mix their files.

``<run>/.lock`` is created atomically (``O_CREAT | O_EXCL``) and holds
``{"pid", "host", "started"}`` as JSON; it is removed when the ``with`` block
ends. A second writer gets a :class:`LandscapeError` naming the holder. A
stale lock (same host, process gone; or an unreadable lock older than
:data:`UNREADABLE_GRACE_S`) is taken over with a warning. Under ``torchrun``
only rank 0 takes it. Within one process
the lock is re-entrant (training inside a study, an analysis inside a report).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from landscape import distributed
from landscape.errors import LandscapeError
from landscape.io import check_writable, disk_error

LOCK_NAME = ".lock"
#: An empty or unreadable lock file younger than this may still be being written by its holder (seconds).
UNREADABLE_GRACE_S = 10.0

_held: dict[Path, int] = {}
_guard = threading.Lock()


class StaleLockWarning(UserWarning):
    """A lock left behind by a process that no longer runs was taken over."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def _read(path: Path) -> dict | None:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return info if isinstance(info, dict) else None


def _holder(info: dict | None) -> str:
    if info is None:
        return "an unknown process"
    return f"process {info.get('pid')} on {info.get('host')} (since {info.get('started')})"


def _stale(path: Path, info: dict | None) -> bool:
    if info is None:
        try:
            return time.time() - path.stat().st_mtime > UNREADABLE_GRACE_S
        except FileNotFoundError:
            return True
    return info.get("host") == socket.gethostname() and isinstance(info.get("pid"), int) and not _alive(info["pid"])


def _create(path: Path) -> bool:
    """Create the lock file with our pid and host; False when it already exists."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    except OSError as exc:
        raise LandscapeError(f"cannot lock run folder {path.parent}: {exc.strerror} (read-only?)") from None
    info = {"pid": os.getpid(), "host": socket.gethostname(),
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(info))
    except BaseException as exc:  # disk full, or interrupted: never leave a lock nobody holds
        path.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise disk_error(exc, path) from None
        raise
    return True


def _take_over(path: Path, seen: dict | None) -> bool:
    """Replace a stale lock; a second guard file keeps two takers from both succeeding."""
    guard = path.with_name(LOCK_NAME + ".takeover")
    try:
        fd = os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        if time.time() - guard.stat().st_mtime > UNREADABLE_GRACE_S:  # a taker died mid-takeover
            guard.unlink(missing_ok=True)
        return False
    os.close(fd)
    try:
        if _read(path) != seen:  # someone else took it meanwhile
            return False
        path.unlink(missing_ok=True)
        warnings.warn(f"took over the stale lock of {path.parent}, left by {_holder(seen)}", StaleLockWarning,
                      stacklevel=4)
        return _create(path)
    finally:
        guard.unlink(missing_ok=True)


@contextlib.contextmanager
def run_lock(run_dir: str | os.PathLike, outputs: tuple = ()) -> Iterator[Path]:
    """Hold ``<run_dir>/.lock`` for the ``with`` block (creating ``run_dir``); yields the run folder.

    ``outputs``: folders the block will write into, checked for writability
    once the lock is held (before any work). Under ``torchrun`` rank 0 holds
    the lock for the whole job and the other ranks (which write nothing) skip it.
    """
    run_dir = Path(run_dir)
    if not distributed.is_main():
        yield run_dir
        return
    key = run_dir.resolve()
    with _guard:
        if key in _held:
            _held[key] += 1
            owned = False
        else:
            owned = True
    if owned:
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LandscapeError(f"cannot create run folder {run_dir}: {exc.strerror}") from None
        path = run_dir / LOCK_NAME
        for _ in range(3):
            if _create(path):
                break
            info = _read(path)
            if _stale(path, info):
                if _take_over(path, info):
                    break
            elif path.exists():
                raise LandscapeError(f"run folder {run_dir} is in use by {_holder(info)}; "
                                     f"wait for it to finish (or delete {path} if that process is gone)")
        else:
            raise LandscapeError(f"run folder {run_dir} is in use by {_holder(_read(path))}; wait for it to finish")
        with _guard:
            _held[key] = 1
    try:
        check_writable(*outputs, folder=True)
        yield run_dir
    finally:
        with _guard:
            _held[key] -= 1
            release = _held[key] == 0
            if release:
                del _held[key]
        if release:
            (run_dir / LOCK_NAME).unlink(missing_ok=True)
