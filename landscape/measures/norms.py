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
* Equation numbers are those of Dziugaite et al.'s reference code
  (``nitarshan/robust-generalization-measures``, ``ComplexityType``), which
  number Jiang et al.'s appendix. Values are not size-adjusted as that code's
  ``adjust_measure`` does (``(v - log m) / 2`` for logs, ``sqrt(v / m)``
  otherwise, ``m`` the training-set size): for one ``m`` that is a strictly
  increasing transform, so rank statistics are unchanged.
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
    """Products and sums of the layers' squared spectral and Frobenius norms, as logs (natural).

    With ``s_i = ||W_i||_2`` and ``f_i = ||W_i||_F`` over the ``d`` layers
    (numbering of Dziugaite et al.'s reference code, which follows Jiang et al.'s appendix):

    * ``log_prod_spec = sum_i log s_i^2`` (Eq. 32, ``log.prod.of.spec``);
    * ``log_sum_spec = log d + (1/d) sum_i log s_i^2``, the log of
      ``d (prod_i s_i^2)^(1/d)`` (Eq. 35, ``log.sum.of.spec``);
    * ``log_prod_frob = sum_i log f_i^2`` (Eq. 37, ``log.prod.of.fro``);
    * ``fro_over_spec = sum_i f_i^2 / s_i^2`` (Eq. 33), the factor of the
      spectral bound (:func:`margin_normalised`).

    An all-zero layer makes the products 0 (log -inf; the reference code would
    return -inf): every value is then None and ``note`` names the layers. So
    it is without any layer (``d = 0``). ``n_layers`` is ``d``.
    """
    layers = layer_weights(model)
    spec = [float(torch.linalg.matrix_norm(as_matrix(w), ord=2)) for _, w in layers]
    frob = [float(torch.linalg.matrix_norm(as_matrix(w), ord="fro")) for _, w in layers]
    d = len(spec)
    zero = [n for (n, _), s in zip(layers, spec) if s == 0.0]
    if d == 0 or zero:
        note = ("no layer weights (no parameter with >= 2 dimensions)" if d == 0 else
                f"all-zero layer(s) {', '.join(zero)}: the products of norms are 0 and their logs -inf")
        return {"log_prod_spec": None, "log_sum_spec": None, "log_prod_frob": None, "fro_over_spec": None,
                "n_layers": d, "note": note}
    log_prod = sum(2 * math.log(s) for s in spec)
    return {"log_prod_spec": log_prod, "log_sum_spec": math.log(d) + log_prod / d,
            "log_prod_frob": sum(2 * math.log(f) for f in frob),
            "fro_over_spec": sum((f / s) ** 2 for f, s in zip(frob, spec)), "n_layers": d, "note": None}


def margin_normalised(spec: dict, path: float, gamma: float) -> dict:
    """Jiang et al.'s margin-normalised measures, numbered as in Dziugaite et al.'s reference code.

    ``spec`` is :func:`spectral_measures`' result, ``path`` :func:`path_norm`
    and ``gamma > 0`` the margin (:func:`landscape.measures.outputs.margin_gamma`, logit units):

    * ``inverse_margin = 1 / gamma^2`` (Eq. 22);
    * ``log_spec_orig = log(prod_i s_i^2 / gamma^2 * sum_i f_i^2 / s_i^2)``
      ``= log_prod_spec - 2 log gamma + log fro_over_spec`` (Eq. 30, ``LOG_SPEC_ORIG_MAIN``:
      the spectral bound of Bartlett et al. 2017 over the squared margin);
    * ``path_norm_over_margin = path / gamma^2`` (Eq. 43).

    ``log_spec_orig`` is None when ``spec`` has no values (an all-zero layer).
    """
    lps = spec["log_prod_spec"]
    return {"inverse_margin": 1.0 / gamma**2,
            "log_spec_orig": None if lps is None else lps - 2 * math.log(gamma) + math.log(spec["fro_over_spec"]),
            "path_norm_over_margin": path / gamma**2}


def flat_weights(model: nn.Module) -> torch.Tensor:
    """The layer weights of ``model`` as one float64 CPU vector, in registration order."""
    return torch.cat([w.reshape(-1).double().cpu() for _, w in layer_weights(model)])


def distance_to_init(model: nn.Module, init: nn.Module) -> float:
    """``||w - w0||_2`` over the layer weights of ``model`` and of ``init`` (same architecture).

    The square root of Eq. 40 of the reference code (``FRO_DIST = sum_i ||W_i - W0_i||_F^2``): a strictly
    increasing transform, so every rank statistic is the same.
    """
    return float((flat_weights(model) - flat_weights(init)).norm())


def num_params(model: nn.Module) -> int:
    """Number of layer-weight scalars (biases and normalisation parameters left out)."""
    return sum(w.numel() for _, w in layer_weights(model))


@torch.no_grad()
def path_norm(model: nn.Module, input_shape: tuple[int, ...]) -> float:
    """Jiang's ``path.norm`` (Eq. 44): sum of the network's outputs with every parameter squared, on an all-ones input.

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
