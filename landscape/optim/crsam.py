"""CR-SAM, curvature-regularised SAM (Wu, Luo and Wunsch, AAAI 2024).

Three passes: g0 at w, g+ at w + e and g- at w - e with e = rho * g0 / (||g0|| + 1e-12);

    step(g+ + gamma * (g+ + g- - 2 g0) + beta * (g+ - g-)).

CR-SAM adds to SAM's objective a regulariser built from the normalised Hessian
trace. The paper estimates the needed curvature quantities with finite
differences of gradients along the normalised gradient direction v = g/||g||
instead of Hessian-vector products:

* ``g+ - g-`` ~ 2 rho H v = 2 rho * grad ||g||: the gradient of the gradient
  norm, so ``beta`` weights a first-order (gradient-norm) penalty;
* ``g+ + g- - 2 g0`` ~ rho^2 * grad (v' H v): the gradient of the curvature
  along v (the second difference (L(w+e) + L(w-e) - 2 L(w)) / rho^2, a one-sample
  estimate of the Hessian trace normalised by the direction), so ``gamma``
  weights the curvature (trace) penalty.

Both terms cost two extra passes in all, no Hessian-vector products; with
gamma = beta = 0 the step is SAM's.
"""

from __future__ import annotations

import torch

from landscape.optim.sam import SAM


class CRSAM(SAM):
    """SAM plus finite-difference curvature (gamma) and gradient-norm (beta) regularisers."""

    name = "crsam"
    passes_per_step = 3
    offsets = (1.0, -1.0)

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
