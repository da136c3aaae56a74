"""Numbers that answer the study's question: flatness-vs-generalization correlations and per-group means."""

from __future__ import annotations

from collections.abc import Sequence

from landscape.report.rows import METRICS, TARGETS, flatness_measures
from landscape.report.stats import aggregate

#: Fields aggregated over seeds per group (mean ± std), before the flatness measures.
AGGREGATED = tuple(key for key, _ in METRICS) + ("gap",)
#: The run rows' targets (:data:`landscape.report.rows.TARGETS`) -> the same targets in the predictor table.
PREDICTOR_TARGET = {"balanced_accuracy": "test_balanced_accuracy", "gap": "gap"}


def correlations(rows: Sequence[dict], predictors: dict) -> list[dict]:
    """The predictor table's cell of every flatness measure against every target, in measure x ``TARGETS`` order.

    Each is the cell of :func:`landscape.report.granulated.predictors` as it is
    (within-seed Kendall tau, its interval, exact p, Holm p over that table,
    Psi), its ``target`` named as in the run rows, so the summary and the
    predictor table show one set of numbers.
    """
    cells = {(c["measure"], c["target"]): c for c in predictors["cells"]}
    return [{**cells[(m, PREDICTOR_TARGET[t])], "target": t} for m in flatness_measures(rows) for t in TARGETS]


def summarize(rows: Sequence[dict], predictors: dict) -> dict:
    """``{"measures": {name: title}, "groups": per-group mean ± std, "correlations": [...]}`` of the run rows;
    ``measures`` are the flatness measures that some run has (:func:`~landscape.report.rows.flatness_measures`),
    ``correlations`` their cells of ``predictors`` (:func:`correlations`).
    """
    measures = flatness_measures(rows)
    return {"measures": measures, "groups": aggregate(rows, "group", AGGREGATED + tuple(measures)),
            "correlations": correlations(rows, predictors)}
