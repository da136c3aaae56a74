"""SAM (Foret et al., ICLR 2021) and the multi-pass step shared by the whole family.

One step: clean pass at w (gradient g, BN statistics updated once), ascent
perturbation e from g, one perturbed pass per entry of ``offsets`` at
``w + s*e`` (gradients g_s), the weights and BN statistics restored exactly,
then the base optimizer updates the original w with the direction that
:meth:`SAM.direction` leaves in ``p.grad``.

SAM: e = rho * g / (||g|| + 1e-12), direction g+ (the gradient at w + e).
Norms run over all parameters together; parameters whose gradient is ``None``
after the clean pass are left out of the perturbation.

``direction_hook`` (None by default) is called with :meth:`update_tensors`
just before the base update; data-parallel training with per-replica
perturbations (``--sam-local``) averages them over the ranks there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from landscape.optim.base import ClosureOptimizer, require
from landscape.optim.perturb import (
    EPS,
    Buffers,
    Closure,
    RngReplay,
    StateGuard,
    bn_buffers,
    check_finite,
    global_norm,
    grads_of,
    take_grads,
)


class SAM(ClosureOptimizer):
    """Sharpness-aware minimisation: ``step(g+)`` with g+ the gradient at ``w + rho*g/||g||``."""

    name = "sam"
    passes_per_step = 2
    group_rho = True
    offsets: tuple[float, ...] = (1.0,)  # perturbed passes at w + s * e
    direction_hook: Callable[[list[torch.Tensor]], None] | None = None

    def setup(self) -> None:
        """The BN-buffer guard, the RNG replay and scratch buffers of the multi-pass step."""
        self._guard = StateGuard(bn_buffers(self.model))
        self._rng = RngReplay(self.device)
        self._scratch = Buffers()

    @classmethod
    def check_hyper(cls, hyper: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
        """``rho > 0`` (when set)."""
        if hyper.get("rho") is not None:
            require(hyper["rho"] > 0, cls.name, f"rho must be > 0, got {hyper['rho']}")
        return super().check_hyper(hyper, given)

    # --- the parts each variant changes -------------------------------------------------
    def radius(self) -> float:
        """The perturbation radius used by this step."""
        return self.hyper["rho"]

    def perturbation(self, params: list[torch.Tensor], grads: list[torch.Tensor]) -> list[torch.Tensor]:
        """Ascent step e (one tensor per param). SAM scales ``grads`` in place (g is not needed later)."""
        self.scale_by_radius(params, grads, global_norm(grads))
        return grads

    def scale_by_radius(self, params: list[torch.Tensor], tensors: list[torch.Tensor], norm: torch.Tensor) -> None:
        """``tensors *= rho / (norm + 1e-12)`` in place, with each parameter group's own ``rho`` where it has one."""
        radii = self.group_radii(params)
        if radii is None:
            torch._foreach_mul_(tensors, self.radius() / (norm + EPS))
        else:
            torch._foreach_mul_(tensors, 1.0 / (norm + EPS))
            torch._foreach_mul_(tensors, radii)

    def group_radii(self, params: list[torch.Tensor]) -> list[float] | None:
        """The radius of each of ``params`` (its group's ``rho``, else :meth:`radius`); None when no group has one."""
        if not any("rho" in g for g in self.param_groups):
            return None
        rho_of = {id(p): g.get("rho", self.radius()) for g in self.param_groups for p in g["params"]}
        return [float(rho_of[id(p)]) for p in params]

    def direction(self, params: list[torch.Tensor], g: list[torch.Tensor], perturbed: list[list[torch.Tensor]]) -> None:
        """Leave the base optimizer's gradient in ``p.grad``. ``perturbed[-1]`` already is ``p.grad``."""

    def after_base_step(self, params: list[torch.Tensor]) -> None:
        """Work after the base update (WSAM's decoupled sharpness step)."""

    def update_tensors(self, params: list[torch.Tensor]) -> list[torch.Tensor]:
        """Every tensor the update reads after :meth:`direction`: the gradients (WSAM adds its sharpness term)."""
        return [p.grad for p in params]

    # --- the shared multi-pass step ------------------------------------------------------
    def step(self, closure: Closure) -> torch.Tensor:  # type: ignore[override]
        """Run the clean and perturbed passes, then update the original weights. Returns the clean loss.

        Under ``amp`` each pass runs under autocast and its gradients are
        unscaled before use; inf/NaN gradients in any pass skip the step whole.
        """
        self._rng.capture()
        loss = self.run_pass(closure)
        check_finite(loss)
        params, g = take_grads(self._params)
        if not self.grads_finite(g):
            return self.skip_step(loss)
        with torch.no_grad():
            e = self.perturbation(params, g)
        w0 = self._guard.save(params)
        perturbed: list[list[torch.Tensor]] = []
        finite = True
        try:
            for k, sign in enumerate(self.offsets):
                with torch.no_grad():
                    if k:
                        torch._foreach_copy_(params, w0)
                    torch._foreach_add_(params, e, alpha=sign)
                self._rng.replay()
                check_finite(self.run_pass(closure), "loss at the perturbed weights")
                perturbed.append(grads_of(params))
                finite = self.grads_finite(perturbed[-1])
                if not finite:
                    break
                if k + 1 < len(self.offsets):
                    for p in params:
                        p.grad = None
        finally:
            self._guard.restore()
        if not finite:
            return self.skip_step(loss)
        with torch.no_grad():
            self.direction(params, g, perturbed)
            if self.direction_hook is not None:
                self.direction_hook(self.update_tensors(params))
        self.base_optimizer.step()
        with torch.no_grad():
            self.after_base_step(params)
        self.stepped()
        return loss.detach()
