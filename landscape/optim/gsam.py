"""GSAM, surrogate-gap guided SAM (Zhuang et al., ICLR 2022).

    e = rho_t * g / (||g|| + 1e-12)
    g_perp = g - (g . g+) / (||g+||^2 + 1e-12) * g+      (the part of g orthogonal to g+)
    step(g+ - alpha * g_perp)

Descending along g+ minimises the perturbed loss; ascending along g_perp (the
component of g orthogonal to it) shrinks the surrogate gap without changing
the perturbed loss to first order.

Radius: ``rho`` gives a constant radius. ``rho_max`` and ``rho_min`` give the
paper's schedule, proportional to the learning rate:

    rho_t = rho_min + (rho_max - rho_min) * (lr_t - lr_min) / (lr_max - lr_min)

where lr_t is the current ``lr`` of the first param group (set by any LR
scheduler), lr_max the learning rate the optimizer was created with, and
lr_min the hyper-parameter ``lr_min`` (default 0, the end of a cosine or
linear decay). With lr_max == lr_min the radius is rho_max.
"""

from __future__ import annotations

import torch

from landscape.errors import LandscapeError
from landscape.optim.base import nonnegative, require
from landscape.optim.perturb import EPS, global_dot, global_norm
from landscape.optim.sam import SAM


class GSAM(SAM):
    """SAM plus an ascent step along the clean gradient's part orthogonal to g+."""

    name = "gsam"
    group_rho = False  # one radius for all groups (GSAM: scheduled; CR-SAM: one finite-difference step)

    @classmethod
    def check_hyper(cls, hyper: dict, given: dict) -> dict:
        """``rho`` alone keeps the radius constant; ``rho_max`` with ``rho_min`` schedule it (``rho`` becomes None)."""
        nonnegative(cls.name, hyper, "alpha", "lr_min", "rho_max", "rho_min")
        if hyper["rho_max"] is not None or hyper["rho_min"] is not None:
            require("rho" not in given, cls.name,
                    "give either rho (constant radius) or rho_max and rho_min (scheduled), not both")
            require(hyper["rho_max"] is not None and hyper["rho_min"] is not None, cls.name,
                    "the scheduled radius needs both rho_max and rho_min")
            require(hyper["rho_min"] <= hyper["rho_max"], cls.name,
                    f"rho_min ({hyper['rho_min']}) must be <= rho_max ({hyper['rho_max']})")
            hyper = {**hyper, "rho": None}
        return super().check_hyper(hyper, given)

    def setup(self) -> None:
        """A scheduled radius needs ``lr_min <= lr``."""
        super().setup()
        if self.hyper["rho"] is None and not self.hyper["lr_min"] <= self.lr_max[0]:
            raise LandscapeError(f"gsam: lr_min ({self.hyper['lr_min']}) must be <= lr ({self.lr_max[0]})")

    def radius(self) -> float:
        h = self.hyper
        if h["rho"] is not None:
            return h["rho"]
        lr_max, lr_min = self.lr_max[0], h["lr_min"]
        if lr_max == lr_min:
            return h["rho_max"]
        frac = (self.param_groups[0]["lr"] - lr_min) / (lr_max - lr_min)
        return h["rho_min"] + (h["rho_max"] - h["rho_min"]) * frac

    def perturbation(self, params: list[torch.Tensor], grads: list[torch.Tensor]) -> list[torch.Tensor]:
        e = self._scratch.like(params)  # g is needed again for g_perp
        torch._foreach_copy_(e, grads)
        return super().perturbation(params, e)

    def direction(self, params, g, perturbed) -> None:
        # g+ - alpha * (g - c g+) = (1 + alpha c) g+ - alpha g, with c = g.g+ / ||g+||^2
        g_plus = perturbed[-1]
        alpha = self.hyper["alpha"]
        c = global_dot(g, g_plus) / (global_norm(g_plus) ** 2 + EPS)
        torch._foreach_mul_(g_plus, 1 + alpha * c)
        torch._foreach_add_(g_plus, g, alpha=-alpha)
