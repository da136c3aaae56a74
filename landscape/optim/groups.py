"""Parameter groups for fine-tuning: no weight decay on normalisation weights and biases.

:func:`weight_decay_groups` follows timm's ``param_groups_weight_decay``: a
parameter with at most one dimension (BatchNorm / LayerNorm weights and
biases, every bias) or whose name ends in ``.bias`` goes to a group with
``weight_decay`` 0; the others keep ``weight_decay``.  Frozen parameters
are left out.
"""

from __future__ import annotations

from torch import nn


def weight_decay_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """``[{"params": decayed, "weight_decay": weight_decay}, {"params": others, "weight_decay": 0.0}]``.

    A group with no parameters is dropped.
    """
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim <= 1 or name.endswith(".bias") else decay).append(param)
    groups = [{"params": decay, "weight_decay": float(weight_decay)}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]
