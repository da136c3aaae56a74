"""Jiang et al.'s conditional-mutual-information test: what a measure tells about generalization beyond the
hyper-parameters (Jiang et al. 2020, Sec. 6, "conditional independence test").

Over all ordered pairs ``(i, j)``, ``i != j``, of runs with both values:
``V_g = sign(g_i - g_j)`` (pairs with ``g_i = g_j`` are left out) and
``V_mu = sign(d (mu_i - mu_j))`` (``d`` the measure's expected direction; a
tie is its own value 0). For a set ``S`` of hyper-parameter axes (never the
seed), ``U_S = (theta_i[S], theta_j[S])``. Empirical probabilities over the
pairs give

``I(V_mu, V_g | U_S) = sum_u p(u) sum_{a, b} p(a, b | u) log(p(a, b | u) / (p(a | u) p(b | u)))``

normalised by ``H(V_g | U_S) = sum_u p(u) H(V_g | u)``; a set with
``H(V_g | U_S) = 0`` (the hyper-parameters alone fix every sign) is
undefined and skipped. ``K = min`` of the normalised value over every ``S``
with ``|S| <= max_size`` (2, as in the paper; ``S`` empty included): a
measure whose link to generalization runs only through a hyper-parameter
gets ``K`` near 0 however strong its raw correlation. Ordered pairs make
``V_g`` symmetric, so ``H(V_g) = log 2`` without conditioning.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from itertools import combinations

from landscape.report.granulated import varying_axes
from landscape.report.stats import _finite


def _entropy(counts: Counter) -> float:
    n = sum(counts.values())
    return -sum(c / n * math.log(c / n) for c in counts.values() if c)


def conditional_mi(rows: Sequence[dict], measure: str, target: str = "gap", direction: int = 1,
                   axes: Sequence[str] = ()) -> dict:
    """``{"mi", "h", "normalised", "n_pairs"}`` of ``I(V_mu, V_g | U_axes)`` (see module docstring); nats."""
    use = [r for r in rows if _finite(r["measures"].get(measure)) and _finite(r["targets"].get(target))]
    groups: dict = {}
    for i, a in enumerate(use):
        for j, b in enumerate(use):
            g = a["targets"][target] - b["targets"][target]
            if i == j or g == 0:
                continue
            mu = direction * (a["measures"][measure] - b["measures"][measure])
            u = repr([(a["axes"].get(x), b["axes"].get(x)) for x in axes])
            groups.setdefault(u, []).append((int(math.copysign(1, mu)) if mu else 0, 1 if g > 0 else -1))
    n = sum(len(v) for v in groups.values())
    if not n:
        return {"mi": None, "h": None, "normalised": None, "n_pairs": 0}
    mi = h = 0.0
    for pairs in groups.values():
        w = len(pairs) / n
        joint, vm, vg = Counter(pairs), Counter(p[0] for p in pairs), Counter(p[1] for p in pairs)
        m = len(pairs)
        mi += w * sum(c / m * math.log((c / m) / (vm[a] / m * vg[b] / m)) for (a, b), c in joint.items())
        h += w * _entropy(vg)
    return {"mi": mi, "h": h, "normalised": mi / h if h > 1e-12 else None, "n_pairs": n}


def cmi_test(rows: Sequence[dict], measure: str, target: str = "gap", direction: int = 1,
             max_size: int = 2) -> dict:
    """``{"k", "argmin", "by_condition": {"a,b": normalised CMI or None}}`` over every ``S``, ``|S| <= max_size``."""
    axes = varying_axes(rows)
    by = {}
    for size in range(0, max_size + 1):
        for s in combinations(axes, size):
            by[",".join(s)] = conditional_mi(rows, measure, target, direction, s)["normalised"]
    defined = {s: v for s, v in by.items() if v is not None}
    best = min(defined, key=defined.get) if defined else None
    return {"k": None if best is None else defined[best], "argmin": best, "by_condition": by, "target": target,
            "max_size": max_size}
