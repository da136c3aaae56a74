"""WSAM, weighted SAM (Yue et al., KDD 2023).

Objective L(w) + k * (L(w + e) - L(w)) with k = gamma / (1 - gamma) and e as
in SAM (rho * g / (||g|| + 1e-12)), i.e. sharpness as a weighted
regulariser. gamma = 0.5 (k = 1) is SAM.

* Decoupled (default, as in the reference implementation): the base
  optimizer steps with g, then the sharpness term is applied as a plain
  gradient step, ``w <- w - lr * k * (g+ - g)`` (lr of the param group), so
  Adam's moment estimates and the weight decay see only g.
* Coupled (``decoupled=False``): ``step(g + k * (g+ - g))``.
"""

from __future__ import annotations

import torch

from landscape.optim.base import require
from landscape.optim.sam import SAM


class WSAM(SAM):
    """SAM with the sharpness term weighted by gamma / (1 - gamma) and, by default, decoupled."""

    name = "wsam"

    @classmethod
    def check_hyper(cls, hyper: dict, given: dict) -> dict:
        """``gamma`` in [0, 1)."""
        require(0 <= hyper["gamma"] < 1, cls.name, f"gamma must be in [0, 1), got {hyper['gamma']}")
        return super().check_hyper(hyper, given)

    def setup(self) -> None:
        """The decoupled sharpness gradient, kept between ``direction`` and ``after_base_step``."""
        super().setup()
        self._sharpness: list[torch.Tensor] = []

    @property
    def k(self) -> float:
        return self.hyper["gamma"] / (1 - self.hyper["gamma"])

    def perturbation(self, params, grads):
        e = self._scratch.like(params)  # g is needed again
        torch._foreach_copy_(e, grads)
        return super().perturbation(params, e)

    def direction(self, params, g, perturbed) -> None:
        g_plus = perturbed[-1]
        if self.hyper["decoupled"]:
            torch._foreach_sub_(g_plus, g)  # the sharpness gradient g+ - g, kept for after_base_step
            self._sharpness = g_plus
            for p, g_p in zip(params, g):
                p.grad = g_p
        else:  # g + k (g+ - g) = k g+ + (1 - k) g
            torch._foreach_mul_(g_plus, self.k)
            torch._foreach_add_(g_plus, g, alpha=1 - self.k)

    def update_tensors(self, params):
        return super().update_tensors(params) + list(self._sharpness)

    def after_base_step(self, params) -> None:
        if self.hyper["decoupled"]:
            lr_of = {id(p): group["lr"] for group in self.param_groups for p in group["params"]}
            torch._foreach_mul_(self._sharpness, [-lr_of[id(p)] * self.k for p in params])
            torch._foreach_add_(params, self._sharpness)
            self._sharpness = []
