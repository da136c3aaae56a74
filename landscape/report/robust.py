"""Dziugaite et al.'s robust sign error, and the per-domain Kendall tau under its honest name.

Robust sign error (Dziugaite et al. 2020, Sec. 3)
-------------------------------------------------
* A *configuration* is a run's hyper-parameters without the seed. Two
  configurations form a pair when they differ in exactly one hyper-parameter
  axis (``optimizer`` carries its own ``rho`` and ``lr``, as in Psi).
* For a pair (A, B) and a seed both ran, the sign error is
  ``(1 - sign(d (mu_A - mu_B)) sign(g_A - g_B)) / 2`` with ``d`` the
  measure's expected direction fixed in advance (``MeasureSpec.direction``:
  +1 when a larger value should mean a larger gap) and ``g`` the
  generalization gap: 0 when the measure orders the two runs as their gaps,
  1 when it orders them the other way, 1/2 on a tie. Same-seed runs share
  initial weights, data order and split; each shared seed weighs ``1/n``.
* Noisy pairs are dropped: a pair is kept only when the mean over its seeds
  of ``g_A - g_B`` exceeds its standard error (so it needs two shared seeds):
  a gap difference within seed noise carries no sign to predict.
* Environments: as in [D], each kept pair is an environment and the robust
  sign error is the largest over them. They are reported grouped: for the
  in-site target (the gap, train minus test balanced accuracy) by
  hyper-parameter axis; for the cross-site target by external domain with
  at least ``min_domain_size`` images, with ``g`` the drop (in-site test
  AUROC minus the domain's AUROC) over all kept pairs. Each group gives its
  worst pair (``sign_error``) and the mean over its pairs
  (``mean_sign_error``); ``worst`` is the largest ``sign_error`` (1/2 is chance).

Worst-domain tau
----------------
The Kendall tau of the measure against the AUROC in each domain (the in-site
test split and each external domain with at least ``min_domain_size``
images). The expected sign is fixed in advance (``-direction``: a complexity
measure should fall as AUROC rises); ``worst`` is the tau least in that
direction, ``s * min_e(s * tau_e)``. It is a per-domain rank correlation, not
Dziugaite's robust measure.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from itertools import combinations

import numpy as np

from landscape.report.granulated import HYPER_AXES, NESTED, kendall
from landscape.report.stats import _finite

#: The in-site environment name (rows' ``environments`` key).
IN_SITE = "in-site test"
#: Smallest external domain (images) that counts as an environment.
MIN_DOMAIN_SIZE = 50


def differing_axis(a: dict, b: dict) -> str | None:
    """The one hyper-parameter axis two runs' ``axes`` differ in (None when zero or several)."""
    diff = [x for x in HYPER_AXES if repr(a.get(x)) != repr(b.get(x))]
    if "optimizer" in diff:
        diff = [x for x in diff if x not in NESTED["optimizer"]]
    return diff[0] if len(diff) == 1 else None


def _configs(rows: Sequence[dict]) -> dict:
    configs: dict = {}
    for r in rows:
        key = repr([r["axes"].get(a) for a in HYPER_AXES])
        configs.setdefault(key, {"axes": r["axes"], "runs": {}})["runs"][repr(r["axes"].get("seed"))] = r
    return configs


def pair_errors(rows: Sequence[dict], measure: str, direction: int,
                gap: Callable[[dict], float | None]) -> list[dict]:
    """Every pair of configurations differing in one axis: ``{"axis", "a", "b", "seeds", "error", "kept"}``."""
    out = []
    for ca, cb in combinations(_configs(rows).values(), 2):
        axis = differing_axis(ca["axes"], cb["axes"])
        if axis is None:
            continue
        errors, gaps = [], []
        for s in ca["runs"].keys() & cb["runs"].keys():
            ra, rb = ca["runs"][s], cb["runs"][s]
            ma, mb, ga, gb = ra["measures"].get(measure), rb["measures"].get(measure), gap(ra), gap(rb)
            if not all(_finite(v) for v in (ma, mb, ga, gb)):
                continue
            errors.append((1 - np.sign(direction * (ma - mb)) * np.sign(ga - gb)) / 2)
            gaps.append(ga - gb)
        if not errors:
            continue
        n = len(gaps)
        se = float(np.std(gaps, ddof=1) / math.sqrt(n)) if n > 1 else None
        kept = se is not None and abs(float(np.mean(gaps))) > se
        out.append({"axis": axis, "a": ca["axes"], "b": cb["axes"], "seeds": n, "error": float(np.mean(errors)),
                    "gap_difference": float(np.mean(gaps)), "gap_se": se, "kept": kept})
    return out


