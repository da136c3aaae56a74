"""Kendall's tau within seeds, with an exact p-value and an interval over seeds; Holm's step-down.

Runs of one seed share initial weights, data order and split, so runs are not
independent draws, and a seed that shifts both the measure and the target
makes a pooled tau look positive whatever the association within a seed.
:func:`stratified_kendall` therefore works within seeds only:

* **Statistic**: per seed ``s`` the Kendall concordance
  ``S_s = sum_{i<j} sign(x_i - x_j) sign(y_i - y_j)`` and the tau-b
  denominator ``D_s = sqrt((P_s - X_s)(P_s - Y_s))`` (``P_s`` pairs,
  ``X_s``/``Y_s`` pairs tied in x/y); ``tau = sum_s S_s / sum_s D_s``. With
  the same runs per seed and no ties it is the mean over seeds of the
  within-seed tau-b; with one seed it is tau-b (``scipy.stats.kendalltau``).
  Seeds with fewer than two runs, or with x or y constant (``D_s = 0``), add
  nothing.
* **p**: two-sided, exact: the target permuted within each seed, every one
  of the ``prod_s n_s!`` tables equally likely. ``sum_s D_s`` does not change
  under those permutations, so ``P(|sum S*| >= |sum S|)`` is the p-value of
  ``tau`` itself. Each seed's null distribution of ``S_s`` is the
  distribution of inversions of a random word (the q-multinomial
  coefficients; exact when at most one of x, y has ties) or, with ties in
  both, a count over the ``n_s!`` orders (up to :data:`EXACT_MAX_RUNS` runs);
  the seeds' distributions are convolved. A seed of more runs with ties in
  both, or of more than :data:`EXACT_MAX_WORD` runs, switches the whole test
  to the normal approximation with the exact
  tie-corrected permutation variance of each ``S_s`` (``p_method`` says
  which). ``p_floor`` is the smallest p the design can give (the
  probability of the most extreme ``|sum S|``): ``2 / 5040^5`` with 5 seeds
  of 7 untied runs, so no Holm table is decided by it; ``1/3`` with one seed
  of 3 runs, which no test can beat.
* **CI**: over the ``k`` seeds with a defined within-seed tau (at least
  :data:`MIN_SEEDS_CI`): the ratio estimator's standard error
  ``se^2 = sum_s (S_s - tau D_s)^2 / (k (k - 1) mean(D)^2)`` (with equal
  ``D_s``: the sample variance of the seeds' taus over ``k``) and a
  ``t_{k-1}`` interval on the ``atanh`` scale, ``tanh(atanh(tau) +- t se /
  (1 - tau^2))``, which keeps it inside [-1, 1] and covers better near the
  ends. Simulated coverage (7 runs per seed, a seed shift in both variables,
  true within-seed tau 0, 0.5, 0.8): 95-96% with 5 seeds, 95% with 3 seeds at
  0 and 0.5; with 4 runs per seed (78% at tau 0.8 with 3 seeds) or 3 seeds at
  |tau| = 0.9 (89%) it falls short, because the seeds' taus are then often
  all equal (docs/correlation.md).
* When no seed holds two runs (every run its own seed) the runs form one
  stratum (``stratified`` False): tau-b, its exact p, no interval.

:func:`holm` is Holm's (1979) step-down adjustment over a table of p-values:
sorted ascending, ``p_(k) -> max_{j <= k} min(1, (m - j + 1) p_(j))``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from scipy import stats as _sps

from landscape.report.stats import MIN_POINTS, _finite

#: Largest seed (runs) whose null distribution is counted over all orders when x and y both have ties (8! orders).
EXACT_MAX_RUNS = 8
#: Largest seed (runs) whose null distribution comes from the inversion counts (1.5 s at 200 runs, cached).
EXACT_MAX_WORD = 150
#: Seeds with a defined within-seed tau needed for an interval.
MIN_SEEDS_CI = 3


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm-adjusted p-values in the input order (None stays None and does not count in ``m``)."""
    idx = sorted((i for i, p in enumerate(pvalues) if p is not None), key=lambda i: pvalues[i])
    out: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for k, i in enumerate(idx):
        running = max(running, min(1.0, (len(idx) - k) * float(pvalues[i])))
        out[i] = running
    return out


