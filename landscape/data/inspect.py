"""``inspect_data``: what is in a data folder (or the phantom) before training on it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from landscape.data.duplicates import THRESHOLD, check_settings, find_duplicates
from landscape.data.images import load_images
from landscape.io import versions


def inspect_data(path: str | Path | None = None, img_size: int = 64, threshold: float = THRESHOLD,
                 seed: int = 0) -> dict:
    """Class counts, stored image sizes and modes, skipped masks, near-duplicate
    groups and label conflicts (with file names) of a data folder, or of the
    phantom when ``path`` is None. Returns plain JSON-able data.
    """
    check_settings(threshold)  # before the (slow) decoding
    images = load_images(path, img_size=img_size, seed=seed)
    dups = find_duplicates(images, threshold=threshold)
    labels = np.asarray(images.labels)
    in_group = np.zeros(len(images), dtype=bool)
    in_conflict = np.zeros(len(images), dtype=bool)
    for g in dups.groups:
        in_group[g] = True
    for g in dups.conflicts:
        in_conflict[g] = True

    scores: dict[int, list[float]] = {}
    for i, _, _, fine in dups.pairs:
        scores.setdefault(int(dups.group_ids[i]), []).append(fine)

    def describe(group: list[int]) -> dict:
        fine = scores[int(dups.group_ids[group[0]])]
        return {"files": [images.files[k] for k in group],
                "classes": [images.classes[labels[k]] for k in group],
                "conflict": len(set(labels[group].tolist())) > 1,
                "score_min": min(fine), "score_max": max(fine)}

    widths = np.array([w for w, _ in images.orig_sizes])
    heights = np.array([h for _, h in images.orig_sizes])
    common = Counter(images.orig_sizes).most_common(5)
    return {
        "source": images.name,
        "kind": images.kind,
        "root": images.root,
        "seed": seed,
        "n_images": len(images),
        "classes": [
            {"name": c, "images": int((labels == i).sum()), "in_duplicate_groups": int(in_group[labels == i].sum()),
             "in_conflicts": int(in_conflict[labels == i].sum())}
            for i, c in enumerate(images.classes)
        ],
        "sizes": {
            "width": {"min": int(widths.min()), "median": float(np.median(widths)), "max": int(widths.max())},
            "height": {"min": int(heights.min()), "median": float(np.median(heights)), "max": int(heights.max())},
            "distinct": len(set(images.orig_sizes)),
            "most_common": [{"width": w, "height": h, "images": n} for (w, h), n in common],
        },
        "modes": dict(Counter(images.orig_modes).most_common()),
        "skipped_masks": len(images.skipped),
        "duplicates": {
            **dups.settings,
            "n_groups": len(dups.groups),
            "n_images": int(in_group.sum()),
            "largest": max((len(g) for g in dups.groups), default=0),
            "n_conflicts": len(dups.conflicts),
            "n_conflict_images": int(in_conflict.sum()),
            "groups": [describe(g) for g in dups.groups],
        },
        "conflicts": [describe(g) for g in dups.conflicts],
        "settings": {"img_size": img_size, "threshold": threshold, "seed": seed},
        "versions": versions(),
    }
