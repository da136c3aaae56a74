"""Generalization measures of a trained checkpoint, with a registry (Jiang et al. 2020's catalogue and more).

```python
from landscape.measures import REGISTRY, analyze_measures, measure_values
record = analyze_measures("checkpoints/busi-cnn-small-sam-s0", measures="all", samples=512)
record["result"]["values"]["pacbayes_sigma"]
values = measure_values(path_to_final_pt, sha16)   # computed + reused (hessian, sharpness) measures
```

Adding a measure is one :func:`register` call with a :class:`MeasureSpec`;
docs/measures.md states every measure's definition, units and reference.
"""

from landscape.measures import catalogue  # noqa: F401  (registers the built-in measures)
from landscape.measures.analyze import analyze_measures, measure_values
from landscape.measures.registry import REGISTRY, MeasureSpec, register, select_measures

__all__ = ["REGISTRY", "MeasureSpec", "analyze_measures", "measure_values", "register", "select_measures"]
