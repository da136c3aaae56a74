"""Which measure predicts generalization: Kendall tau with CIs, Jiang's granulated Psi, Dziugaite's robust view.

Conventions
-----------
* Hyper-parameter axes: ``optimizer``, ``seed``, ``model``, ``rho``, ``lr``,
  ``epochs``; an axis counts when it takes more than one value over the runs.
  ``rho`` and ``lr`` are the optimizer's own settings: on the optimizer axis
  they travel with the optimizer (groups fix model, seed and epochs); on the
  rho (lr) axis the optimizer, model, seed, epochs and lr (rho) are fixed.
* Granulated coefficient (Jiang et al. 2020, Eq. 4): for axis i, ``psi_i`` is
  the mean over groups of runs that differ only along i of Kendall's tau
  (tau-b) between measure and target within the group; ``Psi`` is the mean of
  the ``psi_i`` that are defined. A group needs at least
  :data:`~landscape.report.stats.MIN_POINTS` (3) runs with both values and a
  defined tau; an axis with no such group says so instead of a number.
* Robust view (Dziugaite et al. 2020): one Kendall tau of the measure against
  the benign-vs-malignant AUROC in each environment (the in-site test split
  and each external site's environment, e.g. BUS-BRA scanner). ``worst`` is
  the weakest tau in the direction of their mean sign: ``s * min_e(s * tau_e)``
  with ``s = sign(mean tau)``; a negative ``s * worst`` means the sign flips in
  some environment.
* Signs are raw: a complexity measure that predicts generalization has tau < 0
  against accuracy/AUROC and tau > 0 against the gap and the drop.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
from scipy import stats as _sps

from landscape.report.stats import MIN_POINTS, _finite, correlation

AXES = ("optimizer", "seed", "model", "rho", "lr", "epochs")
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


def varying_axes(rows: Sequence[dict]) -> list[str]:
    """The axes that take more than one value over ``rows``."""
    return [a for a in AXES if len({repr(r["axes"].get(a)) for r in rows}) > 1]


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


def granulated(rows: Sequence[dict], measure: str, target: str) -> dict:
    """``{"psi", "axes": {axis: psi_axis(...)}, "note"}`` over the axes that vary."""
    axes = {a: psi_axis(rows, measure, target, a) for a in varying_axes(rows)}
    defined = [v["psi"] for v in axes.values() if v["psi"] is not None]
    note = None if defined else ("no hyper-parameter varies" if not axes
                                 else f"fewer than {MIN_POINTS} runs on every axis")
    return {"psi": float(np.mean(defined)) if defined else None, "axes": axes, "note": note}


def robust(rows: Sequence[dict], measure: str) -> dict:
    """Kendall tau of ``measure`` against the AUROC of each environment, and the worst of them."""
    envs = list(dict.fromkeys(e for r in rows for e in (r.get("environments") or {})))
    taus = {e: kendall([r["measures"].get(measure) for r in rows],
                       [(r.get("environments") or {}).get(e) for r in rows]) for e in envs}
    defined = [t for t in taus.values() if t is not None]
    if len(defined) < 2:
        return {"environments": taus, "worst": None,
                "note": f"needs 2 environments with >= {MIN_POINTS} runs (has {len(defined)})"}
    s = 1.0 if np.mean(defined) >= 0 else -1.0
    return {"environments": taus, "worst": s * min(s * t for t in defined), "note": None}


def predictors(rows: Sequence[dict], measures: Sequence[str], n_boot: int = 2000, seed: int = 0) -> dict:
    """The full table: per (measure, target) tau with bootstrap CI and Psi; per measure the robust view.

    ``measures`` are ordered by ``|Psi|`` against the first target that has
    a Psi (in :data:`TARGETS` order), measures without one last.
    """
    cells = {}
    for m in measures:
        for t in TARGETS:
            c = correlation([r["measures"].get(m) for r in rows], [r["targets"].get(t) for r in rows],
                            n_boot=n_boot, seed=seed)
            cells[f"{m}|{t}"] = {"measure": m, "target": t, "n": c["n"], "kendall_tau": c["kendall_tau"],
                                 "kendall_ci": c["kendall_ci"], **granulated(rows, m, t)}
    primary = next((t for t in TARGETS if any(cells[f"{m}|{t}"]["psi"] is not None for m in measures)), None)

    def key(m):
        psi = cells[f"{m}|{primary}"]["psi"] if primary else None
        return (psi is None, -abs(psi) if psi is not None else 0.0)

    order = sorted(measures, key=key)
    return {"axes": varying_axes(rows), "targets": TARGETS, "sorted_by": primary, "measures": order,
            "cells": [cells[f"{m}|{t}"] for m in order for t in TARGETS],
            "robust": {m: robust(rows, m) for m in order}, "n_runs": len(rows), "n_boot": n_boot, "seed": seed}
