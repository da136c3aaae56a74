"""Cross-site evaluation: score a trained model on an external folder (e.g. BUS-BRA) on the shared classes.

```python
import landscape.external
rec = landscape.external(ck_or_run, "../shared/data/busbra", csv="../shared/data/busbra/bus_data.csv",
                         file_col="ID", label_col="Pathology", group_col="Case", env_col="Device")
rec["result"]["external"]["overall"]["auroc"]
```
The math (class matching, scores, group bootstrap) is here; the cached
checkpoint-level driver is :func:`landscape.analysis.external.analyze`.
"""

from landscape.drivers import make_callable
from landscape.external.bootstrap import group_bootstrap_ci, group_members, resample
from landscape.external.scoring import binary_metrics, restricted_probs, shared_classes

__all__ = ["binary_metrics", "group_bootstrap_ci", "group_members", "resample", "restricted_probs", "shared_classes"]

make_callable(__name__, "landscape.analysis.external")
