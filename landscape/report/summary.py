"""Numbers that answer the study's question: flatness-vs-generalization correlations and per-group means."""

from __future__ import annotations

from collections.abc import Sequence

from landscape.report.rows import METRICS, TARGETS, flatness_measures
from landscape.report.stats import aggregate, correlation

#: Fields aggregated over seeds per group (mean ± std), before the flatness measures.
AGGREGATED = tuple(key for key, _ in METRICS) + ("gap",)


def correlations(rows: Sequence[dict], n_boot: int = 2000, seed: int = 0) -> list[dict]:
    """Kendall/Spearman (with bootstrap CIs) of every flatness measure against every target, over runs.

    Returns ``[{"measure", "target", **correlation(...)}]`` in measure x ``TARGETS`` order.
    """
    out = []
    for measure in flatness_measures(rows):
        for target in TARGETS:
            c = correlation([r[measure] for r in rows], [r[target] for r in rows], n_boot=n_boot, seed=seed)
            out.append({"measure": measure, "target": target, **c})
    return out


def summarize(rows: Sequence[dict], n_boot: int = 2000, seed: int = 0) -> dict:
    """``{"measures": {name: title}, "groups": per-group mean ± std, "correlations": [...]}`` of the run rows;
    ``measures`` are the flatness measures that some run has (:func:`~landscape.report.rows.flatness_measures`).
    """
    measures = flatness_measures(rows)
    return {"measures": measures, "groups": aggregate(rows, "group", AGGREGATED + tuple(measures)),
            "correlations": correlations(rows, n_boot, seed)}
