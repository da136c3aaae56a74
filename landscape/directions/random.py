"""Random Gaussian directions with filter normalisation (Li et al., 2018).

The rule, for each trainable parameter ``w`` and its Gaussian draw ``d``:

* ``w.ndim >= 2`` (conv ``[out, in, kh, kw]``, linear ``[out, in]``, any
  other weight): every slice ``d[i]`` along the output dimension 0 (one
  filter, or one row) is rescaled so that ``||d[i]|| = ||w[i]||``.
* ``w.ndim <= 1`` (biases and norm-layer weights and biases): zero by
  default (left out of the dict). With ``include_bias_bn=True`` the whole tensor is one "filter":
  ``d`` is rescaled so that ``||d|| = ||w||`` (rescaling each element to its
  own weight would only keep the signs).

The draw is reproducible: a CPU ``torch.Generator`` seeded with ``seed`` fills
every trainable parameter in ``named_parameters()`` order in float32 (also the
ones that end up zero), so a seed gives the same direction on every device and
dtype, and the weight part does not depend on ``include_bias_bn``.
"""

from __future__ import annotations

import torch
from torch import nn

from landscape.directions.vectors import Vector, trainable


def _scale(w_norm: torch.Tensor, d_norm: torch.Tensor) -> torch.Tensor:
    """``w_norm / d_norm``, with a zero draw staying zero (no epsilon bias otherwise)."""
    return w_norm / d_norm.clamp_min(torch.finfo(d_norm.dtype).tiny)


def filter_normalize(direction: Vector, weights: Vector, include_bias_bn: bool = False) -> Vector:
    """Rescale ``direction`` filter-wise to the norms of ``weights`` (rule in the module doc).

    Returns a new dict. Tensors with ``ndim <= 1`` are left out (absent means
    zero) unless ``include_bias_bn``; names missing from ``direction`` stay absent.
    """
    out: Vector = {}
    for name, d in direction.items():
        w = weights[name]
        if w.ndim >= 2:
            wn = w.reshape(w.shape[0], -1).norm(dim=1)
            dn = d.reshape(d.shape[0], -1).norm(dim=1)
            out[name] = d * _scale(wn, dn).reshape((-1,) + (1,) * (d.ndim - 1))
        elif include_bias_bn:
            out[name] = d * _scale(w.norm(), d.norm())
    return out


def random_directions(model: nn.Module, n: int = 1, seed: int = 0, include_bias_bn: bool = False) -> list[Vector]:
    """``n`` filter-normalised Gaussian directions for ``model`` (drawn one after another from ``seed``)."""
    weights = trainable(model)
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    out = []
    for _ in range(n):
        raw = {
            name: torch.randn(w.shape, generator=gen, dtype=torch.float32).to(device=w.device, dtype=w.dtype)
            for name, w in weights.items()
        }
        out.append(filter_normalize(raw, weights, include_bias_bn))
    return out
