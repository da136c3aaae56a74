"""``landscape compare``: paired differences of each optimizer against a baseline, over seeds."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from landscape.cli.app import app
from landscape.cli.render import console, print_table, saved
from landscape.io import check_writable, write_json


@app.command("compare")
def compare_command(
    runs: list[Path] = typer.Argument(..., help="Run folders, checkpoint files, or a folder of run folders."),
    baseline: str = typer.Option("adam", "--baseline", help="Group every other group is compared with."),
    json_path: Path = typer.Option(Path("compare.json"), "--json", help="Where to write the full table (JSON)."),
    external: Optional[str] = typer.Option(
        None, "--external", help="Name of the external set (e.g. busbra) when runs were evaluated on several."),
    n_boot: int = typer.Option(1000, "--n-boot", help="Bootstrap resamples of each run's test-set CIs."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstraps."),
):
    """Paired differences against a baseline: CI, p, Holm p, pairs, detectable effect.

    Runs with the same model, seed and split share initial weights and data
    order, so each optimizer is compared with the baseline seed by seed. Per
    target: mean difference with its 95% t-interval, paired t-test p, Holm p
    over the table, number of pairs and the smallest difference the design
    detects (80% power, alpha 0.05). The compute table gives each group's
    gradient evaluations (forward/backward passes in training), their ratio
    to the baseline's and what the baseline is compute-matched to. Each run's
    test-set bootstrap CIs (near-duplicate groups resampled whole) are in the
    JSON. Runs without a baseline partner are listed as unpaired.

    Examples:
      landscape compare busi_study/runs --baseline adam

      landscape compare checkpoints/busi-* --baseline adam-cm --external busbra

    """
    from landscape.checks import check_seed
    from landscape.report.compare import TARGETS, compare

    check_seed(seed)
    check_writable(json_path)  # before any work: the JSON is written here, after it
    result = compare(runs, baseline=baseline, source=external, n_boot=n_boot, seed=seed, progress=True)

    def num(v, digits=3):
        return "-" if v is None else f"{v:.{digits}f}"

    rows = []
    for c in result["cells"]:
        ci = "" if c["ci"] is None else f" [{c['ci'][0]:.3f}, {c['ci'][1]:.3f}]"
        star = "*" if c["p_holm"] is not None and c["p_holm"] < 0.05 else ""
        rows.append([c["group"], c["target"], c["n_pairs"], f"{num(c['mean_difference'])}{ci}{star}",
                     num(c["p"]), num(c["p_holm"]), num(c["mdd"])])
    target = result["baseline_compute"]["matched_to"]
    matched = ("not compute-matched" if target is None
               else f"compute-matched to {', '.join(target) if isinstance(target, list) else target}")
    print_table(f"difference from {baseline} ({matched}; paired over seeds; * Holm p < 0.05)",
                ["group", "target", "pairs", "mean diff [95% CI]", "p", "p Holm", "detectable"], rows)
    console.print(f"compute: {result['baseline_compute']['text']}", markup=False)
    ratio = {c["group"]: c for c in result["cells"]}  # the compute keys are the same in every cell of a group

    def evals(g):
        if g["gradient_evaluations_mean"] is None:
            return "- (not recorded)"
        spread = ("" if g["gradient_evaluations_min"] == g["gradient_evaluations_max"]
                  else f" [{g['gradient_evaluations_min']}, {g['gradient_evaluations_max']}]")
        missing = "" if g["n_counted"] == g["n_runs"] else f" ({g['n_runs'] - g['n_counted']} not recorded)"
        return f"{g['gradient_evaluations_mean']:.0f}{spread}{missing}"

    print_table(f"compute per group (gradient evaluations: forward/backward passes of a run; vs {baseline}: mean "
                "ratio over pairs)",
                ["group", "runs", "gradient evaluations [min, max]", f"vs {baseline}", f"{baseline} matched to it",
                 "compute-matched to"],
                [[name, g["n_runs"], evals(g),
                  "-" if name not in ratio or ratio[name]["compute_ratio"] is None
                  else f"{ratio[name]['compute_ratio']:.2f}x",
                  f"{ratio[name]['budget_matched_pairs']}/{ratio[name]['n_paired_runs']} pairs" if name in ratio
                  else "-",
                  ", ".join(g["matched_to"]) or "-"]
                 for name, g in result["groups"].items()])
    if result["unpaired"]:
        print_table("unpaired runs (not compared)", ["run", "group", "seed", "reason"],
                    [[u["run"], u["group"], u["seed"], u["reason"]] for u in result["unpaired"]])
    console.print(f"targets: {', '.join(TARGETS)}; {result['multiple_comparisons']}", markup=False)
    write_json(json_path, result)
    saved("json", json_path)
