"""Uncertainty that respects the design: cluster bootstrap, seed-stratified permutation tests, Holm's step-down.

Runs of one seed share initial weights, data order and split, and runs of one
optimizer share its settings, so runs are not independent draws:

* :func:`cluster_bootstrap_ci` resamples whole clusters (all runs of a seed,
  or of an optimizer group) with replacement and recomputes Kendall's tau-b
  over the runs drawn (percentile interval).
* :func:`permutation_p` permutes the target *within* each seed stratum, so
  each null table keeps the seed structure; two-sided, Monte-Carlo with the
  ``+1`` correction ``(1 + #{|tau*| >= |tau|}) / (1 + n_perm)``.
* :func:`holm` is Holm's (1979) step-down adjustment over a table of p-values:
  sorted ascending, ``p_(k) -> max_{j <= k} min(1, (m - j + 1) p_(j))``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from landscape.report.stats import MIN_POINTS, _finite, kendall_tau_rows, percentile_interval


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm-adjusted p-values in the input order (None stays None and does not count in ``m``)."""
    idx = sorted((i for i, p in enumerate(pvalues) if p is not None), key=lambda i: pvalues[i])
    out: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for k, i in enumerate(idx):
        running = max(running, min(1.0, (len(idx) - k) * float(pvalues[i])))
        out[i] = running
    return out


def _pairs(x, y, labels) -> tuple[np.ndarray, np.ndarray, list]:
    keep = [i for i in range(len(x)) if _finite(x[i]) and _finite(y[i])]
    return (np.array([float(x[i]) for i in keep]), np.array([float(y[i]) for i in keep]),
            [labels[i] for i in keep])


def _tau(x: np.ndarray, y: np.ndarray) -> float:
    return float(kendall_tau_rows(x[None], y[None])[0])


def permutation_p(x: Sequence, y: Sequence, strata: Sequence, n_perm: int = 2000, seed: int = 0) -> dict:
    """Two-sided permutation p-value of Kendall's tau, ``y`` permuted within ``strata`` (e.g. seeds).

    Pairs with a missing value are left out. When no stratum holds two runs
    (one run per seed) the permutation is over all runs (``stratified`` False).
    Returns ``{"p", "n_perm", "stratified"}``; ``p`` is None with fewer than
    :data:`MIN_POINTS` pairs or an undefined tau.
    """
    xs, ys, labels = _pairs(x, y, strata)
    out = {"p": None, "n_perm": n_perm, "stratified": False}
    if len(xs) < MIN_POINTS or not np.isfinite(observed := _tau(xs, ys)):
        return out
    groups: dict = {}
    for i, s in enumerate(labels):
        groups.setdefault(repr(s), []).append(i)
    blocks = [np.array(g) for g in groups.values() if len(g) > 1]
    out["stratified"] = bool(blocks)
    if not blocks:
        blocks = [np.arange(len(xs))]
    rng = np.random.default_rng(seed)
    perm = np.tile(np.arange(len(xs)), (n_perm, 1))
    for b in blocks:
        perm[:, b] = b[rng.random((n_perm, len(b))).argsort(axis=1)]
    taus = kendall_tau_rows(np.broadcast_to(xs, perm.shape), ys[perm])
    hits = int(np.sum(np.abs(np.nan_to_num(taus, nan=0.0)) >= abs(observed) - 1e-12))
    out["p"] = (1 + hits) / (1 + n_perm)
    return out


def cluster_bootstrap_ci(x: Sequence, y: Sequence, clusters: Sequence, n_boot: int = 2000, level: float = 0.95,
                         seed: int = 0) -> tuple[float | None, float | None, int]:
    """Percentile CI of Kendall's tau resampling whole ``clusters`` with replacement: ``(low, high, n_valid)``.

    None bounds with fewer than 3 clusters or when under half of the
    resamples give a defined tau.
    """
    xs, ys, labels = _pairs(x, y, clusters)
    members: dict = {}
    for i, c in enumerate(labels):
        members.setdefault(repr(c), []).append(i)
    blocks = [np.array(m) for m in members.values()]
    if len(blocks) < 3:
        return None, None, 0
    rng = np.random.default_rng(seed)
    values = []
    for draw in rng.integers(0, len(blocks), size=(n_boot, len(blocks))):
        idx = np.concatenate([blocks[j] for j in draw])
        values.append(_tau(xs[idx], ys[idx]))
    return percentile_interval(values, n_boot, level)
