"""Regenerate the BUSI results (docs/results.md): which optimizer generalizes, in-site and on BUS-BRA,
and which measure predicts it, with the protocol of docs/study.md and docs/correlation.md.

Protocol: cnn-small, every optimizer's rho chosen on validation from a grid
(``--grid``; test and external data never choose), compute-matched Adam and
SGD beside the plain ones, every run stopped at the same training
cross-entropy (``--stop-train-loss``, ``--epochs`` the cap), at least five
seeds, the benign-vs-malignant task beside the 3-class one, BUS-BRA as the
external site. Then ``landscape compare`` (paired over seeds, Holm, detectable
differences) and ``landscape correlate`` (cluster CIs, Holm, Psi over
hyper-parameter axes, robust sign error). Writes ``<out>/results.md``.
Re-running reuses finished runs and cached analyses.

    python examples/busi_study.py                 # the full protocol (budget: docs/results.md)
    python examples/busi_study.py --tiny          # minutes-scale check on a subset of the real folders

BUS-BRA: W. Gómez-Flores, M. J. Gregorio-Calas, W. C. de Albuquerque Pereira, "BUS-BRA: A Breast
Ultrasound Dataset for Assessing Computer-aided Diagnosis Systems", Medical Physics, 2023
(doi 10.5281/zenodo.7730709); its licence requires this citation.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUSI = ROOT.parent / "shared" / "data" / "busi"
BUSBRA = ROOT.parent / "shared" / "data" / "busbra"
OPTIMIZERS = "adam,sgd,sam,asam,gsam,wsam,crsam"
#: rho grids, chosen per optimizer on validation (ASAM's rho is relative to |w|, hence larger)
GRID = {"sam,gsam,wsam,crsam": {"rho": [0.02, 0.05, 0.1]}, "asam": {"rho": [0.5, 1.0, 2.0]}}
#: the two tasks: BUSI's 3 classes, and the seed study's benign vs malignant
TASKS = {"3class": None, "binary": ["benign", "malignant"]}
CSV = {"csv": str(BUSBRA / "bus_data.csv"), "file_col": "ID", "label_col": "Pathology", "group_col": "Case",
       "env_col": "Device"}
#: Analysis budgets of the full study (smaller than the report's defaults, stated in the README).
ANALYSES = {
    "hessian": {"top_k": 1, "samples": 64, "trace_settings": {"max_hvps": 14, "rtol": 0.1},
                "density_settings": {"runs": 1, "steps": 10}},
    "sharpness": {"rhos": (0.02, 0.05, 0.1), "m": 64, "samples": 128, "steps": 5},
    "surface_1d": {"grid": 21, "samples": 128},
    "surface_2d": {"grid": 9, "samples": 128},
    "measures": {"samples": 128, "ggn_samples": 64, "draws": 4, "depth": 8},
}
#: Bootstrap resamples of the cross-site CIs in the study.
N_BOOT = 500
TINY_ANALYSES = {
    "hessian": {"top_k": 1, "samples": 32, "trace_settings": {"max_hvps": 14, "rtol": 0.2},
                "density_settings": {"runs": 1, "steps": 6}},
    "sharpness": {"rhos": (0.05,), "m": 16, "samples": 32, "steps": 2},
    "surface_1d": {"grid": 5, "samples": 32},
    "surface_2d": {"grid": 3, "samples": 32},
    "measures": {"samples": 32, "ggn_samples": 8, "draws": 2, "depth": 3},
}


def subset_folder(src: Path, dst: Path, per_class: int, csv_name: str | None = None) -> Path:
    """A symlinked copy of ``src`` with the first ``per_class`` images of each class (and its CSV), for --tiny."""
    for cls in sorted(d for d in src.iterdir() if d.is_dir()):
        (dst / cls.name).mkdir(parents=True, exist_ok=True)
        files = sorted(f for f in cls.iterdir() if f.suffix == ".png" and "_mask" not in f.name)[:per_class]
        for f in files:
            link = dst / cls.name / f.name
            if not link.exists():
                link.symlink_to(f)
    if csv_name:
        link = dst / csv_name
        if not link.exists():
            link.symlink_to(src / csv_name)
    return dst


def expand_grid(grid: dict, optimizers: list[str]) -> dict:
    """``{"sam,gsam": {...}}`` -> ``run_study``'s grid over the optimizers of this study."""
    out: dict = {}
    for names, params in grid.items():
        for name in names.split(","):
            if name in optimizers:
                out[name] = dict(params)
    return out


