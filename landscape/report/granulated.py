"""Which measure predicts generalization: Kendall tau with design-respecting CIs and p-values, Jiang's Psi.

Conventions
-----------
* Hyper-parameter axes: ``optimizer``, ``model``, ``rho``, ``lr``, ``epochs``
  (:data:`HYPER_AXES`); an axis counts when it takes more than one value over
  the runs. The seed is never an axis: it is the replicate within a setting.
  ``rho`` and ``lr`` are the optimizer's own settings: on the optimizer axis
  they travel with the optimizer (groups fix model, seed and epochs); on the
  rho (lr) axis the optimizer, model, seed, epochs and lr (rho) are fixed.
* Granulated coefficient (Jiang et al. 2020, Eq. 4): for hyper-parameter
  axis i, ``psi_i`` is the mean over groups of runs that differ only along i
  (every other axis and the seed fixed) of Kendall's tau (tau-b) between
  measure and target within the group; ``Psi`` is the mean of the ``psi_i``
  that are defined (``psi_by_axis``). A group needs at least
  :data:`~landscape.report.stats.MIN_POINTS` (3) runs with both values and a
  defined tau; axes that vary but have no such group are named in
  ``axes_without_groups`` instead of being averaged away.
* Every cell's ``p`` is a permutation test stratified by seed and its CI a
  cluster bootstrap (:mod:`landscape.report.inference`); ``p_holm`` is Holm's
  adjustment over the whole measure x target table.
* Measures that are monotone transforms of another (``MeasureSpec.monotone_of``)
  share its rank statistics: the table shows the first and lists the others
  under ``equivalent``.
* Signs are raw: a complexity measure that predicts generalization has tau < 0
  against accuracy/AUROC and tau > 0 against the gap and the drop.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
from scipy import stats as _sps

from landscape.measures import REGISTRY
from landscape.report.inference import cluster_bootstrap_ci, holm, permutation_p
from landscape.report.stats import MIN_POINTS, _finite

AXES = ("optimizer", "seed", "model", "rho", "lr", "epochs")
#: the axes Psi averages over: every axis but the seed
HYPER_AXES = tuple(a for a in AXES if a != "seed")
#: axes whose values travel with another axis when that one varies
NESTED = {"optimizer": ("rho", "lr")}
TARGETS = {
    "test_balanced_accuracy": "in-site test balanced accuracy",
    "gap": "generalization gap (train − test balanced accuracy)",
    "external_auroc": "external AUROC (benign vs malignant)",
    "drop": "in-site → external AUROC drop",
}


def kendall(x: Sequence, y: Sequence) -> float | None:
    """Kendall tau-b of the finite pairs; None with fewer than MIN_POINTS pairs or when undefined."""
    pairs = [(float(a), float(b)) for a, b in zip(x, y) if _finite(a) and _finite(b)]
    if len(pairs) < MIN_POINTS:
        return None
    xs, ys = zip(*pairs)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        tau = _sps.kendalltau(xs, ys).statistic
    return float(tau) if math.isfinite(tau) else None


def varying_axes(rows: Sequence[dict], axes: Sequence[str] = HYPER_AXES) -> list[str]:
    """The ``axes`` (hyper-parameter axes by default) that take more than one value over ``rows``."""
    return [a for a in axes if len({repr(r["axes"].get(a)) for r in rows}) > 1]


def _fixed(axis: str, axes: Sequence[str]) -> list[str]:
    travel = NESTED.get(axis, ())
    return [a for a in AXES if a != axis and a not in travel]


def psi_axis(rows: Sequence[dict], measure: str, target: str, axis: str) -> dict:
    """``{"psi", "n_groups", "n_runs", "taus", "note"}`` of one axis (see module docstring)."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(repr([r["axes"].get(a) for a in _fixed(axis, AXES)]), []).append(r)
    taus = []
    used = 0
    for members in groups.values():
        tau = kendall([m["measures"].get(measure) for m in members], [m["targets"].get(target) for m in members])
        if tau is not None:
            taus.append(tau)
            used += len(members)
    if not taus:
        biggest = max(len(g) for g in groups.values()) if groups else 0
        return {"psi": None, "n_groups": 0, "n_runs": 0, "taus": [],
                "note": f"fewer than {MIN_POINTS} runs vary only in {axis} (largest group: {biggest})"}
    return {"psi": float(np.mean(taus)), "n_groups": len(taus), "n_runs": used, "taus": taus, "note": None}


