"""Near-duplicate detection: the same scan saved twice, with or without calipers.

Two images are near-duplicates when both of these hold:

1. *layout*: the Pearson correlation of their 16x16 area-averaged
   thumbnails, maximised over shifts of one thumbnail pixel (6% of the
   width), is at least ``coarse_threshold`` (default 0.9). It is cheap for
   all pairs and keeps only images with the same overall anatomy;
2. *fine structure*: the normalised cross-correlation of their band-passed
   64x64 thumbnails (thumbnail minus a Gaussian blur of 3 px, divided by the
   local RMS contrast so strong edges do not dominate, Hann-windowed),
   maximised over shifts of up to ``max_shift`` of the width (default 10%),
   is at least ``threshold`` (default 0.55). The same frame shares its
   speckle and fine edges even when re-cropped or annotated; two different
   frames of similar anatomy do not.

Calibrated by eye on BUSI: distinct scans score at most ~0.48 on the fine
score, re-saved, re-cropped or annotated copies of a frame 0.75-1.0, and
consecutive frames of the same lesion in one session 0.4-0.65 (the default
groups most of them, as a leak-free split wants). On the phantom
(no duplicates by construction) no pair exceeds 0.48.

Near-duplicate pairs are joined into groups (union-find, so groups are
transitive); a group whose members carry different labels is a *label
conflict*.

Thumbnails come from the full-resolution images (:attr:`Images.thumbs`), so
the groups do not depend on ``img_size``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from landscape.data.defaults import COARSE_THRESHOLD, THRESHOLD
from landscape.data.diskcache import entry_path, read_entry, write_entry
from landscape.data.imageops import THUMB_SIZE
from landscape.data.images import Images
from landscape.errors import LandscapeError
from landscape.io import stable_hash

#: Default largest shift, as a fraction of the image width.
MAX_SHIFT = 0.1
METHOD = "thumbnail-correlation"


@dataclass
class Duplicates:
    """Near-duplicate groups of an :class:`Images` set.

    Attributes:
        group_ids: ``np.int64 [N]``; images with equal ids are near-duplicates
            (singletons have their own id). Ids run 0..n_groups-1 in order of
            each group's first image.
        groups: groups with at least two members, as sorted image indices.
        conflicts: the subset of ``groups`` whose members have different labels.
        pairs: ``(i, j, coarse, fine)`` for every near-duplicate pair, i < j.
        settings: ``{"method", "threshold", "coarse_threshold", "max_shift"}``.

    """

    group_ids: np.ndarray
    groups: list[list[int]]
    conflicts: list[list[int]]
    pairs: list[tuple[int, int, float, float]]
    settings: dict

    @property
    def n_groups(self) -> int:
        """Number of groups, singletons included."""
        return int(self.group_ids.max()) + 1 if len(self.group_ids) else 0


def _thumbnails(images: Images) -> np.ndarray:
    """``float64 [N, 64, 64]`` thumbnails (from the full-resolution images when known)."""
    if images.thumbs is not None:
        return np.asarray(images.thumbs, dtype=np.float64)
    pix = images.pixels[:, 0].numpy()
    return np.stack([np.asarray(Image.fromarray(p).resize((THUMB_SIZE, THUMB_SIZE), Image.Resampling.BOX),
                                dtype=np.float64)
                     for p in pix])


def _unit_rows(a: np.ndarray) -> np.ndarray:
    """Rows of ``a`` (flattened per image) centred and scaled to unit norm; flat images give 0."""
    a = a.reshape(a.shape[0], -1)
    a = a - a.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(a, axis=1, keepdims=True)
    return np.divide(a, norm, out=np.zeros_like(a), where=norm > 1e-9)


def coarse_pairs(thumbs: np.ndarray, threshold: float, max_shift: float,
                 block: int = 1024) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (i < j) whose 16x16 layout correlation, maximised over shifts, is >= ``threshold``.

    Shifts of up to ``max(1, floor(max_shift * 16))`` thumbnail pixels; the
    central crop of one image is correlated with shifted crops of the other
    (both ways, so the score is symmetric). Returns (i, j, score).
    """
    n, side = thumbs.shape[0], 16
    f = THUMB_SIZE // side
    small = thumbs.reshape(n, side, f, side, f).mean(axis=(2, 4))
    m = max(1, int(max_shift * side))
    core = _unit_rows(small[:, m:side - m, m:side - m])
    moved = [_unit_rows(small[:, m + dy:side - m + dy, m + dx:side - m + dx])
             for dy in range(-m, m + 1) for dx in range(-m, m + 1)]
    found = []
    for start in range(0, n, block):  # bounded memory for large sets
        rows = slice(start, min(start + block, n))
        best = np.full((rows.stop - start, n), -1.0)
        for z in moved:
            np.maximum(best, core[rows] @ z.T, out=best)
            np.maximum(best, z[rows] @ core.T, out=best)
        i, j = np.nonzero(best >= threshold)
        keep = j > i + start
        found.append((i[keep] + start, j[keep], best[i[keep], j[keep]]))
    i, j, score = (np.concatenate(parts) for parts in zip(*found))
    return i, j, score


