"""Normalisation statistics, float conversion and augmentation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from landscape.data import augment, norm_stats, normalise, random_affine, to_float
from landscape.errors import LandscapeError


def test_norm_stats_exact():
    x = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (7, 1, 9, 11), dtype=np.uint8))
    mean, std = norm_stats(x)
    ref = x.numpy().astype(np.float64) / 255.0
    assert mean == pytest.approx(ref.mean(), abs=1e-12) and std == pytest.approx(ref.std(), abs=1e-12)
    assert norm_stats(torch.tensor([0, 255], dtype=torch.uint8)) == pytest.approx((0.5, 0.5), abs=1e-15)


def test_norm_stats_and_to_float_errors():
    with pytest.raises(LandscapeError, match="empty"):
        norm_stats(torch.zeros(0, 1, 4, 4, dtype=torch.uint8))
    with pytest.raises(LandscapeError, match="same value"):
        norm_stats(torch.full((2, 1, 4, 4), 9, dtype=torch.uint8))
    with pytest.raises(LandscapeError, match="uint8"):
        norm_stats(torch.zeros(2, 1, 4, 4))
    with pytest.raises(LandscapeError, match="std"):
        to_float(torch.zeros(1, 1, 2, 2, dtype=torch.uint8), 0.5, 0.0)


def test_to_float():
    x = torch.tensor([[[[0, 51], [204, 255]]]], dtype=torch.uint8)
    out = to_float(x, 0.4, 0.2)
    assert out.dtype == torch.float32 and out.shape == x.shape
    assert torch.allclose(out, torch.tensor([[[[-2.0, -1.0], [2.0, 3.0]]]]), atol=1e-6)


def test_to_float_replicates_grey_and_normalises_per_channel():
    x = torch.tensor([[[[0, 51], [204, 255]]]], dtype=torch.uint8)
    out = to_float(x, [0.4, 0.2, 0.0], [0.2, 0.4, 1.0], channels=3)
    assert out.shape == (1, 3, 2, 2)
    expected = torch.tensor([[-2.0, -1.0, 2.0, 3.0], [-0.5, 0.0, 1.5, 2.0], [0.0, 0.2, 0.8, 1.0]])
    assert torch.allclose(out.reshape(3, 4), expected, atol=1e-6)
    same = to_float(x, 0.4, 0.2, channels=3)  # one mean and std for every channel
    assert torch.equal(same[:, 0], same[:, 2]) and torch.allclose(same[:, 1], out[:, 0])
    assert torch.equal(normalise(x, {"mean": 0.4, "std": 0.2}), to_float(x, 0.4, 0.2))
    for mean, std, channels, message in [([0.4, 0.2], [0.2, 0.2], 3, "one mean and std per channel"),
                                         (0.4, [0.2, -1.0, 0.2], 3, "std must be positive")]:
        with pytest.raises(LandscapeError, match=message):
            to_float(x, mean, std, channels=channels)


def blob(size=64, cy=20.0, cx=40.0, sigma=3.0):
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64),
                            indexing="ij")
    return torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))


def centroid(img):
    """Centroid in affine_grid's normalised coordinates ([-1, 1], pixel centres at (2j+1)/W - 1)."""
    size = img.shape[-1]
    coords = (2 * torch.arange(size, dtype=torch.float64) + 1) / size - 1
    w = img / img.sum()
    return torch.stack([(w.sum(0) * coords).sum(), (w.sum(1) * coords).sum()])  # (x, y)


def test_augment_moves_content_as_the_affine_says():
    x = blob()[None, None].repeat(6, 1, 1, 1)
    gen = torch.Generator().manual_seed(5)
    theta = random_affine(6, torch.Generator().manual_seed(5), flip=True).to(torch.float64)
    out = augment(x, gen)
    assert out.dtype == torch.float64 and out.shape == x.shape
    c_in = centroid(x[0, 0])
    for k in range(6):
        a, t = theta[k, :, :2], theta[k, :, 2]
        expected = torch.linalg.solve(a, c_in - t)  # p_in = A p_out + t
        assert torch.allclose(centroid(out[k, 0]), expected, atol=0.01)  # 0.3 px
        assert out[k].sum().item() == pytest.approx(x[k].sum().item() / abs(torch.det(a).item()),
                                                    rel=0.02)  # area scales by 1/det


def test_flip_only_is_exact_and_both_sides_occur():
    x = torch.randn(32, 2, 8, 8, generator=torch.Generator().manual_seed(0))
    out = augment(x, torch.Generator().manual_seed(1), max_rotation=0.0, max_translation=0.0, scale=(1.0, 1.0))
    same = [(out[k] - x[k]).abs().max().item() < 1e-5 for k in range(32)]
    flipped = [(out[k] - x[k].flip(-1)).abs().max().item() < 1e-5 for k in range(32)]
    assert all(s or f for s, f in zip(same, flipped)) and 5 < sum(flipped) < 27
    assert torch.allclose(augment(x, torch.Generator().manual_seed(1), flip=False, max_rotation=0.0,
                                  max_translation=0.0, scale=(1.0, 1.0)), x, atol=1e-5)


def test_augment_is_determined_by_the_generator():
    x = torch.randn(4, 1, 16, 16)
    a = augment(x, torch.Generator().manual_seed(3))
    b = augment(x, torch.Generator().manual_seed(3))
    c = augment(x, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.allclose(a, c)
    with pytest.raises(LandscapeError, match="float batch"):
        augment(torch.zeros(4, 16, 16), torch.Generator())


def test_random_affine_bounds():
    theta = random_affine(2000, torch.Generator().manual_seed(0)).to(torch.float64)
    a, t = theta[:, :, :2], theta[:, :, 2]
    det = torch.det(a)
    zoom = 1 / det.abs().sqrt()
    angle = torch.rad2deg(torch.atan2(a[:, 1, 0] * det.sign(), a[:, 0, 0] * det.sign()))
    assert zoom.min() >= 0.9 - 1e-6 and zoom.max() <= 1.1 + 1e-6
    assert angle.abs().max() <= 10 + 1e-4 and angle.abs().max() > 9
    assert t.abs().max() <= 0.12 + 1e-6 and t.abs().max() > 0.11
    assert 0.45 < (det < 0).double().mean() < 0.55  # flips
    signs = torch.stack([det.sign(), torch.ones(2000, dtype=torch.float64)], 1)
    rotation_part = a * zoom[:, None, None] * signs[:, None, :]
    eye = rotation_part @ rotation_part.transpose(1, 2)
    assert torch.allclose(eye, torch.eye(2, dtype=torch.float64).expand(2000, 2, 2), atol=1e-5)  # no shear
    assert math.isclose(float(zoom.mean()), 1.0, abs_tol=0.01)
