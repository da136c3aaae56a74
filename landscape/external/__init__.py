"""Cross-site evaluation: score a trained model on an external folder (e.g. BUS-BRA) on the shared classes.

```python
from landscape.external import evaluate_external
rec = evaluate_external("checkpoints/busi-cnn-small-sam-s0", "../shared/data/busbra",
                        csv="../shared/data/busbra/bus_data.csv", file_col="ID", label_col="Pathology",
                        group_col="Case", env_col="Device")
rec["result"]["external"]["overall"]["auroc"]
```
"""

from landscape.external.evaluate import evaluate_external, shared_classes

__all__ = ["evaluate_external", "shared_classes"]
