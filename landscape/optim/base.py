"""The closure interface shared by every optimizer, and the one-pass Adam / SGD.

Every optimizer in :mod:`landscape.optim` is a :class:`ClosureOptimizer`. It
wraps a base optimizer (``base_optimizer``): a named one (``adam``, ``adamw``,
``sgd``) or any ``torch.optim.Optimizer`` subclass, built on the caller's
parameter groups, whose ``param_groups`` it shares, so LR schedulers can be
attached to it directly. ``step(closure)`` calls the closure (zero grads, forward, backward,
return the loss) once per pass it needs and returns the clean-pass loss.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from landscape.errors import LandscapeError
from landscape.optim.amp import AMP_DTYPES, LossScaler, check_amp
from landscape.optim.hyper import BASE_DEFAULTS, BASE_LR, DEFAULT_BASE, nonnegative, require  # noqa: F401
from landscape.optim.perturb import Closure, check_finite, global_norm

_BASE_CLASSES = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}

Base = str | type  # a name of BASE_DEFAULTS or a torch.optim.Optimizer subclass


def base_class(base: Base) -> type[torch.optim.Optimizer]:
    """The torch optimizer class of ``base`` (a name of :data:`BASE_DEFAULTS` or the class itself)."""
    if isinstance(base, type) and issubclass(base, torch.optim.Optimizer):
        return base
    if isinstance(base, str) and base in _BASE_CLASSES:
        return _BASE_CLASSES[base]
    raise LandscapeError(f"unknown base optimizer {base!r}; choose from: {', '.join(BASE_DEFAULTS)} "
                         "(or pass a torch.optim.Optimizer subclass)")


def base_name(base: Base) -> str:
    """What checkpoints record: the name (``"adamw"``) or ``module.Class`` of a base optimizer."""
    if isinstance(base, str):
        return base
    named = [n for n, c in _BASE_CLASSES.items() if c is base]
    return named[0] if named else f"{base.__module__}.{base.__qualname__}"


def class_defaults(cls: type[torch.optim.Optimizer]) -> dict[str, Any]:
    """Keyword arguments of ``cls`` (besides ``params`` and ``lr``) with their defaults, plain values only."""
    out = {}
    for name, par in inspect.signature(cls.__init__).parameters.items():
        if name in ("self", "params", "lr") or par.kind in (par.VAR_POSITIONAL, par.VAR_KEYWORD):
            continue
        if par.default is par.empty or isinstance(par.default, (bool, int, float, str, tuple, type(None))):
            out[name] = None if par.default is par.empty else par.default
    return out


def split_params(
    model_or_params: nn.Module | Iterable, model: nn.Module | None = None,
) -> tuple[nn.Module | None, list[dict[str, Any]], list[torch.Tensor], list[str | None]]:
    """``(model or None, param groups, trainable params, their names or None)``.

    ``model_or_params``: a model, an iterable of parameters, or a list of
    parameter groups (dicts with ``params`` and the group's own settings,
    as for any ``torch.optim`` optimizer).  ``model`` (with params or groups)
    names the parameters and gives the BatchNorm statistics to protect.
    """
    if isinstance(model_or_params, nn.Module):
        model, model_or_params = model_or_params, model_or_params.parameters()
    items = list(model_or_params)
    if items and all(isinstance(g, dict) for g in items):
        groups = []
        for group in items:
            if "params" not in group:
                raise LandscapeError("a parameter group needs a 'params' entry")
            members = group["params"]
            members = [members] if isinstance(members, torch.Tensor) else list(members)
            if not all(isinstance(p, torch.Tensor) for p in members):
                raise LandscapeError("a parameter group's 'params' must be tensors")
            groups.append({**group, "params": [p for p in members if p.requires_grad]})
        groups = [g for g in groups if g["params"]]
    elif all(isinstance(p, torch.Tensor) for p in items):
        groups = [{"params": [p for p in items if p.requires_grad]}]
    else:
        raise LandscapeError("create_optimizer takes a model, an iterable of parameter tensors or a list of "
                             "parameter groups (dicts with 'params')")
    params = [p for g in groups for p in g["params"]]
    if not params:
        raise LandscapeError("the model has no trainable parameters")
    if len({id(p) for p in params}) != len(params):
        raise LandscapeError("a parameter appears in more than one parameter group")
    names_of = {id(p): n for n, p in model.named_parameters()} if model is not None else {}
    return model, groups, params, [names_of.get(id(p)) for p in params]


class ClosureOptimizer(torch.optim.Optimizer):
    """One-pass optimizer (a base optimizer such as ``adam``, ``adamw`` or ``sgd``) behind the closure interface.

    Attributes: ``name``, ``base`` (a name of :data:`BASE_DEFAULTS` or
    ``module.Class``), ``passes_per_step``, ``hyper`` (every hyper-parameter
    incl. defaults and the base optimizer's keyword arguments),
    ``base_optimizer`` and its shared ``param_groups`` (each group's own
    ``lr``, ``weight_decay``, ... as the base optimizer reads them),
    ``amp`` (None, "bf16" or "fp16", :mod:`landscape.optim.amp`) and
    ``skipped_steps`` (steps skipped for inf/NaN gradients under ``amp``).
    """

    name = "one-pass"
    passes_per_step = 1
    #: whether parameter groups may carry their own ``rho`` (SAM-family variants that allow it)
    group_rho = False

    def __init__(
        self,
        model_or_params: nn.Module | Iterable,
        *,
        base: Base,
        lr: float,
        base_kwargs: dict[str, Any],
        hyper: dict[str, Any] | None = None,
        name: str | None = None,
        amp: str | None = None,
        model: nn.Module | None = None,
    ) -> None:
        if name is not None:
            self.name = name
        self.model, groups, self._params, self._names = split_params(model_or_params, model)
        if not self.group_rho and any("rho" in g for g in groups):
            raise LandscapeError(f"{self.name} takes one rho for all parameter groups (not a group's own 'rho')")
        for group in groups:
            for key in ("lr", "rho"):
                if key in group and not (isinstance(group[key], (int, float)) and group[key] > 0):
                    raise LandscapeError(f"a parameter group's {key} must be > 0, got {group[key]!r}")
        self.base = base_name(base)
        try:
            self.base_optimizer = base_class(base)(groups, lr=lr, **base_kwargs)
        except (TypeError, ValueError) as exc:
            raise LandscapeError(f"base optimizer {self.base}: {str(exc).splitlines()[0]}") from None
        super().__init__(self.base_optimizer.param_groups, self.base_optimizer.defaults)
        self.param_groups = self.base_optimizer.param_groups
        self.hyper = {**(hyper or {}), **base_kwargs}
        self.lr_max = [group["lr"] for group in self.param_groups]
        self.device = self._params[0].device
        self.amp = check_amp(amp)
        self.scaler = LossScaler() if amp == "fp16" else None
        self.skipped_steps = 0
        self._backwards = 0
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

    def group_settings(self) -> list[dict[str, Any]]:
        """Each parameter group's settings for checkpoints: plain data, ``lr`` the peak (:attr:`lr_max`, not the
        scheduled value), ``params`` replaced by ``num_params``.
        """
        return [{**{k: list(v) if isinstance(v, tuple) else v for k, v in g.items()
                    if k != "params" and isinstance(v, (bool, int, float, str, tuple, type(None)))},
                 "lr": peak, "num_params": sum(p.numel() for p in g["params"])}
                for g, peak in zip(self.param_groups, self.lr_max)]

    # --- mixed precision -------------------------------------------------------------------
    def autocast(self):
        """The autocast context of one pass (``amp``'s dtype on the parameters' device; off without ``amp``)."""
        dtype = AMP_DTYPES.get(self.amp, torch.bfloat16)
        return torch.autocast(self.device.type, dtype=dtype, enabled=self.amp is not None)

    def backward(self, loss: torch.Tensor) -> None:
        """``loss.backward()`` outside autocast, the loss multiplied by the fp16 loss scale; closures call this."""
        self._backwards += 1
        with torch.autocast(self.device.type, enabled=False):
            (loss * self.scaler.scale if self.scaler is not None else loss).backward()

    def run_pass(self, closure: Closure) -> torch.Tensor:
        """One pass: ``closure()`` under :meth:`autocast`; with ``amp`` the closure must call :meth:`backward`."""
        self._backwards = 0
        with self.autocast():
            loss = closure()
        if self.amp is not None and self._backwards == 0:
            raise LandscapeError(f"with amp={self.amp!r} the closure must call opt.backward(loss) instead of "
                                 "loss.backward()")
        return loss

    def grads_finite(self, grads: list[torch.Tensor]) -> bool:
        """Unscale one pass's gradients (fp16) and tell whether all are finite (always True without ``amp``)."""
        if self.amp is None:
            return True
        if self.scaler is not None:
            torch._foreach_mul_(grads, 1.0 / self.scaler.scale)
        return bool(torch.isfinite(global_norm(grads)))

    def skip_step(self, loss: torch.Tensor) -> torch.Tensor:
        """Give up this step (inf/NaN gradients under ``amp``): no update, gradients cleared, scale backed off."""
        for p in self._params:
            p.grad = None
        self.skipped_steps += 1
        if self.scaler is not None:
            self.scaler.update(found_inf=True)
        return loss.detach()

    def stepped(self) -> None:
        """After a base update under ``amp``: the loss scale counts a clean step."""
        if self.scaler is not None:
            self.scaler.update(found_inf=False)

    # --- the step ----------------------------------------------------------------------------
    def step(self, closure: Closure) -> torch.Tensor:  # type: ignore[override]
        """One pass: ``loss = closure()``, then the base update. Returns the detached loss."""
        loss = self.run_pass(closure)
        check_finite(loss)
        if not self.grads_finite([p.grad for p in self._params if p.grad is not None]):
            return self.skip_step(loss)
        self.base_optimizer.step()
        self.stepped()
        return loss.detach()

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base_optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        """Tensors and plain data only: loads with ``torch.load(..., weights_only=True)``."""
        out = {"name": self.name, "base": self.base, "lr_max": list(self.lr_max),
               "base_state": self.base_optimizer.state_dict(), "amp": self.amp, "skipped_steps": self.skipped_steps}
        if self.scaler is not None:
            out["scaler"] = self.scaler.state_dict()
        return out

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
        self.skipped_steps = int(state_dict.get("skipped_steps", 0))
        if self.scaler is not None and "scaler" in state_dict:
            self.scaler.load_state_dict(state_dict["scaler"])

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, base={self.base!r}, lr={self.param_groups[0]['lr']}, "
                f"hyper={self.hyper}, amp={self.amp!r})")
