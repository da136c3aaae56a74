"""``keep_classes``: the images of some of a set's classes, relabelled in the order given."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from landscape.data.images import Images
from landscape.errors import LandscapeError


def parse_classes(spec: str | Sequence[str] | None) -> list[str] | None:
    """``"benign,malignant"`` (or a sequence) -> a list of names; None or empty -> None (every class)."""
    if spec is None:
        return None
    names = [c.strip() for c in (spec.split(",") if isinstance(spec, str) else spec) if c.strip()]
    if len({n.lower() for n in names}) != len(names):  # names match case-insensitively (keep_classes)
        raise LandscapeError(f"classes must not repeat a name, got {', '.join(names)}")
    return names or None


def keep_classes(images: Images, classes: Sequence[str] | None) -> Images:
    """The images of ``classes`` only (names matched case-insensitively), labelled ``0..k-1`` in sorted order.

    Classes stay sorted (the package's convention: label ``i`` is ``classes[i]``
    of the folder). Needs at least two classes, all of them present.
    """
    if classes is None:
        return images
    lower = {c.lower(): c for c in images.classes}
    unknown = [c for c in classes if c.lower() not in lower]
    if unknown:
        raise LandscapeError(f"classes must be classes of {images.name}: {', '.join(unknown)} is not (its classes: "
                             f"{', '.join(images.classes)})")
    if len(classes) < 2:
        raise LandscapeError(f"classes must name at least two classes, got {', '.join(classes)}")
    kept = sorted(lower[c.lower()] for c in classes)
    old = [images.classes.index(c) for c in kept]
    idx = np.flatnonzero(np.isin(images.labels, old))
    relabel = {o: i for i, o in enumerate(old)}
    return dataclasses.replace(
        images, classes=kept, files=[images.files[i] for i in idx],
        labels=np.array([relabel[int(v)] for v in images.labels[idx]], dtype=np.int64),
        pixels=images.pixels[idx], file_hashes=[images.file_hashes[i] for i in idx],
        orig_sizes=[images.orig_sizes[i] for i in idx],
        thumbs=None if images.thumbs is None else images.thumbs[idx],
        orig_modes=[images.orig_modes[i] for i in idx] if images.orig_modes else [])
