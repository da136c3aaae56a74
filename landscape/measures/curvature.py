"""Curvature beyond the Hessian: the exact Gauss-Newton (= Fisher) trace and the Fisher-Rao norm.

Both use ``torch.func`` on the model in eval mode (BatchNorm uses its running
statistics, so samples are independent) and the mean cross-entropy over the
``N`` images given.

* GGN: ``G = (1/N) sum_n J_n^T H_n J_n`` with ``J_n`` the ``[C, P]`` Jacobian
  of the logits and ``H_n = diag(p_n) - p_n p_n^T`` the softmax Hessian of
  the loss. For cross-entropy this equals the (true) Fisher information. Its
  trace is ``(1/N) sum_n [sum_c p_nc ||J_nc||^2 - ||sum_c p_nc J_nc||^2]``
  (units: loss per parameter^2, like the Hessian trace).
* Fisher-Rao norm (Liang et al. 2019; Jiang et al. 2020's ``fisher-rao``, which
  Dziugaite et al.'s reference code does not compute, so it has no equation
  number in the numbering used here; their Eq. 37 is ``log.prod.of.fro``):
  ``(d + 1)^2 / N * sum_n <w, grad_w loss_n>^2`` with ``d`` the number of
  layers (parameters with >= 2 dims); ``<w, grad loss_n>`` is one
  forward-mode derivative of the per-image losses along ``w``.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, jacrev, jvp, vmap

from landscape.measures.norms import layer_weights


def _state(model: nn.Module) -> tuple[dict, dict]:
    params = {n: p.detach() for n, p in model.named_parameters()}
    buffers = dict(model.named_buffers())
    return params, buffers


def _to_model(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None):
    p = next(model.parameters())
    return x.to(p.device, p.dtype), None if y is None else y.to(p.device)


#: Images whose logit Jacobians :func:`ggn_trace` holds at once.
GGN_CHUNK = 16


def ggn_trace(model: nn.Module, x: torch.Tensor, chunk: int = GGN_CHUNK) -> dict:
    """Exact trace of the GGN/Fisher of the mean cross-entropy over ``x`` (labels are not needed).

    Returns ``{"trace", "n_samples", "vjps", "gradients", "seconds"}``: ``vjps``
    is the number of per-image vector-Jacobian products (``N * C``) and
    ``gradients`` the same in units of one gradient over the ``N`` images
    (``= C``). The model must be in eval mode.
    """
    params, buffers = _state(model)

    def logits_one(prm, xi):
        return functional_call(model, (prm, buffers), (xi.unsqueeze(0),)).squeeze(0)

    jac = vmap(jacrev(logits_one), in_dims=(None, 0))
    start = time.perf_counter()
    total = torch.zeros((), dtype=torch.float64)
    n_classes = 0
    with torch.no_grad():
        for i in range(0, len(x), chunk):
            xb, _ = _to_model(model, x[i:i + chunk])
            prob = torch.softmax(functional_call(model, (params, buffers), (xb,)).double(), dim=1)
            n_classes = prob.shape[1]
            first = torch.zeros(len(xb), dtype=torch.float64, device=xb.device)
            mixed = []
            for j in jac(params, xb).values():  # [B, C, *shape]
                j = j.reshape(j.shape[0], j.shape[1], -1).double()
                first += torch.einsum("bc,bcp->b", prob, j * j)
                mixed.append(torch.einsum("bc,bcp->bp", prob, j))
            second = sum((m * m).sum(1) for m in mixed)
            total += (first - second).sum().cpu()
    return {"trace": float(total) / len(x), "n_samples": len(x), "vjps": len(x) * n_classes,
            "gradients": float(n_classes), "seconds": time.perf_counter() - start}


def fisher_rao_norm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int = 128) -> dict:
    """Jiang's Fisher-Rao norm ``(d+1)^2/N sum_n <w, grad_w CE_n>^2`` (see module docstring)."""
    params, buffers = _state(model)
    depth = len(layer_weights(model))
    start = time.perf_counter()
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(x), chunk):
            xb, yb = _to_model(model, x[i:i + chunk], y[i:i + chunk])

            def losses(prm, xb=xb, yb=yb):
                return F.cross_entropy(functional_call(model, (prm, buffers), (xb,)), yb, reduction="none")

            _, directional = jvp(losses, (params,), (params,))
            total += float((directional.double() ** 2).sum())
    return {"fisher_rao": (depth + 1) ** 2 * total / len(x), "depth": depth, "seconds": time.perf_counter() - start}


def gradient_seconds(model: nn.Module, loss_fn, x: torch.Tensor, y: torch.Tensor, chunk: int = 128) -> float:
    """Wall seconds of one gradient of the mean loss over ``x`` (the unit GGN costs are quoted in)."""
    start = time.perf_counter()
    model.zero_grad(set_to_none=True)
    for i in range(0, len(x), chunk):
        xb, yb = _to_model(model, x[i:i + chunk], y[i:i + chunk])
        (loss_fn(model(xb), yb) * len(xb) / len(x)).backward()
    model.zero_grad(set_to_none=True)
    return time.perf_counter() - start
