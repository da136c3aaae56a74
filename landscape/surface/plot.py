"""Figures of a surface: a matplotlib PNG and a self-contained plotly HTML.

2D: filled contour (PNG) and a 3D surface beside a contour (HTML); 1D: the
loss curve with accuracy on a second axis. The centre (the model) is marked
with a star; a PCA trajectory (``{"x": [...], "y": [...] | None, "epochs": [...]}``)
is drawn over the plot. Loss colour levels are log-spaced when the loss is
positive and spans more than two decades (loss landscapes usually do), else linear.
Files are written atomically with ``landscape.io``.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from landscape.io import atomic_write_bytes, atomic_write_text


def _levels(loss: np.ndarray, n: int = 30) -> tuple[np.ndarray, bool]:
    """Contour levels over the finite loss values and whether they are log-spaced."""
    finite = loss[np.isfinite(loss)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if hi <= lo:
        hi = lo + 1e-12 + abs(lo) * 1e-6
    if lo > 0 and hi / lo > 100:
        return np.geomspace(lo, hi, n), True
    return np.linspace(lo, hi, n), False


def plot_png(path, x, y, loss, *, xlabel: str, ylabel: str | None, title: str, accuracy=None, trajectory=None) -> Path:
    """Write the PNG (contour for 2D, curve for 1D); returns its path."""
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure  # no pyplot: a command that draws one figure skips its import (~0.2 s)

    x, loss = np.asarray(x, dtype=float), np.asarray(loss, dtype=float)
    fig = Figure(figsize=(6.4, 5.2) if y is not None else (6.4, 4.2), dpi=120)
    ax = fig.subplots()
    if y is None:
        lines = ax.plot(x, loss, color="C0", marker="o", ms=3, label="loss")
        ax.set_ylabel("loss")
        finite = loss[np.isfinite(loss)]
        if finite.size and finite.min() > 0 and np.nanmax(loss) / np.nanmin(loss) > 100:
            ax.set_yscale("log")
        if accuracy is not None and np.isfinite(np.asarray(accuracy, dtype=float)).any():
            ax2 = ax.twinx()
            lines += ax2.plot(x, accuracy, color="C1", ls="--", label="accuracy")
            ax2.set_ylabel("accuracy")
            ax2.set_ylim(0, 1)
        ax.legend(lines, [ln.get_label() for ln in lines], loc="upper center", fontsize=8)
        if 0.0 in x:
            ax.axvline(0.0, color="k", lw=0.8, ls=":")
        if trajectory is not None:
            for cx in trajectory["x"]:
                ax.axvline(cx, color="C3", lw=0.6, alpha=0.5)
    else:
        y = np.asarray(y, dtype=float)
        levels, log = _levels(loss)
        grid_x, grid_y = np.meshgrid(x, y, indexing="ij")
        cs = ax.contourf(grid_x, grid_y, np.clip(loss, levels[0], levels[-1]), levels=levels, cmap="viridis",
                         norm=LogNorm(levels[0], levels[-1]) if log else None)
        ax.contour(grid_x, grid_y, np.clip(loss, levels[0], levels[-1]), levels=levels[::3], colors="w", linewidths=0.4,
                   norm=LogNorm(levels[0], levels[-1]) if log else None)
        fig.colorbar(cs, ax=ax, label="loss", format="%.3g")
        ax.plot([0], [0], marker="*", color="r", ms=12, ls="none", label="model")
        if trajectory is not None:
            ax.plot(trajectory["x"], trajectory["y"], color="w", marker="o", ms=3, lw=1.2, label="trajectory")
            ax.annotate(f"epoch {trajectory['epochs'][0]}", (trajectory["x"][0], trajectory["y"][0]), color="w",
                        fontsize=8)
        ax.set_ylabel(ylabel or "")
        ax.legend(loc="upper right", fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return atomic_write_bytes(path, buf.getvalue())


def plot_html(path, x, y, loss, *, xlabel: str, ylabel: str | None, title: str, accuracy=None, trajectory=None) -> Path:
    """Write a self-contained interactive HTML (plotly.js inline); returns its path."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    x, loss = np.asarray(x, dtype=float), np.asarray(loss, dtype=float)
    if y is None:
        fig = make_subplots(specs=[[{"secondary_y": True}]])
        fig.add_trace(go.Scatter(x=x, y=loss, mode="lines+markers", name="loss"), secondary_y=False)
        if accuracy is not None:
            fig.add_trace(go.Scatter(x=x, y=np.asarray(accuracy, dtype=float), mode="lines", name="accuracy",
                                     line={"dash": "dash"}), secondary_y=True)
        if trajectory is not None:
            fig.add_trace(go.Scatter(x=trajectory["x"], y=[float(np.nanmin(loss))] * len(trajectory["x"]),
                                     mode="markers",
                                     name="epochs", text=[f"epoch {e}" for e in trajectory["epochs"]]),
                          secondary_y=False)
        fig.update_xaxes(title_text=xlabel)
        fig.update_yaxes(title_text="loss", secondary_y=False)
        fig.update_yaxes(title_text="accuracy", range=[0, 1], secondary_y=True)
    else:
        y = np.asarray(y, dtype=float)
        z = loss.T  # plotly: z[row = y index][col = x index]
        fig = make_subplots(rows=1, cols=2, specs=[[{"type": "surface"}, {"type": "contour"}]],
                            subplot_titles=("surface", "contour"))
        fig.add_trace(go.Surface(x=x, y=y, z=z, colorscale="Viridis", showscale=False, name="loss",
                                 contours={"z": {"show": True, "usecolormap": True, "project": {"z": True}}}), row=1,
                      col=1)
        fig.add_trace(go.Contour(x=x, y=y, z=z, colorscale="Viridis", colorbar={"title": "loss"}, name="loss",
                                 ncontours=30), row=1, col=2)
        fig.add_trace(go.Scatter(x=[0.0], y=[0.0], mode="markers", marker={"symbol": "star", "size": 14,
                                                                           "color": "red"},
                                 name="model"), row=1, col=2)
        if trajectory is not None:
            fig.add_trace(go.Scatter(x=trajectory["x"], y=trajectory["y"], mode="lines+markers", name="trajectory",
                                     text=[f"epoch {e}" for e in trajectory["epochs"]], line={"color": "white"}),
                          row=1, col=2)
        fig.update_scenes(xaxis_title=xlabel, yaxis_title=ylabel or "", zaxis_title="loss")
        fig.update_xaxes(title_text=xlabel, row=1, col=2)
        fig.update_yaxes(title_text=ylabel or "", row=1, col=2)
    fig.update_layout(title=title, template="plotly_white", height=560)
    return atomic_write_text(path, fig.to_html(full_html=True, include_plotlyjs=True))
