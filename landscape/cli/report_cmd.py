"""``landscape report``: the interactive flatness report of a set of runs."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from landscape.cli.app import app


@app.command("report")
def report_command(
    runs: list[Path] = typer.Argument(..., help="Run folders, checkpoint files, or a folder of run folders."),
    output: Path = typer.Option(Path("report.html"), "--output", "-o",
                                help="The HTML file to write (a .json with the numbers goes beside it)."),
    no_compute: bool = typer.Option(False, "--no-compute",
                                    help="Only list missing analyses (else they are computed and cached in each "
                                         "run's analysis/)."),
    png: Optional[Path] = typer.Option(None, "--png",
                                       help="Also write the figures as matplotlib PNGs into this folder."),
    figures: Optional[Path] = typer.Option(None, "--figures",
                                           help="Also write every figure as PNG (300 dpi), PDF and SVG into this "
                                                "folder."),
    seed: int = typer.Option(0, help="Seed of computed analyses and of the robust sign error's chance permutations."),
    m: Optional[int] = typer.Option(
        None, "--m", show_default="128, at most the training images", help="m-sharpness sub-batch size."),
    set_: list[str] = typer.Option([], "--set", metavar="A.KEY=VALUE",
                                   help="Any other analysis setting as ANALYSIS.KEY=VALUE (repeatable), e.g. "
                                        "hessian.top_k=3, sharpness.rhos=0.01,0.05, surface_2d.grid=11."),
    dry_run: bool = typer.Option(False, "--dry-run",
                                 help="Only print the plan of the missing analyses (runs x analyses x ETA); compute "
                                      "and write nothing."),
):
    """Write one self-contained HTML report (works offline) comparing runs: metrics, flatness, landscapes.

    Missing analyses (Hessian top-k, trace and density; m-sharpness; 1D and 2D
    surfaces) are computed with each analyzer's defaults and cached. Their
    plan (runs x analyses x units x ETA, from one timed product per
    architecture) is printed first; --dry-run prints only the plan.

    Examples:
      landscape report checkpoints/ -o report.html

      landscape report ADAM_RUN SAM_RUN -o adam_vs_sam.html

      landscape report checkpoints/ -o report.html --no-compute --figures figures/

      landscape report checkpoints/ --m 64 --set sharpness.samples=512

      landscape report checkpoints/ --set surface_2d.grid=15 --set hessian.top_k=3

      landscape report checkpoints/ --dry-run

    """
    from landscape.cli.train_cmd import parse_value
    from landscape.report import build_report
    from landscape.report.overrides import parse_set

    build_report(runs, output, compute=not no_compute, png_dir=png, progress=True, seed=seed, m=m,
                 analyses=parse_set(set_, parse_value), dry_run=dry_run, figures_dir=figures)
