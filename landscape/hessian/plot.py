"""PNG of an SLQ spectral density (log scale), with the top eigenvalues marked."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from landscape.io import atomic_write_bytes  # noqa: E402


def density_png(density: dict, path: str | Path, eigenvalues: Sequence[float] = (), title: str = "") -> Path:
    """Write the smoothed density of a ``DensityResult.to_dict()`` (or record) to ``path`` as a PNG."""
    grid = np.asarray(density["grid"], dtype=float)
    dens = np.asarray(density["density"], dtype=float)
    floor = max(dens.max(), 1e-300) * 1e-8  # log axis: show eight decades below the peak
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    ax.semilogy(grid, np.maximum(dens, floor), color="#1f77b4", lw=1.4, label="SLQ density")
    for i, lam in enumerate(eigenvalues):
        ax.axvline(lam, color="#d62728", ls="--", lw=0.8, label="top eigenvalues" if i == 0 else None)
    ax.set_ylim(floor, dens.max() * 3)
    ax.set_xlabel("eigenvalue")
    ax.set_ylabel("density")
    ax.set_title(title or f"Hessian spectral density ({density['runs']} runs x {density['steps']} steps, "
                 f"bandwidth {density['bandwidth']:.3g})", fontsize=9)
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=150)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())
