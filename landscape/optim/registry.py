"""Names, hyper-parameter defaults and validation, and ``create_optimizer``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from landscape.errors import LandscapeError
from landscape.optim.asam import ASAM
from landscape.optim.base import BASE_DEFAULTS, ClosureOptimizer
from landscape.optim.crsam import CRSAM
from landscape.optim.gcsam import GCSAM
from landscape.optim.gsam import GSAM
from landscape.optim.sam import SAM
from landscape.optim.wsam import WSAM

#: Optimizer-specific hyper-parameters and their defaults (the base optimizer's are in BASE_DEFAULTS).
HYPER_DEFAULTS: dict[str, dict[str, Any]] = {
    "adam": {},
    "sgd": {},
    "sam": {"rho": 0.05},
    "asam": {"rho": 0.5, "eta": 0.01},
    "gsam": {"rho": 0.05, "rho_max": None, "rho_min": None, "lr_min": 0.0, "alpha": 0.4},
    "wsam": {"rho": 0.05, "gamma": 0.9, "decoupled": True},
    "crsam": {"rho": 0.1, "gamma": 0.1, "beta": 0.01},
    "gcsam": {"rho": 0.05},
}
OPTIMIZERS: tuple[str, ...] = tuple(HYPER_DEFAULTS)
_CLASSES: dict[str, type[ClosureOptimizer]] = {
    "sam": SAM,
    "asam": ASAM,
    "gsam": GSAM,
    "wsam": WSAM,
    "crsam": CRSAM,
    "gcsam": GCSAM,
}
_FLOAT_KEYS = {"rho", "rho_max", "rho_min", "lr_min", "alpha", "eta", "gamma", "beta", "eps", "weight_decay", "momentum", "dampening"}
_BOOL_KEYS = {"decoupled", "nesterov", "amsgrad"}


def _check_name(name: str) -> str:
    key = str(name).lower()
    if key not in HYPER_DEFAULTS:
        raise LandscapeError(f"unknown optimizer {name!r}; choose from: {', '.join(OPTIMIZERS)}")
    return key


def base_of(name: str, base: str | None = "adam") -> str:
    """The base optimizer used by ``name``: adam and sgd are their own base, the SAM family uses ``base``."""
    name = _check_name(name)
    if name in BASE_DEFAULTS:
        return name
    base = "adam" if base is None else str(base).lower()
    if base not in BASE_DEFAULTS:
        raise LandscapeError(f"unknown base optimizer {base!r}; choose from: {', '.join(BASE_DEFAULTS)}")
    return base


def hyper_defaults(name: str, base: str | None = "adam") -> dict[str, Any]:
    """Every hyper-parameter of ``name`` (on ``base``) with its default value."""
    name = _check_name(name)
    return {**HYPER_DEFAULTS[name], **BASE_DEFAULTS[base_of(name, base)]}


def _coerce(key: str, value: Any) -> Any:
    """Turn CLI strings (``--opt-arg key=value``) and JSON lists into the expected types."""
    try:
        if key in _BOOL_KEYS:
            if isinstance(value, str):
                low = value.strip().lower()
                if low not in {"true", "false", "1", "0", "yes", "no"}:
                    raise ValueError(value)
                return low in {"true", "1", "yes"}
            return bool(value)
        if key == "betas":
            parts = value.split(",") if isinstance(value, str) else list(value)
            if len(parts) != 2:
                raise ValueError(value)
            return (float(parts[0]), float(parts[1]))
        if key in _FLOAT_KEYS:
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
    except (TypeError, ValueError):
        raise LandscapeError(f"bad value for {key}: {value!r}") from None
    return value


def _validate(name: str, hyper: dict[str, Any]) -> None:
    def need(ok: bool, message: str) -> None:
        if not ok:
            raise LandscapeError(f"{name}: {message}")

    for key in ("rho", "eta", "alpha", "beta", "lr_min", "weight_decay", "rho_max", "rho_min"):
        if hyper.get(key) is not None:
            need(hyper[key] >= 0, f"{key} must be >= 0, got {hyper[key]}")
    if hyper.get("rho") is not None:
        need(hyper["rho"] > 0, f"rho must be > 0, got {hyper['rho']}")
    if name == "wsam":
        need(0 <= hyper["gamma"] < 1, f"gamma must be in [0, 1), got {hyper['gamma']}")
    if name == "crsam":
        need(hyper["gamma"] >= 0, f"gamma must be >= 0, got {hyper['gamma']}")
    if "momentum" in hyper:
        need(0 <= hyper["momentum"] < 1, f"momentum must be in [0, 1), got {hyper['momentum']}")
        need(0 <= hyper["dampening"] <= 1, f"dampening must be in [0, 1], got {hyper['dampening']}")
        need(
            not hyper["nesterov"] or (hyper["momentum"] > 0 and hyper["dampening"] == 0),
            "nesterov needs momentum > 0 and dampening 0",
        )
    if "betas" in hyper:
        need(all(0 <= b < 1 for b in hyper["betas"]), f"betas must be in [0, 1), got {hyper['betas']}")
        need(hyper["eps"] > 0, f"eps must be > 0, got {hyper['eps']}")


def resolve_hyper(name: str, given: dict[str, Any] | None = None, base: str | None = "adam") -> dict[str, Any]:
    """All hyper-parameters of ``name`` (incl. the base optimizer's) with defaults filled in.

    ``None`` values count as not given. Raises :class:`LandscapeError` for an
    unknown optimizer, a key that does not apply (``"rho does not apply to adam;
    it takes: ..."``) or a value out of range. For ``gsam``, giving ``rho_max``
    and ``rho_min`` switches to the learning-rate-scheduled radius (``rho`` is
    then ``None``); ``rho`` alone keeps it constant.
    """
    name = _check_name(name)
    defaults = hyper_defaults(name, base)
    given = {k: v for k, v in (given or {}).items() if v is not None}
    for key in given:
        if key not in defaults:
            on = "" if name in BASE_DEFAULTS else f" (base {base_of(name, base)})"
            raise LandscapeError(f"{key} does not apply to {name}{on}; it takes: {', '.join(sorted(defaults)) or 'nothing'}")
    hyper = {**defaults, **{k: _coerce(k, v) for k, v in given.items()}}
    if name == "gsam" and (hyper["rho_max"] is not None or hyper["rho_min"] is not None):
        if "rho" in given:
            raise LandscapeError("gsam: give either rho (constant radius) or rho_max and rho_min (scheduled), not both")
        if hyper["rho_max"] is None or hyper["rho_min"] is None:
            raise LandscapeError("gsam: the scheduled radius needs both rho_max and rho_min")
        if hyper["rho_min"] > hyper["rho_max"]:
            raise LandscapeError(f"gsam: rho_min ({hyper['rho_min']}) must be <= rho_max ({hyper['rho_max']})")
        hyper["rho"] = None
    _validate(name, hyper)
    return hyper


def create_optimizer(
    name: str,
    model_or_params: nn.Module | Iterable[torch.Tensor],
    base: str | None = "adam",
    lr: float = 1e-3,
    **hyper: Any,
) -> ClosureOptimizer:
    """Build optimizer ``name`` (one of :data:`OPTIMIZERS`) behind the closure interface.

    ``model_or_params``: a model (preferred: its BatchNorm statistics are
    protected from the perturbed passes and ASAM tells weights from biases by
    name) or an iterable of parameters. ``base``: ``"adam"`` or ``"sgd"``, the
    optimizer that applies the SAM family's gradient (ignored for ``adam`` and
    ``sgd``, which are their own base). ``hyper``: the optimizer's
    hyper-parameters and the base optimizer's keyword arguments (``momentum``,
    ``weight_decay``, ``betas``, ``eps``, ``nesterov``, ...); ``None`` means the
    default. ``momentum`` applies to SGD only (Adam's is ``betas``).
    """
    name = _check_name(name)
    try:
        lr = float(lr)
    except (TypeError, ValueError):
        raise LandscapeError(f"bad value for lr: {lr!r}") from None
    if not lr > 0:
        raise LandscapeError(f"lr must be > 0, got {lr}")
    base = base_of(name, base)
    full = resolve_hyper(name, hyper, base)
    base_kwargs = {k: full[k] for k in BASE_DEFAULTS[base]}
    own = {k: full[k] for k in HYPER_DEFAULTS[name]}
    if name in BASE_DEFAULTS:
        return ClosureOptimizer(model_or_params, base=base, lr=lr, base_kwargs=base_kwargs, name=name)
    return _CLASSES[name](model_or_params, base=base, lr=lr, base_kwargs=base_kwargs, hyper=own)
