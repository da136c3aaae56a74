"""The closure interface shared by every optimizer, and the one-pass Adam / SGD.

Every optimizer in :mod:`landscape.optim` is a :class:`ClosureOptimizer`. It
wraps a base ``torch.optim.Adam`` or ``torch.optim.SGD`` (``base_optimizer``)
whose ``param_groups`` it shares, so LR schedulers can be attached to it
directly. ``step(closure)`` calls the closure (zero grads, forward, backward,
return the loss) once per pass it needs and returns the clean-pass loss.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from landscape.errors import LandscapeError
from landscape.optim.hyper import BASE_DEFAULTS, BASE_LR, DEFAULT_BASE, nonnegative, require  # noqa: F401
from landscape.optim.perturb import Closure, check_finite

_BASE_CLASSES = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}


def split_params(
    model_or_params: nn.Module | Iterable[torch.Tensor],
) -> tuple[nn.Module | None, list[torch.Tensor], list[str | None]]:
    """``(model or None, trainable params, their names or None)`` from a model or an iterable of params."""
    if isinstance(model_or_params, nn.Module):
        named = [(n, p) for n, p in model_or_params.named_parameters() if p.requires_grad]
        model, params, names = model_or_params, [p for _, p in named], [n for n, _ in named]
    else:
        params = list(model_or_params)
        if not all(isinstance(p, torch.Tensor) for p in params):
            raise LandscapeError("create_optimizer takes a model or an iterable of parameter tensors (not param "
                                 "groups)")
        params = [p for p in params if p.requires_grad]
        model, names = None, [None] * len(params)
    if not params:
        raise LandscapeError("the model has no trainable parameters")
    return model, params, names


class ClosureOptimizer(torch.optim.Optimizer):
    """One-pass optimizer (``adam`` or ``sgd``) behind the closure interface.

    Attributes: ``name``, ``base`` ("adam" | "sgd"), ``passes_per_step``,
    ``hyper`` (every hyper-parameter incl. defaults and the base optimizer's
    keyword arguments), ``base_optimizer`` and its shared ``param_groups``.
    """

    name = "one-pass"
    passes_per_step = 1

    def __init__(
        self,
        model_or_params: nn.Module | Iterable[torch.Tensor],
        *,
        base: str,
        lr: float,
        base_kwargs: dict[str, Any],
        hyper: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> None:
        if name is not None:
            self.name = name
        self.model, self._params, self._names = split_params(model_or_params)
        self.base = base
        self.base_optimizer = _BASE_CLASSES[base](self._params, lr=lr, **base_kwargs)
        super().__init__(self.base_optimizer.param_groups, self.base_optimizer.defaults)
        self.param_groups = self.base_optimizer.param_groups
        self.hyper = {**(hyper or {}), **base_kwargs}
        self.lr_max = [group["lr"] for group in self.param_groups]
        self.device = self._params[0].device
        self.setup()

    def setup(self) -> None:
        """Per-optimizer state, after the base optimizer exists; subclasses extend this instead of ``__init__``."""

    @classmethod
    def check_hyper(cls, hyper: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
        """Validate (and possibly adjust) the full hyper-parameters; ``given`` holds the ones the user set.

        Raises :class:`LandscapeError` naming the hyper-parameter. Subclasses
        add their own rules and call ``super().check_hyper``.
        """
        return hyper

    def step(self, closure: Closure) -> torch.Tensor:  # type: ignore[override]
        """One pass: ``loss = closure()``, then the base update. Returns the detached loss."""
        loss = closure()
        check_finite(loss)
        self.base_optimizer.step()
        return loss.detach()

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base_optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        """Tensors and plain data only: loads with ``torch.load(..., weights_only=True)``."""
        return {"name": self.name, "base": self.base, "lr_max": list(self.lr_max),
                "base_state": self.base_optimizer.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not isinstance(state_dict, dict) or "base_state" not in state_dict:
            raise LandscapeError("not a landscape optimizer state (missing 'base_state')")
        if (state_dict.get("name"), state_dict.get("base")) != (self.name, self.base):
            raise LandscapeError(
                f"optimizer state is for {state_dict.get('name')} (base {state_dict.get('base')}), "
                f"not {self.name} (base {self.base})"
            )
        self.base_optimizer.load_state_dict(state_dict["base_state"])
        self.param_groups = self.base_optimizer.param_groups  # load_state_dict replaces the group dicts
        self.lr_max = list(state_dict.get("lr_max", self.lr_max))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, base={self.base!r}, lr={self.param_groups[0]['lr']}, "
                f"hyper={self.hyper})")
