"""The one path every image takes from PIL to uint8 arrays.

Folder images and phantom images go through the same functions, so the
phantom's pixels at any ``img_size`` are produced exactly like a real scan's.

* :func:`to_grey`: any PIL mode (RGB, RGBA, palette, 16-bit grey ...) to 8-bit ``'L'``.
* :func:`resize_square`: ``'L'`` image to ``uint8 [S, S]`` (PIL bilinear, which
  is anti-aliased when shrinking; the aspect ratio is not kept).
* :func:`thumbnail`: ``'L'`` image to the ``uint8 [64, 64]`` area-averaged
  thumbnail that near-duplicate detection uses, independent of ``img_size``.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

#: Side of the thumbnails used for near-duplicate detection (pixels).
THUMB_SIZE = 64

_SIXTEEN_BIT = {"I;16", "I;16B", "I;16L", "I;16N", "I"}


def to_grey(img: Image.Image) -> Image.Image:
    """8-bit grey (``'L'``) version of ``img``, upright per its EXIF orientation.

    Colour goes through PIL's ITU-R 601 luma; 16-bit grey is scaled by 1/257
    (0..65535 -> 0..255) instead of being clipped; 32-bit float grey (``'F'``,
    e.g. float TIFFs) is scaled by :func:`_float_to_uint8`; alpha is dropped.
    """
    img = ImageOps.exif_transpose(img)
    if img.mode == "L":
        return img
    if img.mode == "F":
        return Image.fromarray(_float_to_uint8(np.asarray(img, dtype=np.float64)), mode="L")
    if img.mode in _SIXTEEN_BIT:
        arr = np.asarray(img, dtype=np.float64)
        return Image.fromarray(np.clip(np.rint(arr / 257.0), 0, 255).astype(np.uint8), mode="L")
    return img.convert("L")


def _float_to_uint8(arr: np.ndarray) -> np.ndarray:
    """Float grey to uint8: values in [0, 1] are scaled by 255; any other range is
    min-max scaled to 0..255 (a constant image becomes 0). NaN and inf count as 0.
    """
    arr = np.where(np.isfinite(arr), arr, 0.0)
    lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
    if lo >= 0.0 and hi <= 1.0:
        scaled = arr * 255.0
    else:
        scaled = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def resize_square(img: Image.Image, size: int) -> np.ndarray:
    """``uint8 [size, size]`` pixels of an ``'L'`` image (PIL bilinear, deterministic)."""
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.uint8)


def thumbnail(img: Image.Image, size: int = THUMB_SIZE) -> np.ndarray:
    """``uint8 [size, size]`` area-averaged (PIL box filter) thumbnail of an ``'L'`` image."""
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BOX)
    return np.asarray(img, dtype=np.uint8)
