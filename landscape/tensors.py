"""Conventions on models and parameters shared by every layer: the :data:`Vector` type and :func:`eval_mode`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

#: A parameter-shaped vector: parameter name -> tensor of that parameter's shape (directions,
#: perturbations, weights), over the parameters with ``requires_grad`` unless a function says otherwise.
Vector = dict[str, torch.Tensor]


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put every sub-module in eval mode and restore each one's own ``training`` flag on exit."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, flag in flags:
            module.training = flag
