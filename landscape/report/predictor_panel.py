"""The report panel "Which measure predicts generalization?": a table sorted by Psi and a measure-picker scatter."""

from __future__ import annotations

import html

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from landscape.report.granulated import TARGETS
from landscape.report.html import Figure, Table, esc, figure_block, table
from landscape.report.style import fmt, fmt_ci, group_colours

TEMPLATE = "plotly_white"
#: Subplot and axis titles of the targets, short enough to sit side by side at 1400 px.
SHORT = {"test_balanced_accuracy": "test balanced accuracy", "gap": "gap (train − test bal. acc.)",
         "external_auroc": "external AUROC", "drop": "AUROC drop (in-site − external)"}
#: Targets that only an external evaluation gives.
EXTERNAL = ("external_auroc", "drop")
NO_EXTERNAL = ("No external data, so no external AUROC or drop: pass --external to landscape study, or run "
               "landscape evaluate RUN --data OTHER_SITE on the runs.")


def present_targets(result: dict) -> list[str]:
    """The targets some run has a value of (the external ones need an external evaluation)."""
    return [t for t in TARGETS if any(r["targets"].get(t) is not None for r in result["rows"])]


def missing_note(result: dict) -> str:
    """One line on the targets left out, or empty."""
    shown = present_targets(result)
    return NO_EXTERNAL if any(t not in shown for t in EXTERNAL) else ""


def _cell(c: dict) -> str:
    tau = "τ —" if c["kendall_tau"] is None else f"τ {c['kendall_tau']:.2f} {fmt_ci(c['kendall_ci'])}"
    if c["p_holm"] is not None:
        tau += f" p {fmt(c['p'], 2)}, Holm {fmt(c['p_holm'], 2)}{' ✓' if c['p_holm'] < 0.05 else ''}"
    psi = f"Ψ {c['psi']:.2f}" if c["psi"] is not None else f"Ψ: {c['note']}"
    return f"{tau} · {psi}"


def _robust_text(rse: dict, wdt: dict) -> str:
    site = rse["in_site"]
    out = (f"sign error {site['worst']:.2f} ({site['worst_environment']}; chance {site['chance']['mean']:.2f}, "
           f"95th percentile {site['chance']['p95']:.2f})" if site["worst"] is not None else site["note"])
    if wdt["worst"] is not None:
        out += f"; worst-domain τ {wdt['worst']:.2f} ({wdt['worst_domain']}, expected sign {wdt['expected_sign']:+d})"
    return out


def invariance_note(result: dict) -> str:
    """One line naming the measures marked † (values of runs whose BatchNorm fold left a normalisation), or empty."""
    marked = {m: runs for m, runs in (result.get("not_invariant") or {}).items() if runs and m in result["measures"]}
    if not marked:
        return ""
    runs = sorted({r for names in marked.values() for r in names})
    return (f"† not invariant: {', '.join(marked)} of {len(runs)} run(s) ({', '.join(runs[:5])}"
            f"{' …' if len(runs) > 5 else ''}) were computed on weights with a normalisation left unfolded "
            "(pre-activation, LayerNorm, GroupNorm, …; see the runs' measures records), so a function-preserving "
            "rescaling changes them (docs/measures.md).")


