"""Fold eval-mode BatchNorm into the preceding conv/linear layer, so weight-based measures see the function.

A conv or linear layer ``y = W x + b`` followed by eval-mode BatchNorm
``gamma (y - mu) / sqrt(var + eps) + beta`` computes the same function as the
single layer ``W' = s W``, ``b' = s (b - mu) + beta`` with
``s = gamma / sqrt(var + eps)`` per output channel. :func:`fold_batchnorm`
returns such a copy, the reparametrisation Neyshabur's and Dziugaite et al.'s
released code (``_reparam``) applies before every measure. Multiplying a
conv's weights by ``c`` and adjusting the BatchNorm statistics (mean x c,
variance x c^2) changes the raw weights but not the folded ones.

What is folded
--------------
* A *BatchNorm* is any ``torch.nn`` BatchNorm (and subclass) with running
  statistics, or a frozen BatchNorm (torchvision's ``FrozenBatchNorm2d``,
  timm's ``FrozenBatchNormAct2d``: running statistics held as buffers). A
  norm+activation module in timm's convention (``BatchNormAct2d``,
  ``SyncBatchNormAct``: normalise, then its ``drop`` module, then its
  ``act`` module, and no other submodule) is folded too: the normalisation
  goes into the layer and ``nn.Sequential(drop, act)`` stays in its place. A
  plain BatchNorm is replaced by ``nn.Identity``.
* The layer is a ``Conv1d/2d/3d`` or ``Linear`` whose ``forward`` is the
  ``torch.nn`` one (a weight-standardised conv, whose forward renormalises
  its weight, cannot absorb a scale).
* Which BatchNorm follows which layer is read from the ``torch.fx`` graph
  (BatchNorms traced as leaves): a BatchNorm whose only input is such a
  layer, called once, whose output nothing else uses. When the model cannot
  be traced, the module registration order is used instead (the BatchNorm
  registered directly after a layer, Neyshabur's rule), which is only a
  guess about the data flow.

Every fold is checked
---------------------
With ``input_shape`` (as the measure suite always passes), the logits of
float64 copies of the model before and after folding are compared on a fixed
random batch (:data:`VERIFY_BATCH` inputs of standard normal noise, seed 0);
a change larger than :data:`VERIFY_RTOL` times the largest logit raises a
:class:`LandscapeError` naming the model. Without ``input_shape`` the
registration-order fallback refuses to guess (the fx rule does not depend on
the forward order of the modules and runs unchecked; ``Folded.verified`` says
which).

What is not folded
------------------
A BatchNorm that does not directly follow a foldable layer (a pre-activation
block normalises *before* its conv, as in ResNetV2; one after a residual sum
or a concatenation), LayerNorm, GroupNorm, InstanceNorm and RMSNorm (which
normalise per sample), and any other module with "norm" in its class name
that holds its own parameters or buffers stay in place and are listed in
``Folded.unfolded``. Weight-based measures of such a model are not invariant
to a function-preserving rescaling of the layers before those norms
(``Folded.invariant`` is False and records say why); their affine parameters
have one dimension, so they are left out of the norms like biases.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from dataclasses import dataclass, field

import torch
from torch import fx, nn

from landscape.errors import LandscapeError

_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_LAYER_FORWARDS = {cls.forward for cls in _LAYERS}
#: Normalisation layers, listed in ``Folded.unfolded`` when one is left after folding (BatchNorm and
#: InstanceNorm are ``_NormBase``s; the per-sample ones make a rescaling of the layer before invisible).
_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm)
#: Submodules a norm+activation module may have (timm's convention: normalise, drop, act).
_NORM_ACT_CHILDREN = ("drop", "act")
#: Inputs of the logit check and its tolerance (relative to the largest absolute logit, float64).
VERIFY_BATCH = 4
VERIFY_RTOL = 1e-6

#: The convention every measure record states (``provenance.weights``).
CONVENTION = ("eval-mode BatchNorm folded into the preceding conv/linear layer (timm's norm+activation modules "
              "too: their activation stays in place); the logits are checked after folding; norms, distances, "
              "spectral and Frobenius terms and parameter counts over layer weights only (parameters with >= 2 "
              "dimensions of the folded network: no biases, no normalisation parameters); PAC-Bayes noise on every "
              "parameter of the folded network (folded biases included; folded BatchNorm has no parameters left)")


@dataclass
class Folded:
    """A folded copy of a model: ``model`` (eval mode), the ``pairs`` folded and what stayed ``unfolded``.

    ``method``: how the pairs were found (``"fx"`` or ``"registration order"``);
    ``verified``: whether the logits were checked after folding (True when nothing was folded).
    """

    model: nn.Module
    pairs: list[tuple[str, str]] = field(default_factory=list)  # (layer name, batchnorm name)
    unfolded: list[str] = field(default_factory=list)  # normalisation modules left in place
    method: str = "fx"
    verified: bool = False

    @property
    def invariant(self) -> bool:
        """Whether the weight-based measures are functions of the network (no normalisation left unfolded)."""
        return not self.unfolded

    def reason(self) -> str | None:
        """Why the weight-based measures are not invariant (None when they are)."""
        if self.invariant:
            return None
        shown = ", ".join(self.unfolded[:5]) + (f" and {len(self.unfolded) - 5} more" if len(self.unfolded) > 5
                                                else "")
        return (f"{len(self.unfolded)} normalisation module(s) not folded ({shown}): weight-based measures change "
                "under a function-preserving rescaling of the layers before them")

    def summary(self) -> dict:
        """Plain-data description for records (``invariant`` and its ``reason`` included)."""
        return {"convention": CONVENTION, "folded": len(self.pairs), "unfolded": list(self.unfolded),
                "invariant": self.invariant, "reason": self.reason(), "method": self.method,
                "verified": self.verified}


def _batchnorm(m: nn.Module) -> bool:
    """A BatchNorm with running statistics (torch's, a frozen one, or a norm+activation one).

    Without running statistics (``track_running_stats=False``) BatchNorm normalises by batch statistics even in
    eval mode: not foldable.
    """
    if not isinstance(m, nn.modules.batchnorm._BatchNorm) and "FrozenBatchNorm" not in type(m).__name__:
        return False
    stats = [getattr(m, k, None) for k in ("running_mean", "running_var")]
    return all(isinstance(t, torch.Tensor) for t in stats) and isinstance(getattr(m, "eps", None), float)


def _foldable_norm(m: nn.Module) -> bool:
    """A BatchNorm whose submodules, if any, are timm's ``drop`` and ``act`` (applied after normalising)."""
    return _batchnorm(m) and all(name in _NORM_ACT_CHILDREN for name, _ in m.named_children())


def _foldable_layer(m: nn.Module) -> bool:
    return isinstance(m, _LAYERS) and type(m).forward in _LAYER_FORWARDS


def _is_norm(m: nn.Module) -> bool:
    if isinstance(m, _NORMS) or _batchnorm(m):
        return True
    own = list(m.named_parameters(recurse=False)) + list(m.named_buffers(recurse=False))
    return "norm" in type(m).__name__.lower() and bool(own)


class _Tracer(fx.Tracer):
    """``torch.fx`` tracing that keeps every BatchNorm (subclasses included) as one call."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return _batchnorm(m) or super().is_leaf_module(m, qualname)


def _pairs_fx(model: nn.Module) -> list[tuple[str, str]] | None:
    """(layer, BatchNorm) pairs from the traced graph; None when the model cannot be traced."""
    try:
        graph = _Tracer().trace(model)
    except Exception:  # noqa: BLE001 (any tracing failure: fall back to registration order)
        return None
    modules = dict(model.named_modules())
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    pairs = []
    for node in graph.nodes:
        if node.op != "call_module" or not _foldable_norm(modules.get(node.target)):
            continue
        src = node.args[0] if len(node.args) == 1 and not node.kwargs else None
        if (isinstance(src, fx.Node) and src.op == "call_module" and _foldable_layer(modules.get(src.target))
                and len(src.users) == 1 and calls[src.target] == 1 and calls[node.target] == 1):
            pairs.append((src.target, node.target))
    return pairs


def _pairs_order(model: nn.Module) -> list[tuple[str, str]]:
    """(layer, BatchNorm) pairs of modules registered one after the other (a BatchNorm's own children skipped)."""
    units, inside = [], None
    for name, m in model.named_modules():
        if inside is not None and name.startswith(inside + "."):
            continue
        if _batchnorm(m):
            units.append((name, m))
            inside = name
        elif not list(m.children()):
            units.append((name, m))
    return [(a, b) for (a, ma), (b, mb) in zip(units, units[1:]) if _foldable_layer(ma) and _foldable_norm(mb)]


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


def _remainder(bn: nn.Module) -> nn.Module:
    """What stays in a folded BatchNorm's place: ``nn.Identity`` or its ``drop`` then ``act``."""
    children = OrderedDict((n, getattr(bn, n)) for n in _NORM_ACT_CHILDREN if isinstance(getattr(bn, n, None),
                                                                                         nn.Module))
    return nn.Sequential(children) if children else nn.Identity()


def _apply(model: nn.Module, pairs: list[tuple[str, str]]) -> None:
    modules = dict(model.named_modules())
    for layer_name, bn_name in pairs:
        _fold_pair(modules[layer_name], modules[bn_name])
        _set(model, bn_name, _remainder(modules[bn_name]))


@torch.no_grad()
def _verify(model: nn.Module, pairs: list[tuple[str, str]], input_shape: tuple[int, ...], name: str,
            method: str) -> None:
    """Raise unless folding ``pairs`` in a float64 copy leaves the logits of a fixed random batch unchanged."""
    p = next(model.parameters())
    gen = torch.Generator().manual_seed(0)
    x = torch.randn((VERIFY_BATCH, *input_shape), generator=gen, dtype=torch.float64).to(p.device)
    work = copy.deepcopy(model).double()  # one float64 copy: the logits before, then after folding in it
    before = work(x).double()
    _apply(work, pairs)
    after = work(x).double()
    del work
    change = float((after - before).abs().max())
    scale = float(before.abs().max())
    if not change <= VERIFY_RTOL * scale:
        raise LandscapeError(
            f"folding BatchNorm into the preceding layers of {name} (pairs found by {method}) changes its logits by "
            f"{change:.3g} (largest logit {scale:.3g}): a BatchNorm does not follow the layer it was paired with; "
            "the weight-based measures of this model cannot be made invariant this way")


def fold_batchnorm(model: nn.Module, state: dict[str, torch.Tensor] | None = None,
                   input_shape: tuple[int, ...] | None = None, name: str | None = None) -> Folded:
    """A folded, eval-mode copy of ``model`` (with the weights and buffers of ``state`` when given).

    ``input_shape`` (one input, without the batch dimension) turns on the
    logit check; ``name`` names the model in its error (default: its class).
    The original is not modified. See the module docstring for the rules.
    Raises :class:`LandscapeError` when the check fails, and when the model
    cannot be traced and no ``input_shape`` is given to check the fallback.
    """
    folded = copy.deepcopy(model).eval()
    if state is not None:
        folded.load_state_dict(state)
    name = name or type(model).__name__
    pairs = _pairs_fx(folded)
    method = "fx"
    if pairs is None:
        pairs, method = _pairs_order(folded), "registration order"
    if pairs and input_shape is not None:
        _verify(folded, pairs, tuple(input_shape), name, method)
    elif pairs and method != "fx":
        raise LandscapeError(f"{name} cannot be traced by torch.fx, and folding its BatchNorm by module "
                             "registration order needs input_shape to check the logits")
    _apply(folded, pairs)
    unfolded = [n for n, m in folded.named_modules() if _is_norm(m)]
    return Folded(folded, pairs, unfolded, method, verified=input_shape is not None or not pairs)
