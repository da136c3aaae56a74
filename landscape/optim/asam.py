"""ASAM, adaptive SAM (Kwon et al., ICML 2021).

The ascent step is taken in the normalised coordinates T_w^-1 w with
T_w = |w| + eta (elementwise) on weight tensors and T = 1 on biases and
normalisation layers:

    e = rho * T_w^2 g / (||T_w g|| + 1e-12),   then step(g+).

"Weight tensors" are parameters named ``*.weight`` with two or more dimensions
(conv, linear, embedding); BatchNorm / LayerNorm weights are 1-D and so get
T = 1. Without names (an iterable of params) the rule is ``ndim >= 2``.
(The reference code scales every parameter whose name contains "weight",
norm-layer weights included; here those count as normalisation parameters.)
"""

from __future__ import annotations

import torch

from landscape.optim.base import nonnegative
from landscape.optim.perturb import global_norm
from landscape.optim.sam import SAM


def is_scaled_weight(name: str | None, param: torch.Tensor) -> bool:
    """Whether ASAM rescales ``param``: a ``weight`` tensor of a conv / linear / embedding layer."""
    return param.ndim >= 2 and (name is None or name.rsplit(".", 1)[-1] == "weight")


class ASAM(SAM):
    """Adaptive SAM: the perturbation is scaled elementwise by T_w = |w| + eta on weight tensors."""

    name = "asam"

    @classmethod
    def check_hyper(cls, hyper: dict, given: dict) -> dict:
        """``eta >= 0``."""
        nonnegative(cls.name, hyper, "eta")
        return super().check_hyper(hyper, given)

    def setup(self) -> None:
        """Which parameters get the adaptive scaling."""
        super().setup()
        self._scaled = {id(p) for p, n in zip(self._params, self._names) if is_scaled_weight(n, p)}

    def perturbation(self, params: list[torch.Tensor], grads: list[torch.Tensor]) -> list[torch.Tensor]:
        idx = [i for i, p in enumerate(params) if id(p) in self._scaled]
        if idx:
            t = self._scratch.like([params[i] for i in idx])
            g_w = [grads[i] for i in idx]
            torch._foreach_copy_(t, [params[i] for i in idx])
            torch._foreach_abs_(t)
            torch._foreach_add_(t, self.hyper["eta"])
            torch._foreach_mul_(g_w, t)  # T g
        norm = global_norm(grads)  # ||T g||
        if idx:
            torch._foreach_mul_(g_w, t)  # T^2 g
        self.scale_by_radius(params, grads, norm)
        return grads
