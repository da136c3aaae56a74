"""Which measure predicts generalization: Kendall tau within seeds with an exact p and an interval, Jiang's Psi.

Conventions
-----------
* Hyper-parameter axes: ``optimizer``, ``model``, ``rho``, ``lr``, ``epochs``
  (:data:`HYPER_AXES`); an axis counts when it takes more than one value over
  the runs. The seed is never an axis: it is the replicate within a setting.
* Granulated coefficient (Jiang et al. 2020, Eq. 4): for hyper-parameter
  axis i, ``psi_i`` is the mean over groups of runs that differ only along i
  (every other axis and the seed fixed) of Jiang's tau within the group,
  ``tau = sum_{i != j} sign(mu_i - mu_j) sign(g_i - g_j) / (n (n - 1))``
  (:func:`jiang_tau`, tau-a: a tie counts 0, so a measure constant within
  the groups, e.g. ``num_params`` on the optimizer axis, gets 0); ``Psi`` is the mean
  of the ``psi_i`` that are defined (``psi_by_axis``). A group counts from two
  runs with both values (an axis with two values gives tau = +1, -1 or 0 per
  group, as in Jiang's grid); axes that vary but have no such group are named
  in ``axes_without_groups`` instead of being averaged away.
* On the optimizer axis ``rho`` and ``lr`` are fixed like every other axis,
  so the optimizer's own settings never ride along. A run whose optimizer has
  no such hyper-parameter (Adam has no rho: its ``rho`` is None) joins the
  group of every value of it (Adam at lr 1e-3 sits in the group of SAM at
  rho 0.05 and in that of SAM at rho 0.1, both at lr 1e-3). The ``rho`` and
  ``lr`` axes fix the optimizer.
* Every cell's ``kendall_tau``, ``kendall_ci`` and ``p`` are one seed-stratified
  quantity (:func:`landscape.report.inference.stratified_kendall`: the
  concordance within seeds, its exact permutation p with ``p_floor``, and a
  t-interval over seeds); ``p_holm`` is Holm's adjustment over the whole
  measure x target table and ``holm_floor`` the Holm p every cell can reach
  at its most extreme.
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
from landscape.report.inference import holm, stratified_kendall
from landscape.report.stats import MIN_POINTS, _finite

AXES = ("optimizer", "seed", "model", "rho", "lr", "epochs")
#: the axes Psi averages over: every axis but the seed
HYPER_AXES = tuple(a for a in AXES if a != "seed")
#: the optimizer's own hyper-parameters: None where an optimizer has none (Psi: it joins every value's group;
#: the robust views let them travel with the optimizer)
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


def jiang_tau(x: Sequence, y: Sequence) -> float | None:
    """Jiang et al.'s Kendall coefficient of the finite pairs, ``sum_{i != j} sign(dx) sign(dy) / (n (n - 1))``
    (tau-a: a tie counts 0); None with fewer than two pairs.
    """
    pairs = [(float(a), float(b)) for a, b in zip(x, y) if _finite(a) and _finite(b)]
    if len(pairs) < 2:
        return None
    xs, ys = (np.array(v) for v in zip(*pairs))
    s = (np.sign(xs[:, None] - xs[None, :]) * np.sign(ys[:, None] - ys[None, :])).sum()
    return float(s / (len(xs) * (len(xs) - 1)))


def axis_groups(rows: Sequence[dict], axis: str) -> list[list[dict]]:
    """Groups of ``rows`` that differ only along ``axis`` (every other axis of :data:`AXES` fixed, see the module
    docstring: on the optimizer axis a None rho or lr joins every value's group).
    """
    fixed = [a for a in AXES if a != axis]
    wild = set(NESTED.get(axis, ()))
    keys = {repr([r["axes"].get(a) for a in fixed]): [r["axes"].get(a) for a in fixed] for r in rows}

    def covers(key, other):  # ``other`` is ``key`` with some None optimizer settings filled in
        return key != other and all(k == o or (a in wild and k is None) for a, k, o in zip(fixed, key, other))

    concrete = [k for k in keys.values() if not any(covers(k, o) for o in keys.values())]
    return [[r for r in rows if all(r["axes"].get(a) == k or (a in wild and r["axes"].get(a) is None)
                                    for a, k in zip(fixed, key))] for key in concrete]


def psi_axis(rows: Sequence[dict], measure: str, target: str, axis: str) -> dict:
    """``{"psi", "n_groups", "n_runs", "taus", "note"}`` of one axis (see module docstring)."""
    groups = axis_groups(rows, axis)
    taus = []
    used = 0
    for members in groups:
        tau = jiang_tau([m["measures"].get(measure) for m in members], [m["targets"].get(target) for m in members])
        if tau is not None:
            taus.append(tau)
            used += sum(_finite(m["measures"].get(measure)) and _finite(m["targets"].get(target)) for m in members)
    if not taus:
        return {"psi": None, "n_groups": 0, "n_runs": 0, "taus": [],
                "note": f"no two runs with values differ only in {axis}"}
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
                                 else "no two runs with values differ in one axis alone")
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


def _cell(rows: Sequence[dict], m: str, t: str) -> dict:
    x, y = [r["measures"].get(m) for r in rows], [r["targets"].get(t) for r in rows]
    return {"measure": m, "target": t, **stratified_kendall(x, y, [r["axes"].get("seed") for r in rows]),
            **granulated(rows, m, t)}


def predictors(rows: Sequence[dict], measures: Sequence[str], seed: int = 0,
               min_domain_size: int | None = None) -> dict:
    """The full table: per (measure, target) tau, CI, p, p_holm and Psi; per measure the robust views.

    Monotone transforms are folded into the measure they transform
    (``equivalent``). ``measures`` are ordered by ``|Psi|`` against the first
    target that has a Psi (in :data:`TARGETS` order), measures without one last.
    ``seed`` seeds the robust sign error's chance permutations; every other
    number is exact. ``holm_floor``: ``m`` times the largest ``p_floor``, a Holm
    p that every cell reaches when its data are at their most extreme.
    """
    from landscape.report.cmi import cmi_test
    from landscape.report.robust import MIN_DOMAIN_SIZE, robust_sign_error, worst_domain_tau

    min_domain_size = MIN_DOMAIN_SIZE if min_domain_size is None else min_domain_size
    groups = equivalents(measures, rows)
    shown = list(groups)
    cells = {f"{m}|{t}": _cell(rows, m, t) for m in shown for t in TARGETS}
    for c, p in zip(cells.values(), holm([c["p"] for c in cells.values()])):
        c["p_holm"] = p
    tested = [c for c in cells.values() if c["p"] is not None]
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
            "robust_sign_error": {m: robust_sign_error(rows, m, direction[m], min_domain_size, seed=seed)
                                  for m in order},
            "worst_domain_tau": {m: worst_domain_tau(rows, m, direction[m], min_domain_size) for m in order},
            "cmi": {m: cmi_test(rows, m, "gap", direction[m]) for m in order},
            "min_domain_size": min_domain_size, "n_runs": len(rows), "seed": seed,
            "holm_floor": min(1.0, len(tested) * max(c["p_floor"] for c in tested)) if tested else None,
            "multiple_comparisons": f"Holm over {len(tested)} cells"}
