"""Interactive plotly figures of the report.

Each function returns a ``plotly.graph_objects.Figure`` or None when no run
has the data. Run labels are user-supplied (folder names), so every label put
into a figure is HTML-escaped: plotly renders a subset of HTML in text and
shows escaped entities as the literal characters.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from landscape.report.grids import above_floor
from landscape.report.rows import TARGETS
from landscape.report.style import corr_text, group_colours, scatter_parts

TEMPLATE = "plotly_white"


def _esc(text) -> str:
    return html.escape(str(text), quote=True)


def _values(a) -> np.ndarray:
    """float32 array: plotly embeds it as a compact typed array (NaN = a gap)."""
    return np.asarray(a, dtype=np.float32)


def _colours(series: Sequence[dict]) -> dict[str, str]:
    return group_colours([s["group"] for s in series])


def _settings_text(settings: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in settings.items() if v is not None)


def overlaid_curves(series: Sequence[dict], x: str, y: str, title: str, xaxis: dict, yaxis: dict, hover: str,
                    height: int = 420, err: str | None = None, width: float = 2.0,
                    menu: bool = False) -> go.Figure | None:
    """One line per run (``s[x]`` against ``s[y]``), coloured by group; None without series.

    ``hover``: the hover line after the run label (plotly template, e.g.
    ``"ρ=%{x:.3g}<br>loss=%{y:.4g}"``). ``err``: key of a symmetric error bar
    (then markers too). ``menu``: a linear/log switch for the y axis.
    """
    if not series:
        return None
    colours = _colours(series)
    fig = go.Figure()
    for s in series:
        label = _esc(s["label"])
        extra = {"error_y": {"type": "data", "array": _values(np.nan_to_num(s[err])), "thickness": 1}} if err else {}
        fig.add_trace(go.Scatter(
            x=_values(s[x]), y=_values(s[y]), mode="lines+markers" if err else "lines", name=label,
            legendgroup=_esc(s["group"]), line={"color": colours[s["group"]], "width": width},
            hovertemplate=f"{label}<br>{hover}<extra></extra>", **extra,
        ))
    fig.update_layout(template=TEMPLATE, height=height, margin={"t": 40, "b": 50},
                      title={"text": title, "font": {"size": 14}}, xaxis=xaxis, yaxis=yaxis,
                      updatemenus=[_scale_menu()] if menu else [])
    return fig


def landscape_1d(data: dict) -> go.Figure | None:
    """All runs' 1D loss curves on one axis, coloured by group; a log/linear switch."""
    return overlaid_curves(
        data["series"], "x", "loss", f"1D loss landscape ({_esc(_settings_text(data['settings']))})",
        {"title": {"text": "α (step along the direction, 0 = trained weights)"}}, {"title": {"text": "loss"}},
        "α=%{x:.3g}<br>loss=%{y:.4g}", height=460, menu=True)


def _scale_menu() -> dict:
    return {"type": "buttons", "direction": "right", "x": 1.0, "xanchor": "right", "y": 1.12, "yanchor": "top",
            "buttons": [{"label": "linear", "method": "relayout", "args": [{"yaxis.type": "linear"}]},
                        {"label": "log", "method": "relayout", "args": [{"yaxis.type": "log"}]}]}


