"""Optimizers behind one closure interface: Adam, SGD and the SAM family.

```python
opt = create_optimizer("sam", model, base="adam", lr=1e-3, rho=0.05, weight_decay=1e-4)
def closure():
    opt.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    return loss
loss = opt.step(closure)      # calls the closure once per pass (opt.passes_per_step)
```

``OPTIMIZERS``: adam, sgd, sam, asam, gsam, wsam, crsam, gcsam.
``resolve_hyper(name, given, base)`` fills defaults and rejects keys that do
not apply; ``hyper_defaults(name, base)`` lists them.
"""

from landscape.optim.base import BASE_DEFAULTS, ClosureOptimizer
from landscape.optim.registry import HYPER_DEFAULTS, OPTIMIZERS, base_of, create_optimizer, hyper_defaults, resolve_hyper

__all__ = [
    "BASE_DEFAULTS",
    "HYPER_DEFAULTS",
    "OPTIMIZERS",
    "ClosureOptimizer",
    "base_of",
    "create_optimizer",
    "hyper_defaults",
    "resolve_hyper",
]
