"""``landscape export``: tables for papers (a tidy CSV of runs, LaTeX booktabs tables)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from landscape.cli.app import app
from landscape.cli.render import saved
from landscape.errors import LandscapeError
from landscape.io import check_writable


@app.command("export")
def export_command(
    runs: list[Path] = typer.Argument(..., help="Run folders, checkpoint files, or a folder of run folders."),
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="Write one tidy row per run to this CSV file."),
    latex_path: Optional[Path] = typer.Option(None, "--latex", help="Write the LaTeX booktabs tables to this file."),
    seed: int = typer.Option(0, "--seed", help="Seed of the robust sign error's chance permutations (computed with "
                                               "the predictor table, not shown in it)."),
):
    r"""Tables for papers from the runs' cached records (nothing is computed).

    --csv: one row per run with its settings, test metrics, external
    metrics and every measure (one column each; units in docs/measures.md),
    floats at full precision; pandas.read_csv reads it back.
    --latex: the per-optimizer table (mean +- 95% t-interval over seeds) and
    the which-measure-predicts table (Kendall tau within seeds [95% CI], * for
    Holm p < 0.05, Psi), as booktabs
    tables (\\usepackage{booktabs}). `landscape study` writes both beside its
    report.

    Examples:
      landscape export busi_study/ --csv runs.csv --latex tables.tex

      landscape export checkpoints/busi-cnn-small-*-s* --csv runs.csv

    """
    from landscape.checks import check_seed
    from landscape.report.collect import collect
    from landscape.report.export import export

    if csv_path is None and latex_path is None:
        raise LandscapeError("give --csv FILE, --latex FILE or both")
    check_seed(seed)
    check_writable(csv_path, latex_path)
    found, _ = collect(runs, compute=False, seed=seed, progress=False)
    export(found, csv_path=csv_path, latex_path=latex_path, seed=seed)
    if csv_path is not None:
        saved(f"csv ({len(found)} runs)", csv_path)
    if latex_path is not None:
        saved("latex", latex_path)
