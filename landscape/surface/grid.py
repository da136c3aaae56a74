"""Grid axes for 1D and 2D surfaces.

Coordinates are float64 and multiply the direction tensors as they are (a
filter-normalised direction, a unit eigenvector, ``w_other - w``, a unit PCA
component). Axes are built so that the special points are exact: a symmetric
range is exactly antisymmetric (``x[i] == -x[N-1-i]``) and a coordinate that is
0 up to rounding is stored as exactly 0, so the centre point is the model itself.
"""

from __future__ import annotations

import math
import os

import numpy as np

from landscape.errors import LandscapeError

_SNAP = 1e-12  # relative to the range: below this a coordinate is exactly 0
#: Bytes a grid point costs at most while a surface is computed and saved: loss and accuracy
#: (float64, in the arrays, the partial file and the .npz) and both as Python floats and JSON text.
BYTES_PER_POINT = 256


def axis(n: int, lo: float, hi: float) -> np.ndarray:
    """``n >= 2`` evenly spaced points from ``lo`` to ``hi`` (both included), float64."""
    n = int(n)
    if n < 2:
        raise LandscapeError(f"a grid needs at least 2 points per axis, got {n}")
    lo, hi = float(lo), float(hi)
    if not (np.isfinite(lo) and np.isfinite(hi) and np.isfinite(hi - lo) and hi > lo):
        raise LandscapeError(f"an axis range must be finite (also its width) with lo < hi, got [{lo}, {hi}]")
    xs = lo + (hi - lo) * (np.arange(n, dtype=np.float64) / (n - 1))
    xs[-1] = hi
    if lo == -hi:
        xs = (xs - xs[::-1]) / 2.0
    xs[np.abs(xs) <= _SNAP * (hi - lo)] = 0.0
    return xs


def parse_grid(grid: int | str | tuple[int, int] | list[int], dim: int) -> tuple[int, ...]:
    """Points per axis from ``21``, ``"21"``, ``"21x15"``, ``"21,15"`` or ``(21, 15)``; one entry for dim 1."""
    if isinstance(grid, str):
        text = grid.lower().replace(",", "x").strip()
        try:
            sizes = tuple(int(part) for part in text.split("x"))
        except ValueError:
            raise LandscapeError(f"grid must be N or NxM with integers, got {grid!r}") from None
    elif isinstance(grid, (tuple, list)):
        sizes = tuple(int(v) for v in grid)
    else:
        sizes = (int(grid),)
    if len(sizes) == 1:
        sizes = sizes * dim
    if len(sizes) != dim:
        raise LandscapeError(f"grid gives {len(sizes)} sizes for a {dim}D surface")
    for s in sizes:
        if s < 2:
            raise LandscapeError(f"a grid needs at least 2 points per axis, got {s}")
    return sizes


def grid_bytes(sizes: tuple[int, ...]) -> int:
    """Estimated bytes of a grid's arrays: :data:`BYTES_PER_POINT` per point."""
    return int(np.prod([int(s) for s in sizes], dtype=object)) * BYTES_PER_POINT


def check_grid_memory(sizes: tuple[int, ...], memory: int | None = None) -> int:
    """Estimated bytes of a grid (:data:`BYTES_PER_POINT` per point); LandscapeError above half of ``memory``.

    ``memory`` defaults to the machine's physical memory. Checked before
    anything is allocated or evaluated.
    """
    need = grid_bytes(sizes)
    points = need // BYTES_PER_POINT
    if memory is None:
        try:
            memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
            memory = 8 << 30
    if need > memory // 2:
        raise LandscapeError(f"grid {'x'.join(str(s) for s in sizes)} has {points} points and would need about "
                             f"{need / 2**30:.3g} GiB, more than half of this machine's {memory / 2**30:.3g} GiB; "
                             "use a smaller grid", params=("grid",))
    return need


def interp_axis(n: int, lo: float, hi: float) -> np.ndarray:
    """``n >= 2`` evenly spaced points about ``[lo, hi]`` on which ``t = 0`` and ``t = 1`` lie exactly.

    For interpolation from one model (``t = 0``) to another (``t = 1``): the
    step is ``1/m`` for a whole ``m <= n - 1`` closest to the plain spacing,
    and the points are ``k/m`` for ``n`` consecutive integers ``k`` spread over
    the range as evenly as ``lo`` and ``hi`` ask (so the reach may differ from
    ``[lo, hi]`` by less than one step). Needs ``lo <= 0`` and ``hi >= 1``.

    >>> interp_axis(11, -0.5, 1.5).tolist()
    [-0.4, -0.2, 0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.4, 1.6]
    >>> interp_axis(2, -0.5, 1.5).tolist()
    [0.0, 1.0]
    """
    n = int(n)
    if n < 2:
        raise LandscapeError(f"a grid needs at least 2 points per axis, got {n}")
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= 0 and hi >= 1):
        raise LandscapeError(f"an interpolation axis must reach from <= 0 to >= 1, got [{lo}, {hi}]")
    step = (hi - lo) / (n - 1)
    m = min(n - 1, max(1, math.floor(1 / step + 0.5)))
    spare = n - 1 - m  # steps outside [0, 1], shared in proportion to how far lo and hi reach
    reach = -lo + (hi - 1)
    below = math.ceil(spare * -lo / reach - 0.5) if reach > 0 else 0  # rounded half down
    k = np.arange(-below, n - below, dtype=np.float64)
    return k / m


def center_index(xs: np.ndarray) -> int | None:
    """Index of the exact 0 on the axis, or None when 0 is not a grid point."""
    hits = np.flatnonzero(xs == 0.0)
    return int(hits[0]) if hits.size else None
