"""The built-in phantom: deterministic pixels, BUSI-like layout, learnable but not trivial."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from PIL import Image

from landscape.data import load_images
from landscape.data.phantom import generate
from landscape.errors import LandscapeError

#: sha256 of benign image 0 at seed 0 (native 128x128 uint8). A change here means the
#: phantom's pixels changed: every phantom result and checkpoint changes with them.
FIRST_IMAGE_SHA256 = "856951d06d7748f12e282f9e66c497b98a9b5bee70408b4b81ee1f17fb0bc803"


def test_same_seed_same_pixels_and_fixed_hash():
    a = generate(0, 0, [0, 1, 2])
    b = generate(0, 0, [0, 1, 2])
    assert a.dtype == np.uint8 and a.shape == (3, 128, 128)
    assert a.tobytes() == b.tobytes()
    assert hashlib.sha256(a[0].tobytes()).hexdigest() == FIRST_IMAGE_SHA256
    assert np.array_equal(generate(0, 0, [2])[0], a[2])  # an image does not depend on its neighbours


def test_other_seeds_and_classes_differ():
    base = generate(0, 0, [0])[0]
    for other in (generate(1, 0, [0])[0], generate(0, 1, [0])[0], generate(0, 0, [1])[0]):
        assert np.abs(other.astype(int) - base.astype(int)).mean() > 10


def test_phantom_images_layout():
    images = load_images(None, img_size=48, seed=0)
    assert images.name == "phantom" and images.kind == "phantom" and images.root is None and images.seed == 0
    assert images.class_counts() == {"benign": 437, "malignant": 210, "normal": 133}
    assert images.files[0] == "benign/phantom_0001.png" and images.files[-1] == "normal/phantom_0133.png"
    assert tuple(images.pixels.shape) == (780, 1, 48, 48) and images.pixels.dtype == torch.uint8
    native = generate(0, 2, [132])[0]
    assert images.file_hashes[-1] == hashlib.sha256(native.tobytes()).hexdigest()
    # The same resize path as folder images: PIL bilinear from the native 128x128 pixels.
    expected = np.asarray(Image.fromarray(native).resize((48, 48), Image.Resampling.BILINEAR))
    assert np.array_equal(images.pixels[-1, 0].numpy(), expected)
    assert images.orig_sizes[0] == (128, 128) and images.thumbs.shape == (780, 64, 64)
    mean = images.pixels.double().mean().item()
    assert 60 < mean < 140  # an ultrasound-like grey level, not saturated
    with pytest.raises(LandscapeError, match="seed"):
        load_images(None, seed=-1)
