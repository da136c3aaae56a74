"""Numbers that answer the study's question: flatness-vs-generalization correlations and per-group means."""

from __future__ import annotations

from collections.abc import Sequence

from landscape.report.rows import MEASURES, METRICS, TARGETS
from landscape.report.stats import aggregate, correlation

#: Fields aggregated over seeds per group (mean ± std).
AGGREGATED = tuple(key for key, _ in METRICS) + ("gap", "lambda_max", "trace", "m_sharpness")


def correlations(rows: Sequence[dict], n_boot: int = 2000, seed: int = 0) -> list[dict]:
    """Kendall/Spearman (with bootstrap CIs) of every measure against every target, over runs.

    Returns ``[{"measure", "target", **correlation(...)}]`` in ``MEASURES`` x ``TARGETS`` order.
    """
    out = []
    for measure in MEASURES:
        for target in TARGETS:
            c = correlation([r[measure] for r in rows], [r[target] for r in rows], n_boot=n_boot, seed=seed)
            out.append({"measure": measure, "target": target, **c})
    return out


def summarize(rows: Sequence[dict], n_boot: int = 2000, seed: int = 0) -> dict:
    """``{"groups": per-group mean ± std, "correlations": [...]}`` of the run rows."""
    return {"groups": aggregate(rows, "group", AGGREGATED), "correlations": correlations(rows, n_boot, seed)}
