"""Group-aware, stratified splits stored as manifests, and selecting a split's images.

A *manifest* is plain data (it goes into every checkpoint)::

    {"method": "holdout" | "kfold", "source", "kind", "seed", "fractions",
     ("k", "fold", "val_fraction" for k-fold), "keep_conflicts", "duplicates",
     "classes", "train", "val", "test", "excluded", "file_hashes", "counts",
     "n_images", "n_groups", "n_duplicate_groups", "n_conflicts", "hash"}

``train``/``val``/``test``/``excluded`` list relative file names in dataset
order; ``file_hashes`` maps each of them to its content SHA-256; ``hash`` is
the SHA-256 over ``source`` and every (split, file, content hash) entry, so
it changes when any image, its split or the data source changes.

Near-duplicate groups (:mod:`landscape.data.duplicates`) never straddle two
splits. Each group is stratified by its majority label (ties: the lower class
index); groups with conflicting labels are excluded unless
``keep_conflicts=True``, which keeps every image with its own label and the
group in one split. Within each class, groups are shuffled by the seed, taken
largest first, and each goes to the split with the largest share of its
target still open (targets by largest-remainder rounding), so duplicate
groups spread over the splits and per-class counts match the fractions to
within the largest group size.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import torch

from landscape.checks import check_seed
from landscape.data.defaults import THRESHOLD
from landscape.data.duplicates import Duplicates, find_duplicates
from landscape.data.images import Images
from landscape.errors import LandscapeError

SPLITS = ("train", "val", "test")


def _rng(*entropy: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(list(entropy))))


def _targets(n: int, fractions) -> np.ndarray:
    """Integer counts summing to ``n``, proportional to ``fractions`` (largest remainder)."""
    raw = n * np.asarray(fractions, dtype=np.float64) / float(np.sum(fractions))
    counts = np.floor(raw + 1e-9).astype(np.int64)
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    return counts


def _groups(images: Images, dups: Duplicates, keep_conflicts: bool) -> tuple[list[list[int]], list[int], list[int]]:
    """(members per kept group, stratification label per kept group, excluded image indices)."""
    members: dict[int, list[int]] = {}
    for k, g in enumerate(dups.group_ids.tolist()):
        members.setdefault(g, []).append(k)
    labels = np.asarray(images.labels)
    kept, strata, excluded = [], [], []
    for m in members.values():
        counts = np.bincount(labels[m], minlength=len(images.classes))
        if np.count_nonzero(counts) > 1 and not keep_conflicts:
            excluded += m
            continue
        kept.append(m)
        strata.append(int(np.argmax(counts)))
    return kept, strata, sorted(excluded)


def _assign(sizes: list[int], targets: np.ndarray, rng: np.random.Generator) -> list[int]:
    """Bin per group: shuffled, largest first; each goes to the bin with the largest
    share of its target still open among the bins it fits in (else the most open bin).
    """
    order = np.argsort(rng.random(len(sizes)), kind="stable")
    order = sorted(order.tolist(), key=lambda g: -sizes[g])  # stable: ties keep the shuffle
    targets = np.asarray(targets, dtype=np.int64)
    filled = np.zeros(len(targets), dtype=np.int64)
    out = [0] * len(sizes)
    for g in order:
        room = targets - filled
        fits = room >= sizes[g]
        score = np.where(fits, room / np.maximum(targets, 1), -np.inf) if fits.any() else room.astype(np.float64)
        out[g] = b = int(np.argmax(score))
        filled[b] += sizes[g]
    return out


def _stratified(groups: list[list[int]], strata: list[int], n_classes: int, fractions, rng) -> list[int]:
    """Bin per group, stratified by class with bins in proportion to ``fractions``."""
    bins = [0] * len(groups)
    for c in range(n_classes):
        idx = [g for g, s in enumerate(strata) if s == c]
        sizes = [len(groups[g]) for g in idx]
        for g, b in zip(idx, _assign(sizes, _targets(sum(sizes), fractions), rng)):
            bins[g] = b
    return bins


def _check_dups(images: Images, duplicates: Duplicates | None, threshold: float) -> Duplicates:
    if duplicates is None:
        return find_duplicates(images, threshold=threshold)
    if len(duplicates.group_ids) != len(images):
        raise LandscapeError(f"duplicate groups cover {len(duplicates.group_ids)} images, but the set has "
                             f"{len(images)}")
    return duplicates


def _manifest(images: Images, members: dict[str, list[int]], dups: Duplicates, head: dict,
              keep_conflicts: bool) -> dict:
    """Assemble the manifest dict (see module docstring) and its hash."""
    names = {split: [images.files[k] for k in sorted(idx)] for split, idx in members.items()}
    file_hashes = {images.files[k]: images.file_hashes[k] for idx in members.values() for k in sorted(idx)}
    labels = np.asarray(images.labels)
    counts = {split: {c: int(n) for c, n in zip(images.classes, np.bincount(labels[sorted(idx)].astype(np.int64),
                                                                              minlength=len(images.classes)))}
              for split, idx in members.items()}
    manifest = {
        **head,
        "source": images.name,
        "kind": images.kind,
        "keep_conflicts": bool(keep_conflicts),
        "duplicates": dict(dups.settings),
        "classes": list(images.classes),
        **names,
        "file_hashes": file_hashes,
        "counts": counts,
        "n_images": len(images),
        "n_groups": dups.n_groups,
        "n_duplicate_groups": len(dups.groups),
        "n_conflicts": len(dups.conflicts),
    }
    manifest["hash"] = manifest_hash(manifest)
    return manifest


def manifest_hash(manifest: dict) -> str:
    """SHA-256 over the source and every (split, file name, content hash) entry."""
    entries = [[split, f, manifest["file_hashes"][f]] for split in SPLITS + ("excluded",) for f in manifest[split]]
    text = json.dumps({"source": manifest["source"], "entries": entries}, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _check_class_sizes(classes: list[str], strata, fractions) -> None:
    """:class:`LandscapeError` with the counts when a class has fewer patients (groups) than splits to fill."""
    needed = [s for s, f in zip(SPLITS, fractions) if f > 0]
    counts = np.bincount(np.asarray(strata, dtype=np.int64), minlength=len(classes))
    for cls, n in zip(classes, counts):
        if n < len(needed):
            raise LandscapeError(f"class {cls!r} has {n} image group(s), fewer than the {len(needed)} its split needs "
                                 f"(one in each of {', '.join(needed)}; class sizes: "
                                 f"{', '.join(f'{c} {k}' for c, k in zip(classes, counts))}); add images or drop "
                                 "the class folder")


def make_split(images: Images, fractions=(0.7, 0.1, 0.2), seed: int = 0, keep_conflicts: bool = False,
               threshold: float = THRESHOLD, duplicates: Duplicates | None = None) -> dict:
    """Group-aware stratified train/val/test manifest.

    ``fractions``: (train, val, test), non-negative, summing to 1, train > 0.
    ``threshold``: near-duplicate threshold, used when ``duplicates`` (an
    earlier :func:`find_duplicates` result for ``images``) is not given.
    """
    seed = check_seed(seed, "split_seed")
    fractions = tuple(float(f) for f in fractions)
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1.0) > 1e-6 or fractions[0] <= 0:
        raise LandscapeError("split fractions must be 3 non-negative numbers (train, val, test) summing to 1 with "
                             f"train > 0, got {fractions}")
    dups = _check_dups(images, duplicates, threshold)
    groups, strata, excluded = _groups(images, dups, keep_conflicts)
    _check_class_sizes(images.classes, strata, fractions)
    bins = _stratified(groups, strata, len(images.classes), fractions, _rng(seed))
    members = {s: [k for g, b in zip(groups, bins) if b == i for k in g] for i, s in enumerate(SPLITS)}
    head = {"method": "holdout", "seed": seed, "fractions": list(fractions)}
    return _manifest(images, {**members, "excluded": excluded}, dups, head, keep_conflicts)


def kfold_split(images: Images, k: int = 5, fold: int = 0, seed: int = 0, val_fraction: float = 0.1,
                keep_conflicts: bool = False, threshold: float = THRESHOLD,
                duplicates: Duplicates | None = None) -> dict:
    """Fold ``fold`` of a group-aware stratified ``k``-fold split, as a manifest.

    The folds depend only on ``seed`` (not on ``fold``), so the ``k`` test sets
    partition the kept images. ``val_fraction`` of all kept images (per class)
    is then taken as validation from the other folds, group-aware.
    """
    seed = check_seed(seed, "split_seed")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
        raise LandscapeError(f"k-fold needs an integer k >= 2, got {k!r}")
    if isinstance(fold, bool) or not isinstance(fold, (int, np.integer)) or not 0 <= fold < k:
        raise LandscapeError(f"fold must be an integer from 0 to {k - 1}, got {fold!r}")
    if not 0.0 <= float(val_fraction) < 1.0 - 1.0 / k:
        raise LandscapeError(f"val_fraction must be in [0, {1.0 - 1.0 / k:.3g}) for k={k}, got {val_fraction}")
    dups = _check_dups(images, duplicates, threshold)
    groups, strata, excluded = _groups(images, dups, keep_conflicts)
    folds = _stratified(groups, strata, len(images.classes), [1.0 / k] * k, _rng(seed, 0))
    rest = [g for g in range(len(groups)) if folds[g] != fold]
    val_rng = _rng(seed, 1, int(fold))
    is_val = {}
    for c in range(len(images.classes)):
        idx = [g for g in rest if strata[g] == c]
        sizes = [len(groups[g]) for g in idx]
        n_class = sum(len(groups[g]) for g in range(len(groups)) if strata[g] == c)
        n_val = min(int(round(float(val_fraction) * n_class)), sum(sizes))
        for g, b in zip(idx, _assign(sizes, np.array([sum(sizes) - n_val, n_val]), val_rng)):
            is_val[g] = b == 1
    members = {
        "train": [m for g in rest if not is_val[g] for m in groups[g]],
        "val": [m for g in rest if is_val[g] for m in groups[g]],
        "test": [m for g in range(len(groups)) if folds[g] == fold for m in groups[g]],
    }
    vf = float(val_fraction)
    head = {"method": "kfold", "seed": seed, "fractions": [round(1.0 - 1.0 / k - vf, 12), vf, round(1.0 / k, 12)],
            "k": int(k), "fold": int(fold), "val_fraction": vf}
    return _manifest(images, {**members, "excluded": excluded}, dups, head, keep_conflicts)


def select(images: Images, manifest: dict, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(uint8 [n, 1, S, S], int64 [n])`` of ``split`` in manifest order.

    Labels follow the manifest's class order. Raises :class:`LandscapeError`
    when a file of the split is missing from ``images`` or its content hash
    differs from the one recorded in the manifest.
    """
    if split not in SPLITS:
        raise LandscapeError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    if not isinstance(manifest, dict) or split not in manifest or "file_hashes" not in manifest:
        raise LandscapeError(f"not a split manifest (no {split!r} list or file hashes)")
    if manifest.get("kind", images.kind) != images.kind:
        raise LandscapeError(f"the split manifest is for {manifest.get('source')} ({manifest['kind']} data) but the "
                             f"images are {images.name} ({images.kind})")
    where = {f: i for i, f in enumerate(images.files)}
    files = manifest[split]
    source = images.root or images.name
    missing = [f for f in files if f not in where]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise LandscapeError(f"{len(missing)} file(s) of the {split} split are missing from {source}: "
                             f"{missing[0]}{more}")
    changed = [f for f in files if images.file_hashes[where[f]] != manifest["file_hashes"].get(f)]
    if changed:
        more = f" and {len(changed) - 1} more" if len(changed) > 1 else ""
        raise LandscapeError(f"{len(changed)} file(s) of the {split} split differ from the split manifest (content "
                             f"changed) in {source}: {changed[0]}{more}")
    classes = list(manifest.get("classes", images.classes))
    idx = [where[f] for f in files]
    names = [images.classes[images.labels[i]] for i in idx]
    unknown = sorted(set(names) - set(classes))
    if unknown:
        raise LandscapeError(f"the {split} split holds class {unknown[0]!r}, which the manifest does not list "
                             f"({', '.join(classes)})")
    y = [classes.index(c) for c in names]
    return images.pixels[torch.as_tensor(idx, dtype=torch.long)], torch.as_tensor(y, dtype=torch.int64)
