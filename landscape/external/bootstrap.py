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


def group_bootstrap_ci(statistic: Callable[[np.ndarray], float | None], groups: Sequence, n_boot: int = 1000,
                       level: float = 0.95, seed: int = 0) -> tuple[list[float] | None, int]:
    """Percentile CI of ``statistic(indices)`` over group resamples; ``(None, n_valid)`` if under half are defined."""
    rng = np.random.default_rng(seed)
    members = group_members(groups)
    values = [v for v in (statistic(resample(members, rng)) for _ in range(n_boot)) if v is not None and np.isfinite(v)]
    if len(values) < n_boot / 2:
        return None, len(values)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(values, [alpha, 1 - alpha])
    return [float(lo), float(hi)], len(values)
