"""Generalization measures (Jiang et al. 2020's catalogue and more): pure math over (model, loss, data) and a registry.

```python
from landscape.measures import REGISTRY, MeasureSpec, register
from landscape.measures import curvature, norms, outputs, pacbayes   # the math
import landscape.measures; landscape.measures(ck, samples=512)       # the checkpoint-level driver
```

Adding a measure is one :func:`register` call with a :class:`MeasureSpec`;
docs/measures.md states every measure's definition, units and reference. The
checkpoint-level driver (cached ``measures`` records) is
:func:`landscape.analysis.measures.analyze`.
"""

from landscape.drivers import make_callable
from landscape.measures import catalogue  # noqa: F401  (registers the built-in measures)
from landscape.measures.registry import REGISTRY, MeasureSpec, register, select_measures

__all__ = ["REGISTRY", "MeasureSpec", "register", "select_measures"]

make_callable(__name__, "landscape.analysis.measures")