def _num(v, digits: int = 3) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def selection_table(summary: dict) -> str:
    """Markdown: each optimizer's validation scores per candidate and the selected setting."""
    lines = ["| model/optimizer | candidates (mean validation score) | selected |", "|---|---|---|"]
    for group, entry in summary["selection"].items():
        cands = ", ".join(f"{tag or 'default'}: {_num(c['mean_val'])}" for tag, c in entry["candidates"].items())
        lines.append(f"| {group} | {cands} | {entry['selected'] or 'default'} |")
    return "\n".join(lines)


def compare_table(result: dict) -> str:
    """Markdown: paired differences from the baseline with CI, p, Holm p, pairs and the detectable difference."""
    lines = [f"| optimizer − {result['baseline']} | target | pairs | mean difference [95% CI] | p | Holm p "
             "| detectable (80% power) |", "|---|---|---|---|---|---|---|"]
    for c in result["cells"]:
        ci = "" if c["ci"] is None else f" [{c['ci'][0]:.3f}, {c['ci'][1]:.3f}]"
        lines.append(f"| {c['group']} | {c['target']} | {c['n_pairs']} | {_num(c['mean_difference'])}{ci} "
                     f"| {_num(c['p'])} | {_num(c['p_holm'])} | {_num(c['mdd'])} |")
    if result["unpaired"]:
        lines += ["", "Unpaired runs (not compared): " + ", ".join(f"{u['run']} ({u['reason']})"
                                                               for u in result["unpaired"])]
    return "\n".join(lines)


def claims(result: dict) -> list[str]:
    """One sentence per comparison: a Holm-surviving difference, or a direction with its detectable effect."""
    out = []
    for c in result["cells"]:
        if c["mean_difference"] is None:
            continue
        head = f"{c['group']} − {result['baseline']} on {c['target']}: {c['mean_difference']:+.3f}"
        if c["p_holm"] is not None and c["p_holm"] < 0.05:
            out.append(f"{head} (Holm p {c['p_holm']:.3f}, {c['n_pairs']} pairs): a difference.")
        elif c["mdd"] is None:
            out.append(f"{head}, untested ({c['n_pairs']} pair(s), no spread between them).")
        else:
            out.append(f"{head}, not significant after Holm ({_num(c['p_holm'])}); only differences larger than "
                       f"{_num(c['mdd'])} were detectable with {c['n_pairs']} pairs.")
    return out


def correlate_table(result: dict) -> str:
    """Markdown: tau [cluster CI] with Holm p per target, Psi by axis, robust sign error, worst-domain tau, CMI K."""
    from landscape.report.granulated import TARGETS

    lines = ["| measure | " + " | ".join(TARGETS) + " | Ψ by axis | robust sign error (worst) | worst-domain τ "
             "| CMI K (gap) |", "|---|" + "---|" * (len(TARGETS) + 4)]
    cells = {(c["measure"], c["target"]): c for c in result["cells"]}
    for m in result["measures"]:
        parts = []
        for t in TARGETS:
            c = cells[(m, t)]
            ci = f" [{c['kendall_ci'][0]:.2f}, {c['kendall_ci'][1]:.2f}]" if c["kendall_ci"] else ""
            mark = " ✓" if c["p_holm"] is not None and c["p_holm"] < 0.05 else ""
            parts.append(f"τ {_num(c['kendall_tau'], 2)}{ci}, Holm p {_num(c['p_holm'], 3)}{mark}")
        first = cells[(m, next(iter(TARGETS)))]
        psi = ", ".join(f"{a}: {_num(v, 2)}" for a, v in first["psi_by_axis"].items()) or "—"
        rse = result["robust_sign_error"][m]["in_site"]
        wdt = result["worst_domain_tau"][m]
        same = f" (= {', '.join(result['equivalent'][m])})" if result["equivalent"][m] else ""
        lines.append(f"| {m}{same} | " + " | ".join(parts) + f" | {psi} | {_num(rse['worst'], 2)} "
                     f"({rse['worst_environment'] or rse['note']}) | {_num(wdt['worst'], 2)} "
                     f"| {_num(result['cmi'][m]['k'], 2)} |")
    return "\n".join(lines)