def granulated(rows: Sequence[dict], measure: str, target: str, axes: Sequence[str] = HYPER_AXES) -> dict:
    """``{"psi", "psi_by_axis", "axes_without_groups", "axes": {axis: psi_axis(...)}, "note"}``.

    Over the ``axes`` that vary (the hyper-parameter axes by default; pass
    :data:`AXES` to see what counting the seed as an axis would give).
    """
    per_axis = {a: psi_axis(rows, measure, target, a) for a in varying_axes(rows, axes)}
    by_axis = {a: v["psi"] for a, v in per_axis.items()}
    defined = [v for v in by_axis.values() if v is not None]
    note = None if defined else ("no hyper-parameter varies" if not per_axis
                                 else f"fewer than {MIN_POINTS} runs on every axis")
    return {"psi": float(np.mean(defined)) if defined else None, "psi_by_axis": by_axis,
            "axes_without_groups": [a for a, v in by_axis.items() if v is None], "axes": per_axis, "note": note}


def equivalents(measures: Sequence[str], rows: Sequence[dict]) -> dict[str, list[str]]:
    """``{shown: [monotone transforms of it]}`` (a transform is shown itself when its partner is absent)."""
    varying = set(varying_axes(rows, AXES))
    out: dict[str, list[str]] = {}
    for m in measures:
        spec = REGISTRY.get(m)
        base = spec.monotone_of if spec is not None else ""
        if base in measures and not (spec.monotone_axis and spec.monotone_axis in varying):
            out.setdefault(base, []).append(m)
        else:
            out.setdefault(m, [])
    return out


def _cell(rows: Sequence[dict], m: str, t: str, n_boot: int, seed: int) -> dict:
    x, y = [r["measures"].get(m) for r in rows], [r["targets"].get(t) for r in rows]
    seeds = [r["axes"].get("seed") for r in rows]
    by = "seed" if len(set(map(repr, seeds))) >= 3 else "group"
    low, high, valid = cluster_bootstrap_ci(x, y, seeds if by == "seed" else [r["group"] for r in rows],
                                            n_boot=n_boot, seed=seed)
    perm = permutation_p(x, y, seeds, n_perm=n_boot, seed=seed)
    return {"measure": m, "target": t, "n": sum(_finite(a) and _finite(b) for a, b in zip(x, y)),
            "kendall_tau": kendall(x, y),
            "kendall_ci": None if low is None else [low, high], "ci_method": f"cluster bootstrap over {by}s",
            "n_boot_valid": valid, "p": perm["p"], "p_method": ("permutation within seeds" if perm["stratified"]
                                                                 else "permutation over runs"),
            **granulated(rows, m, t)}


def predictors(rows: Sequence[dict], measures: Sequence[str], n_boot: int = 2000, seed: int = 0,
               min_domain_size: int | None = None) -> dict:
    """The full table: per (measure, target) tau, CI, p, p_holm and Psi; per measure the robust views.

    Monotone transforms are folded into the measure they transform
    (``equivalent``). ``measures`` are ordered by ``|Psi|`` against the first
    target that has a Psi (in :data:`TARGETS` order), measures without one last.
    """
    from landscape.report.cmi import cmi_test
    from landscape.report.robust import MIN_DOMAIN_SIZE, robust_sign_error, worst_domain_tau

    min_domain_size = MIN_DOMAIN_SIZE if min_domain_size is None else min_domain_size
    groups = equivalents(measures, rows)
    shown = list(groups)
    cells = {f"{m}|{t}": _cell(rows, m, t, n_boot, seed) for m in shown for t in TARGETS}
    for c, p in zip(cells.values(), holm([c["p"] for c in cells.values()])):
        c["p_holm"] = p
    primary = next((t for t in TARGETS if any(cells[f"{m}|{t}"]["psi"] is not None for m in shown)), None)

    def key(m):
        psi = cells[f"{m}|{primary}"]["psi"] if primary else None
        return (psi is None, -abs(psi) if psi is not None else 0.0)

    order = sorted(shown, key=key)
    direction = {m: REGISTRY[m].direction if m in REGISTRY else 1 for m in order}
    hyper = varying_axes(rows)
    return {"axes": hyper, "targets": TARGETS, "sorted_by": primary, "measures": order,
            "equivalent": {m: groups[m] for m in order},
            "directions": direction,
            "cells": [cells[f"{m}|{t}"] for m in order for t in TARGETS],
            "robust_sign_error": {m: robust_sign_error(rows, m, direction[m], min_domain_size) for m in order},
            "worst_domain_tau": {m: worst_domain_tau(rows, m, direction[m], min_domain_size) for m in order},
            "cmi": {m: cmi_test(rows, m, "gap", direction[m]) for m in order},
            "min_domain_size": min_domain_size, "n_runs": len(rows), "n_boot": n_boot, "seed": seed,
            "multiple_comparisons": f"Holm over {sum(c['p'] is not None for c in cells.values())} cells"}
