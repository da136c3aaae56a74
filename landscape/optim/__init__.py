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
that do not apply; ``hyper_defaults(name, base)`` lists them.
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
]


def __getattr__(name: str):
    if name == "ClosureOptimizer":  # the only name that needs torch: loaded on first use
        from landscape.optim.base import ClosureOptimizer

        return ClosureOptimizer
    raise AttributeError(f"module 'landscape.optim' has no attribute {name!r}")