def surface_contours(data: dict, max_cols: int = 4) -> go.Figure | None:
    """Contour maps of every 2D surface side by side, on one shared colour scale and levels."""
    series, rng = data["series"], data["range"]
    if not series or rng is None:
        return None
    lo, hi = rng
    cols = min(max_cols, len(series))
    nrows = math.ceil(len(series) / cols)
    fig = make_subplots(rows=nrows, cols=cols, subplot_titles=[_esc(s["label"]) for s in series],
                        horizontal_spacing=0.06, vertical_spacing=min(0.12, 0.3 / nrows))
    levels = {"start": lo, "end": hi, "size": (hi - lo) / 20, "showlabels": False}
    for i, s in enumerate(series):
        label = _esc(s["label"])
        fig.add_trace(go.Contour(
            x=_values(s["x"]), y=_values(s["y"]), z=_values(s["z"]), coloraxis="coloraxis", contours=levels,
            autocontour=False, name=label, line={"width": 0.5},
            hovertemplate=f"{label}<br>α=%{{x:.3g}} β=%{{y:.3g}}<br>loss=%{{z:.4g}}<extra></extra>",
        ), row=i // cols + 1, col=i % cols + 1)
        fig.add_trace(go.Scatter(x=[0], y=[0], mode="markers", showlegend=False, hoverinfo="skip",
                                 marker={"symbol": "x", "color": "white", "size": 8, "line": {"width": 1}}),
                      row=i // cols + 1, col=i % cols + 1)
    fig.update_layout(
        template=TEMPLATE, height=120 + 280 * nrows, margin={"t": 70, "b": 40},
        title={"text": f"2D loss surfaces, shared colour scale ({_esc(_settings_text(data['settings']))}; "
                       f"colours clipped at {hi:.3g}, the 95th percentile of all surfaces)", "font": {"size": 14}},
        coloraxis={"colorscale": "Viridis", "cmin": lo, "cmax": hi, "colorbar": {"title": {"text": "loss"}}},
        showlegend=False,
    )
    fig.update_annotations(font_size=11)
    return fig


def surface_3d(data: dict) -> go.Figure | None:
    """One 3D view with a run selector; z-axis and colours shared (clipped at the shared maximum)."""
    series, rng = data["series"], data["range"]
    if not series or rng is None:
        return None
    lo, hi = rng
    fig = go.Figure()
    for i, s in enumerate(series):
        label = _esc(s["label"])
        fig.add_trace(go.Surface(
            x=_values(s["x"]), y=_values(s["y"]), z=_values(np.minimum(s["z"], hi)), cmin=lo, cmax=hi,
            colorscale="Viridis", name=label, visible=i == 0, colorbar={"title": {"text": "loss"}},
            hovertemplate=f"{label}<br>α=%{{x:.3g}} β=%{{y:.3g}}<br>loss=%{{z:.4g}}<extra></extra>",
        ))
    buttons = [{"label": _esc(s["label"]), "method": "update",
                "args": [{"visible": [j == i for j in range(len(series))]}]} for i, s in enumerate(series)]
    fig.update_layout(
        template=TEMPLATE, height=560, margin={"t": 50, "l": 0, "r": 0, "b": 0},
        title={"text": "2D loss surface in 3D (pick a run; same z-axis and colours for all)", "font": {"size": 14}},
        scene={"xaxis_title": "α", "yaxis_title": "β", "zaxis": {"title": {"text": "loss"}, "range": [lo, hi]},
               "aspectmode": "cube"},
        updatemenus=[{"buttons": buttons, "x": 0.0, "xanchor": "left", "y": 1.0, "yanchor": "top", "active": 0}],
    )
    return fig


def spectral_density(data: dict) -> go.Figure | None:
    """Hessian spectral densities of all runs overlaid (log density axis; values below 1e-8 of the peak hidden)."""
    series = [{**s, "density": above_floor(s["density"])} for s in data["series"]]
    return overlaid_curves(series, "grid", "density", "Hessian spectral density (stochastic Lanczos quadrature)",
                           {"title": {"text": "eigenvalue λ"}}, {"title": {"text": "density"}, "type": "log"},
                           "λ=%{x:.4g}<br>density=%{y:.3g}", width=1.5)


def sharpness_vs_rho(data: dict) -> go.Figure | None:
    """m-sharpness against the radius for every run, mean ± std over sub-batches."""
    return overlaid_curves(
        data["series"], "rhos", "mean", f"m-sharpness against the radius ({_esc(_settings_text(data['settings']))})",
        {"title": {"text": "radius ρ"}, "type": "log"}, {"title": {"text": "sharpness (loss increase)"}},
        "ρ=%{x:.3g}<br>sharpness=%{y:.4g}", err="std", width=2.0)


def flatness_scatter(rows: Sequence[dict], summary: dict) -> go.Figure | None:
    """Each flatness measure against each generalization target: runs, group means ± std, tau/rho."""
    parts = scatter_parts(rows, summary)
    if parts is None:
        return None
    measures, colours, corr, groups = parts
    targets = list(TARGETS)
    fig = make_subplots(rows=len(measures), cols=len(targets), horizontal_spacing=0.1, vertical_spacing=0.09)
    shown: set[str] = set()
    for i, measure in enumerate(measures):
        for j, target in enumerate(targets):
            pos = {"row": i + 1, "col": j + 1}
            for group, colour in colours.items():
                members = [r for r in rows if r["group"] == group and r[measure] is not None and r[target] is not None]
                if not members:
                    continue
                name = _esc(group)
                fig.add_trace(go.Scatter(
                    x=[r[measure] for r in members], y=[r[target] for r in members], mode="markers",
                    name=name, legendgroup=name, showlegend=False, text=[_esc(r["label"]) for r in members],
                    marker={"color": colour, "size": 7, "opacity": 0.45},
                    hovertemplate="%{text}<br>x=%{x:.4g}<br>y=%{y:.4g}<extra></extra>",
                ), **pos)
                g = groups[group]
                fig.add_trace(go.Scatter(
                    x=[g[measure]["mean"]], y=[g[target]["mean"]], mode="markers", name=name, legendgroup=name,
                    showlegend=group not in shown,
                    marker={"color": colour, "size": 13, "symbol": "diamond", "line": {"color": "black", "width": 1}},
                    error_x={"type": "data", "array": [g[measure]["std"] or 0.0], "thickness": 1.2},
                    error_y={"type": "data", "array": [g[target]["std"] or 0.0], "thickness": 1.2},
                    hovertemplate=f"{name} (mean ± std over {g['n_runs']} "
                                  f"runs)<br>x=%{{x:.4g}}<br>y=%{{y:.4g}}<extra></extra>",
                ), **pos)
                shown.add(group)
            k = i * len(targets) + j + 1
            suffix = "" if k == 1 else str(k)
            fig.add_annotation(text=corr_text(corr[(measure, target)]), xref=f"x{suffix} domain",
                               yref=f"y{suffix} domain", x=0.0, y=1.0, xanchor="left", yanchor="bottom",
                               showarrow=False, font={"size": 11})
            fig.update_xaxes(title_text=measures[measure], **pos)
            fig.update_yaxes(title_text=TARGETS[target], title_font_size=11, **pos)
    fig.update_layout(template=TEMPLATE, height=330 * len(measures), margin={"t": 60, "b": 40},
                      title={"text": "Flatness vs generalization (small dots: runs; diamonds: mean ± std over seeds)",
                             "font": {"size": 14}}, legend={"title": {"text": "group"}})
    return fig
