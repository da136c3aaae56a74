r"""Relative flatness of the classifier layer (Petzka et al., "Relative Flatness and Generalization", NeurIPS 2021).

For a model whose logits are ``z = W phi(x) + b``, with ``phi(x)`` in ``R^d``
the penultimate features (the input of the last ``nn.Linear``) and ``W`` of
shape ``[C, d]`` whose row ``w_s`` holds the weights of output neuron ``s``,
and the empirical loss ``L(W) = (1/N) sum_n l(z_n, y_n)`` over ``N`` training
images, the paper's Definition 3 (trace version, feature layer ``phi``) is::

    kappa^phi_Tr(W) = sum_{s, s' = 1}^{C} <w_s, w_s'> Tr(H_{s,s'})

with ``H_{s,s'} = d^2 L / (dw_s dw_s')`` the ``d x d`` block of the Hessian of
``L`` in ``W``; its authors' code (``calculateNeuronwiseHessians_fc_layer``)
takes the same blocks of the mean training loss, without regulariser here
(their code adds ``2 alpha <w_s, w_s>`` for a weight-decay term, which is not
part of the definition). Since ``z`` is linear in ``W`` the Hessian is
exactly ``H_{(s,k),(s',k')} = (1/N) sum_n A_n[s,s'] phi_nk phi_nk'`` with
``A_n = d^2 l / dz^2`` the ``C x C`` Hessian of the loss in the logits of
image ``n``, so::

    Tr(H_{s,s'}) = (1/N) sum_n ||phi_n||^2 A_n[s,s']
    kappa        = (1/N) sum_n ||phi_n||^2 Tr(W W^T A_n)

For cross-entropy ``A_n = diag(p_n) - p_n p_n^T`` (``p_n`` the softmax), which
the tests check, together with a dense float64 autograd Hessian. ``A_n`` is
taken by ``torch.func.hessian`` of the model's own loss, so no second-order
term is dropped. Units: those of the loss (nats); larger means sharper.

Invariance: multiplying ``W`` by ``c`` and dividing ``phi`` by ``c`` (a
rescaling of the layers before, e.g. a BatchNorm's affine parameters ahead of a
ReLU) leaves ``kappa`` unchanged, while the plain Hessian trace of the layer
changes by ``1 / c^2``; anything that leaves ``phi`` and ``W`` as they are
(e.g. a conv's weights times ``c`` with its BatchNorm statistics adjusted)
leaves it unchanged too. It is not invariant to rescaling single features
(the paper's neuron-wise variant normalises them first; not implemented).
Cost: one forward pass over the ``N`` images (chunks of ``chunk``), plus
``N`` Hessians of size ``C x C``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import hessian, vmap

from landscape.tensors import eval_mode

REFERENCE = "Petzka et al., Relative Flatness and Generalization, NeurIPS 2021"


class NoLinearHead(Exception):
    """The model's logits are not the output of its last ``nn.Linear`` on 2-D features (message says why)."""


def head_features(model: nn.Module, x: torch.Tensor, chunk: int = 128) -> tuple[nn.Linear, torch.Tensor, torch.Tensor]:
    """``(head, phi, logits)``: the last ``nn.Linear`` run, its inputs ``phi [N, d]`` and the model's logits ``[N, C]``.

    The model runs in eval mode (flags restored), without gradients, in
    chunks of ``chunk`` images on its own device and dtype; ``phi`` and the
    logits come back in float64 on the CPU. Raises :class:`NoLinearHead` when
    no ``nn.Linear`` runs, when its input is not ``[batch, d]`` or when the
    model's output is not exactly ``head(phi)`` (a layer after the head).
    """
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise NoLinearHead("the model has no nn.Linear layer")
    seen: list[tuple[nn.Linear, torch.Tensor, torch.Tensor]] = []

    def hook(module, inputs, output):
        seen.append((module, inputs[0], output))

    handles = [m.register_forward_hook(hook) for m in linears]
    p = next(model.parameters())
    phis, logits = [], []
    head = None
    try:
        with eval_mode(model), torch.no_grad():
            for i in range(0, len(x), chunk):
                seen.clear()
                xb = x[i:i + chunk].to(p.device, p.dtype)
                out = model(xb)
                if not seen:
                    raise NoLinearHead("no nn.Linear layer ran in the forward pass")
                module, phi, z = seen[-1]
                if phi.dim() != 2 or out.dim() != 2 or phi.shape[0] != len(xb):
                    raise NoLinearHead(f"the last nn.Linear takes {tuple(phi.shape)} features, not [batch, d]")
                if out.shape != z.shape or not torch.equal(out, z):
                    raise NoLinearHead("the model's output is not the output of its last nn.Linear")
                head = module
                phis.append(phi.detach().double().cpu())
                logits.append(out.detach().double().cpu())
    finally:
        for h in handles:
            h.remove()
    return head, torch.cat(phis), torch.cat(logits)


def logit_hessians(loss_fn, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``A [N, C, C]``: the Hessian of ``loss_fn`` in the logits of each image (float64), by ``torch.func``.

    ``loss_fn(z, y)`` is the model's mean loss; on one image it is that image's loss.
    """
    def one(z, t):
        return loss_fn(z.unsqueeze(0), t.unsqueeze(0))

    return vmap(hessian(one), in_dims=(0, 0))(logits.double(), y.cpu())


def relative_flatness(model: nn.Module, loss_fn, x: torch.Tensor, y: torch.Tensor, chunk: int = 128) -> dict:
    """Petzka et al.'s ``kappa^phi_Tr`` of ``model``'s last linear layer on ``(x, y)`` (see module docstring).

    Returns ``{"relative_flatness", "block_traces", "head_trace", "head", "n_samples", "n_features",
    "n_classes"}``: ``block_traces`` is the ``C x C`` matrix ``Tr(H_{s,s'})`` (list of lists), ``head_trace``
    its trace ``Tr(H)`` (the plain, not invariant, Hessian trace of the layer), ``head`` the layer's name.
    Raises :class:`NoLinearHead` for a model whose logits are not its last ``nn.Linear``'s output.
    """
    head, phi, logits = head_features(model, x, chunk)
    a = logit_hessians(loss_fn, logits, y)  # [N, C, C]
    blocks = torch.einsum("n,nst->st", phi.pow(2).sum(1), a) / len(phi)  # Tr(H_{s,s'})
    w = head.weight.detach().double().cpu()
    gram = w @ w.T  # <w_s, w_s'>
    name = next(n for n, m in model.named_modules() if m is head)
    return {"relative_flatness": float((gram * blocks).sum()), "block_traces": blocks.tolist(),
            "head_trace": float(blocks.trace()), "head": name, "n_samples": len(phi), "n_features": phi.shape[1],
            "n_classes": logits.shape[1]}


def measure(ctx) -> dict:
    """The ``relative_flatness`` group of the measure registry: on ``ctx.train_data`` with the checkpoint's loss.

    A model without a final linear head gets ``None`` and a ``details.note`` saying why.
    """
    x, y = ctx.train_data
    try:
        res = relative_flatness(ctx.model, ctx.ck.loss_fn, x, y)
    except NoLinearHead as exc:
        return {"relative_flatness": None, "details": {"note": f"relative flatness needs a final linear layer: {exc}"}}
    return {"relative_flatness": res["relative_flatness"], "details": res}
