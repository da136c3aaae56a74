"""Cluster (group) bootstrap: resample whole groups (patients) with replacement, never single images."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def group_members(groups: Sequence) -> list[np.ndarray]:
    """Image indices of each distinct group (groups in sorted order)."""
    _, inverse = np.unique(np.asarray([str(g) for g in groups]), return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(inverse.max() + 2))
    return [order[bounds[g]:bounds[g + 1]] for g in range(len(bounds) - 1)]


def resample(members: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Indices of one resample: ``len(members)`` groups drawn with replacement, each with all its images."""
    picked = rng.integers(0, len(members), size=len(members))
    return np.concatenate([members[g] for g in picked])


def group_weights(groups: Sequence, n_boot: int = 1000, seed: int | np.random.Generator = 0) -> np.ndarray:
    """``int64 [n_boot, n_images]``: how often each image is drawn in each group resample (all at once).

    Each resample draws the ``G`` distinct groups ``G`` times with replacement, whole (all-distinct groups give
    the image bootstrap). ``seed`` is a seed or a ``numpy.random.Generator`` (drawn from, for chunked calls).
    Resample ``b`` draws the same groups as the ``b``-th :func:`resample` call on the same generator would (one
    ``integers`` call fills the draws in the same order), so a statistic weighted by row ``b`` equals that
    statistic over the ``b``-th resample's indices.
    """
    members = group_members(groups)
    n_groups = len(members)
    group_of = np.empty(sum(len(m) for m in members), dtype=np.int64)
    for g, m in enumerate(members):
        group_of[m] = g
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    picked = rng.integers(0, n_groups, size=(n_boot, n_groups))
    counts = np.bincount((picked + n_groups * np.arange(n_boot)[:, None]).ravel(),
                         minlength=n_boot * n_groups).reshape(n_boot, n_groups)
    return counts[:, group_of]


def percentile_ci(values: np.ndarray, n_boot: int, level: float = 0.95) -> tuple[list[float] | None, int]:
    """Percentile CI of the finite bootstrap ``values``; ``(None, n_valid)`` when under half are defined."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) < n_boot / 2:
        return None, len(values)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(values, [alpha, 1 - alpha])
    return [float(lo), float(hi)], len(values)


def group_bootstrap_ci(statistic: Callable[[np.ndarray], float | None], groups: Sequence, n_boot: int = 1000,
                       level: float = 0.95, seed: int = 0) -> tuple[list[float] | None, int]:
    """Percentile CI of ``statistic(indices)`` over group resamples; ``(None, n_valid)`` if under half are defined."""
    rng = np.random.default_rng(seed)
    members = group_members(groups)
    values = [statistic(resample(members, rng)) for _ in range(n_boot)]
    return percentile_ci(np.array([np.nan if v is None else v for v in values], dtype=float), n_boot, level)
