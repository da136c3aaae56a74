"""Gauss-Newton and empirical Fisher operators, with the Hessian operator's interface.

Both are positive semi-definite approximations of the Hessian of the mean
loss ``L = (1/N) sum_i l_i`` over the data (data, batches, reduction and
precision as in :class:`~landscape.hessian.operator.ModelOperator`):

* GGN (Schraudolph 2002; Martens, "New insights and perspectives on the
  natural gradient method", JMLR 2020): ``G = J^T H_out J`` summed over the
  batches like the Hessian, with ``J`` the Jacobian of the model's outputs
  with respect to the parameters and ``H_out`` the Hessian of the batch loss
  with respect to the outputs.  A product is ``J^T (H_out (J v))``: ``J v``
  by the double-vector-Jacobian trick, two backward passes more.
* Empirical Fisher (Kunstner et al., NeurIPS 2019): ``F = (1/N) sum_i g_i
  g_i^T`` with ``g_i`` the gradient of sample ``i``'s loss (``loss_fn`` on a
  batch of that one sample), from ``torch.func.vmap`` over the batch.  It is
  *not* the Fisher information (which takes expectations over the model's
  own labels); it is what "empirical Fisher" names in that paper.

Nothing is kept between products (each recomputes the batch's forward pass).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from landscape.hessian.operator import ModelOperator


class GGNOperator(ModelOperator):
    """The generalised Gauss-Newton matrix ``J^T H_out J`` of the mean loss over ``data``."""

    kind = "ggn"

    def _batch_product(self, i, x, y, pieces):
        out = self._forward(x)
        u = torch.zeros_like(out, requires_grad=True)
        jt_u = torch.autograd.grad(out, self._leaves, grad_outputs=u, create_graph=True, allow_unused=True)
        pairs = [(g, p) for g, p in zip(jt_u, pieces) if g is not None]
        jv = torch.autograd.grad([g for g, _ in pairs], u, grad_outputs=[p for _, p in pairs])[0]
        z = out.detach().requires_grad_(True)
        gz = torch.autograd.grad(self._criterion(z, y), z, create_graph=True)[0]
        h_jv = torch.autograd.grad(gz, z, grad_outputs=jv)[0]
        return torch.autograd.grad(out, self._leaves, grad_outputs=h_jv, allow_unused=True)


class FisherOperator(ModelOperator):
    """The empirical Fisher ``(1/N) sum_i g_i g_i^T`` (per-sample loss gradients) over ``data``."""

    kind = "fisher"

    def _weight(self, n: int) -> float:
        return 1.0 / self.num_samples  # a batch's product is already the sum over its samples

    def _batch_product(self, i, x, y, pieces):
        frozen = {n: t.detach() for n, t in self._state.items()}

        def sample_loss(leaves, xi, yi):
            state = {**frozen, **dict(zip(self.names, leaves))}
            return self._criterion(functional_call(self.model, state, (xi.unsqueeze(0),)), yi.unsqueeze(0))

        leaves = tuple(t.detach() for t in self._leaves)
        per_sample = vmap(grad(sample_loss), in_dims=(None, 0, 0))(leaves, x, y)  # each [n, *shape]
        dots = sum(g.flatten(1) @ p.reshape(-1) for g, p in zip(per_sample, pieces))  # [n]
        return [torch.tensordot(dots, g, dims=1) for g in per_sample]


def ggn_operator(model: nn.Module, loss_fn: Callable, data: Iterable, batch_fn: Callable | None = None,
                 params: Sequence[str] | None = None, reduction: str | None = None) -> GGNOperator:
    """The generalised Gauss-Newton matrix of the mean loss over ``data``; arguments as :func:`hessian_operator`."""
    return GGNOperator(model, loss_fn, data, params=params, batch_fn=batch_fn, reduction=reduction)


def fisher_operator(model: nn.Module, loss_fn: Callable, data: Iterable, batch_fn: Callable | None = None,
                    params: Sequence[str] | None = None, reduction: str | None = None) -> FisherOperator:
    """The empirical Fisher of the per-sample losses over ``data``; arguments as :func:`hessian_operator`."""
    return FisherOperator(model, loss_fn, data, params=params, batch_fn=batch_fn, reduction=reduction)
