"""Interactive plotly figures of the report.

Each function returns a ``plotly.graph_objects.Figure`` or None when no run
has the data. Run labels are user-supplied (folder names), so every label put
into a figure is HTML-escaped: plotly renders a subset of HTML in text and
shows escaped entities as the literal characters.
"""

from __future__ import annotations

import html
import math
import warnings
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from landscape.analysis import columns
from landscape.measures import REGISTRY
from landscape.report.grids import above_floor
from landscape.report.rows import TARGETS
from landscape.report.style import corr_text, group_colours, scatter_parts

TEMPLATE = "plotly_white"
#: Axis titles of the generalization targets, short enough for side-by-side subplots.
SHORT_TARGETS = {"balanced_accuracy": "test balanced accuracy", "gap": "gap (train − test bal. acc.)"}


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
    (then markers too). ``menu``: a linear/log switch for the y axis. When a
    group has several runs on one x grid, the figure opens on one line per
    group (mean over its runs, band: min to max) and a toggle shows the single runs.
    """
    if not series:
        return None
    colours = _colours(series)
    fig = go.Figure()
    grouped = _group_means(series, x, y)
    for s in series:
        label = _esc(s["label"])
        extra = {"error_y": {"type": "data", "array": _values(np.nan_to_num(s[err])), "thickness": 1}} if err else {}
        fig.add_trace(go.Scatter(
            x=_values(s[x]), y=_values(s[y]), mode="lines+markers" if err else "lines", name=label,
            legendgroup=_esc(s["group"]), line={"color": colours[s["group"]], "width": width},
            hovertemplate=f"{label}<br>{hover}<extra></extra>", visible=not grouped, meta="run", **extra,
        ))
    for group, (xs, mean, low, high, n) in grouped.items():
        name, colour = _esc(group), colours[group]
        fig.add_trace(go.Scatter(x=_values(np.concatenate([xs, xs[::-1]])),
                                 y=_values(np.concatenate([high, low[::-1]])), fill="toself", fillcolor=colour,
                                 opacity=0.2, line={"width": 0}, hoverinfo="skip", showlegend=False,
                                 name=f"{name} (min–max of {n})",
                                 legendgroup=name, meta="group"))
        fig.add_trace(go.Scatter(x=_values(xs), y=_values(mean), mode="lines", name=f"{name} (mean of {n})",
                                 legendgroup=name, line={"color": colour, "width": width + 0.5}, meta="group",
                                 hovertemplate=f"{name}, mean of {n} runs<br>{hover}<extra></extra>"))
    menus = [_scale_menu()] if menu else []
    if grouped:
        kinds = [t.meta for t in fig.data]
        menus.append({"type": "buttons", "direction": "right", "x": 0.0, "xanchor": "left", "y": 1.0,
                      "yanchor": "bottom", "pad": {"b": 4}, "showactive": True, "active": 0, "buttons": [
                          {"label": "groups: mean, band min–max", "method": "restyle",
                           "args": [{"visible": [k == "group" for k in kinds]}]},
                          {"label": "single runs", "method": "restyle",
                           "args": [{"visible": [k == "run" for k in kinds]}]}]})
    fig.update_layout(template=TEMPLATE, height=height, margin={"t": 90 if menus else 50, "b": 50},
                      title={"text": title, "font": {"size": 14}, "y": 0.98, "yanchor": "top"},
                      xaxis=xaxis, yaxis=yaxis, updatemenus=menus)
    return plain_numbers(fig)


def _group_means(series: Sequence[dict], x: str, y: str) -> dict[str, tuple]:
    """``{group: (x, mean, min, max, runs)}`` when every group's runs share one x grid and some group has two or
    more runs; else empty (one line per run is then clearer).
    """
    out = {}
    for group in dict.fromkeys(s["group"] for s in series):
        members = [s for s in series if s["group"] == group]
        xs = np.asarray(members[0][x], dtype=float)
        if any(np.asarray(m[x], dtype=float).shape != xs.shape
                                   or not np.allclose(np.asarray(m[x], dtype=float), xs) for m in members):
            continue
        ys = np.array([np.asarray(m[y], dtype=float) for m in members])
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a grid point NaN in every run stays NaN
            out[group] = (xs, np.nanmean(ys, 0), np.nanmin(ys, 0), np.nanmax(ys, 0), len(members))
    complete = len(out) == len(dict.fromkeys(s["group"] for s in series))
    return out if complete and max(v[-1] for v in out.values()) >= 2 else {}


def plain_numbers(fig: go.Figure) -> go.Figure:
    """Tick labels without SI prefixes (``1e-06``-style powers of ten instead of ``1µ``) on every axis."""
    fig.update_xaxes(exponentformat="power")
    fig.update_yaxes(exponentformat="power")
    return fig


def landscape_1d(data: dict) -> go.Figure | None:
    """All runs' 1D loss curves on one axis, coloured by group; a log/linear switch."""
    return overlaid_curves(
        data["series"], "x", "loss", f"1D loss landscape ({_esc(_settings_text(data['settings']))})",
        {"title": {"text": "α (step along the direction, 0 = trained weights)"}}, {"title": {"text": "loss"}},
        "α=%{x:.3g}<br>loss=%{y:.4g}", height=460, menu=True)


