"""``landscape correlate``: which measure predicts generalization over a set of runs (tau, Psi, robust view)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from landscape.cli.app import app
from landscape.cli.render import console, print_table, saved
from landscape.io import check_writable, write_json

#: The command that writes each analysis's records as `landscape correlate` computes them (else `landscape report`).
COMMANDS = {"measures": "landscape measures RUN", "hessian": "landscape hessian RUN --density",
            "sharpness": "landscape sharpness RUN", "sharpness_adaptive": "landscape sharpness RUN --adaptive"}


def refusal(missing: list[dict], n_runs: int) -> str:
    """One line: which runs lack which records ``correlate`` needs and the commands that write them."""
    from landscape.analysis import get_analysis
    from landscape.report.collect import measure_analyses

    owner = {q: name for name in measure_analyses() for q in get_analysis(name).provides}
    by_command: dict[str, list[str]] = {}
    for item in missing:
        runs = by_command.setdefault(COMMANDS.get(owner.get(item["quantity"]), "landscape report RUN"), [])
        if item["run"] not in runs:
            runs.append(item["run"])
    lacking = len({item["run"] for item in missing})
    todo = "; ".join(f"`{cmd}` for {', '.join(runs[:3])}{f' and {len(runs) - 3} more' if len(runs) > 3 else ''}"
                     for cmd, runs in by_command.items())
    return (f"--no-compute: {lacking} of {n_runs} runs lack records that correlate needs: run {todo}; or drop "
            "--no-compute to compute them as `landscape report` does")


@app.command("correlate")
def correlate_command(
    runs: list[Path] = typer.Argument(..., help="Run folders, checkpoint files, or a folder of run folders."),
    json_path: Path = typer.Option(Path("correlate.json"), "--json", help="Where to write the full table (JSON)."),
    external: Optional[str] = typer.Option(
        None, "--external",
        help="Name of the external set to use (e.g. busbra) when runs were evaluated on several."),
    min_domain_size: int = typer.Option(50, "--min-domain-size", min=1, metavar="N",
                                        help="External domains with fewer images are left out of the robust views."),
    seed: int = typer.Option(0, "--seed", help="Seed of computed analyses and of the chance permutations."),
    no_compute: bool = typer.Option(False, "--no-compute",
                                    help="Use cached records only: refuse (naming the commands to run) when a run "
                                         "lacks one, instead of computing it."),
):
    """Kendall tau (cluster CI, p, Holm p), Jiang's Psi and Dziugaite's robust sign error of every measure.

    Uses the runs' cached records (`landscape measures`, `landscape hessian`,
    `landscape sharpness`, `landscape evaluate`); a missing measure, Hessian or
    m-sharpness record (or test metrics) is computed with the report's
    settings and cached first, as `landscape report` does (surfaces are not:
    they are no measures); --no-compute refuses instead. Targets:
    in-site test balanced accuracy, the generalization gap, external AUROC and
    the in-site to external AUROC drop. Psi averages hyper-parameter axes only
    (never the seed); axes without a group are named. p-values are
    permutation tests within seeds, Holm-adjusted over the table; * marks
    p_holm < 0.05. docs/correlation.md has the definitions.

    Examples:
      landscape correlate busi_study/ --json correlate.json

      landscape correlate checkpoints/busi-cnn-small-*-s* --external busbra

      landscape correlate busi_study/ --no-compute

    """
    from landscape.errors import LandscapeError
    from landscape.report.collect import collect, measure_analyses
    from landscape.report.correlate import correlate_runs
    from landscape.report.granulated import TARGETS
    from landscape.report.predictor_panel import invariance_note

    check_writable(json_path)  # before any work: the JSON is written here, after it

    found, missing = collect(runs, compute=not no_compute, seed=seed, progress=True, only=measure_analyses())
    if no_compute and missing:
        raise LandscapeError(refusal(missing, len(found)))
    result = correlate_runs(found, seed=seed, source=external, min_domain_size=min_domain_size)
    cells = {(c["measure"], c["target"]): c for c in result["cells"]}

    def text(c):
        tau = "-" if c["kendall_tau"] is None else f"{c['kendall_tau']:.2f}"
        if c["kendall_ci"]:
            tau += f" [{c['kendall_ci'][0]:.2f}, {c['kendall_ci'][1]:.2f}]"
        star = "*" if c["p_holm"] is not None and c["p_holm"] < 0.05 else ""
        return f"{tau}{star} | Psi {'-' if c['psi'] is None else format(c['psi'], '.2f')}"

    def sign_error(site):
        if site["worst"] is None:
            return site["note"]
        return f"{site['worst']:.2f} (chance {site['chance']['mean']:.2f}, p95 {site['chance']['p95']:.2f})"

    def name(m):
        same = result["equivalent"][m]
        return (f"{m} (= {', '.join(same)})" if same else m) + (" †" if result["not_invariant"].get(m) else "")

    console.print(f"{result['n_runs']} runs; hyper-parameter axes that vary: {', '.join(result['axes']) or 'none'}; "
                  f"{result['multiple_comparisons']}", markup=False)
    print_table("Kendall tau [95% CI] | granulated Psi (sorted by |Psi|)",
                ["measure", *TARGETS, "robust sign error", "worst-domain tau"],
                [[name(m), *[text(cells[(m, t)]) for t in TARGETS],
                  sign_error(result["robust_sign_error"][m]["in_site"]), result["worst_domain_tau"][m]["worst"]]
                 for m in result["measures"]])
    marks = invariance_note(result)
    if marks:
        console.print(marks, markup=False)
    write_json(json_path, result)
    saved("json", json_path)