def fine_scores(thumbs: np.ndarray, i: np.ndarray, j: np.ndarray, max_shift: float, chunk: int = 512) -> np.ndarray:
    """Shift-tolerant band-pass cross-correlation of thumbnail pairs (i, j), in [-1, 1]."""
    from scipy.ndimage import gaussian_filter  # ~0.5 s to import; a cached result needs none of it

    size = thumbs.shape[-1]
    band = gaussian_filter(thumbs - gaussian_filter(thumbs, sigma=(0, 3.0, 3.0)), sigma=(0, 0.7, 0.7))
    # Local contrast normalisation: strong edges (a dark cyst) must not dominate the score;
    # +1 grey level^2 keeps flat regions (black margins) from being amplified.
    band = band / np.sqrt(gaussian_filter(band * band, sigma=(0, 4.0, 4.0)) + 1.0)
    z = (band - band.mean(axis=(1, 2), keepdims=True)) * np.outer(np.hanning(size), np.hanning(size))
    norm = np.sqrt((z * z).sum(axis=(1, 2), keepdims=True))
    spectra = np.fft.rfft2(np.divide(z, norm, out=np.zeros_like(z), where=norm > 1e-9))
    m = int(round(max_shift * size))
    out = np.empty(len(i))
    for start in range(0, len(i), chunk):
        a, b = i[start:start + chunk], j[start:start + chunk]
        xcorr = np.fft.irfft2(spectra[a] * np.conj(spectra[b]), s=(size, size))
        xcorr = np.roll(xcorr, (m, m), axis=(1, 2))[:, :2 * m + 1, :2 * m + 1]  # lags -m..m
        out[start:start + chunk] = xcorr.reshape(len(a), -1).max(axis=1)
    return out


def _union_find_groups(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Group id per node for the undirected edges (i, j), numbered by first member."""
    parent = np.arange(n)

    def find(k: int) -> int:
        root = k
        while parent[root] != root:
            root = parent[root]
        while parent[k] != root:
            parent[k], k = root, parent[k]
        return root

    for a, b in zip(i.tolist(), j.tolist()):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    roots = np.array([find(k) for k in range(n)])
    _, ids = np.unique(roots, return_inverse=True)  # roots are first members, so ids follow them
    return ids.astype(np.int64)


def check_settings(threshold: float = THRESHOLD, coarse_threshold: float = COARSE_THRESHOLD,
                   max_shift: float = MAX_SHIFT) -> dict:
    """The settings record of :func:`find_duplicates`; LandscapeError for out-of-range values."""
    for name, value in (("threshold", threshold), ("coarse_threshold", coarse_threshold)):
        if not 0.0 < float(value) <= 1.0:
            raise LandscapeError(f"duplicate {name} must be in (0, 1], got {value}")
    if not 0.0 <= float(max_shift) < 0.5:
        raise LandscapeError(f"duplicate max_shift must be in [0, 0.5), got {max_shift}")
    return {"method": METHOD, "threshold": float(threshold), "coarse_threshold": float(coarse_threshold),
            "max_shift": float(max_shift)}


def find_duplicates(images: Images, threshold: float = THRESHOLD, coarse_threshold: float = COARSE_THRESHOLD,
                    max_shift: float = MAX_SHIFT) -> Duplicates:
    """Group near-duplicate images and flag groups with conflicting labels.

    ``threshold``: fine-structure score (0..1) a pair needs; ``coarse_threshold``:
    layout correlation (0..1) a pair needs; ``max_shift``: largest shift tried,
    as a fraction of the width. See the module docstring for the scores.
    The pairs of a folder are cached on disk (:mod:`landscape.data.diskcache`),
    keyed by every file's content hash, in order, and the settings; the groups
    and conflicts are derived from them and the labels on every call.
    """
    settings = check_settings(threshold, coarse_threshold, max_shift)
    key = {"kind": "duplicates", "files": stable_hash(images.file_hashes, length=32), "settings": settings}
    path = entry_path("duplicates", key, data_root=images.root) if images.kind == "folder" else None
    stored = read_entry(path, key)
    if stored is not None:  # verified: its digest and key match
        (i, j), (coarse, fine) = stored["pairs"].T, stored["scores"].T
    else:
        thumbs = _thumbnails(images)
        i, j, coarse = coarse_pairs(thumbs, coarse_threshold, max_shift)
        fine = fine_scores(thumbs, i, j, max_shift)
        keep = fine >= threshold
        i, j, coarse, fine = i[keep], j[keep], coarse[keep], fine[keep]
        write_entry(path, key, {"pairs": np.stack([i, j], axis=1).astype(np.int64),
                                "scores": np.stack([coarse, fine], axis=1).astype(np.float64)})
    return _grouped(images, i, j, coarse, fine, settings)


def _grouped(images: Images, i: np.ndarray, j: np.ndarray, coarse: np.ndarray, fine: np.ndarray,
             settings: dict) -> Duplicates:
    """Groups (union-find) and label conflicts of the near-duplicate pairs ``(i[k], j[k])``."""
    n = len(images)
    order = np.lexsort((j, i))
    pairs = [(int(a), int(b), float(c), float(f)) for a, b, c, f in zip(i[order], j[order], coarse[order], fine[order])]
    group_ids = _union_find_groups(n, i, j)
    members: dict[int, list[int]] = {}
    for k, g in enumerate(group_ids.tolist()):
        members.setdefault(g, []).append(k)
    groups = [m for m in members.values() if len(m) > 1]
    labels = np.asarray(images.labels)
    conflicts = [m for m in groups if len(set(labels[m].tolist())) > 1]
    return Duplicates(group_ids=group_ids, groups=groups, conflicts=conflicts, pairs=pairs, settings=settings)
