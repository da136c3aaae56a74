"""Rank correlations with seeded bootstrap CIs, and per-group mean ± std.

Conventions
-----------
* Kendall's tau is tau-b and Spearman's rho is the Pearson correlation of the
  ranks (ties get mid-ranks). Point estimates and p-values come from
  :mod:`scipy.stats`; the bootstrap uses batched equivalents (tested equal).
* Confidence intervals are percentile bootstrap intervals over *runs*: each
  resample draws n (x, y) pairs with replacement from a seeded
  ``numpy.random.Generator``. Resamples whose statistic is undefined (all x
  or all y equal) are dropped; ``n_boot_valid`` says how many remained.
* Aggregation over seeds uses the sample standard deviation (ddof=1); a group
  of one run has ``std = None``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Sequence

import numpy as np
from scipy import stats as _sps

MIN_POINTS = 3  # fewer pairs carry no rank information worth a CI


def kendall_tau_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall's tau-b of each row pair of ``x``, ``y`` (shape [B, n]) -> [B]; NaN when undefined.

    Batched form used by the bootstrap; equals ``scipy.stats.kendalltau`` row by row.
    """
    x = np.atleast_2d(np.asarray(x, float))
    y = np.atleast_2d(np.asarray(y, float))
    out = np.empty(len(x))
    chunk = max(1, 2_000_000 // max(1, x.shape[1] ** 2))  # bound the [chunk, n, n] temporaries
    for start in range(0, len(x), chunk):
        sx = np.sign(x[start:start + chunk, :, None] - x[start:start + chunk, None, :])
        sy = np.sign(y[start:start + chunk, :, None] - y[start:start + chunk, None, :])
        concordance = (sx * sy).sum(axis=(1, 2))
        with np.errstate(all="ignore"):
            out[start:start + chunk] = concordance / np.sqrt((sx != 0).sum(axis=(1, 2)) * (sy != 0).sum(axis=(1, 2)))
    return out


def spearman_rho_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's rho of each row pair (shape [B, n]) -> [B]; NaN when undefined."""
    rx = _sps.rankdata(np.atleast_2d(x), axis=-1)
    ry = _sps.rankdata(np.atleast_2d(y), axis=-1)
    rx = rx - rx.mean(axis=-1, keepdims=True)
    ry = ry - ry.mean(axis=-1, keepdims=True)
    with np.errstate(all="ignore"):
        return (rx * ry).sum(-1) / np.sqrt((rx * rx).sum(-1) * (ry * ry).sum(-1))


def bootstrap_ci(
    x: Sequence[float],
    y: Sequence[float],
    statistic_rows: Callable[[np.ndarray, np.ndarray], np.ndarray],
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float | None, float | None, int]:
    """Percentile bootstrap CI of a batched statistic (e.g. :func:`kendall_tau_rows`) over resampled pairs.

    Returns ``(low, high, n_valid)``; ``low``/``high`` are None when fewer than
    half of the resamples give a defined statistic.
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(n_boot, len(x)))
    return percentile_interval(statistic_rows(x[idx], y[idx]), n_boot, level)


def percentile_interval(values, n_boot: int, level: float = 0.95) -> tuple[float | None, float | None, int]:
    """``(low, high, n_valid)`` percentile interval of the finite bootstrap ``values`` (None, None when fewer
    than half of the ``n_boot`` resamples are defined; None entries count as undefined).
    """
    v = np.array([np.nan if a is None else a for a in values], dtype=float)
    v = v[np.isfinite(v)]
    if len(v) < n_boot / 2:
        return None, None, len(v)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(v, [alpha, 1.0 - alpha])
    return float(low), float(high), len(v)


def correlation(
    x: Sequence[float | None],
    y: Sequence[float | None],
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> dict:
    """Kendall tau and Spearman rho of the finite pairs, each with a bootstrap CI.

    Pairs where either value is None or non-finite are left out; ``n`` counts
    the rest. With fewer than :data:`MIN_POINTS` pairs every statistic is None.
    """
    pairs = [(float(a), float(b)) for a, b in zip(x, y) if _finite(a) and _finite(b)]
    out = {"n": len(pairs), "level": level, "n_boot": n_boot, "seed": seed, "method": "percentile bootstrap over runs"}
    keys = ("kendall_tau", "kendall_ci", "kendall_p", "spearman_rho", "spearman_ci", "spearman_p", "n_boot_valid")
    out.update(dict.fromkeys(keys))
    if len(pairs) < MIN_POINTS:
        return out
    xs, ys = (np.array(v) for v in zip(*pairs))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant input: the statistic is NaN and reported as None
        kt = _sps.kendalltau(xs, ys)
        sr = _sps.spearmanr(xs, ys)
    k_lo, k_hi, k_valid = bootstrap_ci(xs, ys, kendall_tau_rows, n_boot, level, seed)
    s_lo, s_hi, s_valid = bootstrap_ci(xs, ys, spearman_rho_rows, n_boot, level, seed)
    out.update(
        kendall_tau=_num(kt.statistic),
        kendall_p=_num(kt.pvalue),
        kendall_ci=None if k_lo is None else [k_lo, k_hi],
        spearman_rho=_num(sr.statistic),
        spearman_p=_num(sr.pvalue),
        spearman_ci=None if s_lo is None else [s_lo, s_hi],
        n_boot_valid=min(k_valid, s_valid),
    )
    return out


def mean_std(values: Iterable[float | None]) -> dict:
    """``{"mean", "std", "n"}`` of the finite values (sample std, ddof=1)."""
    vals = np.array([float(v) for v in values if _finite(v)], dtype=float)
    if len(vals) == 0:
        return {"mean": None, "std": None, "n": 0}
    std = float(vals.std(ddof=1)) if len(vals) > 1 else None
    return {"mean": float(vals.mean()), "std": std, "n": int(len(vals))}


def aggregate(rows: Sequence[dict], by: str, fields: Sequence[str]) -> list[dict]:
    """Group ``rows`` by ``row[by]`` (first-seen order) and give mean ± std of each field.

    Returns ``[{by: group, "n_runs": k, field: {"mean", "std", "n"}, ...}]``.
    """
    groups: dict = {}
    for row in rows:
        groups.setdefault(row[by], []).append(row)
    out = []
    for key, members in groups.items():
        entry = {by: key, "n_runs": len(members)}
        for field in fields:
            entry[field] = mean_std(m.get(field) for m in members)
        out.append(entry)
    return out


def _finite(v) -> bool:
    return v is not None and isinstance(v, (int, float, np.floating, np.integer)) and math.isfinite(float(v))


def _num(v) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None
