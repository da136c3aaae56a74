"""Add your own analysis to `landscape report`: the Frobenius norm of every layer's weights.

An analysis is four registrations; no file of landscape changes:

1. a measure (``landscape.measures.register``): the runs-table column, read
   from the analysis's record, also correlated with generalization;
2. the analysis (``landscape.analysis.register_analysis``): its driver,
   cached in the run's ``analysis/``, its cost plan and its column;
3. a report series: plot-ready data from each run's record;
4. a report panel, "Weight norm per layer".

Then two tiny runs are trained and a report is built in which the panel
appears (``--tiny``: seconds on a CPU).
Run: python examples/custom_analysis.py [--tiny] [--out DIR]
"""

from __future__ import annotations

import argparse
import html
import math
from pathlib import Path

import plotly.graph_objects as go

import landscape
from landscape.analysis import AnalysisSpec, cached, get_analysis, list_analyses, register_analysis
from landscape.analysis.cache import as_checkpoint
from landscape.cost import CostPlan
from landscape.measures import MeasureSpec, register
from landscape.report.panels import Panel, register_panel, register_series

KIND = "weight_norms"  # the record kind, stored as analysis/weight_norms-<hash>.json


def weight_norms(ck, seed: int = 0, progress: bool = True) -> dict:
    """``||W||_F`` of every weight matrix or kernel of ``ck`` (a Checkpoint or run folder), cached."""
    ck = as_checkpoint(ck)

    def compute(settings: dict) -> tuple[dict, dict]:
        layers = {name: p.detach().double().norm().item() for name, p in ck.model.named_parameters() if p.dim() > 1}
        return {"per_layer": layers, "total": math.sqrt(sum(v * v for v in layers.values()))}, {}

    return cached(ck, KIND, {}, compute)  # deterministic: no setting changes the numbers


def cost(ck, kwargs: dict, measure: bool) -> CostPlan:
    """One norm per weight tensor; each takes microseconds, so the ETA is left out."""
    return CostPlan("weight_norms", "norm", {"layers": sum(p.dim() > 1 for p in ck.model.parameters())})


def per_layer_series(runs, rows) -> dict:
    """``{"series": [{label, layers, norms}]}`` of the runs that have a record."""
    series = []
    for run, row in zip(runs, rows):
        rec = run.found.get("weight_norm_per_layer")
        if rec is not None:
            layers = rec["result"]["per_layer"]
            series.append({"label": row["label"], "layers": list(layers), "norms": list(layers.values())})
    return {"series": series}


def per_layer_figure(data: dict, rows, summary) -> go.Figure | None:
    """Grouped bars: one bar per layer and run."""
    series = data["weight_norms"]["series"]
    if not series:
        return None
    fig = go.Figure([go.Bar(x=s["layers"], y=s["norms"], name=html.escape(s["label"])) for s in series])
    fig.update_layout(barmode="group", xaxis_title="layer", yaxis_title="||W||_F", height=420)
    return fig


register(MeasureSpec(
    "weight_norm", "parameter units", "Frobenius norm of the weights (cf. Jiang et al. 2020, fro.dist)",
    "sqrt(sum over weight tensors W of ||W||_F^2), biases and BatchNorm scales left out", source=KIND,
    extract=lambda r: r["result"].get("total"), tags=("norm",), label="||W||_F (all layers)"))
register_analysis(AnalysisSpec(
    "weight_norms", KIND, weight_norms, provides={"weight_norm_per_layer": lambda r: "per_layer" in r["result"]},
    columns=("weight_norm",), cost=cost, description="Frobenius norm of every layer's weights"))
register_series("weight_norms", per_layer_series)
register_panel(Panel("weight-norms", "Weight norm per layer", "||W||_F of each weight matrix or convolution kernel, "
                     "one bar per run.", ("weight_norms",), per_layer_figure))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="seconds-scale settings")
    parser.add_argument("--out", type=Path, default=Path("custom_analysis"), help="folder for the runs and report")
    args = parser.parse_args()

    from landscape.train import TrainConfig, train_all

    cfg = TrainConfig(model="cnn-tiny" if args.tiny else "cnn-small", img_size=32 if args.tiny else 64,
                      epochs=1 if args.tiny else 10, out=str(args.out / "runs"))
    runs = [r.run_dir for r in train_all(cfg, ["adam", "sam"], progress=False)]
    # --tiny: every analysis with its --quick settings (ours has none)
    quick = {n: dict(get_analysis(n).quick_defaults) for n in list_analyses()} if args.tiny else None
    out = landscape.build_report(runs, args.out / "report.html", progress=False, analyses=quick)
    print(f"report with the 'Weight norm per layer' panel: {out}")


if __name__ == "__main__":
    main()
