"""Dziugaite et al.'s robust sign error with its chance level, and the per-domain Kendall tau under its honest name.

Robust sign error (Dziugaite et al. 2020 and their released code)
-----------------------------------------------------------------
* A *configuration* is a run's hyper-parameters without the seed. An
  *environment* is a pair of configurations (A, B) that differ in exactly one
  hyper-parameter axis (``optimizer`` carries its own ``rho`` and ``lr``, as
  in Psi); its samples are the pairs (a, b) of a run of A and a run of B,
  every seed of A with every seed of B, as in their ``create_environments``.
* A sample's sign error is ``(1 - sign(d (mu_a - mu_b)) sign(g_a - g_b)) / 2``
  with ``d`` the measure's expected direction fixed in advance
  (``MeasureSpec.direction``: +1 when a larger value should mean a larger
  gap) and ``g`` the target: 0 when the measure orders the two runs as their
  targets, 1 the other way, 1/2 on a tie in the measure.
* Monte-Carlo noise: each target is estimated on ``n`` evaluation images, so
  by Hoeffding's inequality both estimates lie within ``|delta| / 2`` of their
  expectations, and the observed sign of ``delta = g_a - g_b`` is the true
  one, with probability at least
  ``w = (1 - 2 exp(-n_a delta^2 / 2))+ (1 - 2 exp(-n_b delta^2 / 2))+``
  (their ``hoeffding_weight``; equal sizes give ``max(0, 1 - 2 exp(-n delta^2 / 2))^2``).
  A sample weighs ``v = (w - MIN_WEIGHT)+`` (:data:`MIN_WEIGHT` = 1/2: a pair
  whose sign is no surer than a coin flip carries nothing).
* An environment's sign error is the weighted mean ``sum(v e) / sum(v)``; its
  effective sample size is ``(sum v)^2 / sum(v^2)``, and environments below
  :data:`MIN_EFFECTIVE_SAMPLE_SIZE` (12, as in the paper's figures) are dropped.
  The robust sign error is the largest sign error over the environments that
  remain (``worst``, with ``worst_environment``; ``mean`` is their mean).
  When none remains the value is None with a "not enough data" note.
* Targets: ``in_site`` uses the gap (train minus test balanced accuracy),
  ``n`` = the run's test-set size (``row["n_test"]``, else
  ``environment_sizes[IN_SITE]``, else the ``n_test`` argument);
  ``cross_site`` uses the drop (in-site test AUROC minus the domain's AUROC)
  on each external domain with at least ``min_domain_size`` images, one
  environment per (domain, pair of configurations), ``n`` = the smaller of the
  in-site and domain sizes. Hoeffding at ``n`` images is exact for a plain
  error rate; a balanced accuracy or an AUROC concentrates more slowly when
  classes are unequal, so these weights are optimistic there.
* Chance level: the same statistics for a measure permuted over runs within
  each seed (``n_perm`` seeded permutations; weights and dropped environments
  do not change, they depend on the targets only). ``chance`` gives the mean
  and the 5th and 95th percentiles of the permuted ``worst``, ``mean_chance``
  those of the permuted ``mean``: a value above the 95th percentile is worse
  than chance, one inside the range cannot be told from it.

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

from landscape.errors import LandscapeError
from landscape.report.granulated import HYPER_AXES, NESTED, kendall
from landscape.report.stats import _finite

#: The in-site environment name (rows' ``environments`` key).
IN_SITE = "in-site test"
#: Smallest external domain (images) that counts as an environment.
MIN_DOMAIN_SIZE = 50
#: Hoeffding confidence at or below which a sample weighs nothing: weight ``(w - MIN_WEIGHT)+`` [D, code].
MIN_WEIGHT = 0.5
#: Smallest effective sample size ``(sum v)^2 / sum v^2`` of a kept environment (their figures' ``min_ess``).
MIN_EFFECTIVE_SAMPLE_SIZE = 12.0
#: Permutations of the measure (within seed) behind each chance level.
CHANCE_PERMUTATIONS = 200


def hoeffding_confidence(delta, n_a, n_b):
    """Lower bound on P(the observed sign of a target difference ``delta`` is the true one).

    ``n_a``, ``n_b``: evaluation images behind each target (a mean of [0, 1]
    losses). Arrays broadcast; 0 when ``delta`` is within the noise.
    """
    d2 = np.square(np.asarray(delta, dtype=float))
    return (np.clip(1 - 2 * np.exp(-np.asarray(n_a, dtype=float) * d2 / 2), 0, None)
            * np.clip(1 - 2 * np.exp(-np.asarray(n_b, dtype=float) * d2 / 2), 0, None))


def differing_axis(a: dict, b: dict) -> str | None:
    """The one hyper-parameter axis two runs' ``axes`` differ in (None when zero or several)."""
    diff = [x for x in HYPER_AXES if repr(a.get(x)) != repr(b.get(x))]
    if "optimizer" in diff:
        diff = [x for x in diff if x not in NESTED["optimizer"]]
    return diff[0] if len(diff) == 1 else None


