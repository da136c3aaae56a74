"""The :class:`Images` container and :func:`load_images`, the one entry point to data."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from landscape.checks import check_seed
from landscape.errors import LandscapeError

#: Largest accepted ``img_size`` (pixels); larger sizes are almost surely a typo.
MAX_IMG_SIZE = 1024


@dataclass
class Images:
    """A labelled image set, decoded once.

    Attributes:
        name: ``"phantom"`` or the folder's basename lower-cased (e.g. ``"busi"``).
        kind: ``"phantom"`` or ``"folder"``.
        root: absolute folder path, or None for the phantom.
        classes: class names, sorted; label ``i`` means ``classes[i]``.
        files: POSIX names relative to ``root`` (``"benign/benign (1).png"``),
            in a fixed order: class, then natural file-name order.
        labels: ``np.int64 [N]``.
        pixels: ``torch.uint8 [N, 1, S, S]`` grey pixels at ``img_size`` S. Shared
            with the in-memory cache: do not modify in place.
        file_hashes: SHA-256 hex of each file's bytes (phantom: of its native
            128x128 uint8 pixels), independent of ``img_size``.
        orig_sizes: ``(width, height)`` of each image as stored.
        thumbs: ``np.uint8 [N, 64, 64]`` area-averaged thumbnails of the
            full-resolution images, used by near-duplicate detection; None for
            hand-built sets (then the pixels are used).
        orig_modes: PIL mode of each stored image (``"RGB"``, ``"L"``, ...).
        skipped: segmentation-mask files that were skipped (``*_mask.png``).
        seed: the phantom's seed; None for folders.

    """

    name: str
    kind: str
    root: str | None
    classes: list[str]
    files: list[str]
    labels: np.ndarray
    pixels: torch.Tensor
    file_hashes: list[str]
    orig_sizes: list[tuple[int, int]]
    thumbs: np.ndarray | None = None
    orig_modes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seed: int | None = None

    def __len__(self) -> int:
        return len(self.files)

    @property
    def img_size(self) -> int:
        """Side S of the square pixels."""
        return int(self.pixels.shape[-1])

    def class_counts(self) -> dict[str, int]:
        """Images per class, in class order."""
        counts = np.bincount(self.labels, minlength=len(self.classes))
        return {c: int(n) for c, n in zip(self.classes, counts)}


def load_images(data: str | Path | None = None, img_size: int = 64, seed: int = 0) -> Images:
    """Load a class-per-folder image set, or the built-in phantom when ``data`` is None.

    Folder layout: ``data/<class>/<image>``, classes sorted by name; masks
    (``*_mask.png``, ``*_mask_1.png``) are skipped; .png/.jpg/.jpeg/.bmp/.tif
    of any size, RGB or grey, become ``uint8 [N, 1, img_size, img_size]``.
    Decoded images are cached in memory by content hash, so loading the same
    folder again only re-reads and hashes the files. ``seed`` picks the
    phantom's pixels and is ignored for folders.

    Raises :class:`LandscapeError` for a missing or malformed folder, an empty
    class folder, or an unreadable image (named in the message).
    """
    if isinstance(img_size, bool) or not isinstance(img_size, (int, np.integer)) or not 8 <= img_size <= MAX_IMG_SIZE:
        raise LandscapeError(f"img_size must be an integer from 8 to {MAX_IMG_SIZE}, got {img_size!r}")
    if data is None:
        from landscape.data.phantom import load_phantom

        images = load_phantom(seed=check_seed(seed), img_size=int(img_size))
    elif not str(data).strip():
        raise LandscapeError("data path is empty; give a folder, or leave it out for the phantom")
    else:
        from landscape.data.folder import load_folder

        images = load_folder(data, img_size=int(img_size))
    # Shallow copy: callers may rebind fields without touching the cached set.
    return dataclasses.replace(images, classes=list(images.classes), files=list(images.files),
                               file_hashes=list(images.file_hashes), orig_sizes=list(images.orig_sizes),
                               orig_modes=list(images.orig_modes), skipped=list(images.skipped),
                               labels=images.labels.copy())
