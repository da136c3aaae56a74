"""Norm-based measures of the weights (Jiang et al. 2020, Sec. C).

Conventions
-----------
* The model given is the folded network (:func:`landscape.measures.fold.fold_batchnorm`):
  eval-mode BatchNorm is folded into the preceding layer first, so every
  measure here is a function of the network, not of its parametrisation.
* A *layer* is a parameter with two or more dimensions (Linear and Conv
  weights); biases and normalisation parameters are not layers. ``d`` is the
  number of layers. Norms, distances and the parameter count run over layer
  weights only (as Dziugaite et al.'s ``get_weights_only``).
* A convolution kernel ``[C_out, C_in, k_h, k_w]`` is reshaped to the matrix
  ``[C_out, C_in * k_h * k_w]`` and its spectral norm is that matrix's largest
  singular value (Jiang's and Dziugaite's convention). This is *not* the
  operator norm of the convolution itself, which can be up to ``sqrt(k_h k_w)``
  times larger.
* Products are reported as logarithms (natural log) because they over- and
  underflow: ``log_prod_spec = sum_i log ||W_i||_2^2``.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


def layer_weights(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """``(name, weight)`` of every parameter with >= 2 dimensions, in registration order."""
    return [(n, p.detach()) for n, p in model.named_parameters() if p.dim() >= 2]


def as_matrix(w: torch.Tensor) -> torch.Tensor:
    """A weight as a matrix ``[out, rest]`` (conv kernels flattened over in-channels and taps), float64."""
    return w.reshape(w.shape[0], -1).double()


def spectral_norms(model: nn.Module) -> list[float]:
    """Largest singular value of each layer's matrix (see module conventions)."""
    return [float(torch.linalg.matrix_norm(as_matrix(w), ord=2)) for _, w in layer_weights(model)]


def spectral_measures(model: nn.Module) -> dict:
    """``log_prod_spec = sum log s_i^2``, ``log_sum_spec = log d + (1/d) sum log s_i^2``, ``log_prod_frob``.

    ``log_sum_spec`` is the log of Jiang's sum-of-spectral-norms bound
    ``d * (prod_i s_i^2)^(1/d)`` (Eq. 42); ``log_prod_frob = sum log ||W_i||_F^2``.
    """
    spec = spectral_norms(model)
    frob = [float(torch.linalg.matrix_norm(as_matrix(w), ord="fro")) for _, w in layer_weights(model)]
    d = len(spec)
    log_prod = sum(2 * math.log(s) for s in spec)
    return {"log_prod_spec": log_prod, "log_sum_spec": math.log(d) + log_prod / d,
            "log_prod_frob": sum(2 * math.log(f) for f in frob), "n_layers": d}


def flat_weights(model: nn.Module) -> torch.Tensor:
    """The layer weights of ``model`` as one float64 CPU vector, in registration order."""
    return torch.cat([w.reshape(-1).double().cpu() for _, w in layer_weights(model)])


def distance_to_init(model: nn.Module, init: nn.Module) -> float:
    """``||w - w0||_2`` over the layer weights of ``model`` and of ``init`` (same architecture)."""
    return float((flat_weights(model) - flat_weights(init)).norm())


def num_params(model: nn.Module) -> int:
    """Number of layer-weight scalars (biases and normalisation parameters left out)."""
    return sum(w.numel() for _, w in layer_weights(model))


@torch.no_grad()
def path_norm(model: nn.Module, input_shape: tuple[int, ...]) -> float:
    """Jiang's ``path.norm``: sum of the outputs of the network with every parameter squared, on an all-ones input.

    For a bias-free ReLU/linear network this is ``sum over input-output paths
    of prod w^2`` (the squared l2 path norm of Neyshabur et al. 2015). Biases
    are squared too. The copy runs in eval mode; pass the folded network, in
    which no BatchNorm is left. ``input_shape`` excludes the batch dimension.
    """
    squared = copy.deepcopy(model).eval()
    for p in squared.parameters():
        p.pow_(2)
    p0 = next(squared.parameters())
    out = squared(torch.ones((1, *input_shape), device=p0.device, dtype=p0.dtype))
    return float(out.double().sum())