def concordance(x: np.ndarray, y: np.ndarray) -> int:
    """Kendall's ``S = sum_{i<j} sign(x_i - x_j) sign(y_i - y_j)`` (concordant minus discordant pairs)."""
    sx = np.sign(x[:, None] - x[None, :])
    sy = np.sign(y[:, None] - y[None, :])
    return int(round((sx * sy).sum() / 2))


def _tie_sizes(v: np.ndarray) -> tuple[int, ...]:
    """Sizes of the groups of equal values, in increasing order of the value."""
    return tuple(len(list(g)) for _, g in itertools.groupby(sorted(v.tolist())))


def _pairs(sizes: Sequence[int]) -> int:
    return sum(t * (t - 1) // 2 for t in sizes)


def kendall_variance(x_sizes: Sequence[int], y_sizes: Sequence[int]) -> float:
    """Exact variance of ``S`` when y is permuted at random, from the tie-group sizes of x and y (Kendall's
    tie-corrected formula, as in the asymptotic p-value of ``scipy.stats.kendalltau``).
    """
    n = sum(x_sizes)
    if n < 2:
        return 0.0
    v = (n * (n - 1) * (2 * n + 5) - sum(t * (t - 1) * (2 * t + 5) for t in x_sizes)
         - sum(u * (u - 1) * (2 * u + 5) for u in y_sizes)) / 18
    v += sum(t * (t - 1) for t in x_sizes) * sum(u * (u - 1) for u in y_sizes) / (2 * n * (n - 1))
    if n > 2:
        v += (sum(t * (t - 1) * (t - 2) for t in x_sizes) * sum(u * (u - 1) * (u - 2) for u in y_sizes)
              / (9 * n * (n - 1) * (n - 2)))
    return float(v)


def _times_window(poly: list[int], j: int) -> list[int]:
    """``poly * (1 + q + ... + q^(j-1))`` (prefix sums: ``out_k = sum_{k-j < i <= k} poly_i``)."""
    prefix = [0, *itertools.accumulate(poly)]
    return [prefix[min(k, len(poly) - 1) + 1] - prefix[max(0, k - j + 1)] for k in range(len(poly) + j - 1)]


def _over_window(poly: list[int], j: int) -> list[int]:
    """``poly / (1 + q + ... + q^(j-1))`` for a ``poly`` it divides: ``a_k = p_k - p_(k-1) + a_(k-j)``."""
    out = [0] * (len(poly) - j + 1)
    for k in range(len(out)):
        out[k] = poly[k] - (poly[k - 1] if k else 0) + (out[k - j] if k >= j else 0)
    return out


@lru_cache(maxsize=256)
def inversion_counts(sizes: tuple[int, ...]) -> tuple[int, ...]:
    """How many words with letter multiplicities ``sizes`` have 0, 1, 2, ... inversions (MacMahon's
    q-multinomial ``[n]_q! / prod_i [m_i]_q!``; all sizes 1: the Mahonian numbers). Their sum is the number of
    distinct words.
    """
    poly = [1]
    for j in range(2, sum(sizes) + 1):
        poly = _times_window(poly, j)
    for m in sizes:
        for j in range(2, m + 1):
            poly = _over_window(poly, j)
    return tuple(poly)


@lru_cache(maxsize=256)
def _enumerated(x_sizes: tuple[int, ...], y_sizes: tuple[int, ...]) -> tuple[int, ...]:
    """Counts of ``S = -P .. P`` over all ``n!`` orders of y against x (ties given by the group sizes)."""
    x = np.repeat(np.arange(len(x_sizes)), x_sizes).astype(float)
    y = np.repeat(np.arange(len(y_sizes)), y_sizes).astype(float)
    n = len(x)
    sx = np.sign(x[:, None] - x[None, :])
    orders = np.array(list(itertools.permutations(range(n))))
    yy = y[orders]
    s = np.rint((sx[None] * np.sign(yy[:, :, None] - yy[:, None, :])).sum(axis=(1, 2)) / 2).astype(int)
    p = n * (n - 1) // 2
    return tuple(np.bincount(s + p, minlength=2 * p + 1).tolist())


@lru_cache(maxsize=256)
def null_distribution(x_sizes: tuple[int, ...], y_sizes: tuple[int, ...]) -> np.ndarray | None:
    """``pmf[S + P]``, ``S = -P .. P``, of the concordance of x and y when y is permuted at random, from their
    tie-group sizes in order of value (all 1: no ties); None when it is not computed exactly (more than
    :data:`EXACT_MAX_WORD` runs, or ties in both and more than :data:`EXACT_MAX_RUNS`). Read-only.
    """
    n = sum(x_sizes)
    p = n * (n - 1) // 2
    if n > EXACT_MAX_WORD:
        return None
    if len(x_sizes) < n and len(y_sizes) < n:  # ties in both
        if n > EXACT_MAX_RUNS:
            return None
        total = math.factorial(n)
        pmf = np.array([c / total for c in _enumerated(x_sizes, y_sizes)])
    else:
        sizes = y_sizes if len(x_sizes) == n else x_sizes
        untied = p - _pairs(sizes)
        inv = inversion_counts(tuple(sorted(sizes)))
        total = sum(inv)
        pmf = np.zeros(2 * p + 1)
        for k, c in enumerate(inv):  # S = untied - 2 * inversions
            pmf[p + untied - 2 * k] = c / total
    pmf.setflags(write=False)
    return pmf


def _strata(labels: Sequence) -> tuple[list[np.ndarray], bool]:
    groups: dict = {}
    for i, s in enumerate(labels):
        groups.setdefault(repr(s), []).append(i)
    blocks = [np.array(g) for g in groups.values() if len(g) > 1]
    if blocks:
        return blocks, True
    return ([np.arange(len(labels))] if len(labels) > 1 else []), False


def _p_value(blocks: list[tuple[np.ndarray, np.ndarray, tuple, tuple]], total: int) -> tuple[float, float, str]:
    """``(p, p_floor, method)`` of the observed ``sum S`` over ``(x, y, x tie sizes, y tie sizes)`` blocks."""
    pmfs = [null_distribution(tx, ty) for _, _, tx, ty in blocks]
    if all(p is not None for p in pmfs):
        pmf = np.array([1.0])
        for p in pmfs:
            pmf = np.convolve(pmf, p)
        grid = np.abs(np.arange(len(pmf)) - (len(pmf) - 1) // 2)
        extreme = grid[pmf > 0].max()
        return (min(1.0, float(pmf[grid >= abs(total)].sum())), min(1.0, float(pmf[grid >= extreme].sum())),
                "exact permutation")
    sd = math.sqrt(sum(kendall_variance(tx, ty) for _, _, tx, ty in blocks))
    largest = max(sum(concordance(np.sort(x), np.sort(y)) for x, y, _, _ in blocks),  # co-/anti-monotone orders
                  -sum(concordance(np.sort(x), np.sort(y)[::-1]) for x, y, _, _ in blocks))
    return (min(1.0, 2 * float(_sps.norm.sf(abs(total) / sd))), min(1.0, 2 * float(_sps.norm.sf(largest / sd))),
            f"normal approximation (a seed of more than {EXACT_MAX_WORD} runs, or of more than {EXACT_MAX_RUNS} with "
            "ties in both variables) to the permutation")


@lru_cache(maxsize=64)
def _t_quantile(level: float, df: int) -> float:
    return float(_sps.t.ppf(0.5 + level / 2, df))


def interval_over_strata(s, d, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)`` of ``tau = sum_s s / sum_s d`` from per-stratum concordances ``s`` and tau-b denominators
    ``d`` (shape ``[..., k]``, ``k >= 2`` strata; batched over the leading axes): the ratio estimator's standard
    error and a ``t_{k-1}`` interval on the atanh scale (module docstring). A tau of +-1 or a zero standard error
    gives ``[tau, tau]``.
    """
    s, d = np.asarray(s, dtype=float), np.asarray(d, dtype=float)
    k = s.shape[-1]
    tau = s.sum(axis=-1) / d.sum(axis=-1)
    se = np.sqrt(((s - tau[..., None] * d) ** 2).sum(axis=-1) / (k * (k - 1))) / d.mean(axis=-1)
    degenerate = (np.abs(tau) >= 1.0) | (se == 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.arctanh(tau)
        half = _t_quantile(level, k - 1) * se / (1.0 - tau * tau)
        low, high = np.tanh(z - half), np.tanh(z + half)
    return np.where(degenerate, tau, low), np.where(degenerate, tau, high)


def stratified_kendall(x: Sequence, y: Sequence, strata: Sequence, level: float = 0.95) -> dict:
    """Kendall's tau of ``x`` and ``y`` within ``strata`` (seeds), its exact p and its interval over strata.

    Pairs with a missing value are left out. Returns ``{"kendall_tau",
    "kendall_ci", "ci_method", "p", "p_floor", "p_method", "n", "n_strata",
    "stratified", "level", "tau_note"}``: ``n`` runs with both values,
    ``n_strata`` the seeds with a defined within-seed tau; ``kendall_tau``,
    ``p`` and ``p_floor`` are None with fewer than :data:`MIN_POINTS` runs in
    such seeds, ``kendall_ci`` None with fewer than :data:`MIN_SEEDS_CI` of them
    (``tau_note`` says why). Definitions in the module docstring.
    """
    keep = [i for i in range(len(x)) if _finite(x[i]) and _finite(y[i])]
    xs = np.array([float(x[i]) for i in keep])
    ys = np.array([float(y[i]) for i in keep])
    blocks, stratified = _strata([strata[i] for i in keep])
    parts, s_list, d_list = [], [], []
    for b in blocks:
        bx, by = xs[b], ys[b]
        tx, ty = _tie_sizes(bx), _tie_sizes(by)
        p = len(b) * (len(b) - 1) // 2
        d = math.sqrt((p - _pairs(tx)) * (p - _pairs(ty)))
        if d > 0:
            parts.append((bx, by, tx, ty))
            s_list.append(concordance(bx, by))
            d_list.append(d)
    used = sum(len(part[0]) for part in parts)
    out = {"kendall_tau": None, "kendall_ci": None, "ci_method": None, "p": None, "p_floor": None, "p_method": None,
           "n": len(keep), "n_strata": len(parts), "stratified": stratified, "level": level, "tau_note": None}
    if used < MIN_POINTS:
        out["tau_note"] = f"fewer than {MIN_POINTS} runs in seeds where runs differ in both values ({used})"
        return out
    s, d = np.array(s_list, dtype=float), np.array(d_list)
    tau = float(s.sum() / d.sum())
    p, floor, method = _p_value(parts, int(s.sum()))
    out.update(kendall_tau=tau, p=p, p_floor=floor,
               p_method=f"{method} within seeds" if stratified else f"{method} over runs (no seed has two runs)")
    if not stratified:
        out["tau_note"] = "no interval: no seed has two runs"
    elif len(parts) < MIN_SEEDS_CI:
        out["tau_note"] = f"no interval: {len(parts)} seed(s) with a defined tau, {MIN_SEEDS_CI} needed"
    else:
        low, high = interval_over_strata(s, d, level)
        out.update(kendall_ci=[float(low), float(high)], ci_method=f"t-interval over {len(parts)} seeds, atanh scale")
    return out
