"""Atomic writes, safe checkpoint reads, JSON helpers and provenance.

All writers go through a temporary file in the target folder followed by
``os.replace``, so a killed process never leaves a half-written file behind.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import io
import json
import math
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

from landscape.errors import LandscapeError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: Mode of new files: what ``open()`` would give (0666 minus the umask), not mkstemp's 0600.
_FILE_MODE = 0o666 & ~_umask()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file + rename); returns the path.

    Under ``torchrun`` only rank 0 writes (:func:`landscape.distributed.is_main`);
    other ranks return the path without touching the disk.
    """
    from landscape.distributed import is_main

    path = Path(path)
    if not is_main():
        return path
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.chmod(tmp, _FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno in DISK_ERRNOS:
            raise disk_error(exc, path, len(data)) from None
        raise
    return path


#: Errors of the disk rather than of the program: full, over quota, read-only file system.
DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


def disk_error(exc: OSError, path: str | os.PathLike, size: int | None = None) -> LandscapeError:
    """The one-line :class:`LandscapeError` for a failed write of ``path`` (``size`` bytes, when known)."""
    from landscape.checks import gib

    need = f"; it needs {gib(size)}" if size is not None and exc.errno == errno.ENOSPC else ""
    reason = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
              errno.EROFS: "read-only file system"}.get(exc.errno, exc.strerror or type(exc).__name__)
    return LandscapeError(f"cannot write {path}: {reason}{need}; nothing was written (free space or choose "
                          "another output location, then run again)")


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def to_jsonable(obj: Any) -> Any:
    """Convert tensors, numpy values, paths and tuples into plain JSON data.

    Non-finite floats become ``None`` so that the output is strict JSON.
    torch and numpy are not imported here: an object can only be one of their
    types if its module is loaded already.
    """
    torch, np = sys.modules.get("torch"), sys.modules.get("numpy")
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if torch is not None and isinstance(obj, torch.Tensor):
        return to_jsonable(obj.detach().cpu().tolist())
    if np is not None and isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if np is not None and isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented, strict JSON, atomically."""
    return atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2, allow_nan=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file, raising :class:`LandscapeError` if missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise LandscapeError(f"file not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LandscapeError(f"not a readable JSON file: {path} ({exc.__class__.__name__})") from None


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` through a temp file + rename."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())


def safe_torch_load(path: str | os.PathLike, map_location: Any = "cpu") -> dict:
    """Load a ``.pt`` file with ``weights_only=True`` (never unpickles objects).

    Raises :class:`LandscapeError` for a missing file, a corrupt file, or a file
    that holds anything but tensors and plain data.
    """
    path = Path(path)
    if not path.exists():
        raise LandscapeError(f"checkpoint not found: {path}")
    if not path.is_file():
        raise LandscapeError(f"not a checkpoint file: {path}")
    import torch

    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt input
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise LandscapeError(f"cannot read checkpoint {path}: corrupt or not a safe tensor file "
                             f"({first[:120]})") from None
    if not isinstance(obj, dict):
        raise LandscapeError(f"not a landscape checkpoint: {path} (top level is {type(obj).__name__}, not a dict)")
    return obj


def check_writable(*paths: str | os.PathLike | None, folder: bool = False) -> None:
    """Raise :class:`LandscapeError` unless every given path can be written; ``None`` entries are skipped.

    Run before any work, so that a long computation is never lost at the
    write. A file path (``folder=False``) must not be a folder, must be
    writable if it exists, and its nearest existing ancestor must be a
    writable folder (missing parents are created on write). A folder path
    (``folder=True``) must be a writable folder or creatable the same way.
    Creates nothing.
    """
    for path in paths:
        if path is None:
            continue
        path = Path(path)
        if path.exists():
            if folder and not path.is_dir():
                raise LandscapeError(f"output folder {path} is a file, not a folder")
            if not folder and path.is_dir():
                raise LandscapeError(f"output file {path} is a folder")
            target = path if folder else path.parent
            if not os.access(target, os.W_OK | os.X_OK) or (not folder and not os.access(path, os.W_OK)):
                raise LandscapeError(f"cannot write {path}: permission denied (read-only?)")
            continue
        parent = path.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            raise LandscapeError(f"cannot write {path}: {parent} is a file, not a folder")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise LandscapeError(f"cannot write {path}: folder {parent} is read-only")


def check_inside(root: str | os.PathLike, *paths: str | os.PathLike) -> None:
    """:class:`LandscapeError` naming the link when a path, symlinks resolved, leaves the folder ``root``.

    Run folders are real folders: a symlinked ``analysis/`` (or lock, or
    record) would write another folder's files.
    """
    base = Path(root).resolve()
    for path in map(Path, paths):
        target = path.resolve()
        if target != base and base not in target.parents:
            link = next((p for p in (path, *path.parents) if p.is_symlink()), path)
            raise LandscapeError(f"{link} is a link to {link.resolve()}, outside the run folder {base}; writes stay "
                                 "inside it: replace the link with a real folder")


def nonfinite_entries(tensors: dict) -> list[str]:
    """Names of the floating-point tensors in ``tensors`` (a state dict) holding NaN or inf."""
    import torch

    return [name for name, t in tensors.items()
            if isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(torch.isfinite(t).all())]


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def stable_hash(obj: Any, length: int = 12) -> str:
    """Short hex hash of a JSON-able object, independent of dict key order."""
    text = json.dumps(to_jsonable(obj), sort_keys=True, separators=(",", ":"))
    return sha256_bytes(text.encode("utf-8"))[:length]


#: Provenance key -> distribution name, read from package metadata (importing timm and
#: scikit-learn for their version strings cost about 3 s per process).
_DISTRIBUTIONS = {"numpy": "numpy", "scipy": "scipy", "timm": "timm", "sklearn": "scikit-learn"}


@functools.lru_cache(maxsize=1)
def _versions() -> tuple[tuple[str, str | None], ...]:
    from importlib import metadata

    import torch  # loaded by every caller; its build string (``+cu130``) and CUDA version are not in the metadata

    from landscape import __version__

    out = {"landscape": __version__, "python": platform.python_version(), "platform": platform.platform(),
           "torch": str(torch.__version__)}  # TorchVersion is not weights_only-safe
    for key, dist in _DISTRIBUTIONS.items():
        try:
            out[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:  # pragma: no cover - all are dependencies
            out[key] = None
    out["cuda"] = torch.version.cuda
    return tuple(out.items())


def versions() -> dict:
    """Versions of Python, the platform and the numerical stack, for provenance.

    Read once per process from package metadata (never by importing the
    package); torch's own build string and CUDA version come from torch.
    """
    return dict(_versions())
