"""The optimizer registry: one :class:`OptimSpec` per optimizer, and ``create_optimizer``.

Nothing else lists optimizer names: the CLI's choices, flags and help text, the
README table and ``landscape list optimizers`` come from the specs (timm's
``OptimInfo`` / ``OptimizerRegistry`` pattern). Register your own with
:func:`register_optimizer`; a spec's class is a
:class:`~landscape.optim.base.ClosureOptimizer` whose ``check_hyper`` holds its
own validation rules.

A spec names its class as ``"module:Class"`` (the built-ins) or holds the class
itself; a named class is imported on first use, so listing optimizers, their
hyper-parameters and ``--help`` need neither torch nor the optimizer modules.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from landscape.checks import check_finite
from landscape.errors import LandscapeError
from landscape.optim.hyper import BASE_DEFAULTS, DEFAULT_BASE, nonnegative, require

if TYPE_CHECKING:
    from torch import nn

    from landscape.optim.base import Base, ClosureOptimizer


@dataclass(frozen=True)
class OptimSpec:
    """One optimizer: its name, class, own hyper-parameters with defaults, passes per step and a description.

    ``cls`` is a :class:`~landscape.optim.base.ClosureOptimizer` subclass or
    ``"module:Class"`` naming one (see :meth:`optimizer_class`).

    ``defaults`` holds the optimizer's own hyper-parameters (the base
    optimizer's are :data:`~landscape.optim.base.BASE_DEFAULTS`); their types
    decide how CLI strings are parsed (bool, tuple, else float). ``passes``
    must equal ``cls.passes_per_step``. ``help`` describes hyper-parameters
    for ``--help``; ``paper`` is a short citation for the README table.
    """

    name: str
    cls: type[ClosureOptimizer] | str
    defaults: dict[str, Any]
    passes: int
    description: str
    help: dict[str, str] = field(default_factory=dict)
    paper: str = ""

    @property
    def is_base(self) -> bool:
        """Whether this is a one-pass base optimizer (``adam``, ``sgd``), its own base."""
        return self.name in BASE_DEFAULTS

    def optimizer_class(self) -> type[ClosureOptimizer]:
        """The class, imported on first use when ``cls`` names it; checked as :func:`register_optimizer` does."""
        if not isinstance(self.cls, str):
            return self.cls
        key = (self.name, self.cls, self.passes)
        if key not in _CLASSES:
            module, _, attr = self.cls.partition(":")
            _CLASSES[key] = _checked_class(self.name, getattr(importlib.import_module(module), attr), self.passes)
        return _CLASSES[key]


#: ``(name, "module:Class", passes)`` -> the imported and checked class.
_CLASSES: dict[tuple[str, str, int], type] = {}


def _checked_class(name: str, cls: Any, passes: int) -> type[ClosureOptimizer]:
    """``cls`` if it is a ClosureOptimizer subclass taking ``passes`` passes per step, else LandscapeError."""
    from landscape.optim.base import ClosureOptimizer

    if not (isinstance(cls, type) and issubclass(cls, ClosureOptimizer)):
        raise LandscapeError(f"{name}: cls must be a ClosureOptimizer subclass, got {cls!r}")
    if passes != cls.passes_per_step:
        raise LandscapeError(f"{name}: passes={passes} but {cls.__name__}.passes_per_step={cls.passes_per_step}")
    return cls


_REGISTRY: dict[str, OptimSpec] = {}


def register_optimizer(spec: OptimSpec, overwrite: bool = False) -> OptimSpec:
    """Add ``spec`` to the registry (``overwrite`` replaces a spec of that name); returns it."""
    name = spec.name.lower()
    if name != spec.name or not name.replace("_", "").replace("-", "").isalnum():
        raise LandscapeError(f"optimizer name must be lower-case letters, digits, - or _, got {spec.name!r}")
    if name in _REGISTRY and not overwrite:
        raise LandscapeError(f"optimizer {name!r} is already registered (pass overwrite=True to replace it)")
    if isinstance(spec.cls, str):
        if spec.cls.count(":") != 1:
            raise LandscapeError(f"{name}: cls must be a class or 'module:Class', got {spec.cls!r}")
    else:
        _checked_class(name, spec.cls, spec.passes)
    clash = set(spec.defaults) & {k for d in BASE_DEFAULTS.values() for k in d}
    if clash:
        raise LandscapeError(f"{name}: hyper-parameters {sorted(clash)} belong to the base optimizer")
    _REGISTRY[name] = spec
    return spec


def list_optimizers() -> list[str]:
    """Registered optimizer names, in registration order (built-ins first)."""
    return list(_REGISTRY)


def get_optimizer(name: str) -> OptimSpec:
    """The spec of ``name`` (case-insensitive); LandscapeError naming the choices if unknown."""
    key = str(name).lower()
    if key not in _REGISTRY:
        raise LandscapeError(f"unknown optimizer {name!r}; choose from: {', '.join(_REGISTRY)}")
    return _REGISTRY[key]


def base_of(name: str, base: Base | None = "adam") -> Base:
    """The base optimizer used by ``name``: adam and sgd are their own base, the SAM family uses ``base``.

    ``base``: a name of :data:`~landscape.optim.base.BASE_DEFAULTS` (any case)
    or a ``torch.optim.Optimizer`` subclass (returned as is).
    """
    spec = get_optimizer(name)
    if spec.is_base:
        return spec.name
    if base is None:
        return DEFAULT_BASE
    if isinstance(base, str):
        base = base.lower()
    from landscape.optim.base import base_class

    base_class(base)  # LandscapeError for an unknown base
    return base


def hyper_defaults(name: str, base: Base | None = "adam") -> dict[str, Any]:
    """Every hyper-parameter of ``name`` (on ``base``) with its default value."""
    base = base_of(name, base)
    if isinstance(base, str):
        own = BASE_DEFAULTS[base]
    else:
        from landscape.optim.base import class_defaults

        own = class_defaults(base)
    return {**get_optimizer(name).defaults, **own}


def _coerce(key: str, value: Any, default: Any) -> Any:
    """Turn CLI strings (``--opt-arg key=value``) and JSON lists into the default's type (None: float)."""
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                low = value.strip().lower()
                if low not in {"true", "false", "1", "0", "yes", "no"}:
                    raise ValueError(value)
                return low in {"true", "1", "yes"}
            return bool(value)
        if isinstance(default, tuple):
            parts = value.split(",") if isinstance(value, str) else list(value)
            if len(parts) != len(default):
                raise ValueError(value)
            return tuple(float(v) for v in parts)
        if isinstance(value, bool):
            raise ValueError(value)
        return float(value)
    except (TypeError, ValueError):
        raise LandscapeError(f"bad value for {key}: {value!r}") from None


