"""Read a class-per-folder image set (the BUSI layout), decoding each file once.

``root/<class>/<file>``: every non-hidden sub-folder is a class; files with an
image extension are read, segmentation masks (``benign (12)_mask.png``,
``benign (12)_mask_1.png``) are skipped, other files are ignored.

Decoded images live in a process-wide cache keyed by (SHA-256 of the file's
bytes, img_size): loading the same folder again (another run of a study, a
checkpoint reloading its split) re-reads and hashes the files but does not
decode them, and an edited file is never served stale. Across processes, the
decoded images of a folder at one ``img_size`` are one entry of the on-disk
cache (:mod:`landscape.data.diskcache`), looked up file by file by content
hash: a changed or added file is decoded again, a removed one dropped from the
entry, the others are reused.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import threading
import warnings
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from landscape.data.diskcache import entry_path, read_entry, write_entry
from landscape.data.imageops import resize_square, thumbnail, to_grey
from landscape.data.images import Images
from landscape.errors import LandscapeError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
_MASK = re.compile(r"_mask(_\d+)?$", re.IGNORECASE)
_DIGITS = re.compile(r"(\d+)")

#: Upper bound on the bytes held by the decoded-image cache.
CACHE_BYTES = 512 * 2**20


def is_mask(name: str) -> bool:
    """True for segmentation-mask files such as ``benign (12)_mask_1.png``."""
    return bool(_MASK.search(Path(name).stem))


def natural_key(name: str) -> tuple:
    """Sort key putting ``benign (2).png`` before ``benign (10).png``."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in _DIGITS.split(name) if p)


class _DecodedCache:
    """Thread-safe LRU of decoded images keyed by (sha256, img_size), bounded in bytes."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._items: OrderedDict = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, key, item) -> None:
        size = item[0].nbytes + item[1].nbytes
        with self._lock:
            if key in self._items:
                return
            self._items[key] = item
            self._bytes += size
            while self._bytes > self.max_bytes and len(self._items) > 1:
                _, old = self._items.popitem(last=False)
                self._bytes -= old[0].nbytes + old[1].nbytes

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


_CACHE = _DecodedCache(CACHE_BYTES)


def clear_cache() -> None:
    """Forget every decoded image (the next load decodes again)."""
    _CACHE.clear()


def scan_folder(root: Path) -> tuple[list[str], list[tuple[str, int]], list[str]]:
    """Classes, ``(relative file, label)`` pairs and skipped masks of a data folder.

    Raises :class:`LandscapeError` naming the problem for a missing path, a path
    that is not a folder, fewer than two class folders or an empty class folder.
    """
    if not root.exists():
        raise LandscapeError(f"data folder not found: {root}")
    if not root.is_dir():
        raise LandscapeError(f"data path is not a folder: {root}")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith((".", "__")))
    if not classes:
        loose = sum(1 for f in root.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS)
        hint = f" ({loose} images lie directly in it)" if loose else ""
        raise LandscapeError(f"no class sub-folders in {root}{hint}; expected one folder per class, e.g. benign/ "
                             "malignant/ normal/")
    if len(classes) < 2:
        raise LandscapeError(f"only one class folder ({classes[0]}/) in {root}; need at least 2 classes")
    entries: list[tuple[str, int]] = []
    skipped: list[str] = []
    special: list[str] = []
    for label, cls in enumerate(classes):
        candidates = [f for f in (root / cls).iterdir()
                      if f.suffix.lower() in IMAGE_EXTENSIONS and not f.name.startswith(".")]
        kinds = {f.name: _regular(f) for f in candidates}
        special += [f"{cls}/{n}" for n, regular in kinds.items() if regular is False]
        names = [n for n, regular in kinds.items() if regular is not False]  # dangling links are kept, to be reported
        kept = sorted((n for n in names if not is_mask(n)), key=natural_key)
        skipped += sorted((f"{cls}/{n}" for n in names if is_mask(n)), key=natural_key)
        if not kept:
            raise LandscapeError(f"class folder {root / cls} holds no images ({', '.join(IMAGE_EXTENSIONS)}; masks do "
                                 "not count)")
        entries += [(f"{cls}/{n}", label) for n in kept]
    if special:
        warnings.warn(f"skipped {len(special)} image name(s) in {root} that are not regular files (FIFOs, devices "
                      f"or folders; never opened), e.g. {sorted(special)[0]}", stacklevel=2)
    return classes, entries, skipped


def _regular(path: Path) -> bool | None:
    """Whether ``path`` (links followed) is a regular file, by ``stat`` alone (a FIFO is never opened);
    None for a dangling link.
    """
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return None


def _decode(data: bytes, img_size: int) -> tuple[np.ndarray, np.ndarray, tuple[int, int], str]:
    """(pixels [S, S], thumbnail [64, 64], (w, h), mode) of an encoded image."""
    with Image.open(BytesIO(data)) as img:
        mode = img.mode
        grey = to_grey(img)
        grey.load()
    return resize_square(grey, img_size), thumbnail(grey), grey.size, mode


def _read_one(path: Path, img_size: int, stored: dict) -> tuple[str, tuple, bool]:
    """SHA-256, decoded entry of one file and whether it was decoded (not found in memory or in ``stored``)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LandscapeError(f"cannot read image {path}: {exc.strerror or exc.__class__.__name__}") from None
    digest = hashlib.sha256(data).hexdigest()
    key = (digest, img_size)
    item = _CACHE.get(key) or stored.get(digest)
    decoded = item is None
    if decoded:
        try:
            item = _decode(data, img_size)
        except UnidentifiedImageError:
            raise LandscapeError(f"cannot read image {path}: corrupt or not an image (unknown format)") from None
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
            raise LandscapeError(f"cannot read image {path}: corrupt or not an image ({reason[:100]})") from None
    _CACHE.put(key, item)
    return digest, item, decoded


