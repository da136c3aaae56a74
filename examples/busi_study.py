"""Regenerate the README's "Results on BUSI" table: which optimizer generalizes, in-site and on BUS-BRA,
and which measure predicts it.

Runs ``landscape study`` on BUSI with BUS-BRA as the external site (CPU scale:
cnn-small at 64 px, seven optimizers, three seeds, small analysis budgets),
then prints and saves ``<out>/results.md``. Re-running reuses finished runs
and cached analyses.

    python examples/busi_study.py                 # the full study (about 2 hours on 2 CPU cores)
    python examples/busi_study.py --tiny          # seconds-scale check on a subset of the real folders

BUS-BRA: W. Gómez-Flores, M. J. Gregorio-Calas, W. C. de Albuquerque Pereira, "BUS-BRA: A Breast
Ultrasound Dataset for Assessing Computer-aided Diagnosis Systems", Medical Physics, 2023
(doi 10.5281/zenodo.7730709); its licence requires this citation.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUSI = ROOT.parent / "shared" / "data" / "busi"
BUSBRA = ROOT.parent / "shared" / "data" / "busbra"
OPTIMIZERS = "adam,sgd,sam,asam,gsam,wsam,crsam"
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
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


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


def mean_ci(values: list[float]) -> str:
    """``mean [lo, hi]``: t-interval over seeds (95%), or the single value."""
    vals = [v for v in values if v is not None]
    if not vals:
        return "—"
    m = sum(vals) / len(vals)
    if len(vals) < 2:
        return f"{m:.3f}"
    sd = math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1))
    half = T95.get(len(vals) - 1, 1.96) * sd / math.sqrt(len(vals))
    return f"{m:.3f} [{m - half:.3f}, {m + half:.3f}]"


def tables(result: dict) -> str:
    """Markdown: per-optimizer generalization (mean and 95% CI over seeds) and the top measures by |Psi|."""
    from landscape.report.granulated import TARGETS

    rows = result["rows"]
    groups = list(dict.fromkeys(r["group"] for r in rows))
    header = ("| optimizer | runs | BUSI test balanced acc. | gap (train − test) | BUS-BRA AUROC "
              "| BUSI→BUS-BRA AUROC drop |")
    lines = [header, "|---|---|---|---|---|---|"]
    for g in groups:
        members = [r for r in rows if r["group"] == g]
        cells = [mean_ci([r["targets"][t] for r in members]) for t in TARGETS]
        lines.append(f"| {g} | {len(members)} | " + " | ".join(cells) + " |")
    intro = ("Which measures predicted it (Kendall τ [95% bootstrap CI] over runs; Ψ = granulated coefficient over "
             f"the axes that vary: {', '.join(result['axes']) or 'none'}):")
    lines += ["", intro, "",
              "| measure | " + " | ".join(TARGETS.values()) + " | robust worst τ |",
              "|---|" + "---|" * (len(TARGETS) + 1)]
    cells = {(c["measure"], c["target"]): c for c in result["cells"]}
    for m in result["measures"]:
        parts = []
        for t in TARGETS:
            c = cells[(m, t)]
            tau = "—" if c["kendall_tau"] is None else f"{c['kendall_tau']:.2f}"
            ci = f" [{c['kendall_ci'][0]:.2f}, {c['kendall_ci'][1]:.2f}]" if c["kendall_ci"] else ""
            psi = "—" if c["psi"] is None else f"{c['psi']:.2f}"
            parts.append(f"τ {tau}{ci}, Ψ {psi}")
        worst = result["robust"][m]["worst"]
        lines.append(f"| {m} | " + " | ".join(parts) + f" | {'—' if worst is None else f'{worst:.2f}'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="seconds-scale run on a subset of the real folders")
    parser.add_argument("--out", type=Path, default=None,
                        help="study folder [busi_study/, or a temp folder with --tiny]")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--optimizers", default=OPTIMIZERS)
    args = parser.parse_args(argv)
    if not (BUSI / "benign").is_dir() or not (BUSBRA / "bus_data.csv").is_file():
        print(f"needs BUSI at {BUSI} and BUS-BRA at {BUSBRA}", file=sys.stderr)
        return 2
    from landscape.io import atomic_write_text
    from landscape.report.correlate import correlate
    from landscape.study import run_study

    data, external, csv, analyses = BUSI, BUSBRA, dict(CSV), ANALYSES
    settings = {"epochs": args.epochs, "seeds": args.seeds, "optimizers": args.optimizers, "img_size": 64}
    out = args.out or Path("busi_study")
    if args.tiny:
        import tempfile

        out = args.out or Path(tempfile.mkdtemp(prefix="busi-study-tiny-"))
        data = subset_folder(BUSI, out / "data" / "busi", 20)
        external = subset_folder(BUSBRA, out / "data" / "busbra", 10, "bus_data.csv")
        csv["csv"] = str(external / "bus_data.csv")
        analyses = TINY_ANALYSES
        settings = {"epochs": 1, "seeds": 1, "optimizers": "adam,sam", "img_size": 32}
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    run_study(data=data, models=("cnn-small",), optimizers=settings["optimizers"], seeds=settings["seeds"],
              epochs=settings["epochs"], img_size=settings["img_size"], out=out / "runs", quick=args.tiny,
              progress=not args.tiny, external=external, external_options={**csv, "n_boot": N_BOOT}, analyses=analyses)
    result = correlate([out / "runs"], n_boot=2000, progress=False)
    text = (f"Settings: cnn-small at {settings['img_size']} px, optimizers {settings['optimizers']}, "
            f"{settings['seeds']} seed(s), {settings['epochs']} epoch(s); analysis budgets: {analyses}\n\n"
            + tables(result))
    atomic_write_text(out / "results.md", text)
    print(text)
    print(f"saved: {out / 'results.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
