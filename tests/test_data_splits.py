"""Split invariants: partition, groups never straddle, stratification, determinism, hashes."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest
import torch

from landscape.data import (
    Duplicates,
    Images,
    find_duplicates,
    kfold_split,
    load_images,
    make_split,
    manifest_hash,
    select,
)
from landscape.errors import LandscapeError

CLASSES = ["benign", "malignant", "normal"]


def toy(n_per_class=(60, 30, 20), seed=0):
    """A labelled set with hand-made near-duplicate groups (sizes 2-5) and two conflicts."""
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.full(n, c) for c, n in enumerate(n_per_class)]).astype(np.int64)
    files = [f"{CLASSES[c]}/img ({k}).png" for c, n in enumerate(n_per_class) for k in range(n)]
    pixels = torch.from_numpy(rng.integers(0, 256, (len(files), 1, 8, 8), dtype=np.uint8))
    images = Images(name="toy", kind="folder", root="/toy", classes=list(CLASSES), files=files, labels=labels,
                    pixels=pixels, file_hashes=[hashlib.sha256(f.encode()).hexdigest() for f in files],
                    orig_sizes=[(8, 8)] * len(files))
    groups = [[0, 1], [2, 3, 4], [5, 6, 7, 8, 9], [60, 61, 62], [90, 91], [10, 11, 12, 13],
              [20, 70], [30, 31, 95]]  # the last two mix labels: conflicts
    ids = np.arange(len(files))
    for g in groups:
        ids[g] = g[0]
    _, ids = np.unique(ids, return_inverse=True)
    dups = Duplicates(group_ids=ids.astype(np.int64), groups=groups, conflicts=groups[-2:], pairs=[],
                      settings={"method": "hand-made", "threshold": 0.5})
    return images, dups, groups


def check_invariants(images, manifest, groups, fractions=None, slack=0):
    split_of = {}
    for split in ("train", "val", "test", "excluded"):
        for f in manifest[split]:
            assert f not in split_of, f"{f} in two splits"
            split_of[f] = split
    assert sorted(split_of) == sorted(images.files)  # a partition of every image
    for g in groups:
        assert len({split_of[images.files[k]] for k in g}) == 1, "a near-duplicate group straddles splits"
    for split in ("train", "val", "test", "excluded"):  # lists follow dataset order
        order = [images.files.index(f) for f in manifest[split]]
        assert order == sorted(order)
    assert manifest["hash"] == manifest_hash(manifest)
    if fractions is not None:
        kept = {c: sum(manifest["counts"][s][c] for s in ("train", "val", "test")) for c in images.classes}
        for i, split in enumerate(("train", "val", "test")):
            for c in images.classes:
                assert abs(manifest["counts"][split][c] - fractions[i] * kept[c]) <= slack + 1, (split, c)


def test_holdout_invariants_and_conflicts():
    images, dups, groups = toy()
    m = make_split(images, seed=3, duplicates=dups)
    check_invariants(images, m, groups, (0.7, 0.1, 0.2), slack=1)
    assert m["excluded"] == sorted([images.files[k] for k in (20, 30, 31, 70, 95)], key=images.files.index)
    assert m["method"] == "holdout" and m["seed"] == 3 and m["fractions"] == [0.7, 0.1, 0.2]
    assert m["source"] == "toy" and m["kind"] == "folder" and m["classes"] == CLASSES
    assert m["n_images"] == 110 and m["n_duplicate_groups"] == 8 and m["n_conflicts"] == 2
    assert m["n_groups"] == 110 - sum(len(g) - 1 for g in groups)
    assert set(m["file_hashes"]) == set(images.files)
    kept = make_split(images, seed=3, keep_conflicts=True, duplicates=dups)
    check_invariants(images, kept, groups, (0.7, 0.1, 0.2), slack=2)
    assert kept["excluded"] == [] and kept["keep_conflicts"] is True
    for split in ("train", "val", "test"):  # each image keeps its own label
        x, y = select(images, kept, split)
        idx = [images.files.index(f) for f in kept[split]]
        assert y.tolist() == images.labels[idx].tolist() and torch.equal(x, images.pixels[idx])


def test_determinism_and_seed():
    images, dups, _ = toy()
    a, b = make_split(images, seed=1, duplicates=dups), make_split(images, seed=1, duplicates=dups)
    assert a == b
    c = make_split(images, seed=2, duplicates=dups)
    assert c["test"] != a["test"] and c["hash"] != a["hash"]


def test_hash_follows_content_and_select_checks_it():
    images, dups, _ = toy()
    m = make_split(images, duplicates=dups)
    name = m["test"][0]
    edited = dataclasses.replace(images, file_hashes=list(images.file_hashes))
    edited.file_hashes[images.files.index(name)] = "0" * 64
    assert make_split(edited, duplicates=dups)["hash"] != m["hash"]
    with pytest.raises(LandscapeError,
                       match=f"1 file\\(s\\) of the test split differ .*{name.replace('(', '.').replace(')', '.')}"):
        select(edited, m, "test")
    select(edited, m, "train")  # the edited file is not in train
    gone = images.files.index(name)
    missing = dataclasses.replace(images, files=[f for f in images.files if f != name],
                                  labels=np.delete(images.labels, gone),
                                  file_hashes=images.file_hashes[:gone] + images.file_hashes[gone + 1:],
                                  pixels=torch.cat([images.pixels[:gone], images.pixels[gone + 1:]]))
    with pytest.raises(LandscapeError, match="1 file\\(s\\) of the test split are missing from /toy"):
        select(missing, m, "test")


def test_select_order_labels_and_errors():
    images, dups, _ = toy()
    m = make_split(images, duplicates=dups)
    x, y = select(images, m, "val")
    assert x.dtype == torch.uint8 and y.dtype == torch.int64 and len(x) == len(m["val"])
    relabelled = {**m, "classes": list(reversed(CLASSES))}  # labels follow the manifest's class order
    _, y2 = select(images, relabelled, "val")
    assert (y2 == 2 - y).all()
    with pytest.raises(LandscapeError, match="class 'malignant'"):
        select(images, {**m, "classes": ["benign", "normal"]}, "val")
    with pytest.raises(LandscapeError, match="unknown split"):
        select(images, m, "everything")
    with pytest.raises(LandscapeError, match="not a split manifest"):
        select(images, {"train": []}, "train")
    with pytest.raises(LandscapeError, match="phantom"):
        select(images, {**m, "source": "phantom", "kind": "phantom"}, "train")


def test_kfold_partitions_and_validation():
    images, dups, groups = toy()
    folds = [kfold_split(images, k=5, fold=f, seed=4, duplicates=dups) for f in range(5)]
    tests = [f for m in folds for f in m["test"]]
    assert sorted(tests) == sorted(set(images.files) - set(folds[0]["excluded"]))  # test folds partition
    for m in folds:
        check_invariants(images, m, groups)
        assert m["method"] == "kfold" and m["k"] == 5 and m["val_fraction"] == 0.1
        for c in images.classes:
            kept = sum(m["counts"][s][c] for s in ("train", "val", "test"))
            assert abs(m["counts"]["test"][c] - kept / 5) <= 5  # within the largest group
            assert abs(m["counts"]["val"][c] - 0.1 * kept) <= 5
    assert folds[0]["val"] != folds[1]["val"]


@pytest.mark.parametrize("kwargs, message", [
    ({"fractions": (0.5, 0.5)}, "fractions"),
    ({"fractions": (0.7, 0.2, 0.2)}, "fractions"),
    ({"fractions": (0.0, 0.5, 0.5)}, "fractions"),
    ({"fractions": (0.8, -0.1, 0.3)}, "fractions"),
    ({"seed": -1}, "seed"),
])
def test_holdout_bad_arguments(kwargs, message):
    images, dups, _ = toy()
    with pytest.raises(LandscapeError, match=message):
        make_split(images, duplicates=dups, **kwargs)


@pytest.mark.parametrize("kwargs, message", [
    ({"k": 1}, "k >= 2"), ({"fold": 5}, "fold"), ({"fold": -1}, "fold"), ({"val_fraction": 0.85}, "val_fraction"),
])
def test_kfold_bad_arguments(kwargs, message):
    images, dups, _ = toy()
    with pytest.raises(LandscapeError, match=message):
        kfold_split(images, duplicates=dups, **kwargs)


def test_duplicates_of_another_set_are_refused():
    images, _, _ = toy()
    _, other, _ = toy((10, 10, 90))
    small = dataclasses.replace(other, group_ids=other.group_ids[:50])
    with pytest.raises(LandscapeError, match="cover 50 images, but the set has 110"):
        make_split(images, duplicates=small)


def test_zero_val_fraction_gives_empty_val():
    images, dups, groups = toy()
    m = make_split(images, fractions=(0.8, 0.0, 0.2), duplicates=dups)
    check_invariants(images, m, groups, (0.8, 0.0, 0.2), slack=1)
    assert m["val"] == []


def test_phantom_split_is_exact():
    images = load_images(None, img_size=16)
    m = make_split(images)
    assert m["excluded"] == [] and m["n_duplicate_groups"] == 0
    assert m["counts"]["test"] == {"benign": 87, "malignant": 42, "normal": 27}  # 20% by largest remainder
    assert m["counts"]["val"] == {"benign": 44, "malignant": 21, "normal": 13}


def test_real_busi_split(busi_dir):
    images = load_images(busi_dir)
    dups = find_duplicates(images)
    m = make_split(images, duplicates=dups)
    check_invariants(images, m, dups.groups, (0.7, 0.1, 0.2), slack=max(len(g) for g in dups.groups))
    assert "benign/benign (131).png" in m["excluded"] and "malignant/malignant (51).png" in m["excluded"]
    assert len(m["excluded"]) == sum(len(g) for g in dups.conflicts)
    assert m["source"] == "busi"
    x, y = select(images, m, "test")
    assert len(x) == len(m["test"]) == sum(m["counts"]["test"].values())
