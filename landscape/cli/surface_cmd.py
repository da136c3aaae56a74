"""``landscape surface``: a 1D or 2D loss surface around a checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from landscape.cli.app import app
from landscape.cli.flags import budget_memory_option
from landscape.cli.render import now, print_table, record_saved, saved


@app.command("surface")
def surface_command(
    checkpoint: Path = typer.Argument(..., help="Checkpoint .pt file, or a run folder (uses its final.pt)."),
    dim: int = typer.Option(2, "--dim", help="1 (a curve) or 2 (a plane)."),
    directions: str = typer.Option("random", "--directions", help="random, eigen, interp:OTHER.pt or pca."),
    grid: str = typer.Option("21", "--grid", help="Points per axis: N, or NxM for a non-square 2D grid."),
    span: float = typer.Option(1.0, "--span",
                               help="Axis reach: random/eigen [-span, span]; interp t in [-span/2, 1+span/2]; pca span "
                                    "x 1.2 x the trajectory."),
    split: str = typer.Option("test", "--split", help="Data split to evaluate: train, val or test."),
    bn: str = typer.Option("eval", "--bn",
                           help="BatchNorm: eval (frozen running stats) or recompute (re-estimated per point on "
                                "training images; a no-op for models without BatchNorm, e.g. ViT, Swin, VGG)."),
    samples: Optional[int] = typer.Option(None, "--samples",
                                          help="Evaluate on a seeded subset of this many images (default: the whole "
                                               "split)."),
    bn_samples: int = typer.Option(512, "--bn-samples", help="Training images for --bn recompute."),
    seed: int = typer.Option(0, "--seed", help="Seed of random directions, subsets and Lanczos."),
    include_bias_bn: bool = typer.Option(False, "--include-bias-bn",
                                         help="Also move biases and norm-layer parameters (each scaled to its tensor's "
                                              "norm)."),
    batch_size: int = typer.Option(256, "--batch-size", help="Images per forward pass."),
    html: bool = typer.Option(False, "--html", help="Also write a self-contained interactive HTML (4.8 MB each)."),
    exact: bool = typer.Option(False, "--exact",
                               help="Skip BN folding and channels_last (bit-identical to the plain model, slower)."),
    out: Optional[Path] = typer.Option(None, "--out",
                                       help="Folder for the .npz/.png/.html (default: the run's analysis/)."),
    budget_memory: Optional[float] = budget_memory_option("the directions, weight copies and grid"),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    data: Optional[Path] = typer.Option(None, "--data", help="Data folder, if it moved since training."),
):
    """Evaluate loss and accuracy on a grid of weights w + x d1 (+ y d2) around a checkpoint.

    Random directions are Gaussian and filter-normalised (Li et al. 2018): each conv
    filter / linear row of d has the norm of the same filter of w; biases and BN
    parameters stay fixed unless --include-bias-bn. The centre (0, 0) is the model
    itself. Rows are saved as they finish: run the same command again after an
    interruption to resume. Writes .npz, .png and an offline .html, and caches the
    record in the run folder's analysis/. Under torchrun the grid's rows are
    dealt out over the ranks.

    Examples:
      landscape surface checkpoints/phantom-cnn-small-adam-s0/final.pt

      landscape surface RUN --dim 1 --grid 41 --span 0.5 --split train

      landscape surface RUN --directions interp:OTHER_RUN/final.pt --dim 1

      landscape surface RUN --directions pca --grid 25x25 --bn recompute

      landscape surface RUN --directions eigen --span 0.2 --samples 256

      torchrun --nproc-per-node 8 --no-python landscape surface RUN --grid 51

    """
    import numpy as np

    from landscape.analysis.surface import analyze

    since = now()
    record = analyze(
        checkpoint, dim=dim, directions=directions, grid=grid, span=span, split=split, bn=bn, samples=samples,
        seed=seed, progress=True, out_dir=out, bn_samples=bn_samples, batch_size=batch_size,
        include_bias_bn=include_bias_bn, fast=not exact, html=html, device=None if device == "auto" else device,
        data_root=data, budget_memory=budget_memory,
    )
    res = record["result"]
    loss = np.asarray(res["loss"], dtype=float)
    best = np.unravel_index(np.nanargmin(loss), loss.shape) if np.isfinite(loss).any() else None
    coords = [] if best is None else [res["x"][best[0]], *([res["y"][best[1]]] if res["dim"] == 2 else [])]
    where = None if best is None else ", ".join(f"{v:.4g}" for v in coords)
    rows = [
        ["directions", res["directions"] + " " + " | ".join(res["labels"])],
        ["grid", " x ".join(str(n) for n in loss.shape)],
        ["data", f"{res['split']}, {res['n_samples']} images, BN {res['bn']}"],
        ["model loss / accuracy", f"{res['model_loss']:.6g} / {res['model_accuracy']:.4g}"],
        ["centre loss", res["center_loss"]],
        ["|centre - model|", res["center_error"]],
        ["min loss (at)", None if best is None else f"{float(loss[best]):.6g} ({where})"],
        ["max loss", float(np.nanmax(loss)) if best is not None else None],
        ["points/s", res["points_per_second"]],
    ]
    if res.get("endpoint_loss") is not None:
        rows.append(["loss at t = 0 / t = 1", " / ".join(f"{v:.6g}" for v in res["endpoint_loss"])])
        rows.append(["accuracy at t = 0 / t = 1", " / ".join(f"{v:.4g}" for v in res["endpoint_accuracy"])])
    if res["directions"] == "pca":
        rows.append(["explained variance", ", ".join(f"{v:.3f}" for v in res["info"]["explained_variance"])])
    if res["directions"] == "eigen":
        rows.append(["eigenvalues", ", ".join(f"{v:.4g}" for v in res["info"]["eigenvalues"])])
    print_table(f"loss surface of {Path(record['provenance']['checkpoint']).parent.name} (loss: mean cross-entropy, "
                "nats; accuracy: fraction; coordinates: steps along the directions)", ["", "value"], rows)
    for kind, path in res["files"].items():
        saved(kind, path)
    record_saved(record, since)
