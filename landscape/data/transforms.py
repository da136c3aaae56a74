"""Pixels to network inputs: normalisation statistics, float conversion, augmentation.

Units: ``mean`` and ``std`` are in [0, 1] pixel units (uint8 / 255); network
inputs are ``(x / 255 - mean) / std`` as float32 ``[N, C, S, S]`` (``C = 1``,
or 3 with grey replicated to RGB for backbones that keep their RGB stem).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from landscape.errors import LandscapeError


def norm_stats(x_uint8: torch.Tensor) -> tuple[float, float]:
    """Mean and (population) standard deviation of ``x_uint8 / 255``, computed exactly.

    Uses a 256-bin histogram, so it needs no float copy of the images.
    Raises :class:`LandscapeError` for no pixels or constant pixels.
    """
    if x_uint8.dtype != torch.uint8:
        raise LandscapeError(f"norm_stats expects uint8 pixels, got {x_uint8.dtype}")
    if x_uint8.numel() == 0:
        raise LandscapeError("cannot compute normalisation statistics of an empty image set (is the train split "
                             "empty?)")
    counts = torch.bincount(x_uint8.reshape(-1), minlength=256).cpu().to(torch.float64)
    values = torch.arange(256, dtype=torch.float64) / 255.0
    total = counts.sum()
    mean = float((counts * values).sum() / total)
    var = float((counts * (values - mean) ** 2).sum() / total)
    if var <= 0.0:
        raise LandscapeError("all training pixels have the same value; cannot normalise")
    return mean, math.sqrt(var)


def to_float(x_uint8: torch.Tensor, mean, std, channels: int = 1) -> torch.Tensor:
    """``float32 (x / 255 - mean) / std`` on ``x_uint8``'s device, grey replicated to ``channels`` channels.

    ``mean`` and ``std`` are floats or one value per channel (e.g. ImageNet's
    three); ``[N, 1, S, S]`` grey images become ``[N, channels, S, S]``.
    """
    if x_uint8.dtype != torch.uint8:
        raise LandscapeError(f"to_float expects uint8 pixels, got {x_uint8.dtype}")
    mean_t, std_t = (torch.as_tensor(v, dtype=torch.float32).reshape(-1) for v in (mean, std))
    if not bool((std_t > 0).all()):
        raise LandscapeError(f"normalisation std must be positive, got {std}")
    if channels != x_uint8.shape[1]:
        if x_uint8.shape[1] != 1:
            raise LandscapeError(f"cannot turn {x_uint8.shape[1]}-channel images into {channels} channels")
        x_uint8 = x_uint8.expand(-1, channels, *x_uint8.shape[2:])
    if len(mean_t) > 1 or len(std_t) > 1:
        if len(mean_t) != channels or len(std_t) != channels:
            raise LandscapeError(f"normalisation needs one mean and std per channel ({channels}), got {mean}, {std}")
        shape = (1, channels, *([1] * (x_uint8.dim() - 2)))
        mean_t, std_t = mean_t.view(shape).to(x_uint8.device), std_t.view(shape).to(x_uint8.device)
        return (x_uint8.to(torch.float32) / 255.0 - mean_t) / std_t
    return (x_uint8.to(torch.float32) / 255.0 - float(mean_t)) / float(std_t)


def normalise(x_uint8: torch.Tensor, data_meta: dict) -> torch.Tensor:
    """Network inputs as a checkpoint's ``data`` entry says (``mean``, ``std``, ``channels``, default 1)."""
    return to_float(x_uint8, data_meta["mean"], data_meta["std"], int(data_meta.get("channels", 1)))


def random_affine(n: int, generator: torch.Generator, flip: bool = True, max_rotation: float = 10.0,
                  max_translation: float = 0.06, scale: tuple[float, float] = (0.9, 1.1)) -> torch.Tensor:
    """``float32 [n, 2, 3]`` sampling matrices for :func:`torch.nn.functional.affine_grid`.

    Per image: horizontal flip with probability 1/2 (if ``flip``), rotation
    uniform in +-``max_rotation`` degrees, zoom uniform in ``scale``, shift
    uniform in +-``max_translation`` of the width and height. The matrix maps
    output to input coordinates in [-1, 1] units: ``p_in = A p_out + t``.
    Draws 5 uniforms per image from ``generator`` (on the generator's device).
    """
    u = torch.rand(n, 5, generator=generator, device=generator.device, dtype=torch.float64).cpu()
    angle = torch.deg2rad((2 * u[:, 0] - 1) * max_rotation)
    zoom = scale[0] + (scale[1] - scale[0]) * u[:, 1]
    shift = (2 * u[:, 2:4] - 1) * max_translation * 2.0  # the image spans 2 units
    mirror = torch.where((u[:, 4] < 0.5) & flip, -1.0, 1.0).to(torch.float64)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom  # zoom in = sample a smaller area
    theta = torch.zeros(n, 2, 3, dtype=torch.float64)
    theta[:, 0, 0], theta[:, 0, 1] = cos * mirror, -sin
    theta[:, 1, 0], theta[:, 1, 1] = sin * mirror, cos
    theta[:, :, 2] = shift
    return theta.to(torch.float32)


def augment(x: torch.Tensor, generator: torch.Generator, flip: bool = True, max_rotation: float = 10.0,
            max_translation: float = 0.06, scale: tuple[float, float] = (0.9, 1.1)) -> torch.Tensor:
    """Training augmentation of a float batch ``[N, C, H, W]``: flip plus a small affine.

    Fully determined by ``generator`` (see :func:`random_affine`); bilinear
    resampling with reflected borders, on ``x``'s device and dtype.
    """
    if x.ndim != 4 or not x.is_floating_point():
        raise LandscapeError(f"augment expects a float batch [N, C, H, W], got {tuple(x.shape)} {x.dtype}")
    theta = random_affine(x.shape[0], generator, flip, max_rotation, max_translation, scale).to(x.device, x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
