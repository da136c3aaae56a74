"""Surface arrays for figures: orientation, downsampling and a shared colour range.

A ``surface`` record (docs/records.md) holds ``x`` (N), ``y`` (M) and ``loss`` as an
N x M nested list with ``loss[i][j]`` at ``(x[i], y[j])``. Plotting libraries
want rows along y, so :func:`surface_arrays` returns ``z`` shaped [M, N].
Missing values (``None``, e.g. a diverged point) become NaN.
"""

from __future__ import annotations

import math

import numpy as np

from landscape.errors import LandscapeError

#: Grid points kept per axis in the report (a 51 x 51 plane is ample on screen).
MAX_POINTS = 51


def surface_arrays(result: dict, key: str = "loss") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x [N], y [M], z [M, N])`` float64 arrays of a 2D surface result."""
    x = _floats(result["x"])
    y = _floats(result["y"])
    z = _floats(result[key])
    if z.shape != (len(x), len(y)):
        raise LandscapeError(f"surface {key} has shape {z.shape}, expected ({len(x)}, {len(y)}) from its axes")
    return x, y, z.T


def curve_arrays(result: dict, key: str = "loss") -> tuple[np.ndarray, np.ndarray]:
    """``(x [N], values [N])`` float64 arrays of a 1D surface result."""
    x = _floats(result["x"])
    v = _floats(result[key])
    if v.shape != x.shape:
        raise LandscapeError(f"1D surface {key} has shape {v.shape}, expected ({len(x)},) from its axis")
    return x, v


def keep_indices(n: int, max_points: int = MAX_POINTS) -> np.ndarray:
    """Indices of an even stride through ``n`` grid points, at most ``max_points`` of them.

    The first and last points are always kept; on an odd grid the stride is
    laid out from the centre (the trained weights) so that it is kept too.
    """
    if n <= max_points:
        return np.arange(n)
    if n % 2 == 0:
        return np.unique(np.linspace(0, n - 1, max_points).round().astype(int))
    centre = (n - 1) // 2
    step = math.ceil((n - 1) / (max_points - 1))
    while True:
        k = centre // step
        idx = np.unique(np.concatenate([[0, n - 1], centre + step * np.arange(-k, k + 1)]))
        if len(idx) <= max_points:
            return idx
        step += 1


def downsample(x: np.ndarray, y: np.ndarray, z: np.ndarray, max_points: int = MAX_POINTS):
    """Subsample a surface (``z`` [M, N]) to at most ``max_points`` per axis."""
    ix, iy = keep_indices(len(x), max_points), keep_indices(len(y), max_points)
    return x[ix], y[iy], z[np.ix_(iy, ix)]


def shared_range(arrays: list[np.ndarray], upper_quantile: float = 0.95) -> tuple[float, float] | None:
    """Colour range shared by all surfaces: the pooled minimum to the pooled ``upper_quantile``.

    Clipping the top keeps the basins readable when a few far grid points
    explode; values above the range are drawn in the top colour. None when no
    finite value exists.
    """
    pooled = np.concatenate([np.ravel(a) for a in arrays]) if arrays else np.array([])
    pooled = pooled[np.isfinite(pooled)]
    if len(pooled) == 0:
        return None
    low, high = float(pooled.min()), float(np.quantile(pooled, upper_quantile))
    return (low, high) if high > low else (low, low + 1e-12 + abs(low) * 1e-6)


def _floats(values) -> np.ndarray:
    """Nested lists with ``None`` -> float64 array with NaN (NumPy maps None to NaN for floats)."""
    return np.array(values, dtype=np.float64)


def above_floor(values, rel: float = 1e-8) -> np.ndarray:
    """``values`` as floats with those at or below ``rel`` times the peak set to NaN (a log axis cannot show 0)."""
    values = np.asarray(values, dtype=float)
    floor = np.nanmax(values) * rel if np.isfinite(values).any() else 0.0
    return np.where(values > floor, values, np.nan)
