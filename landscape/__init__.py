"""landscape: loss-landscape and sharpness analysis of image classifiers.

Layers, left to right (a module imports only from its left):
``data`` -> ``models`` -> ``optim`` -> ``train`` -> ``checkpoint`` ->
engines (``hessian``, ``sharpness``, ``directions``, ``surface``: pure math) ->
``analysis`` (checkpoint-level, cached drivers) -> ``report`` -> ``study`` ->
``cli``.  ``errors``, ``io``, ``progress``, ``metrics`` and ``drivers`` are
shared utilities below all of them.

The everyday entry points are importable from here; each is loaded on first
use, so ``import landscape`` stays light:

* :func:`load_checkpoint` - a run folder or ``.pt`` as a :class:`~landscape.checkpoint.Checkpoint`;
* :func:`create_model`, :func:`create_optimizer` - the model and optimizer registries;
* :func:`top_eigenvalues`, :func:`trace`, :func:`spectral_density` - the Hessian of a checkpoint (or
  run folder), or of a model with ``loss_fn`` and ``data``, or of an operator (:mod:`landscape.api`);
* :func:`hessian_operator`, :func:`ggn_operator`, :func:`fisher_operator` - curvature
  operators of any model, loss and data (``H @ v``, ``H.to_scipy()``);
* :func:`sharpness`, :func:`surface` - a checkpoint's cached m-sharpness / loss surface
  (the packages :mod:`landscape.sharpness` and :mod:`landscape.surface`, called);
* :func:`build_report`, :func:`run_study` - the HTML report and the whole study.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: public name -> (module, attribute in it; None for the module itself)
_API: dict[str, tuple[str, str | None]] = {
    "load_checkpoint": ("landscape.checkpoint", "load_checkpoint"),
    "create_model": ("landscape.models", "create"),
    "create_optimizer": ("landscape.optim", "create_optimizer"),
    "top_eigenvalues": ("landscape.api", "top_eigenvalues"),
    "trace": ("landscape.api", "trace"),
    "spectral_density": ("landscape.api", "spectral_density"),
    "hessian_operator": ("landscape.hessian", "hessian_operator"),
    "ggn_operator": ("landscape.hessian", "ggn_operator"),
    "fisher_operator": ("landscape.hessian", "fisher_operator"),
    "sharpness": ("landscape.sharpness", None),
    "surface": ("landscape.surface", None),
    "build_report": ("landscape.report", "build_report"),
    "run_study": ("landscape.study", "run_study"),
}

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'landscape' has no attribute {name!r}")
    module, attr = _API[name]
    value = importlib.import_module(module)
    return value if attr is None else getattr(value, attr)


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
