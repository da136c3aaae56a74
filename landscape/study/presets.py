"""Study settings: the full defaults and the ``--quick`` preset.

:meth:`Preset.analyses` maps each registered analysis to keyword arguments on
top of what ``landscape report`` uses (the spec's ``report_defaults``): nothing
for the full preset, each spec's ``quick_defaults`` for ``--quick``.
The quick preset was sized by measurement (benchmarks/bench_study.py) to
finish ``landscape study --quick`` in under 10 minutes on 2 CPU cores.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    """Training and analysis settings of a study."""

    epochs: int
    seeds: int
    img_size: int
    batch_size: int = 32
    keep: str = "all"  # per-epoch checkpoints: "all" (PCA trajectories) or "last" (resume only)
    quick_analyses: bool = False  # use each AnalysisSpec's quick_defaults

    def analyses(self) -> dict[str, dict]:
        """Keyword arguments per registered analysis, on top of the report's."""
        from landscape.analysis import get_analysis, list_analyses

        return {n: dict(get_analysis(n).quick_defaults) if self.quick_analyses else {} for n in list_analyses()}


FULL = Preset(epochs=30, seeds=3, img_size=64)
QUICK = Preset(epochs=4, seeds=2, img_size=32, batch_size=32, keep="last", quick_analyses=True)  # no PCA: final.pt