def _scale_menu() -> dict:
    """A linear/log switch of the y axis, above the plot at the right, clear of plotly's toolbar."""
    return {"type": "buttons", "direction": "right", "x": 1.0, "xanchor": "right", "y": 1.0, "yanchor": "bottom",
            "pad": {"b": 4}, "buttons": [{"label": "linear", "method": "relayout", "args": [{"yaxis.type": "linear"}]},
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
                        horizontal_spacing=0.07, vertical_spacing=min(0.16, 0.45 / nrows))
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
        template=TEMPLATE, height=140 + 320 * nrows, margin={"t": 90, "b": 50},
        title={"text": f"2D loss surfaces, shared colour scale ({_esc(_settings_text(data['settings']))}; "
                       f"colours clipped at {hi:.3g}, the 95th percentile of all surfaces)", "font": {"size": 14}},
        coloraxis={"colorscale": "Viridis", "cmin": lo, "cmax": hi, "colorbar": {"title": {"text": "loss"}}},
        showlegend=False,
    )
    fig.update_annotations(font_size=11)
    fig.update_xaxes(title_text="α (direction 1)", title_font_size=11, title_standoff=4)
    fig.update_yaxes(title_text="β (direction 2)", title_font_size=11, title_standoff=4)
    return plain_numbers(fig)


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
    """Each flatness measure against each generalization target: runs, group means ± std, Kendall tau."""
    parts = scatter_parts(rows, summary)
    if parts is None:
        return None
    measures, colours, corr, groups = parts
    targets = [t for t in TARGETS if any(r[t] is not None for r in rows)]
    if not targets:
        return None
    left_out = [REGISTRY[m].title for m in columns() if m not in measures and m in REGISTRY]
    fig = make_subplots(rows=len(measures), cols=len(targets), horizontal_spacing=0.1,
                        vertical_spacing=0.3 / len(measures))
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
            fig.update_xaxes(title_text=measures[measure], title_font_size=11, **pos)
            fig.update_yaxes(title_text=SHORT_TARGETS.get(target, TARGETS[target]), title_font_size=11, **pos)
    note = (f"<br><span style='font-size:11px'>left out, no run has it: {_esc(', '.join(left_out))} (run "
            "their analyses on the runs)</span>") if left_out else ""
    fig.update_layout(template=TEMPLATE, height=120 + 330 * len(measures), margin={"t": 90 if note else 60, "b": 40},
                      title={"text": "Flatness vs generalization (small dots: runs; diamonds: mean ± std over seeds)"
                                     + note, "font": {"size": 14}}, legend={"title": {"text": "group"}})
    return plain_numbers(fig)