def _stored(arrays: dict | None) -> dict[str, tuple]:
    """``{sha256: decoded entry}`` of an on-disk entry (empty for none)."""
    if arrays is None:
        return {}
    return {str(h): (pix, thumb, (int(w), int(hh)), str(mode)) for h, pix, thumb, (w, hh), mode in
            zip(arrays["hashes"], arrays["pixels"], arrays["thumbs"], arrays["sizes"], arrays["modes"])}


def load_folder(data: str | os.PathLike, img_size: int) -> Images:
    """Read ``data`` (see module docstring) into :class:`Images` at ``img_size``."""
    root = Path(data).expanduser().resolve()
    classes, entries, skipped = scan_folder(root)
    cache_key = {"kind": "decoded", "root": str(root), "img_size": int(img_size)}
    path = entry_path("decoded", cache_key, data_root=root)
    stored = _stored(read_entry(path, cache_key))
    workers = max(1, min(8, os.cpu_count() or 1))
    # PIL warns (several lines) about odd metadata; a bad file raises instead, named in one line.
    with warnings.catch_warnings(), ThreadPoolExecutor(max_workers=workers) as pool:  # PIL and hashlib release the GIL
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        results = list(pool.map(lambda e: _read_one(root / e[0], img_size, stored), entries))
    n = len(entries)
    pixels = np.empty((n, 1, img_size, img_size), dtype=np.uint8)
    thumbs = np.empty((n,) + results[0][1][1].shape, dtype=np.uint8)
    for i, (_, (pix, thumb, _, _), _) in enumerate(results):
        pixels[i, 0] = pix
        thumbs[i] = thumb
    hashes = [digest for digest, _, _ in results]
    if any(decoded for _, _, decoded in results) or set(stored) != set(hashes):  # the entry holds exactly these
        write_entry(path, cache_key, {
            "hashes": np.array(hashes), "pixels": pixels[:, 0], "thumbs": thumbs,
            "sizes": np.array([item[2] for _, item, _ in results], dtype=np.int64).reshape(n, 2),
            "modes": np.array([item[3] for _, item, _ in results])})
    return Images(
        name=root.name.lower(),
        kind="folder",
        root=str(root),
        classes=classes,
        files=[rel for rel, _ in entries],
        labels=np.array([label for _, label in entries], dtype=np.int64),
        pixels=torch.from_numpy(pixels),
        file_hashes=hashes,
        orig_sizes=[(int(item[2][0]), int(item[2][1])) for _, item, _ in results],
        thumbs=thumbs,
        orig_modes=[item[3] for _, item, _ in results],
        skipped=skipped,
    )
