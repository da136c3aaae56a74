"""Study settings: the full defaults and the ``--quick`` preset.

``analyses`` maps each analysis (``hessian``, ``sharpness``, ``surface_1d``,
``surface_2d``) to keyword arguments on top of what ``landscape report``
uses (:data:`landscape.report.collect.ANALYSES`: the analyzer's defaults plus
what the report needs); an empty dict gives exactly the report's settings.
``measures`` holds keyword arguments of :func:`landscape.analysis.measures.analyze_measures`.
The quick preset was sized by measurement (benchmarks/bench_study.py) to
finish ``landscape study --quick`` in under 10 minutes on 2 CPU cores.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Preset:
    """Training and analysis settings of a study."""

    epochs: int
    seeds: int
    img_size: int
    batch_size: int = 32
    analyses: dict = field(default_factory=dict)


FULL = Preset(epochs=30, seeds=3, img_size=64, analyses={})

QUICK = Preset(
    epochs=4,
    seeds=2,
    img_size=32,
    batch_size=32,
    analyses={
        "hessian": {"top_k": 1, "samples": 64, "trace_settings": {"max_hvps": 24, "rtol": 0.05},
                    "density_settings": {"runs": 1, "steps": 16}},
        "sharpness": {"rhos": (0.02, 0.05, 0.1), "m": 32, "samples": 64, "steps": 4},
        "surface_1d": {"grid": 21, "samples": 64},
        "surface_2d": {"grid": 11, "samples": 64},
        "measures": {"samples": 64, "ggn_samples": 32, "draws": 2, "depth": 6},
    },
)
