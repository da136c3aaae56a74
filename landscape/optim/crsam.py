"""CR-SAM, curvature-regularised SAM (Wu, Luo and Wunsch, AAAI 2024).

Three passes: g0 at w, g+ at w + e and g- at w - e with e = rho * g0 / (||g0|| + 1e-12);

    step(g+ + gamma * (g+ + g- - 2 g0) + beta * (g+ - g-)).

CR-SAM adds to SAM's objective a regulariser built from the normalised Hessian
trace. Rather than Hessian-vector products, it differentiates finite differences of
gradients; the reference implementation (TrustAIoT/CR-SAM), followed here,
takes them along the normalised gradient v = g0/||g0|| with step rho:

* ``g+ + g- - 2 g0`` ~ rho^2 * grad (v' H v): the gradient of the curvature
  along v, i.e. of the second difference (L(w+e) + L(w-e) - 2 L(w)) / rho^2,
  a one-direction estimate of the (normalised) Hessian trace; ``gamma``
  weights this curvature penalty;
* ``g+ - g-`` ~ 2 rho H v = 2 rho * grad ||g||: the gradient of the gradient
  norm, the normalising term; ``beta`` weights this first-order penalty.

The constants 1/rho^2 and 1/(2 rho) are absorbed into gamma and beta.
The two extra passes (at w + e and w - e) serve both terms; with
gamma = beta = 0 the step is SAM's.
"""

from __future__ import annotations

import torch

from landscape.optim.base import nonnegative
from landscape.optim.sam import SAM


class CRSAM(SAM):
    """SAM plus finite-difference curvature (gamma) and gradient-norm (beta) regularisers."""

    name = "crsam"
    group_rho = False  # one radius for all groups (GSAM: scheduled; CR-SAM: one finite-difference step)
    passes_per_step = 3
    offsets = (1.0, -1.0)

    @classmethod
    def check_hyper(cls, hyper: dict, given: dict) -> dict:
        """``gamma >= 0`` and ``beta >= 0``."""
        nonnegative(cls.name, hyper, "gamma", "beta")
        return super().check_hyper(hyper, given)

    def perturbation(self, params, grads):
        e = self._scratch.like(params)  # g0 is needed again
        torch._foreach_copy_(e, grads)
        return super().perturbation(params, e)

    def direction(self, params, g, perturbed) -> None:
        # g+ + gamma (g+ + g- - 2 g0) + beta (g+ - g-) = (1 + gamma + beta) g+ + (gamma - beta) g- - 2 gamma g0
        g_plus, g_minus = perturbed
        gamma, beta = self.hyper["gamma"], self.hyper["beta"]
        torch._foreach_mul_(g_minus, gamma - beta)
        torch._foreach_add_(g_minus, g_plus, alpha=1 + gamma + beta)
        torch._foreach_add_(g_minus, g, alpha=-2 * gamma)