def _check_base(name: str, hyper: dict[str, Any]) -> None:
    """The base optimizer's keyword arguments."""
    nonnegative(name, hyper, "weight_decay")
    if "momentum" in hyper:
        require(0 <= hyper["momentum"] < 1, name, f"momentum must be in [0, 1), got {hyper['momentum']}")
        require(0 <= hyper["dampening"] <= 1, name, f"dampening must be in [0, 1], got {hyper['dampening']}")
        require(not hyper["nesterov"] or (hyper["momentum"] > 0 and hyper["dampening"] == 0), name,
                "nesterov needs momentum > 0 and dampening 0")
    if "betas" in hyper:
        require(all(0 <= b < 1 for b in hyper["betas"]), name, f"betas must be in [0, 1), got {hyper['betas']}")
        require(hyper["eps"] > 0, name, f"eps must be > 0, got {hyper['eps']}")


def resolve_hyper(name: str, given: dict[str, Any] | None = None, base: str | None = "adam") -> dict[str, Any]:
    """All hyper-parameters of ``name`` (incl. the base optimizer's) with defaults filled in.

    ``None`` values count as not given. Raises :class:`LandscapeError` for an
    unknown optimizer, a key that does not apply (``"rho does not apply to adam;
    it takes: ..."``) or a value out of range (the spec class's ``check_hyper``).
    For ``gsam``, giving ``rho_max`` and ``rho_min`` switches to the
    learning-rate-scheduled radius (``rho`` is then ``None``); ``rho`` alone keeps it constant.
    """
    spec = get_optimizer(name)
    base = base_of(spec.name, base)
    defaults = hyper_defaults(spec.name, base)
    given = {k: v for k, v in (given or {}).items() if v is not None}
    for key in given:
        if key not in defaults:
            from landscape.optim.base import base_name

            on = "" if spec.is_base else f" (base {base_name(base)})"
            raise LandscapeError(f"{key} does not apply to {spec.name}{on}; "
                                 f"it takes: {', '.join(sorted(defaults)) or 'nothing'}")
    # a class base checks its own keyword arguments; named bases' CLI strings are parsed and checked here
    parse = {k for k in given if k in spec.defaults or isinstance(base, str)}
    hyper = {**defaults, **{k: _coerce(k, v, defaults[k]) if k in parse else v for k, v in given.items()}}
    for key in given:  # inf and NaN fail only at the first step otherwise
        check_finite(hyper[key], key)
    if isinstance(base, str):
        _check_base(spec.name, hyper)
    return spec.optimizer_class().check_hyper(hyper, given)


