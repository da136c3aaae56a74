"""Partial surfaces on disk, so a killed run resumes where it stopped.

After every completed row the evaluator rewrites one ``.npz`` atomically
(``landscape.io.atomic_write_bytes``) holding the arrays so far, a boolean
``done`` per row and the ``key``: a hash of everything that changes the
numbers (model state, directions, coordinates, data, BN mode). A partial file
whose key or shape differs is ignored, never mixed in.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np

from landscape.io import atomic_write_bytes


def save_partial(path: str | os.PathLike, key: str, loss: np.ndarray, accuracy: np.ndarray, done: np.ndarray) -> None:
    """Write the partial arrays and the done-row mask atomically."""
    buf = io.BytesIO()
    np.savez(buf, key=np.array(key), loss=loss, accuracy=accuracy, done=done)
    atomic_write_bytes(path, buf.getvalue())


def load_partial(path: str | os.PathLike, key: str,
                 shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(loss, accuracy, done)`` from a partial file with this ``key`` and ``shape``, else None."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key or z["loss"].shape != shape or z["done"].shape != shape[:1]:
                return None
            return z["loss"].copy(), z["accuracy"].copy(), z["done"].astype(bool)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None
