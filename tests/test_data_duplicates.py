"""Near-duplicate groups and label conflicts, built from real BUSI scans."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image, ImageDraw

from landscape.data import find_duplicates, load_images
from landscape.data.duplicates import _union_find_groups
from landscape.errors import LandscapeError


def draw_calipers(img: Image.Image) -> Image.Image:
    """Two '+' marks joined by a dotted line, as ultrasound calipers look."""
    out = img.copy()
    d = ImageDraw.Draw(out)
    (x0, y0), (x1, y1) = (70, 90), (170, 120)
    for x, y in ((x0, y0), (x1, y1)):
        d.line((x - 5, y, x + 5, y), fill=(255, 255, 255), width=2)
        d.line((x, y - 5, x, y + 5), fill=(255, 255, 255), width=2)
    for t in np.linspace(0, 1, 25):
        x, y = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
        d.point((x, y), fill=(255, 255, 255))
    return out


def shifted(img: Image.Image, dx: int, dy: int) -> Image.Image:
    """The same scan re-cropped: content moved by (dx, dy) pixels, edges replicated."""
    arr = np.asarray(img)
    arr = np.pad(arr, ((max(dy, 0), max(-dy, 0)), (max(dx, 0), max(-dx, 0)), (0, 0)), mode="edge")
    h, w = img.size[1], img.size[0]
    return Image.fromarray(arr[max(-dy, 0):max(-dy, 0) + h, max(-dx, 0):max(-dx, 0) + w])


@pytest.fixture(scope="module")
def mini_busi(busi_dir, tmp_path_factory):
    """Real scans: a known cross-class duplicate, a caliper copy, a shifted copy,
    an identical copy filed under another class, a real same-class pair and two distinct scans."""
    root = tmp_path_factory.mktemp("mini") / "mini_busi"
    for c in ("benign", "malignant", "normal"):
        (root / c).mkdir(parents=True)
    for name in ("benign/benign (131).png", "malignant/malignant (51).png", "benign/benign (2).png",
                 "benign/benign (3).png", "benign/benign (1).png", "benign/benign (318).png",
                 "malignant/malignant (10).png", "normal/normal (5).png"):
        shutil.copy(busi_dir / name, root / name)
    scan = Image.open(busi_dir / "benign" / "benign (2).png").convert("RGB")
    draw_calipers(scan).save(root / "benign" / "benign (2) calipers.png")
    shifted(scan, 12, -8).save(root / "benign" / "benign (2) shifted.png")
    shutil.copy(busi_dir / "benign" / "benign (3).png", root / "normal" / "copy of benign 3.png")
    return root


def as_names(images, groups):
    return sorted(sorted(images.files[k] for k in g) for g in groups)


def test_groups_and_conflicts_on_real_scans(mini_busi):
    images = load_images(mini_busi, img_size=32)
    dups = find_duplicates(images)
    assert as_names(images, dups.groups) == [
        ["benign/benign (1).png", "benign/benign (318).png"],
        ["benign/benign (131).png", "malignant/malignant (51).png"],
        ["benign/benign (2) calipers.png", "benign/benign (2) shifted.png", "benign/benign (2).png"],
        ["benign/benign (3).png", "normal/copy of benign 3.png"],
    ]
    assert as_names(images, dups.conflicts) == [
        ["benign/benign (131).png", "malignant/malignant (51).png"],
        ["benign/benign (3).png", "normal/copy of benign 3.png"],
    ]
    assert dups.n_groups == len(images) - 5  # 11 images, 4 groups absorbing 5 of them
    singles = [images.files[k] for k in range(len(images)) if (dups.group_ids == dups.group_ids[k]).sum() == 1]
    assert singles == ["malignant/malignant (10).png", "normal/normal (5).png"]
    for i, j, coarse, fine in dups.pairs:
        assert i < j and dups.group_ids[i] == dups.group_ids[j]
        assert coarse >= dups.settings["coarse_threshold"] and fine >= dups.settings["threshold"]
    copy = images.files.index("normal/copy of benign 3.png")
    exact = [p for p in dups.pairs if copy in p[:2]]
    assert len(exact) == 1 and exact[0][2] == pytest.approx(1.0, abs=1e-9) and exact[0][3] == pytest.approx(1.0,
                                                                                                            abs=1e-9)


def test_threshold_and_img_size(mini_busi):
    small = load_images(mini_busi, img_size=16)
    big = load_images(mini_busi, img_size=96)
    assert (find_duplicates(small).group_ids == find_duplicates(big).group_ids).all()  # thumbnails are full-res
    strict = find_duplicates(small, threshold=0.999)
    assert as_names(small, strict.groups) == [["benign/benign (3).png", "normal/copy of benign 3.png"]]
    for bad in ({"threshold": 0.0}, {"threshold": 1.5}, {"coarse_threshold": -1}, {"max_shift": 0.6}):
        with pytest.raises(LandscapeError):
            find_duplicates(small, **bad)


def test_pixels_are_used_without_thumbnails(mini_busi):
    images = load_images(mini_busi, img_size=64)
    images.thumbs = None  # hand-built sets have no full-resolution thumbnails
    dups = find_duplicates(images)
    assert ["benign/benign (3).png", "normal/copy of benign 3.png"] in as_names(images, dups.conflicts)


def test_union_find_is_transitive():
    ids = _union_find_groups(7, np.array([0, 3, 2, 5]), np.array([2, 4, 1, 6]))
    assert ids.tolist() == [0, 0, 0, 1, 1, 2, 2]


def test_full_busi(busi_dir):
    images = load_images(busi_dir)
    dups = find_duplicates(images)
    a, b = images.files.index("benign/benign (131).png"), images.files.index("malignant/malignant (51).png")
    assert dups.group_ids[a] == dups.group_ids[b]
    assert any(a in g and b in g for g in dups.conflicts)
    assert len(dups.conflicts) == 8  # all verified by eye: the same scan filed under two classes
    assert 140 <= len(dups.groups) <= 156 and max(len(g) for g in dups.groups) <= 8
