"""The report panel "Paired differences from the baseline": each optimizer minus it, seed by seed, with CIs.

Registered in :mod:`landscape.report.panel_specs` (series ``paired``:
:func:`landscape.report.compare.compare_runs` against :data:`BASELINE`, the
default base optimizer, from records only, without the per-run test-set
bootstrap). Shown when the runs include the baseline and a paired group. Its
title states what the baseline is compute-matched to and each group's hover
its gradient evaluations relative to the baseline's.
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


def compute_text(cell: dict, baseline: str) -> str:
    """A cell's gradient evaluations against the baseline's, in words (not escaped)."""
    ratio = "unknown" if cell["compute_ratio"] is None else f"{cell['compute_ratio']:.2f}x"
    return (f"gradient evaluations {ratio} {baseline}'s ({baseline} matched to it in "
            f"{cell['budget_matched_pairs']}/{cell['n_paired_runs']} pairs)")


def paired_figure(data: dict) -> go.Figure | None:
    """One panel per target: mean paired difference (dot) with its 95% CI (bar) per group, zero marked; the title
    says what the baseline is compute-matched to, the hover each group's gradient evaluations against it.
    """
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
                            f"detectable={c['mdd']}, {compute_text(c, data['baseline'])}") for c in mine]
        fig.add_trace(go.Scatter(
            x=[c["mean_difference"] for c in mine], y=[html.escape(c["group"]) for c in mine], mode="markers",
            error_x={"type": "data", "symmetric": False, "array": err_hi, "arrayminus": err_lo},
            marker={"size": 9, "symbol": ["diamond" if (c["p_holm"] or 1) < 0.05 else "circle" for c in mine]},
            text=text, hovertemplate="%{text}<br>difference=%{x:.4g}<extra></extra>", showlegend=False,
        ), row=1, col=j + 1)
        fig.add_vline(x=0.0, line={"dash": "dot", "color": "grey"}, row=1, col=j + 1)
    fig.update_layout(template="plotly_white", height=140 + 40 * len({c["group"] for c in cells}),
                      margin={"t": 90, "b": 40},
                      title={"text": html.escape(f"compute: {data['baseline_compute']['text']}"),
                             "font": {"size": 12}})
    return fig
