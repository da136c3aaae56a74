"""``landscape study``: train every (model, optimizer, seed), analyse, and write the report."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from landscape.cli.app import app
from landscape.optim.registry import list_optimizers


@app.command("study")
def study_command(
    data: Optional[Path] = typer.Option(None, "--data",
                                        help="Image folder with one sub-folder per class (BUSI layout). Default: the "
                                             "built-in phantom."),
    models: str = typer.Option("cnn-small", "--models", help="Comma list of models (cnn-small or timm names)."),
    optimizers: str = typer.Option("all", "--optimizers",
                                   help=f"'all' or a comma list of: {', '.join(list_optimizers())}."),
    seeds: Optional[int] = typer.Option(None, "--seeds",
                                        help="Seeds per (model, optimizer) [default: 3; 2 with --quick]."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Training epochs [default: 30; 4 with --quick]."),
    img_size: Optional[int] = typer.Option(None, "--img-size", help="Image size [default: 64; 32 with --quick]."),
    out: Path = typer.Option(Path("checkpoints"), "--out",
                             help="Folder of the run folders, report.html and study.json."),
    quick: bool = typer.Option(False, "--quick", help="Small preset that finishes in minutes on a laptop CPU."),
    seed: int = typer.Option(0, "--seed", help="First seed; also the split seed and the analyses' seed."),
    parallel: Optional[str] = typer.Option(None, "--parallel",
                                           help="Under torchrun: 'runs' deals the runs out over the ranks, 'data' puts "
                                                "all ranks on each run [default: runs if there are at least as many "
                                                "runs as ranks]."),
):
    """Train every (model, optimizer, seed), run the Hessian, sharpness and surface analyses, write the report.

    Re-running the same command resumes: finished runs and cached analyses are
    reused, interrupted runs continue from their last epoch.

    Examples:
      landscape study --quick                                  # phantom, a few minutes on 2 CPU cores

      landscape study --data ../shared/data/busi --seeds 3 --epochs 30 --out busi_study/

      landscape study --data ../shared/data/busi --optimizers adam,sam,asam --models cnn-small,resnet18

      torchrun --nproc-per-node 8 --no-python landscape study --data ../shared/data/busi --parallel runs

    """
    from landscape.study import run_study

    run_study(data=data, models=models.split(","), optimizers=optimizers, seeds=seeds, epochs=epochs, out=out,
              quick=quick, progress=True, seed=seed, img_size=img_size, parallel=parallel)
