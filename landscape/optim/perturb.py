"""Shared machinery of the multi-pass optimizers.

Helpers over lists of parameter-shaped tensors (``torch._foreach_*`` where it
helps), the guards that make the extra passes invisible to the model (weights,
BatchNorm running statistics) and the RNG replay that gives every pass the same
dropout / drop-path masks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from landscape.errors import LandscapeError

EPS = 1e-12  # added to every small denominator (norms, squared norms)
Closure = Callable[[], torch.Tensor]  # zero grads, forward, backward, return the loss


def global_norm(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """L2 norm of all ``tensors`` taken together, as a 0-d tensor (no host sync)."""
    if not tensors:
        raise LandscapeError("no parameter has a gradient: the closure must call backward()")
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(list(tensors))))


def global_dot(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> torch.Tensor:
    """Inner product of two parameter-shaped lists, summed over all parameters (0-d tensor)."""
    return sum(torch.vdot(x.reshape(-1), y.reshape(-1)) for x, y in zip(a, b, strict=True))


def check_finite(loss: torch.Tensor | float, what: str = "loss") -> None:
    """Raise :class:`LandscapeError` when the closure's loss is NaN or infinite."""
    value = float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
    if not math.isfinite(value):
        raise LandscapeError(f"non-finite {what} ({value}): the optimizer did not step")


def take_grads(params: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Detach the gradients from ``params`` (``p.grad = None``) and return them.

    Only parameters whose gradient is not ``None`` are returned, paired with it.
    Detaching means the next closure call fills fresh ``.grad`` tensors and can
    never overwrite the ones returned here, whichever way it zeroes gradients.
    """
    active, grads = [], []
    for p in params:
        if p.grad is not None:
            active.append(p)
            grads.append(p.grad)
            p.grad = None
    return active, grads


def grads_of(params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """The current ``.grad`` of each parameter; a parameter that got none gets zeros."""
    out = []
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        out.append(p.grad)
    return out


class Buffers:
    """Lazily allocated scratch tensors shaped like a list of parameters, reused across steps."""

    def __init__(self) -> None:
        self._key: tuple[int, ...] = ()
        self._tensors: list[torch.Tensor] = []

    def like(self, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        key = tuple(id(p) for p in params)
        if key != self._key:
            self._tensors = [torch.empty_like(p, memory_format=torch.preserve_format) for p in params]
            self._key = key
        return self._tensors


def bn_buffers(model: nn.Module | None) -> list[torch.Tensor]:
    """Running statistics (mean, var, num_batches_tracked) of every BatchNorm-type module."""
    if model is None:
        return []
    out = []
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._NormBase) and module.track_running_stats:
            out.extend(b for b in (module.running_mean, module.running_var,
                                   module.num_batches_tracked) if b is not None)
    return out


class StateGuard:
    """Snapshot weights and BN running statistics, then restore them exactly.

    ``save(params)`` copies the current values into reusable buffers;
    ``restore()`` copies them back bit for bit (used in a ``finally`` block so
    the model never keeps perturbed weights or perturbed-pass BN statistics).
    """

    def __init__(self, bn: Sequence[torch.Tensor]) -> None:
        self._bn = list(bn)
        self._bn_saved = [torch.empty_like(b) for b in self._bn]
        self._weights = Buffers()
        self._params: list[torch.Tensor] = []

    def save(self, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Snapshot ``params`` and the BN statistics; returns the weight snapshot."""
        self._params = list(params)
        saved = self._weights.like(self._params)
        with torch.no_grad():
            torch._foreach_copy_(saved, self._params)
            if self._bn:
                torch._foreach_copy_(self._bn_saved, self._bn)
        return saved

    def restore(self) -> None:
        with torch.no_grad():
            if self._params:
                torch._foreach_copy_(self._params, self._weights.like(self._params))
            if self._bn:
                torch._foreach_copy_(self._bn, self._bn_saved)


class RngReplay:
    """Capture the global RNG state (CPU, and the CUDA device of the params) and replay it.

    Restoring before every perturbed pass gives dropout and drop-path the same
    masks as in the clean pass.
    """

    def __init__(self, device: torch.device) -> None:
        self._device = device if device.type == "cuda" else None
        self._cpu: torch.Tensor | None = None
        self._cuda: torch.Tensor | None = None

    def capture(self) -> None:
        self._cpu = torch.get_rng_state()
        if self._device is not None:
            self._cuda = torch.cuda.get_rng_state(self._device)

    def replay(self) -> None:
        torch.set_rng_state(self._cpu)
        if self._device is not None:
            torch.cuda.set_rng_state(self._cuda, self._device)

