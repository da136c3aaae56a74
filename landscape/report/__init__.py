"""The interactive flatness report: one self-contained HTML file per study.

```python
from landscape.report import build_report
build_report(["checkpoints/"], "report.html")              # computes missing analyses, caches them
build_report(runs, "report.html", compute=False)           # only cached results; lists what is missing
build_report(runs, "report.html", png_dir="figures/")      # plus matplotlib PNGs for papers
```

Modules: ``collect`` (runs and their analysis records), ``rows`` (per-run
numbers), ``inference`` (Kendall tau within seeds, exact p, Holm), ``stats`` (mean ± std),
``summary``, ``series`` (plot data), ``figures`` (plotly), ``pngs``
(matplotlib), ``html`` (escaping and the page), ``content`` (text sections),
``build`` (the entry point).
"""

from landscape.report.build import build_report

__all__ = ["build_report"]