def create_optimizer(
    name: str,
    model_or_params: nn.Module | Iterable,
    base: Base | None = "adam",
    lr: float = 1e-3,
    amp: str | None = None,
    model: nn.Module | None = None,
    **hyper: Any,
) -> ClosureOptimizer:
    """Build optimizer ``name`` (one of :func:`list_optimizers`) behind the closure interface.

    ``model_or_params``: a model (preferred: its BatchNorm statistics are
    protected from the perturbed passes and ASAM tells weights from biases by
    name), an iterable of parameters, or a list of parameter groups (dicts
    with ``params`` and the group's own ``lr``, ``weight_decay``, ... and, for
    variants that allow it, ``rho``); pass ``model=`` with parameters or
    groups for the BatchNorm protection and names.  ``base``: the optimizer
    that applies the SAM family's gradient, a name (``"adam"``, ``"adamw"``,
    ``"sgd"``) or any ``torch.optim.Optimizer`` subclass such as
    ``torch.optim.AdamW`` (ignored for ``adam`` and ``sgd``, which are their
    own base). ``hyper``: the optimizer's hyper-parameters and the base
    optimizer's keyword arguments (``momentum``, ``weight_decay``, ``betas``,
    ``eps``, ``nesterov``, ...); ``None`` means the default. ``momentum``
    applies to SGD only (Adam's is ``betas``). ``amp``: None, ``"bf16"`` or
    ``"fp16"`` (:mod:`landscape.optim.amp`; closures then call
    ``opt.backward(loss)``).
    """
    spec = get_optimizer(name)
    try:
        lr = float(lr)
    except (TypeError, ValueError):
        raise LandscapeError(f"bad value for lr: {lr!r}") from None
    if not lr > 0:
        raise LandscapeError(f"lr must be > 0, got {lr}")
    base = base_of(spec.name, base)
    full = resolve_hyper(spec.name, hyper, base)
    if isinstance(base, str):
        base_kwargs = {k: full[k] for k in BASE_DEFAULTS[base]}
    else:  # a class base gets what was given; the record lists its defaults too
        base_kwargs = {k: v for k, v in hyper.items() if k not in spec.defaults and v is not None}
    own = {k: full[k] for k in spec.defaults}
    opt = spec.optimizer_class()(model_or_params, base=base, lr=lr, base_kwargs=base_kwargs, hyper=own,
                                 name=spec.name, amp=amp, model=model)
    if not isinstance(base, str):
        opt.hyper = {**own, **{k: v for k, v in full.items() if k not in own}}
    return opt


# The built-ins, in the registry's order (and ``--optimizer all``'s).
register_optimizer(OptimSpec("adam", "landscape.optim.base:ClosureOptimizer", {}, 1, "Adam, the one-pass baseline",
                             paper="Kingma & Ba, ICLR 2015"))
