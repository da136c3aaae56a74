"""Where the decoded-data cache lives (see :mod:`landscape.data.diskcache`); importable without numpy or torch.

The folder is, first to last: :func:`configure` (the CLI's ``--cache-dir`` /
``--no-cache``), ``$LANDSCAPE_CACHE`` (a folder, or ``off``), then
``$XDG_CACHE_HOME/landscape``, else ``~/.cache/landscape``.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variable naming the cache folder (``off`` turns the cache off).
ENV = "LANDSCAPE_CACHE"
_OFF = {"off", "0", "no", "none", "false"}

_setting: dict = {"folder": None, "enabled": True}


def configure(folder: str | os.PathLike | None = None, enabled: bool = True) -> None:
    """Set this process's cache folder (None: from the environment) and whether the cache is used at all."""
    _setting["folder"] = None if folder is None else Path(folder).expanduser()
    _setting["enabled"] = bool(enabled)


def cache_dir() -> Path | None:
    """The decoded-data cache folder (created on first write), or None when the cache is off."""
    if not _setting["enabled"]:
        return None
    if _setting["folder"] is not None:
        return _setting["folder"]
    env = os.environ.get(ENV, "").strip()
    if env:
        return None if env.lower() in _OFF else Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(base) if base else Path.home() / ".cache") / "landscape"
