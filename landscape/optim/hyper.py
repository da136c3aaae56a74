"""Hyper-parameter checks and the base optimizers' defaults: plain Python, importable without torch."""

from __future__ import annotations

from typing import Any

from landscape.errors import LandscapeError


def require(ok: bool, name: str, message: str) -> None:
    """Raise ``LandscapeError("<name>: <message>")`` (an optimizer's hyper-parameter check) unless ``ok``."""
    if not ok:
        raise LandscapeError(f"{name}: {message}")


def nonnegative(name: str, hyper: dict[str, Any], *keys: str) -> None:
    """Every given (not None) ``hyper[key]`` must be >= 0."""
    for key in keys:
        if hyper.get(key) is not None:
            require(hyper[key] >= 0, name, f"{key} must be >= 0, got {hyper[key]}")


#: Keyword arguments of each named base optimizer and their defaults (``momentum`` is SGD's only).
BASE_DEFAULTS: dict[str, dict[str, Any]] = {
    "adam": {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False},
    "adamw": {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.01, "amsgrad": False},
    "sgd": {"momentum": 0.9, "dampening": 0.0, "nesterov": False, "weight_decay": 0.0},
}
#: Learning rate of each base optimizer when a run gives none; the base a run uses when it names none.
BASE_LR: dict[str, float] = {"adam": 1e-3, "adamw": 1e-3, "sgd": 0.05}
DEFAULT_BASE = "adam"
