"""The report panel "Paired differences from Adam": each optimizer minus the baseline, seed by seed, with CIs.

Registered with :func:`landscape.report.panels.register_panel` (series
``paired``: :func:`landscape.report.compare.compare_runs` against
:data:`BASELINE` from records only, without the per-run test-set bootstrap).
Shown when the runs include the baseline and at least one paired group.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from landscape.report.compare import TARGETS, compare_runs
from landscape.report.panels import Panel, register_panel, register_series
from landscape.report.rows import group_name

BASELINE = "adam"


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


register_series("paired", paired_series)
register_panel(Panel(
    "paired", f"Paired differences from {BASELINE}",
    f"Each optimizer minus {BASELINE} on the same seed (same initial weights, data order and split): mean over "
    "seeds (dot; diamond when the Holm-adjusted paired t-test p < 0.05) with its 95% t-interval; the dotted line "
    "is no difference. Hover for the number of pairs, p, Holm p and the smallest difference the design detects "
    "(80% power, alpha 0.05). `landscape compare` adds each run's test-set bootstrap CIs.",
    ("paired",), lambda d, *_: paired_figure(d["paired"]), section="correlations"))
