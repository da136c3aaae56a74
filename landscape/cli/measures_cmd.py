"""``landscape measures``: the generalization-measure suite of one or more checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from landscape.cli.app import app
from landscape.cli.flags import budget_memory_option
from landscape.cli.render import console, now, print_table, record_saved, saved
from landscape.io import check_writable, write_json


@app.command("measures")
def measures_command(
    runs: list[Path] = typer.Argument(..., help="Checkpoint .pt files or run folders (their final.pt)."),
    measures: str = typer.Option("all", "--measures",
                                 help="'all' or a comma list of measure names (docs/measures.md)."),
    samples: int = typer.Option(512, "--samples",
                                help="Seeded training images for output, Fisher-Rao and PAC-Bayes measures."),
    ggn_samples: int = typer.Option(256, "--ggn-samples", help="Training images for the exact GGN trace."),
    draws: int = typer.Option(8, "--draws", help="Monte-Carlo noise draws per sigma in the PAC-Bayes search."),
    depth: int = typer.Option(12, "--depth", help="Bisection steps of the PAC-Bayes sigma search."),
    target: float = typer.Option(
        0.1, "--target", help="Degradation the PAC-Bayes sigma allows (loss increase in nats, or accuracy drop)."),
    metric: str = typer.Option("accuracy", "--metric",
                               help="PAC-Bayes degradation: accuracy (Jiang's drop) or loss (variant)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the image subsets and the noise draws."),
    budget_memory: Optional[float] = budget_memory_option("the weight copies and GGN Jacobians"),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    data: Optional[Path] = typer.Option(None, "--data", help="Data folder, if it moved since training."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Also write {run: values} to this JSON file."),
):
    """Compute generalization measures (Jiang et al. 2020 and more) and cache them in each run's analysis/.

    lambda_max, the Hessian trace and m-sharpness are read from the runs'
    hessian/sharpness records (run `landscape hessian` / `landscape sharpness`),
    never recomputed; the others are computed here. Definitions, units and
    references: docs/measures.md.

    Examples:
      landscape measures checkpoints/busi-cnn-small-sam-s0

      landscape measures checkpoints/*/ --samples 256 --draws 4 --json all.json

      landscape measures RUN --measures pacbayes_sigma,ggn_trace --metric loss

    """
    from landscape.analysis.measures import analyze, measure_values, not_invariant
    from landscape.checkpoint import load_checkpoint
    from landscape.measures import REGISTRY, select_measures

    check_writable(json_path)  # before any work: the JSON is written here, after it

    specs = select_measures(measures)
    out = {}
    for run in runs:
        since = now()
        ck = load_checkpoint(run, device=None if device == "auto" else device, data_root=data)
        record = analyze(ck, measures=[s.name for s in specs], samples=samples, ggn_samples=ggn_samples,
                                  draws=draws, depth=depth, target=target, metric=metric, seed=seed, progress=True,
                                  budget_memory=budget_memory)
        values = measure_values(ck.path, ck.fingerprint[:16], specs)
        marked = not_invariant(ck.path, ck.fingerprint[:16], specs)
        out[str(ck.path)] = {"values": values, "record": record["path"], "not_invariant": marked}
        console.print(f"{ck.run_dir.name} ({ck.path.name})", markup=False)
        print_table("measures", ["measure", "value", "units", "from"],
                    [[s.name + (" †" if s.name in marked else ""), values[s.name], s.units, s.source] for s in specs])
        if marked:
            console.print(f"† not invariant: {next(iter(marked.values()))}", markup=False)
        record_saved(record, since)
    if json_path is not None:
        write_json(json_path, {"runs": out, "units": {s.name: REGISTRY[s.name].units for s in specs}})
        saved("json", json_path)