def _configs(rows: Sequence[dict]) -> list[tuple[dict, list[int]]]:
    """``(axes, row indices)`` of each configuration, in order of appearance."""
    configs: dict = {}
    for i, r in enumerate(rows):
        configs.setdefault(repr([r["axes"].get(a) for a in HYPER_AXES]), (r["axes"], []))[1].append(i)
    return list(configs.values())


def _name(a: dict, b: dict, axis: str, varying: list[str]) -> str:
    """``axis: A vs B [other varying axes]``; the axes that travel with ``axis`` beside each value when they vary."""
    def value(c: dict) -> str:
        extra = ", ".join(f"{x}={c.get(x)}" for x in NESTED.get(axis, ()) if x in varying)
        return f"{c.get(axis)}" + (f" ({extra})" if extra else "")

    fixed = ", ".join(f"{x}={a.get(x)}" for x in varying if x != axis and x not in NESTED.get(axis, ()))
    return f"{axis}: {value(a)} vs {value(b)}" + (f" [{fixed}]" if fixed else "")


def environments(rows: Sequence[dict], measure: str, target: Callable[[dict], float | None],
                 size: Callable[[dict], float]) -> list[dict]:
    """Every pair of configurations differing in one axis, with its samples' weights.

    Each item: ``{"name", "axis", "a", "b", "i", "j", "sign", "weight"}`` with
    ``i``, ``j`` the row indices of its samples (runs with a finite measure and
    target), ``sign`` = ``sign(g_i - g_j)`` and ``weight`` = ``(w - MIN_WEIGHT)+``
    for ``size(row)`` evaluation images.
    """
    configs = _configs(rows)
    varying = [x for x in HYPER_AXES if len({repr(c[0].get(x)) for c in configs}) > 1]
    g = [target(r) for r in rows]
    ok = [_finite(r["measures"].get(measure)) and _finite(t) for r, t in zip(rows, g)]
    out = []
    for (ax_a, runs_a), (ax_b, runs_b) in combinations(configs, 2):
        axis = differing_axis(ax_a, ax_b)
        if axis is None:
            continue
        pairs = [(i, j) for i in runs_a for j in runs_b if ok[i] and ok[j]]
        i = np.array([p[0] for p in pairs], dtype=int)
        j = np.array([p[1] for p in pairs], dtype=int)
        delta = np.array([g[a] - g[b] for a, b in pairs], dtype=float)
        w = hoeffding_confidence(delta, [size(rows[a]) for a in i], [size(rows[b]) for b in j])
        out.append({"name": _name(ax_a, ax_b, axis, varying), "axis": axis, "a": ax_a.get(axis),
                    "b": ax_b.get(axis), "i": i, "j": j, "sign": np.sign(delta),
                    "weight": np.clip(w - MIN_WEIGHT, 0, None)})
    return out


def _ess(v: np.ndarray) -> float:
    s2 = float(np.sum(v * v))
    return float(np.sum(v)) ** 2 / s2 if s2 > 0 else 0.0


def _kept(ess: float) -> bool:
    return ess > MIN_EFFECTIVE_SAMPLE_SIZE or math.isclose(ess, MIN_EFFECTIVE_SAMPLE_SIZE)


def _losses(mu: np.ndarray, envs: list[dict], direction: int) -> np.ndarray:
    """Weighted sign error of each environment (columns) for each measure vector (rows of ``mu``)."""
    out = np.empty((mu.shape[0], len(envs)))
    for k, e in enumerate(envs):
        errors = (1 - np.sign(direction * (mu[:, e["i"]] - mu[:, e["j"]])) * e["sign"]) / 2
        out[:, k] = errors @ e["weight"] / e["weight"].sum()
    return np.clip(out, 0.0, 1.0)  # a weighted mean of values in [0, 1], up to rounding


def _band(values: np.ndarray) -> dict:
    return {"mean": float(np.mean(values)), "p05": float(np.percentile(values, 5)),
            "p95": float(np.percentile(values, 95))}


def _summary(envs: list[dict], mu: np.ndarray, direction: int, what: str) -> dict:
    """``worst``, ``mean`` and their chance levels over the kept environments (``mu``: measure, permutations)."""
    table, kept = {}, []
    for e in envs:
        ess = _ess(e["weight"])
        keep = _kept(ess)
        table[e["name"]] = {"axis": e["axis"], "a": e["a"], "b": e["b"], "sign_error": None,
                            "effective_sample_size": ess, "total_weight": float(e["weight"].sum()),
                            "n_pairs": int(len(e["weight"])), "n_weighted": int(np.count_nonzero(e["weight"])),
                            "kept": keep}
        if keep:
            kept.append(e)
    out = {"environments": table, "worst": None, "worst_environment": None, "mean": None, "n_kept": len(kept),
           "chance": None, "mean_chance": None, "note": None}
    if not kept:
        largest = max((v["effective_sample_size"] for v in table.values()), default=0.0)
        out["note"] = (f"not enough data: no {what} reaches an effective sample size of "
                       f"{MIN_EFFECTIVE_SAMPLE_SIZE:g} (largest {largest:.1f} over {len(table)})")
        return out
    losses = _losses(mu, kept, direction)
    for e, v in zip(kept, losses[0]):
        table[e["name"]]["sign_error"] = float(v)
    worst = int(np.argmax(losses[0]))
    out.update(worst=float(losses[0, worst]), worst_environment=kept[worst]["name"], mean=float(losses[0].mean()))
    out.update(chance=_band(losses[1:].max(axis=1)), mean_chance=_band(losses[1:].mean(axis=1)))
    return out


