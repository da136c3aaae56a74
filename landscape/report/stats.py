"""Shared statistics helpers: per-group mean ± std and ``MIN_POINTS``.

Percentile intervals of bootstrap values: :func:`landscape.external.bootstrap.percentile_ci`.

Rank correlations live in :mod:`landscape.report.inference` (Kendall's tau
within seeds, exact p, interval over seeds).

* Aggregation over seeds uses the sample standard deviation (ddof=1); a group
  of one run has ``std = None``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

MIN_POINTS = 3  # fewer runs carry no rank information worth a correlation


def mean_std(values: Iterable[float | None]) -> dict:
    """``{"mean", "std", "n"}`` of the finite values (sample std, ddof=1)."""
    vals = np.array([float(v) for v in values if _finite(v)], dtype=float)
    if len(vals) == 0:
        return {"mean": None, "std": None, "n": 0}
    std = float(vals.std(ddof=1)) if len(vals) > 1 else None
    return {"mean": float(vals.mean()), "std": std, "n": int(len(vals))}


def aggregate(rows: Sequence[dict], by: str, fields: Sequence[str]) -> list[dict]:
    """Group ``rows`` by ``row[by]`` (first-seen order) and give mean ± std of each field.

    Returns ``[{by: group, "n_runs": k, field: {"mean", "std", "n"}, ...}]``.
    """
    groups: dict = {}
    for row in rows:
        groups.setdefault(row[by], []).append(row)
    out = []
    for key, members in groups.items():
        entry = {by: key, "n_runs": len(members)}
        for field in fields:
            entry[field] = mean_std(m.get(field) for m in members)
        out.append(entry)
    return out


def _finite(v) -> bool:
    return v is not None and isinstance(v, (int, float, np.floating, np.integer)) and math.isfinite(float(v))