def _environment(pairs: list[dict]) -> dict:
    """A group of pairs: the worst kept pair's sign error (Dziugaite's sup over pairs) and, beside it, the mean."""
    kept = [p["error"] for p in pairs if p["kept"]]
    return {"sign_error": float(max(kept)) if kept else None, "mean_sign_error": float(np.mean(kept)) if kept else None,
            "n_pairs": len(kept), "n_dropped": len(pairs) - len(kept)}


def _worst(envs: dict, what: str) -> dict:
    defined = {e: v["sign_error"] for e, v in envs.items() if v["sign_error"] is not None}
    if not defined:
        return {"environments": envs, "worst": None, "worst_environment": None,
                "note": f"no {what} with a pair of configurations that differ in one hyper-parameter beyond seed noise"}
    worst = max(defined, key=defined.get)
    return {"environments": envs, "worst": defined[worst], "worst_environment": worst, "note": None}


def domains(rows: Sequence[dict], min_domain_size: int = MIN_DOMAIN_SIZE) -> tuple[list[str], list[str]]:
    """External domains with at least ``min_domain_size`` images in every run that has them, and the others."""
    names = list(dict.fromkeys(e for r in rows for e in (r.get("environments") or {}) if e != IN_SITE))
    sizes = {e: min((r.get("environment_sizes") or {}).get(e, 0) for r in rows if e in (r.get("environments") or {}))
             for e in names}
    return [e for e in names if sizes[e] >= min_domain_size], [e for e in names if sizes[e] < min_domain_size]


def robust_sign_error(rows: Sequence[dict], measure: str, direction: int,
                      min_domain_size: int = MIN_DOMAIN_SIZE) -> dict:
    """``{"direction", "in_site": {...}, "cross_site": {...}}`` (see module docstring)."""
    pairs = pair_errors(rows, measure, direction, lambda r: r["targets"].get("gap"))
    in_site = _worst({f"axis: {a}": _environment([p for p in pairs if p["axis"] == a])
                      for a in dict.fromkeys(p["axis"] for p in pairs)}, "axis")
    kept, small = domains(rows, min_domain_size)
    envs = {}
    for e in kept:
        def drop(r, e=e):
            env = r.get("environments") or {}
            a, b = env.get(IN_SITE), env.get(e)
            return a - b if _finite(a) and _finite(b) else None
        envs[e] = _environment(pair_errors(rows, measure, direction, drop))
    cross = _worst(envs, "external domain")
    cross["excluded_domains"] = small
    return {"direction": direction, "min_domain_size": min_domain_size, "in_site": in_site, "cross_site": cross}


def worst_domain_tau(rows: Sequence[dict], measure: str, direction: int,
                     min_domain_size: int = MIN_DOMAIN_SIZE) -> dict:
    """Kendall tau against each domain's AUROC and the one least in the expected sign ``-direction``."""
    kept, small = domains(rows, min_domain_size)
    envs = [e for e in (IN_SITE, *kept) if any(e in (r.get("environments") or {}) for r in rows)]
    taus = {e: kendall([r["measures"].get(measure) for r in rows],
                       [(r.get("environments") or {}).get(e) for r in rows]) for e in envs}
    defined = [t for t in taus.values() if t is not None]
    s = -float(direction)
    out = {"environments": taus, "expected_sign": int(s), "excluded_domains": small, "worst": None,
           "worst_domain": None, "note": None}
    if len(defined) < 2:
        out["note"] = f"needs 2 domains with >= 3 runs and >= {min_domain_size} images (has {len(defined)})"
    else:
        out["worst_domain"] = min((e for e, t in taus.items() if t is not None), key=lambda e: s * taus[e])
        out["worst"] = taus[out["worst_domain"]]
    return out