def predictors_table(result: dict) -> str:
    """Measures (rows, sorted by |Psi|) by targets (columns) plus the robust views; escaped HTML."""
    cells = {(c["measure"], c["target"]): c for c in result["cells"]}
    targets = present_targets(result)
    headers = ["measure", "units", *(TARGETS[t] for t in targets), "robust sign error (worst) · worst-domain τ"]
    body = []
    for m in result["measures"]:
        rse, wdt = result["robust_sign_error"][m], result["worst_domain_tau"][m]
        label = m + (f" (= {', '.join(result['equivalent'][m])})" if result["equivalent"][m] else "")
        label += " †" if (result.get("not_invariant") or {}).get(m) else ""
        psi_key = cells[(m, result["sorted_by"])]["psi"] if result["sorted_by"] else None
        body.append([(label, m), (result["units"].get(m, ""), None),
                     *[(_cell(cells[(m, t)]), cells[(m, t)]["psi"] if t != result["sorted_by"] else psi_key)
                       for t in targets], (_robust_text(rse, wdt), rse["in_site"]["worst"])])
    numeric = [False, False] + [True] * (len(targets) + 1)
    axes = ", ".join(result["axes"]) or "none"
    primary = TARGETS.get(result["sorted_by"], "—")
    floor = ("" if result["holm_floor"] is None else
             f"; at its most extreme every cell reaches Holm p ≤ {fmt(result['holm_floor'], 2)}")
    caption = (f"Kendall τ within seeds over {result['n_runs']} runs (concordance of runs of the same seed, so a "
               "seed shift in both values does not count) with a 95% t-interval over the seeds (atanh scale, ≥ 3 "
               "seeds), its exact permutation p within seeds and the Holm adjustment "
               f"({result['multiple_comparisons']}{floor}; ✓ = Holm p < 0.05). "
               f"Jiang's granulated Ψ: the mean over the hyper-parameter axes that vary ({axes}; never the seed) "
               "of Jiang's τ (ties count 0) within groups of runs that differ only along that axis (two runs make "
               "a group; on the optimizer axis ρ and lr are fixed too, and an optimizer without ρ joins every ρ). "
               f"Rows are sorted by |Ψ| against {primary}; monotone transforms are listed beside the measure they "
               "transform. Robust sign error (Dziugaite et al.): per pair of settings differing in one "
               "hyper-parameter (an environment), the share of run pairs ordered against the gap, direction fixed "
               "in advance, each run pair weighted by the Hoeffding confidence of its gap difference's sign at the "
               "test-set size, (w − ½)+; environments with an effective sample size below 12 dropped; the worst "
               "shown, beside the same statistic for the measure permuted within seeds (chance). "
               "Worst-domain τ: τ against AUROC per domain "
               f"(≥ {result['min_domain_size']} images), the one least in the expected sign. Complexity measures "
               "that predict generalization have τ < 0 against accuracy/AUROC and τ > 0 against the gap and the "
               "drop.")
    if not result["measures"]:
        return ("<p>No measure records yet: run <code>landscape measures RUN...</code> (and "
                "<code>landscape evaluate</code> for the external targets).</p>")
    note = missing_note(result)
    marks = invariance_note(result)
    return (f'<div class="wrap">{table(Table(headers, body, numeric=numeric))}</div>'
            f"<p class=caption>{esc(caption)}</p>" + (f"<p class=note>{esc(note)}</p>" if note else "")
            + (f"<p class=note>{esc(marks)}</p>" if marks else ""))


def predictors_scatter(result: dict) -> go.Figure | None:
    """Measure (x) against each target (panels); a menu picks the measure."""
    rows, measures = result["rows"], result["measures"]
    if not rows or not measures:
        return None
    targets = present_targets(result)
    if not targets:
        return None
    colours = group_colours([r["group"] for r in rows])
    fig = make_subplots(rows=1, cols=len(targets), horizontal_spacing=0.08,
                        subplot_titles=[html.escape(SHORT[t]) for t in targets])
    per_measure = []
    for k, m in enumerate(measures):
        start = len(fig.data)
        for j, t in enumerate(targets):
            for group, colour in colours.items():
                pts = [r for r in rows if r["group"] == group and r["measures"].get(m) is not None
                       and r["targets"].get(t) is not None]
                if not pts:
                    continue
                name = html.escape(group)
                fig.add_trace(go.Scatter(
                    x=[r["measures"][m] for r in pts], y=[r["targets"][t] for r in pts], mode="markers", name=name,
                    legendgroup=name, showlegend=(j == 0), visible=(k == 0),
                    text=[html.escape(r["name"]) for r in pts], marker={"color": colour, "size": 8},
                    hovertemplate="%{text}<br>x=%{x:.4g}<br>y=%{y:.4g}<extra></extra>",
                ), row=1, col=j + 1)
        per_measure.append((start, len(fig.data)))
    n = len(fig.data)
    axes = ["xaxis"] + [f"xaxis{j}" for j in range(2, len(targets) + 1)]
    buttons = [{"label": html.escape(m), "method": "update",
                "args": [{"visible": [a <= i < b for i in range(n)]},
                         {f"{axis}.title.text": html.escape(m) for axis in axes}]}
               for m, (a, b) in zip(measures, per_measure)]
    fig.update_layout(template=TEMPLATE, height=440, margin={"t": 100, "b": 50},
                      updatemenus=[{"buttons": buttons, "x": 0.0, "y": 1.12, "xanchor": "left", "yanchor": "bottom",
                                    "showactive": True}],
                      legend={"title": {"text": "group"}})
    fig.update_annotations(font_size=12)
    fig.update_xaxes(title_text=html.escape(measures[0]), exponentformat="power")
    fig.update_yaxes(exponentformat="power")
    for j, t in enumerate(targets):
        fig.update_yaxes(title_text=html.escape(SHORT[t]), title_font_size=11, row=1, col=j + 1)
    return fig


def predictors_section(result: dict) -> str:
    """The panel's HTML: the table and the scatter."""
    fig = predictors_scatter(result)
    block = "" if fig is None else figure_block(Figure(
        "predictors-scatter", "Measure vs generalization", "Pick a measure in the menu; each panel is one target, "
        "each point a run, coloured by group.", fig))
    return predictors_table(result) + block
