"""Parameter-shaped vectors: ``dict[str, Tensor]`` keyed by parameter names.

A direction holds one tensor per trainable parameter it moves, shaped like
that parameter, on the model's device and dtype; an absent name means zero
(docs/architecture.md, "Parameter-shaped vectors").
"""

from __future__ import annotations

import hashlib

import torch
from torch import nn

from landscape.errors import LandscapeError
from landscape.tensors import Vector


def trainable(model: nn.Module) -> Vector:
    """The model's trainable parameters by name (detached views, not copies)."""
    return {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}


def norm(vector: Vector) -> float:
    """L2 norm over all tensors together, accumulated in float64."""
    return float(sum((t.double() ** 2).sum() for t in vector.values()) ** 0.5) if vector else 0.0


def tensor_hash(tensors: dict[str, torch.Tensor], length: int = 16) -> str:
    """Hex SHA-256 of names, dtypes, shapes and raw bytes, in sorted name order.

    Equal hashes mean bit-identical tensors, whatever device they live on.
    """
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:length]


def check_fits(model: nn.Module, vector: Vector, what: str = "direction") -> None:
    """Raise :class:`LandscapeError` unless every entry names a float parameter or buffer of that shape."""
    known = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    for name, t in vector.items():
        if name not in known:
            raise LandscapeError(f"{what} has an entry {name!r} that is not a parameter or buffer of the model")
        if tuple(t.shape) != tuple(known[name].shape):
            raise LandscapeError(
                f"{what} entry {name!r} has shape {tuple(t.shape)}, the model's has {tuple(known[name].shape)}"
            )
        if not known[name].is_floating_point():
            raise LandscapeError(f"{what} entry {name!r} moves a non-float tensor")
