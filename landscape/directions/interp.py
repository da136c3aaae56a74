"""Linear interpolation towards another set of weights of the same architecture.

``d = w_other - w`` for every trainable parameter, so ``w + t d`` is this model
at ``t = 0`` and the other one at ``t = 1`` (Goodfellow et al., 2015). The
float BatchNorm buffers (``running_mean``, ``running_var``) are interpolated
the same way, so that with frozen statistics (``bn="eval"``) ``t = 1``
reproduces the other model's loss exactly; the surface evaluator clamps an
extrapolated ``running_var`` at 0. ``num_batches_tracked`` is not moved.
"""

from __future__ import annotations

import torch
from torch import nn

from landscape.directions.vectors import Vector, trainable
from landscape.errors import LandscapeError

_BN_BUFFERS = ("running_mean", "running_var")


def interp_direction(model: nn.Module, other_state: dict[str, torch.Tensor], include_buffers: bool = True) -> Vector:
    """Direction from ``model`` to the weights in ``other_state`` (a state_dict of the same architecture)."""
    moved = dict(trainable(model))
    if include_buffers:
        moved.update(
            {name: b.detach() for name, b in model.named_buffers() if name.rsplit(".", 1)[-1] in _BN_BUFFERS}
        )
    out: Vector = {}
    for name, w in moved.items():
        if name not in other_state:
            raise LandscapeError(f"the other weights lack {name!r}: not the same architecture")
        o = other_state[name]
        if tuple(o.shape) != tuple(w.shape):
            raise LandscapeError(
                f"the other weights' {name!r} has shape {tuple(o.shape)}, this model's {tuple(w.shape)}: "
                "not the same architecture"
            )
        out[name] = o.detach().to(device=w.device, dtype=w.dtype) - w
    return out
