"""``landscape sharpness``: worst- or average-case m-sharpness of a checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from landscape.cli.app import app
from landscape.cli.flags import budget_memory_option
from landscape.cli.render import console, now, print_table, record_saved, saved
from landscape.errors import LandscapeError
from landscape.io import check_writable, write_json


def parse_rhos(text: str) -> list[float]:
    """``"0.01,0.05"`` -> ``[0.01, 0.05]``."""
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise LandscapeError(f"--rho must be a comma list of numbers such as 0.01,0.05, got {text!r}") from None


@app.command("sharpness")
def sharpness_command(
    checkpoint: Path = typer.Argument(..., help="Checkpoint .pt file, or a run folder (uses its final.pt)."),
    rho: str = typer.Option("0.01,0.02,0.05,0.1", "--rho",
                            help="Radii, comma separated (worst: ball radius; average: Gaussian std)."),
    m: int = typer.Option(128, "--m", help="Sub-batch size m: the loss L_B is the mean over m training images."),
    kind: str = typer.Option("worst",
                             help="worst (max over the ball, projected gradient ascent) or average (Gaussian)."),
    norm: Optional[str] = typer.Option(None, help="Ball of --kind worst: l2 (default) or linf."),
    adaptive: bool = typer.Option(False, "--adaptive",
                                  help="Scale the perturbation by |w| elementwise (adaptive sharpness)."),
    samples: int = typer.Option(1024, help="Training images in the fixed, seeded subset cut into sub-batches of m."),
    steps: int = typer.Option(20, help="Gradient-ascent steps per sub-batch and radius (--kind worst)."),
    draws: int = typer.Option(32, help="Antithetic Gaussian pairs per sub-batch (--kind average)."),
    seed: int = typer.Option(0, help="Seed of the image subset and of the random perturbations."),
    batch_size: Optional[int] = typer.Option(None,
                                             help="Images per forward pass (default m); lower it if memory runs out."),
    budget_memory: Optional[float] = budget_memory_option("the weight copies of the ascent"),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    data: Optional[Path] = typer.Option(None, "--data", help="Data folder, if it moved since training."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Also write the record to this JSON file."),
):
    """Measure m-sharpness: how much the loss of m-image sub-batches rises within radius rho.

    Worst case: mean over sub-batches B of max_{||delta/c|| <= rho} L_B(w+delta) - L_B(w).
    Average case: mean over B of E_{delta ~ N(0, rho^2 c^2)} L_B(w+delta) - L_B(w).
    c = 1, or c = |w| with --adaptive. The model runs in eval mode. The record is
    cached in the run folder's analysis/ and reused when the settings match.
    Under torchrun the sub-batches are dealt out over the ranks.

    Examples:
      landscape sharpness checkpoints/phantom-cnn-small-adam-s0/final.pt

      landscape sharpness RUN --rho 0.005,0.01,0.02 --m 64 --norm linf --adaptive

      torchrun --nproc-per-node 4 --no-python -- landscape sharpness RUN --m 64

      landscape sharpness RUN --kind average --rho 0.01,0.05 --draws 64

      landscape sharpness RUN --kind average --draws 64 --json sharp.json

    """
    from landscape.analysis.sharpness import analyze

    check_writable(json_path)
    since = now()
    record = analyze(
        checkpoint, rhos=parse_rhos(rho), m=m, kind=kind, norm=norm, adaptive=adaptive, samples=samples,
        steps=steps, draws=draws, seed=seed, batch_size=batch_size, device=None if device == "auto" else device,
        data_root=data, progress=True, budget_memory=budget_memory,
    )
    res = record["result"]
    scaling = "adaptive |w|" if res["adaptive"] else "standard"
    what = f"{res['kind']}-case" + (f" {res['norm']}" if res["norm"] else "")
    console.print(f"m-sharpness, {what}, {scaling}, m={res['m']}, {res['n_batches']} sub-batches, seed {res['seed']}",
                  markup=False)
    radius = "rho (x |w| per entry)" if res["adaptive"] else "rho (parameter units)"
    columns = [radius, "mean (nats)", "std (nats)"] + (["MC stderr (nats)"] if res["kind"] == "average" else [])
    stderr = res.get("mc_stderr") or [None] * len(res["rhos"])
    rows = [[r, mean, std] + ([se] if res["kind"] == "average" else [])
            for r, mean, std, se in zip(res["rhos"], res["mean"], res["std"], stderr)]
    print_table("loss increase per radius (mean over sub-batches of the cross-entropy, nats)", columns, rows)
    record_saved(record, since)
    if json_path is not None:
        write_json(json_path, {k: v for k, v in record.items() if k != "path"})
        saved("json", json_path)
