"""Fold eval-mode BatchNorm into the preceding conv/linear layer, so weight-based measures see the function.

A conv or linear layer ``y = W x + b`` followed by eval-mode BatchNorm
``gamma (y - mu) / sqrt(var + eps) + beta`` computes the same function as the
single layer ``W' = s W``, ``b' = s (b - mu) + beta`` with
``s = gamma / sqrt(var + eps)`` per output channel. :func:`fold_batchnorm`
returns such a copy (BatchNorm replaced by ``nn.Identity``), the
reparametrisation Neyshabur's and Dziugaite et al.'s released code
(``_reparam``) applies before every measure. Multiplying a conv's weights by
``c`` and adjusting the BatchNorm statistics (mean x c, variance x c^2) changes
the raw weights but not the folded ones.

Which BatchNorm follows which layer is read from the ``torch.fx`` graph (a
BatchNorm whose only input is a conv/linear module whose output nothing else
uses); when the model cannot be traced, the module registration order is used
instead (the BatchNorm directly after a conv/linear leaf, Neyshabur's rule).
BatchNorm with no such predecessor, and LayerNorm/GroupNorm (which normalise
per sample and cannot be folded into a preceding layer), stay as they are and
are listed in :class:`Folded` ``.unfolded``; their affine parameters have one
dimension, so they are left out of the norms like biases.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn

_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_PER_SAMPLE = (nn.LayerNorm, nn.GroupNorm)

#: The convention every measure record states (``provenance.weights``).
CONVENTION = ("eval-mode BatchNorm folded into the preceding conv/linear layer; norms, distances, spectral and "
              "Frobenius terms and parameter counts over layer weights only (parameters with >= 2 dimensions of the "
              "folded network: no biases, no normalisation parameters); PAC-Bayes noise on every parameter of the "
              "folded network")


@dataclass
class Folded:
    """A folded copy of a model: ``model`` (eval mode), the ``pairs`` folded and what stayed ``unfolded``."""

    model: nn.Module
    pairs: list[tuple[str, str]] = field(default_factory=list)  # (layer name, batchnorm name)
    unfolded: list[str] = field(default_factory=list)  # normalisation modules left in place

    def summary(self) -> dict:
        """Plain-data description for records."""
        return {"convention": CONVENTION, "folded": len(self.pairs), "unfolded": list(self.unfolded)}


def _pairs_fx(model: nn.Module) -> list[tuple[str, str]] | None:
    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception:  # noqa: BLE001 (any tracing failure: fall back to registration order)
        return None
    modules = dict(model.named_modules())
    pairs = []
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(modules.get(node.target), _NORMS):
            continue
        src = node.args[0] if node.args else None
        if (isinstance(src, torch.fx.Node) and src.op == "call_module"
                and isinstance(modules.get(src.target), _LAYERS) and len(src.users) == 1):
            pairs.append((src.target, node.target))
    return pairs


def _pairs_order(model: nn.Module) -> list[tuple[str, str]]:
    leaves = [(n, m) for n, m in model.named_modules() if not list(m.children())]
    return [(a, b) for (a, ma), (b, mb) in zip(leaves, leaves[1:])
            if isinstance(ma, _LAYERS) and isinstance(mb, _NORMS)]


def _set(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


@torch.no_grad()
def _fold_pair(layer: nn.Module, bn: nn.Module) -> None:
    w = layer.weight
    var = bn.running_var.double()
    mean = bn.running_mean.double()
    gamma = bn.weight.double() if bn.weight is not None else torch.ones_like(var)
    beta = bn.bias.double() if bn.bias is not None else torch.zeros_like(var)
    scale = gamma / torch.sqrt(var + bn.eps)
    bias = layer.bias.double() if layer.bias is not None else torch.zeros_like(var)
    w.copy_((w.double() * scale.reshape(-1, *([1] * (w.dim() - 1)))).to(w.dtype))
    new_bias = ((bias - mean) * scale + beta).to(w.dtype)
    if layer.bias is None:
        layer.bias = nn.Parameter(new_bias)
    else:
        layer.bias.copy_(new_bias)


def fold_batchnorm(model: nn.Module, state: dict[str, torch.Tensor] | None = None) -> Folded:
    """A folded, eval-mode copy of ``model`` (with the weights and buffers of ``state`` when given).

    The copy computes the same logits as ``model.eval()`` (up to rounding);
    the original is not modified. See the module docstring for the rules.
    """
    folded = copy.deepcopy(model).eval()
    if state is not None:
        folded.load_state_dict(state)
    pairs = _pairs_fx(folded)
    if pairs is None:
        pairs = _pairs_order(folded)
    modules = dict(folded.named_modules())
    # without running statistics (track_running_stats=False) BatchNorm uses batch statistics: not foldable
    pairs = [(a, b) for a, b in pairs if modules[b].running_var is not None]
    for layer_name, bn_name in pairs:
        _fold_pair(modules[layer_name], modules[bn_name])
        _set(folded, bn_name, nn.Identity())
    unfolded = [n for n, m in folded.named_modules() if isinstance(m, _NORMS + _PER_SAMPLE)]
    return Folded(folded, pairs, unfolded)
