"""The decoded-data cache on disk: one verified file per entry, keyed by content hashes and settings.

An entry is a header line (``landscape-cache 1 <sha256 of the rest>``) and an
``.npz`` (no pickles) that also holds its own key; its file name is a hash of
that key. A read checks the digest and the key: an entry that fails either
(truncated, edited, from another version) is never trusted: it is reported
with a :class:`CacheWarning` and the caller rebuilds and rewrites it. Writes
are atomic (:func:`landscape.io.atomic_write_bytes`). The folder comes from
:func:`landscape.data.cachedir.cache_dir`.
"""

from __future__ import annotations

import hashlib
import json
import warnings
import zipfile
from io import BytesIO
from pathlib import Path

import numpy as np

from landscape.data.cachedir import cache_dir
from landscape.errors import LandscapeError
from landscape.io import atomic_write_bytes, stable_hash

#: Bumped whenever what is cached changes meaning (decoding, thumbnails, duplicate scores).
VERSION = 1
_MAGIC = b"landscape-cache 1 "


class CacheWarning(UserWarning):
    """A cache entry was unreadable or did not match its key, and is rebuilt."""


def entry_path(kind: str, key: dict, data_root: str | Path | None = None) -> Path | None:
    """Where the entry of ``kind`` with ``key`` lives; None when the cache is off.

    Raises :class:`LandscapeError` if the cache folder lies inside ``data_root``
    (the cache never writes into a data folder).
    """
    folder = cache_dir()
    if folder is None:
        return None
    folder = folder.resolve()
    if data_root is not None and folder.is_relative_to(Path(data_root).resolve()):
        raise LandscapeError(f"the cache folder {folder} lies inside the data folder {data_root}; choose another "
                             "--cache-dir (or --no-cache)")
    return folder / kind / f"{stable_hash({'version': VERSION, **key}, length=32)}.npz"


def read_entry(path: Path | None, key: dict) -> dict[str, np.ndarray] | None:
    """The arrays of the entry at ``path`` if it exists, is intact and holds ``key``; else None (warns if bad)."""
    if path is None or not path.exists():
        return None
    try:
        data = path.read_bytes()
        head, _, body = data.partition(b"\n")
        if not head.startswith(_MAGIC) or head[len(_MAGIC):].decode("ascii") != hashlib.sha256(body).hexdigest():
            raise ValueError("checksum mismatch")
        with np.load(BytesIO(body), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        if json.loads(str(arrays.pop("key"))) != json.loads(_key_text(key)):
            raise ValueError("the entry holds another key")
    except (OSError, ValueError, KeyError, UnicodeDecodeError, zipfile.BadZipFile, EOFError) as exc:
        warnings.warn(f"corrupt cache entry {path} ({exc.__class__.__name__}: {str(exc)[:80]}): not used; rebuilt",
                      CacheWarning, stacklevel=3)
        return None
    return arrays


def write_entry(path: Path | None, key: dict, arrays: dict[str, np.ndarray]) -> None:
    """Store ``arrays`` under ``key`` at ``path`` atomically (no-op when the cache is off)."""
    if path is None:
        return
    buf = BytesIO()
    np.savez(buf, key=np.array(_key_text(key)), **arrays)
    body = buf.getvalue()
    try:
        atomic_write_bytes(path, _MAGIC + hashlib.sha256(body).hexdigest().encode("ascii") + b"\n" + body)
    except OSError as exc:  # a full or read-only cache folder slows the next run down, nothing more
        warnings.warn(f"cannot write cache entry {path} ({exc.strerror or exc.__class__.__name__}): not cached",
                      CacheWarning, stacklevel=3)


def _key_text(key: dict) -> str:
    return json.dumps({"version": VERSION, **key}, sort_keys=True)
