"""Optimizers behind one closure interface: Adam, SGD and the SAM family, in one registry.

```python
opt = create_optimizer("sam", model, base="adam", lr=1e-3, rho=0.05, weight_decay=1e-4)
def closure():
    opt.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    return loss
loss = opt.step(closure)      # calls the closure once per pass (opt.passes_per_step)
```

Every optimizer is an :class:`OptimSpec` (name, class, default
hyper-parameters, passes per step, description) in the registry:
:func:`list_optimizers`, :func:`get_optimizer`, :func:`register_optimizer`.
``OPTIMIZERS`` names the built-ins (adam, sgd, sam, asam, gsam, wsam, crsam,
gcsam). ``resolve_hyper(name, given, base)`` fills defaults and rejects keys
that do not apply; ``hyper_defaults(name, base)`` lists them. ``base`` may
be any ``torch.optim.Optimizer`` subclass, ``model_or_params`` a list of
parameter groups (:func:`weight_decay_groups` makes timm's no-decay groups),
and ``amp="bf16"|"fp16"`` runs every pass in mixed precision
(:mod:`landscape.optim.amp`; closures then call ``opt.backward(loss)``).
"""

from landscape.optim.hyper import BASE_DEFAULTS
from landscape.optim.registry import (
    OptimSpec,
    base_of,
    create_optimizer,
    get_optimizer,
    hyper_defaults,
    list_optimizers,
    register_optimizer,
    resolve_hyper,
)

#: The built-in optimizers, in registration order (``list_optimizers()`` adds the user's).
OPTIMIZERS: tuple[str, ...] = tuple(list_optimizers())

__all__ = [
    "BASE_DEFAULTS",
    "OPTIMIZERS",
    "ClosureOptimizer",
    "OptimSpec",
    "base_of",
    "create_optimizer",
    "get_optimizer",
    "hyper_defaults",
    "list_optimizers",
    "register_optimizer",
    "resolve_hyper",
    "weight_decay_groups",
]


#: public names that need torch -> their module, imported on first use (``--help`` lists optimizers without torch)
_LAZY = {"ClosureOptimizer": "landscape.optim.base", "weight_decay_groups": "landscape.optim.groups"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'landscape.optim' has no attribute {name!r}")
