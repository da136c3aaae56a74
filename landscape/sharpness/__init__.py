"""m-sharpness of a model: worst-case and average-case, standard or adaptive (pure math).

Definitions (see docs/sharpness.md): for sub-batches B of size m drawn from a
fixed, seeded subset of the training split, radius rho and scaling c
(``c = 1`` standard, ``c = |w|`` elementwise adaptive)::

    S_worst(rho) = mean_B [ max_{||delta / c||_p <= rho} L_B(w + delta) - L_B(w) ],  p in {2, inf}
    S_avg(rho)   = mean_B [ E_{delta ~ N(0, rho^2 diag(c^2))} L_B(w + delta) - L_B(w) ]

The model runs in eval mode and is never modified. Perturbations are
parameter-shaped ``dict[str, Tensor]`` over the parameters with
``requires_grad``. This package imports nothing from ``data``, ``train``,
``checkpoint`` or ``report``; the checkpoint-level, cached driver is
:func:`landscape.analysis.sharpness.analyze`, also reachable by calling the
package itself (``landscape.sharpness(ck, ...)``) or as ``landscape.sharpness.analyze``.

```python
batches = sub_batches(x, y, m=128, samples=1024, seed=0)
res = worst_case_sharpness(model, loss_fn, batches, rhos=[0.01, 0.05], norm="l2", adaptive=False, steps=20)
res.mean, res.std, res.per_batch   # per rho; per_batch is [n_batches x n_rhos]
record = landscape.sharpness(ck_or_path, rhos=(0.01, 0.02, 0.05, 0.1), m=128, kind="worst")  # cached
```
"""

from landscape.drivers import make_callable
from landscape.sharpness.average import average_case_sharpness
from landscape.sharpness.batches import sub_batches
from landscape.sharpness.result import SharpnessResult
from landscape.sharpness.worst import worst_case_sharpness

__all__ = ["SharpnessResult", "average_case_sharpness", "sub_batches", "worst_case_sharpness"]

make_callable(__name__, "landscape.analysis.sharpness")