register_optimizer(OptimSpec("sgd", "landscape.optim.base:ClosureOptimizer", {}, 1,
                             "SGD with momentum, the one-pass baseline"))
register_optimizer(OptimSpec(
    "sam", "landscape.optim.sam:SAM", {"rho": 0.05}, 2,
    "sharpness-aware minimisation: descend with the gradient at w + rho g / norm(g)",
    help={"rho": "perturbation radius"},
    paper="Foret et al., ICLR 2021",
))
register_optimizer(OptimSpec(
    "asam", "landscape.optim.asam:ASAM", {"rho": 0.5, "eta": 0.01}, 2,
    "adaptive SAM: the ascent step scaled by abs(w) + eta on weight tensors",
    help={"rho": "perturbation radius (in normalised coordinates)",
          "eta": "offset of the adaptive scaling abs(w) + eta"},
    paper="Kwon et al., ICML 2021",
))
register_optimizer(OptimSpec(
    "gsam", "landscape.optim.gsam:GSAM",
    {"rho": 0.05, "rho_max": None, "rho_min": None, "lr_min": 0.0, "alpha": 0.4}, 2,
    "surrogate-gap guided SAM: also ascend along the clean gradient's part orthogonal to g+",
    help={"rho": "constant perturbation radius", "rho_max": "scheduled radius at the peak learning rate",
          "rho_min": "scheduled radius at lr_min", "lr_min": "learning rate at which the radius is rho_min",
          "alpha": "weight of the surrogate-gap ascent"},
    paper="Zhuang et al., ICLR 2022",
))
register_optimizer(OptimSpec(
    "wsam", "landscape.optim.wsam:WSAM", {"rho": 0.05, "gamma": 0.9, "decoupled": True}, 2,
    "weighted SAM: sharpness as a regulariser weighted by gamma / (1 - gamma)",
    help={"rho": "perturbation radius", "gamma": "sharpness weight, in [0, 1)",
          "decoupled": "apply the sharpness term as a separate step"},
    paper="Yue et al., KDD 2023",
))
register_optimizer(OptimSpec(
    "crsam", "landscape.optim.crsam:CRSAM", {"rho": 0.1, "gamma": 0.1, "beta": 0.01}, 3,
    "curvature-regularised SAM: finite-difference curvature and gradient-norm penalties",
    help={"rho": "perturbation radius", "gamma": "weight of the curvature penalty",
          "beta": "weight of the gradient-norm penalty"},
    paper="Wu, Luo & Wunsch, AAAI 2024",
))
register_optimizer(OptimSpec(
    "gcsam", "landscape.optim.gcsam:GCSAM", {"rho": 0.05}, 2,
    "SAM with gradient centralisation before the ascent step",
    help={"rho": "perturbation radius"},
    paper="Hassan et al., 2025",
))


def optimizer_rows() -> list[dict]:
    """One row per registered optimizer (``name``, ``passes``, ``hyper`` defaults, ``description``, ``paper``)."""
    return [{"name": s.name, "passes": s.passes, "hyper": dict(s.defaults), "description": s.description,
             "paper": s.paper} for s in _REGISTRY.values()]


def optimizer_markdown() -> str:
    """The README's optimizer table, generated from the specs (``tests/test_registries.py`` keeps them equal)."""
    lines = ["| `--optimizer` | passes per step | hyper-parameters (defaults) | what it does |", "|---|---|---|---|"]
    for row in optimizer_rows():
        hyper = ", ".join(f"`{k}={v}`" for k, v in row["hyper"].items()) or "base optimizer's only"
        paper = f" ({row['paper']})" if row["paper"] else ""
        lines.append(f"| `{row['name']}` | {row['passes']} | {hyper} | {row['description']}{paper} |")
    return "\n".join(lines)


def flag_help(key: str) -> str:
    """``--<key>`` help text: which optimizers take ``key``, with their description of it and default."""
    takers = [f"{s.name}: {s.help.get(key, key)}, default {s.defaults[key]}" for s in _REGISTRY.values()
              if key in s.defaults]
    return "; ".join(takers) + "." if takers else f"{key} (no registered optimizer takes it)."
