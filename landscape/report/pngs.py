"""Matplotlib figures of the report for papers: PNGs (``--png DIR``), or PNG + PDF + SVG (``--figures DIR``).

Same data and colours as the interactive figures (:mod:`landscape.report.series`).
Files: ``flatness_vs_generalization.png``, ``landscape_1d.png``,
``surfaces_2d.png``, ``spectral_density.png``, ``sharpness_vs_rho.png``
(each only when some run has the data).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from landscape.io import atomic_write_bytes  # noqa: E402
from landscape.report.grids import above_floor  # noqa: E402
from landscape.report.rows import TARGETS  # noqa: E402
from landscape.report.style import corr_text, group_colours, scatter_parts  # noqa: E402

DPI = 200


def _tex_safe(text: str) -> str:
    """Escape ``$`` so that user labels are never parsed as mathtext."""
    return str(text).replace("$", r"\$")


#: Resolution of ``--figures`` PNGs (print), beside their vector PDF and SVG.
PRINT_DPI = 300
#: What ``--figures`` writes per figure.
PRINT_FORMATS = ("png", "pdf", "svg")


def _save(fig, path: Path, formats: Sequence[str] = ("png",), dpi: int = DPI) -> list[Path]:
    """``fig`` as ``path`` with each suffix of ``formats`` (atomic writes); closes the figure."""
    written = []
    for fmt in formats:
        buf = io.BytesIO()
        metadata = {"Date": None} if fmt == "svg" else {"CreationDate": None} if fmt == "pdf" else None
        fig.savefig(buf, format=fmt, dpi=dpi, bbox_inches="tight", metadata=metadata)
        written.append(atomic_write_bytes(path.with_suffix(f".{fmt}"), buf.getvalue()))
    plt.close(fig)
    return written


def write_pngs(out_dir: Path, rows: Sequence[dict], summary: dict, data: dict, formats: Sequence[str] = ("png",),
               dpi: int = DPI) -> list[Path]:
    """Write every panel's figure that has data into ``out_dir``, once per format; returns the files written.

    ``--png`` writes PNGs at :data:`DPI`; ``--figures`` writes :data:`PRINT_FORMATS` at :data:`PRINT_DPI`.
    """
    from landscape.report.panels import panels

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for panel in panels():
        fig = panel.png(data, rows, summary) if panel.png is not None else None
        if fig is not None:
            written += _save(fig, out_dir / f"{panel.png_name}.png", formats, dpi)
    return written


def curves(series: Sequence[dict], xkey: str, ykey: str, xlabel: str, ylabel: str, logx: bool = False,
           logy: bool = False, err: str | None = None):
    """Overlaid curves, one per run, coloured by group."""
    if not series:
        return None
    colours = group_colours([s["group"] for s in series])
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for s in series:
        y = above_floor(s[ykey]) if logy else np.asarray(s[ykey], float)
        ax.plot(s[xkey], y, color=colours[s["group"]], lw=1.4, label=_tex_safe(s["label"]), marker="o" if err else None,
                ms=3)
        if err:
            ax.fill_between(s[xkey], y - np.nan_to_num(s[err]), y + np.nan_to_num(s[err]), color=colours[s["group"]],
                            alpha=0.12, lw=0)
    ax.set(xlabel=xlabel, ylabel=ylabel, xscale="log" if logx else "linear", yscale="log" if logy else "linear")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=max(1, math.ceil(len(series) / 12)), frameon=False, loc="best")
    return fig


def contours(planes: dict, max_cols: int = 4):
    """Filled contours of all 2D surfaces on one shared colour scale and levels."""
    series, rng = planes["series"], planes["range"]
    if not series or rng is None:
        return None
    cols = min(max_cols, len(series))
    nrows = math.ceil(len(series) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(2.6 * cols + 0.8, 2.4 * nrows), squeeze=False,
                             constrained_layout=True)
    levels = np.linspace(rng[0], rng[1], 21)
    mappable = None
    for ax, s in zip(axes.flat, series):
        mappable = ax.contourf(s["x"], s["y"], np.clip(s["z"], rng[0], rng[1]), levels=levels, cmap="viridis")
        ax.plot([0], [0], "wx", ms=5)
        ax.set_title(_tex_safe(s["label"]), fontsize=8)
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(series):]:
        ax.axis("off")
    fig.colorbar(mappable, ax=axes, label=f"loss (clipped at {rng[1]:.3g})", shrink=0.9)
    return fig


def flatness(rows: Sequence[dict], summary: dict):
    """3 x 2 panels: each flatness measure against test balanced accuracy and the gap, with Kendall tau."""
    parts = scatter_parts(rows, summary)
    if parts is None:
        return None
    measures, colours, corr, groups = parts
    fig, axes = plt.subplots(len(measures), len(TARGETS), figsize=(10, 3.2 * len(measures)), squeeze=False,
                             constrained_layout=True)
    for i, measure in enumerate(measures):
        for j, target in enumerate(TARGETS):
            ax = axes[i, j]
            for group, colour in colours.items():
                pts = [(r[measure], r[target]) for r in rows if r["group"] == group
                       and r[measure] is not None and r[target] is not None]
                if not pts:
                    continue
                ax.scatter(*zip(*pts), color=colour, s=14, alpha=0.45, lw=0)
                g = groups[group]
                ax.errorbar(g[measure]["mean"], g[target]["mean"], xerr=g[measure]["std"] or 0,
                            yerr=g[target]["std"] or 0, fmt="D", color=colour, mec="black", mew=0.6, ms=6,
                            elinewidth=1, capsize=2, label=_tex_safe(group) if (i, j) == (0, 0) else None)
            ax.set_title(corr_text(corr[(measure, target)], sep="  "), fontsize=7.5, loc="left")
            ax.set_xlabel(measures[measure], fontsize=8)
            ax.set_ylabel(TARGETS[target], fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
    fig.legend(loc="outside upper center", ncol=min(8, len(colours)), fontsize=7, frameon=False)
    return fig
