"""Inference over in-memory tensors and the metrics of one split."""

from __future__ import annotations

import torch
from torch import nn

from landscape.metrics import classification_metrics
from landscape.tensors import eval_mode


@torch.inference_mode()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Logits ``[N, C]`` (float32, CPU) of ``model`` in eval mode; restores the previous mode."""
    p = next(model.parameters())
    with eval_mode(model):
        out = [model(x[i : i + batch_size].to(p.device, p.dtype)).float().cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(out) if out else torch.empty(0)


def split_metrics(model: nn.Module, x: torch.Tensor, y: torch.Tensor, classes: list[str],
                  batch_size: int = 256) -> dict:
    """:func:`landscape.metrics.classification_metrics` of ``model`` on one split."""
    if len(y) == 0:
        return {"n": 0}
    return classification_metrics(predict(model, x, batch_size), y, classes)


def mean_cross_entropy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> float:
    """Mean cross-entropy (nats) of ``model`` in eval mode over all of ``(x, y)``: ``-mean_i log softmax(z_i)[y_i]``.

    The logits are those of :func:`predict` (no augmentation, BatchNorm with its running statistics), the sum in
    float64. This is the training loss of Jiang et al.'s stopping rule when ``(x, y)`` is the training split.
    """
    logits = predict(model, x, batch_size).double()
    return float(torch.nn.functional.cross_entropy(logits, y.to(logits.device), reduction="mean"))
