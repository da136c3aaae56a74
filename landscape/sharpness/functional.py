"""The sub-batch loss at perturbed weights, evaluated without touching the model.

Weights are perturbed as ``w + c * u`` where ``u`` is a parameter-shaped
``dict[str, Tensor]`` (docs/architecture.md) over the parameters with ``requires_grad``
and ``c`` is the scaling: ``c = 1`` (standard) or ``c = |w|`` elementwise
(adaptive). The loss is computed with :func:`torch.func.functional_call`, so
the model's own parameters and buffers are never written. The model runs in
eval mode (BatchNorm uses its running statistics, dropout is off), which makes
``L_B`` a deterministic function of the weights; the previous train/eval flags
are restored afterwards.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call

from landscape.errors import LandscapeError
from landscape.tensors import Vector


class PerturbedLoss:
    """``L_B(w + c * u)`` and its gradient in ``u`` for one model and loss.

    ``loss_fn(outputs, y)`` must return the mean loss over the sub-batch.
    ``chunk`` caps how many images go through the model at once; chunks are
    weighted by their size, so the value is the loss over the whole sub-batch
    (exact in eval mode, where samples do not interact).
    """

    def __init__(self, model: nn.Module, loss_fn: Callable, adaptive: bool = False, chunk: int | None = None):
        self.model = model
        self.loss_fn = loss_fn
        self.base: Vector = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
        if not self.base:
            raise LandscapeError("the model has no parameters with requires_grad=True to perturb")
        self.scale: Vector | None = {n: w.abs() for n, w in self.base.items()} if adaptive else None
        first = next(iter(self.base.values()))
        self.device, self.dtype = first.device, first.dtype
        if chunk is not None and chunk < 1:
            raise LandscapeError(f"batch_size must be a positive integer, got {chunk}")
        self.chunk = chunk

    def zeros(self) -> Vector:
        """The zero perturbation."""
        return {n: torch.zeros_like(w) for n, w in self.base.items()}

    def _params(self, u: Vector) -> Vector:
        if self.scale is None:
            return {n: w + u[n] for n, w in self.base.items()}
        return {n: w + self.scale[n] * u[n] for n, w in self.base.items()}

    def _pieces(self, x: torch.Tensor, y: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor, float]]:
        x = x.to(self.device, non_blocking=True)
        if torch.is_floating_point(x):
            x = x.to(self.dtype)
        y = y.to(self.device, non_blocking=True)
        n = len(x)
        size = n if self.chunk is None else min(self.chunk, n)
        return [(x[i : i + size], y[i : i + size], len(x[i : i + size]) / n) for i in range(0, n, size)]

    def value(self, u: Vector, batch: tuple[torch.Tensor, torch.Tensor]) -> float:
        """``L_B(w + c * u)`` as a Python float, without building a graph."""
        with torch.no_grad():
            params = self._params(u)
            total = 0.0
            for xs, ys, weight in self._pieces(*batch):
                total += weight * float(self.loss_fn(functional_call(self.model, params, (xs,)), ys))
        return _finite(total, u)

    def value_and_grad(self, u: Vector, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[float, Vector]:
        """``L_B(w + c * u)`` and its gradient with respect to ``u``."""
        leaves = {n: t.detach().requires_grad_(True) for n, t in u.items()}
        grads = {n: torch.zeros_like(t) for n, t in u.items()}
        total = 0.0
        for xs, ys, weight in self._pieces(*batch):
            with torch.enable_grad():
                loss = weight * self.loss_fn(functional_call(self.model, self._params(leaves), (xs,)), ys)
                parts = torch.autograd.grad(loss, list(leaves.values()), allow_unused=True)
            for name, part in zip(leaves, parts):
                if part is not None:
                    grads[name] += part
            total += float(loss.detach())
        return _finite(total, u), grads


def _finite(value: float, u: Vector) -> float:
    if value != value or value in (float("inf"), float("-inf")):
        if all(not bool(t.any()) for t in u.values()):  # unperturbed: no radius can help
            raise LandscapeError(f"the loss is not finite ({value}) at the model's own weights: "
                                 "its weights, buffers or data hold NaN or inf")
        raise LandscapeError(f"the loss is not finite ({value}) at a perturbed point; try a smaller rho")
    return value
