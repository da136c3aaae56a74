"""Norm-based measures of the weights (Jiang et al. 2020, Sec. C).

Conventions
-----------
* A *layer* is a parameter with two or more dimensions (Linear and Conv
  weights); biases and BatchNorm affine parameters are not layers. ``d`` is the
  number of layers.
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


def distance_to_init(model: nn.Module, init_state: dict[str, torch.Tensor]) -> float:
    """``||w - w_0||_2`` over all trainable parameters together (buffers excluded)."""
    total = 0.0
    for name, p in model.named_parameters():
        total += float(((p.detach().double() - init_state[name].to(p.device).double()) ** 2).sum())
    return math.sqrt(total)


def num_params(model: nn.Module) -> int:
    """Number of trainable scalars."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@torch.no_grad()
def path_norm(model: nn.Module, input_shape: tuple[int, ...]) -> float:
    """Jiang's ``path.norm``: sum of the outputs of the network with every parameter squared, on an all-ones input.

    For a bias-free ReLU/linear network this is ``sum over input-output paths
    of prod w^2`` (the squared l2 path norm of Neyshabur et al. 2015). The
    copy runs in eval mode; BatchNorm running statistics are left as they are
    (Jiang's code does the same). ``input_shape`` excludes the batch dimension.
    """
    squared = copy.deepcopy(model).eval()
    for p in squared.parameters():
        p.pow_(2)
    p0 = next(squared.parameters())
    out = squared(torch.ones((1, *input_shape), device=p0.device, dtype=p0.dtype))
    return float(out.double().sum())
