"""GCSAM: SAM with gradient centralisation before the ascent step.

Gradient centralisation (Yong et al., ECCV 2020) removes, from the gradient of
every weight tensor with two or more dimensions, its mean over each output
filter (all dimensions but the first). GCSAM (Hassan, Vakanski, Zhang and Xian, 2025)
applies it to the clean gradient before SAM's ascent step:

    g_c = g - mean_per_output_filter(g),   e = rho * g_c / (||g_c|| + 1e-12),   step(g+).

Biases and other 1-D tensors are left as they are. The descent uses g+ as
computed (not centralised), as in SAM.
"""

from __future__ import annotations

import torch

from landscape.optim.sam import SAM


def centralize_(grads: list[torch.Tensor]) -> None:
    """Subtract, in place, the mean over each output filter from every gradient with ndim >= 2."""
    for g in grads:
        if g.ndim >= 2:
            g.sub_(g.mean(dim=tuple(range(1, g.ndim)), keepdim=True))


class GCSAM(SAM):
    """SAM whose ascent direction is the centralised gradient."""

    name = "gcsam"

    def perturbation(self, params: list[torch.Tensor], grads: list[torch.Tensor]) -> list[torch.Tensor]:
        centralize_(grads)
        return super().perturbation(params, grads)