def _permuted(rows: Sequence[dict], measure: str, n_perm: int, seed: int) -> np.ndarray:
    """``(1 + n_perm, runs)``: the measure, then ``n_perm`` copies permuted among each seed's runs with a value."""
    mu = np.array([float(v) if _finite(v := r["measures"].get(measure)) else np.nan for r in rows])
    out = np.tile(mu, (1 + n_perm, 1))
    strata: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        if np.isfinite(mu[i]):
            strata.setdefault(repr(r["axes"].get("seed")), []).append(i)
    rng = np.random.default_rng(seed)
    for idx in strata.values():
        idx = np.array(idx)
        out[1:, idx] = mu[rng.permuted(np.tile(idx, (n_perm, 1)), axis=1)]
    return out


def domains(rows: Sequence[dict], min_domain_size: int = MIN_DOMAIN_SIZE) -> tuple[list[str], list[str]]:
    """External domains with at least ``min_domain_size`` images in every run that has them, and the others."""
    names = list(dict.fromkeys(e for r in rows for e in (r.get("environments") or {}) if e != IN_SITE))
    sizes = {e: min((r.get("environment_sizes") or {}).get(e, 0) for r in rows if e in (r.get("environments") or {}))
             for e in names}
    return [e for e in names if sizes[e] >= min_domain_size], [e for e in names if sizes[e] < min_domain_size]


def _test_size(n_test: int | None) -> Callable[[dict], float]:
    def size(r: dict) -> float:
        for n in (r.get("n_test"), (r.get("environment_sizes") or {}).get(IN_SITE), n_test):
            if _finite(n) and n > 0:
                return float(n)
        raise LandscapeError(f"n_test must be given: run {r.get('name', '?')} records no test-set size")
    return size


def robust_sign_error(rows: Sequence[dict], measure: str, direction: int, min_domain_size: int = MIN_DOMAIN_SIZE,
                      n_perm: int = CHANCE_PERMUTATIONS, seed: int = 0, n_test: int | None = None) -> dict:
    """``{"direction", ..., "in_site": {...}, "cross_site": {...}}`` (see module docstring).

    ``n_test``: test-set size (images) for rows that record none. Each of
    ``in_site`` and ``cross_site`` holds ``environments`` (name -> ``axis``,
    ``a``, ``b``, ``sign_error`` (None when dropped), ``effective_sample_size``,
    ``total_weight``, ``n_pairs``, ``n_weighted``, ``kept``), ``worst``,
    ``worst_environment``, ``mean``, ``n_kept``, ``chance``, ``mean_chance``
    (``{"mean", "p05", "p95"}`` over ``n_perm`` within-seed permutations of the
    measure) and ``note``; ``cross_site`` also ``domains`` and ``excluded_domains``.
    """
    if isinstance(n_perm, bool) or not isinstance(n_perm, int) or n_perm < 1:
        raise LandscapeError(f"n_perm must be a positive integer, got {n_perm!r}")
    mu = _permuted(rows, measure, n_perm, seed)
    size = _test_size(n_test)
    site = environments(rows, measure, lambda r: r["targets"].get("gap"), size)
    in_site = _summary(site, mu, direction, "pair of configurations differing in one hyper-parameter")
    kept, small = domains(rows, min_domain_size)
    cross_envs = []
    for d in kept:
        def drop(r, d=d):
            env = r.get("environments") or {}
            a, b = env.get(IN_SITE), env.get(d)
            return a - b if _finite(a) and _finite(b) else None

        def both(r, d=d):
            return min(size(r), float((r.get("environment_sizes") or {}).get(d, 0)))

        for e in environments(rows, measure, drop, both):
            cross_envs.append({**e, "name": f"{d} | {e['name']}"})
    cross = _summary(cross_envs, mu, direction, "(external domain, pair of configurations)")
    cross.update(domains=kept, excluded_domains=small)
    return {"direction": direction, "min_domain_size": min_domain_size, "min_weight": MIN_WEIGHT,
            "min_effective_sample_size": MIN_EFFECTIVE_SAMPLE_SIZE, "n_perm": n_perm, "seed": seed,
            "in_site": in_site, "cross_site": cross}


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
