"""``landscape correlate``: which measure predicts generalization over a set of runs (tau, Psi, robust view)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from landscape.cli.app import app
from landscape.cli.render import console, print_table, saved
from landscape.io import check_writable, write_json


@app.command("correlate")
def correlate_command(
    runs: list[Path] = typer.Argument(..., help="Run folders, checkpoint files, or a folder of run folders."),
    json_path: Path = typer.Option(Path("correlate.json"), "--json", help="Where to write the full table (JSON)."),
    external: Optional[str] = typer.Option(
        None, "--external",
        help="Name of the external set to use (e.g. busbra) when runs were evaluated on several."),
    n_boot: int = typer.Option(2000, "--n-boot",
                               help="Cluster-bootstrap resamples (CIs) and permutations (p-values)."),
    min_domain_size: int = typer.Option(50, "--min-domain-size",
                                        help="External domains with fewer images are left out of the robust views."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap and the permutations."),
):
    """Kendall tau (cluster CI, p, Holm p), Jiang's Psi and Dziugaite's robust sign error of every measure.

    Uses the runs' cached records only (`landscape measures`, `landscape hessian`,
    `landscape sharpness`, `landscape evaluate`); it computes nothing. Targets:
    in-site test balanced accuracy, the generalization gap, external AUROC and
    the in-site to external AUROC drop. Psi averages hyper-parameter axes only
    (never the seed); axes without a group are named. p-values are
    permutation tests within seeds, Holm-adjusted over the table; * marks
    p_holm < 0.05. docs/correlation.md has the definitions.

    Examples:
      landscape correlate busi_study/ --json correlate.json

      landscape correlate checkpoints/busi-cnn-small-*-s* --external busbra

      landscape correlate busi_study/ --external busbra --n-boot 5000

    """
    from landscape.report.correlate import correlate
    from landscape.report.granulated import TARGETS

    check_writable(json_path)  # before any work: the JSON is written here, after it

    result = correlate(runs, n_boot=n_boot, seed=seed, source=external, min_domain_size=min_domain_size,
                       progress=True)
    cells = {(c["measure"], c["target"]): c for c in result["cells"]}

    def text(c):
        tau = "-" if c["kendall_tau"] is None else f"{c['kendall_tau']:.2f}"
        if c["kendall_ci"]:
            tau += f" [{c['kendall_ci'][0]:.2f}, {c['kendall_ci'][1]:.2f}]"
        star = "*" if c["p_holm"] is not None and c["p_holm"] < 0.05 else ""
        return f"{tau}{star} | Psi {'-' if c['psi'] is None else format(c['psi'], '.2f')}"

    def name(m):
        same = result["equivalent"][m]
        return f"{m} (= {', '.join(same)})" if same else m

    console.print(f"{result['n_runs']} runs; hyper-parameter axes that vary: {', '.join(result['axes']) or 'none'}; "
                  f"{result['multiple_comparisons']}", markup=False)
    print_table("Kendall tau [95% CI] | granulated Psi (sorted by |Psi|)",
                ["measure", *TARGETS, "robust sign error", "worst-domain tau"],
                [[name(m), *[text(cells[(m, t)]) for t in TARGETS],
                  result["robust_sign_error"][m]["in_site"]["worst"], result["worst_domain_tau"][m]["worst"]]
                 for m in result["measures"]])
    write_json(json_path, result)
    saved("json", json_path)
