"""``landscape hessian``: certified top eigenvalues, trace with a CI, density and per-layer breakdown."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from landscape.cli.app import app
from landscape.cli.flags import budget_memory_option
from landscape.cli.render import console, now, print_table, record_saved, saved, was_cached


@app.command("hessian")
def hessian_command(
    checkpoint: Path = typer.Argument(..., help="Checkpoint .pt file, or a run folder (uses its final.pt)."),
    top_k: int = typer.Option(5, "--top-k", help="Number of largest eigenvalues, each certified to --tol."),
    no_trace: bool = typer.Option(False, "--no-trace",
                                  help="Skip the trace (else Hutch++ with a 95% CI; stops at +-5%, at 100 HVPs, or "
                                       "early when the pilot shows +-5% is out of reach)."),
    density: bool = typer.Option(False, "--density", help="Spectral density by stochastic Lanczos quadrature."),
    per_layer: bool = typer.Option(False, "--per-layer",
                                   help="Top eigenvalue and trace of each module's diagonal block."),
    split: str = typer.Option("train", help="Split of the checkpoint's recorded data split: train, val or test."),
    samples: str = typer.Option("512", help="Images in the seeded subset of the split (all if larger), or 'all'."),
    batch_size: int = typer.Option(128, help="Images per forward pass; lower it if memory runs out."),
    tol: float = typer.Option(1e-3,
                              help="Relative residual: stop when ||Hv - lambda v|| <= tol |lambda| for every pair."),
    seed: int = typer.Option(0, help="Seed of the image subset, the Lanczos start and the probes."),
    budget_hvps: Optional[int] = typer.Option(None, "--budget-hvps",
                                              help="Most HVPs the whole analysis may use (never exceeded; top-k "
                                                   "first, then trace, density, per-layer)."),
    budget_memory: Optional[float] = budget_memory_option("the Lanczos basis"),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    data: Optional[Path] = typer.Option(None, "--data", help="Data folder, if it moved since training."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Also write the record to this JSON file."),
    plot: Optional[Path] = typer.Option(None, "--plot",
                                        help="Write the spectral density as a PNG (implies --density)."),
):
    """Hessian of the mean training loss at a checkpoint: top-k eigenvalues, trace, density.

    Lanczos with full reorthogonalisation gives each eigenvalue with its
    residual ||Hv - lambda v|| (a certificate: an eigenvalue of H lies within
    it); the trace comes with a 95% confidence interval. The model runs in
    eval mode (BatchNorm running statistics). Cost is counted in
    Hessian-vector products (HVPs): the plan (expected HVPs per output) is
    printed first, then an ETA from the measured HVP time. One Krylov run
    serves the top-k, the trace's deflation and the density's first SLQ
    run. The record is cached in the run folder's
    analysis/ and reused when the settings match. Under torchrun the HVPs are
    data-parallel over the ranks.

    Examples:
      landscape hessian checkpoints/phantom-cnn-small-adam-s0/final.pt

      landscape hessian RUN --top-k 3 --tol 1e-4 --samples 256 --json hessian.json

      landscape hessian RUN --density --plot density.png --per-layer --no-trace

      torchrun --nproc-per-node 8 --no-python landscape hessian RUN --samples all

      landscape hessian RUN --density --budget-hvps 60

    """
    from landscape.analysis.hessian import analyze
    from landscape.errors import LandscapeError

    if samples != "all" and not samples.isdigit():
        raise LandscapeError(f"--samples must be a positive integer or 'all', got {samples!r}")
    since = now()
    record = analyze(
        checkpoint, top_k=top_k, trace=not no_trace, density=density, per_layer=per_layer, split=split,
        samples=None if samples == "all" else int(samples),
        batch_size=batch_size, tol=tol, seed=seed, progress=True, json_path=json_path, plot_path=plot,
        device=None if device == "auto" else device, data_root=data, budget_hvps=budget_hvps,
        budget_memory=budget_memory,
    )
    res = record["result"]
    top = res["top_k"]
    head = (f"Hessian of the mean loss, {res['split']} split, {res['n_samples']} images, {res['num_params']} "
            "parameters, "
            f"BN in {res['bn_mode']} mode, seed {record['settings']['seed']}")
    rows = [[i + 1, lam, r, "yes" if c else "NO"]
            for i, (lam, r, c) in enumerate(zip(top["eigenvalues"], top["residuals"], top["converged"]))]
    console.print(head, markup=False, soft_wrap=True)
    print_table(f"top-{len(rows)} eigenvalues (Lanczos, tol {top['tol']:g}, {top['hvps']} HVPs)",
                ["#", "eigenvalue (nats/param^2)", "residual ||Hv-lv||", "certified"], rows)
    if res["trace"] is not None:
        t = res["trace"]
        print_table(f"trace ({t['method']}, {t['hvps']} HVPs + {t.get('shared_hvps', 0)} shared, "
                    f"stopped by {t['stopped_by']})",
                    ["estimate (nats/param^2)", "stderr", "95% CI low", "95% CI high"],
                    [[t["estimate"], t["stderr"], *t["ci"]]])
    if res["density"] is not None:
        d = res["density"]
        console.print(f"density: {d['runs']} runs x {d['steps']} Lanczos steps ({d['hvps']} HVPs + "
                      f"{d.get('shared_hvps', 0)} shared), "
                      f"bandwidth {d['bandwidth']:.4g}", markup=False)
    if res["per_layer"] is not None:
        print_table("per-layer diagonal blocks", ["block", "params", "top eigenvalue", "certified", "trace",
                                                  "trace 95% CI"],
                    [[b["name"], b["num_params"], b["top_eigenvalue"], "yes" if b["converged"] else "NO", b["trace"],
                      f"[{b['trace_ci'][0]:.4g}, {b['trace_ci'][1]:.4g}]"] for b in res["per_layer"]])
    for warning in res["warnings"]:
        console.print(f"warning: {warning}", markup=False)
    when = "when computed: " if was_cached(record, since) else ""
    console.print(f"{when}{res['hvps']} HVPs in {res['seconds']:.1f} s ({res['hvp_seconds'] * 1000:.0f} ms each, "
                  f"{res['device']})",
                  markup=False)
    record_saved(record, since)
    if json_path is not None:
        saved("json", json_path)
    if plot is not None:
        saved("plot", plot)
