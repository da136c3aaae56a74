"""The report panel "Paired differences from the baseline": each optimizer minus it, seed by seed, with CIs.

Registered in :mod:`landscape.report.panel_specs` (series ``paired``:
:func:`landscape.report.compare.compare_runs` against :data:`BASELINE`, the
default base optimizer, from records only, without the per-run test-set
bootstrap). Shown when the runs include the baseline and a paired group.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from landscape.optim.base import DEFAULT_BASE
from landscape.report.compare import TARGETS, compare_runs
from landscape.report.rows import group_name

#: The group every other is compared with in the report.
BASELINE = DEFAULT_BASE


def paired_series(runs: Sequence, rows: Sequence[dict]) -> dict:
    """``compare_runs`` against :data:`BASELINE` (empty when no run is in that group)."""
    several = len({r.model for r in runs}) > 1
    if not any(group_name(r, several) == BASELINE for r in runs):
        return {}
    return compare_runs(runs, BASELINE, uncertainty=False)


def paired_figure(data: dict) -> go.Figure | None:
    """One panel per target: mean paired difference (dot) with its 95% CI (bar) per group, zero marked."""
    cells = [c for c in (data or {}).get("cells", []) if c["mean_difference"] is not None]
    if not cells:
        return None
    targets = [t for t in TARGETS if any(c["target"] == t for c in cells)]
    fig = make_subplots(rows=1, cols=len(targets), subplot_titles=[html.escape(TARGETS[t]) for t in targets],
                        horizontal_spacing=0.07)
    for j, t in enumerate(targets):
        mine = [c for c in cells if c["target"] == t]
        err_hi = [(c["ci"][1] - c["mean_difference"]) if c["ci"] else 0.0 for c in mine]
        err_lo = [(c["mean_difference"] - c["ci"][0]) if c["ci"] else 0.0 for c in mine]
        text = [html.escape(f"{c['group']}: n={c['n_pairs']}, p={c['p']}, Holm p={c['p_holm']}, "
                            f"detectable={c['mdd']}") for c in mine]
        fig.add_trace(go.Scatter(
            x=[c["mean_difference"] for c in mine], y=[html.escape(c["group"]) for c in mine], mode="markers",
            error_x={"type": "data", "symmetric": False, "array": err_hi, "arrayminus": err_lo},
            marker={"size": 9, "symbol": ["diamond" if (c["p_holm"] or 1) < 0.05 else "circle" for c in mine]},
            text=text, hovertemplate="%{text}<br>difference=%{x:.4g}<extra></extra>", showlegend=False,
        ), row=1, col=j + 1)
        fig.add_vline(x=0.0, line={"dash": "dot", "color": "grey"}, row=1, col=j + 1)
    fig.update_layout(template="plotly_white", height=120 + 40 * len({c["group"] for c in cells}),
                      margin={"t": 60, "b": 40})
    return fig