def run_task(task: str, classes, data: Path, external: Path, csv: dict, analyses: dict, settings: dict,
             out: Path, tiny: bool) -> str:
    """One task's study, comparison and correlation; returns its Markdown section."""
    import json

    from landscape.checkpoint import read_payload
    from landscape.report.compare import compare
    from landscape.report.correlate import correlate
    from landscape.study import run_study

    optimizers = settings["optimizers"].split(",")
    study = run_study(data=data, models=("cnn-small",), optimizers=optimizers, seeds=settings["seeds"],
                      epochs=settings["epochs"], img_size=settings["img_size"], out=out / task, quick=tiny,
                      progress=not tiny, external=external, external_options={**csv, "n_boot": N_BOOT},
                      analyses=analyses, grid=expand_grid(settings["grid"], optimizers), compute_matched=True,
                      stop_train_loss=settings["stop_train_loss"], classes=classes)
    summary = json.loads(study.summary.read_text())
    paired = compare(study.run_dirs, baseline="adam", source="busbra", n_boot=N_BOOT, progress=False)
    paired_cm = compare(study.run_dirs, baseline="adam-cm", source="busbra", n_boot=N_BOOT, progress=False)
    corr = correlate(study.run_dirs, n_boot=2000, progress=False)
    stops = []
    for d in study.run_dirs:
        stop = read_payload(d / "final.pt").get("stopping") or {}
        stops.append(f"{d.name}: epoch {stop.get('epoch')}{'' if stop.get('reached') else ' (target not reached)'}")
    title = "3 classes (benign, malignant, normal)" if classes is None else " vs ".join(classes)
    return "\n\n".join([
        f"## Task: {title}",
        "### Settings chosen on validation", selection_table(summary),
        "### Paired differences from Adam", compare_table(paired),
        "### Paired differences from compute-matched Adam", compare_table(paired_cm),
        "### What the numbers support", "\n".join(f"- {c}" for c in claims(paired)),
        "### Which measure predicted generalization "
        f"({corr['multiple_comparisons']}; ✓ = Holm p < 0.05)", correlate_table(corr),
        "### Where each run stopped", "\n".join(f"- {s}" for s in stops),
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="minutes-scale run on a subset of the real folders")
    parser.add_argument("--out", type=Path, default=None,
                        help="study folder [busi_study/, or a temp folder with --tiny]")
    parser.add_argument("--epochs", type=int, default=12, help="cap on epochs (runs stop at --stop-train-loss)")
    parser.add_argument("--stop-train-loss", type=float, default=0.01)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--img-size", type=int, default=32)
    parser.add_argument("--optimizers", default=OPTIMIZERS)
    parser.add_argument("--tasks", default=",".join(TASKS), help=f"comma list of {', '.join(TASKS)}")
    args = parser.parse_args(argv)
    if not (BUSI / "benign").is_dir() or not (BUSBRA / "bus_data.csv").is_file():
        print(f"needs BUSI at {BUSI} and BUS-BRA at {BUSBRA}", file=sys.stderr)
        return 2
    from landscape.io import atomic_write_text

    data, external, csv, analyses = BUSI, BUSBRA, dict(CSV), ANALYSES
    settings = {"epochs": args.epochs, "seeds": args.seeds, "optimizers": args.optimizers, "img_size": args.img_size,
                "grid": GRID, "stop_train_loss": args.stop_train_loss}
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    out = args.out or Path("busi_study")
    if args.tiny:
        import tempfile

        out = args.out or Path(tempfile.mkdtemp(prefix="busi-study-tiny-"))
        data = subset_folder(BUSI, out / "data" / "busi", 20)
        external = subset_folder(BUSBRA, out / "data" / "busbra", 10, "bus_data.csv")
        csv["csv"] = str(external / "bus_data.csv")
        analyses = TINY_ANALYSES
        settings.update(epochs=1, seeds=2, optimizers="adam,sam", img_size=16, grid={"sam": {"rho": [0.02, 0.1]}},
                        stop_train_loss=args.stop_train_loss)
        tasks = ["binary"]
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    sections = [run_task(t, TASKS[t], data, external, csv, analyses, settings, out, args.tiny) for t in tasks]
    text = (f"Protocol: cnn-small at {settings['img_size']} px; optimizers {settings['optimizers']} with rho chosen "
            f"on validation from {settings['grid']}; compute-matched adam and sgd (twice the epochs) beside the "
            f"plain ones; every run stopped at training cross-entropy {settings['stop_train_loss']} (cap "
            f"{settings['epochs']} epochs); {settings['seeds']} seeds; BUS-BRA as the external site; analysis "
            f"budgets {analyses}. Comparisons are paired over seeds with Holm-adjusted p-values and the smallest "
            "difference each comparison could detect; correlations use cluster-bootstrap CIs, seed-stratified "
            "permutation p-values and Holm over each table (docs/correlation.md).\n\n" + "\n\n".join(sections) + "\n")
    atomic_write_text(out / "results.md", text)
    print(text)
    print(f"saved: {out / 'results.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
