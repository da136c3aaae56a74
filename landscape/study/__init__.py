"""The one-command study: train every (model, optimizer, seed), analyse, report.

```python
from landscape.study import run_study
result = run_study(quick=True)          # built-in phantom, minutes on a laptop CPU
result.report                           # Path of the self-contained HTML report
```
"""

from landscape.study.presets import FULL, QUICK, Preset
from landscape.study.run import StudyResult, run_study

__all__ = ["FULL", "Preset", "QUICK", "StudyResult", "run_study"]
