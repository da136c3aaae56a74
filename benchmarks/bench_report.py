"""The report's default analyses for one run: HVPs, passes, wall time and ETA, new defaults next to today's.

One cnn-small trained on BUSI at 64 px for 5 epochs (cached in the temp
folder by ``_common.trained_checkpoint``), copied to a fresh folder so no
cached record is reused. Measured, in one process:

* the report's Hessian (top-5, trace, density) with the new defaults. Its
  top-5 and trace are exactly what ``landscape hessian RUN`` computes with
  its defaults (same seed, same Krylov run; the density comes after them),
  so their HVPs and seconds are that command's cost;
* the report's sharpness and two surfaces with the report's defaults;
* today's defaults (before issue 11): the Hessian top-5 + trace at
  ``rtol=0.01``, 200 HVPs, no early stop, and the density as 4 fresh SLQ runs
  of 40 steps; sharpness at 1024 images and 20 steps. ``--today measure``
  (default) runs them; ``--today-record JSON`` takes the top-5 + trace from a
  ``landscape hessian --json`` record of the old code on the same checkpoint;
  what is not measured is estimated as units x the unit time measured here,
  and marked so.

For each analysis: the units planned before it started, the units used, the
ETA printed before the work and the wall time; the ETA / measured ratio (goal
within a factor 1.5). Goals: ``landscape hessian RUN`` <= 80 HVPs with the
same eigenvalues and a trace inside today's CI; the report's analyses <= 10
minutes on an idle 2-core machine.

    python benchmarks/bench_report.py [--ckpt RUN/final.pt] [--data ../shared/data/busi] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import DEFAULT_DATA, trained_checkpoint

from landscape.analysis import list_analyses
from landscape.checkpoint import load_checkpoint
from landscape.hessian import spectral_density
from landscape.hessian.operator import HessianOperator
from landscape.report.collect import run_analysis

TODAY_TRACE = {"rtol": 0.01, "max_hvps": 200, "stop_early": False}


def fresh_copy(ckpt: Path) -> Path:
    """The run folder copied without its ``analysis/`` (nothing cached)."""
    dst = Path(tempfile.mkdtemp(prefix="bench-report-")) / ckpt.parent.name
    shutil.copytree(ckpt.parent, dst, ignore=shutil.ignore_patterns("analysis"))
    return dst / ckpt.name


def units_used(name: str, res: dict) -> int:
    if name == "hessian":
        return int(res["hvps"])
    if name == "sharpness":
        return int(res["passes"])
    return int(res["points_evaluated"]) + 1


def row(label, planned, used, unit, eta, seconds, note=""):
    ratio = f"{eta / seconds:5.2f}" if eta and seconds else "    -"
    eta_s = f"{eta:8.1f}" if eta else "       -"
    print(f"{label:34s}{planned!s:>8s}{used!s:>8s} {unit:14s}{eta_s}{seconds:9.1f}  {ratio} {note}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt")
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--today", choices=("measure", "hessian", "estimate"), default="measure",
                        help="measure today's Hessian and density, only its top-5 + trace, or estimate both")
    parser.add_argument("--today-record", help="JSON of `landscape hessian --json` run with the old defaults")
    parser.add_argument("--samples", type=int, default=512,
                        help="images behind the Hessian (default: the command's 512; less only on a loaded machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ckpt = fresh_copy(trained_checkpoint(args.ckpt, args.data, args.epochs, 64, "report"))
    ck = load_checkpoint(ckpt, device="cpu")
    print(f"checkpoint {ckpt}, {sum(p.numel() for p in ck.model.parameters())} parameters, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()}", flush=True)

    new: dict[str, dict] = {}
    header = f"{'analysis':34s}{'planned':>8s}{'used':>8s} {'unit':14s}{'ETA s':>8s}{'wall s':>9s}  ETA/wall"
    for name in list_analyses():
        start = time.perf_counter()
        overrides = {"samples": args.samples} if name == "hessian" else None
        rec = run_analysis(ck, name, seed=0, overrides=overrides, progress=True)
        new[name] = {"seconds": time.perf_counter() - start, "result": rec["result"]}
        if "plan" not in rec["result"]:  # records that do not store their cost plan (measures)
            continue
        plan = rec["result"]["plan"]
        print(header + "\n" + f"{name} done, load average {os.getloadavg()}:", flush=True)
        row(f"  {name}", plan["planned"], units_used(name, rec["result"]), plan["unit"], plan["eta_seconds"],
            new[name]["seconds"])
    hess = new["hessian"]["result"]
    top, tr, dens = hess["top_k"], hess["trace"], hess["density"]
    hvp_s = hess["hvp_seconds"]

    sharp = new["sharpness"]["result"]
    pass_s = new["sharpness"]["seconds"] / max(sharp["passes"], 1)
    today_sharp_passes = 8 * (1 + 4 * 21)

    print("\n" + header)
    print("new defaults (the report's analyses for one run):")
    hvps_hessian_cmd = top["hvps"] + tr["hvps"]
    cmd_seconds = hvps_hessian_cmd * hvp_s
    for name, m in new.items():
        plan = m["result"]["plan"]
        row(f"  {name}", plan["planned"], units_used(name, m["result"]), plan["unit"], plan["eta_seconds"],
            m["seconds"])
    total_new = sum(m["seconds"] for m in new.values())
    total_eta = sum(m["result"]["plan"]["eta_seconds"] or 0 for m in new.values())
    row("  total", "", "", "", total_eta, total_new)
    print(f"  of the Hessian: top-5 {top['hvps']} HVPs, trace {tr['hvps']} (+{tr['shared_hvps']} shared, "
          f"stopped by {tr['stopped_by']}), density {dens['hvps']} (+{dens['shared_hvps']} shared, "
          f"{dens['runs']} run(s))"
          f"; {hvp_s:.2f} s per HVP")
    print(f"  `landscape hessian RUN` (top-5 + trace): {hvps_hessian_cmd} HVPs, ~{cmd_seconds:.0f} s")
    today_hess = None
    if args.today_record and not Path(args.today_record).is_file():
        print(f"no record at {args.today_record} (yet): today's Hessian is estimated", flush=True)
    elif args.today_record:
        today_hess = json.loads(Path(args.today_record).read_text())["result"]
        today_hess["measured"] = "record"
    elif args.today in ("measure", "hessian"):
        from landscape.analysis.hessian import analyze

        start = time.perf_counter()
        today_hess = analyze(ck, trace_settings=TODAY_TRACE, samples=args.samples, progress=True)["result"]
        today_hess["wall"] = time.perf_counter() - start
        today_hess["measured"] = "here"
    today_density_hvps, today_density_s = 160, None
    if args.today == "measure":
        op = HessianOperator(ck.model, ck.loss_fn, ck.loader("train", batch_size=128, samples=args.samples, seed=0))
        start = time.perf_counter()
        today_dens = spectral_density(op, runs=4, steps=40, seed=0)
        today_density_hvps, today_density_s = today_dens.hvps, time.perf_counter() - start
    print("today's defaults:")
    if today_hess is not None:
        t_top, t_tr = today_hess["top_k"], today_hess["trace"]
        t_hvps = t_top["hvps"] + t_tr["hvps"]
        t_sec = today_hess.get("wall") or t_hvps * today_hess["hvp_seconds"]
        row("  hessian top-5 + trace", "", t_hvps, "HVP", None, t_sec, f"({today_hess['measured']})")
    else:
        t_top = t_tr = None
        row("  hessian top-5 + trace", "", 223, "HVP", None, 223 * hvp_s, "(estimated: 223 x HVP time)")
    row("  density (4 x 40, unshared)", "", today_density_hvps, "HVP", None,
        today_density_s or today_density_hvps * hvp_s, "" if today_density_s else "(estimated)")
    row("  sharpness (1024 images, 20 steps)", "", today_sharp_passes, "gradient pass", None,
        today_sharp_passes * pass_s, "(estimated: passes x pass time)")

    same = t_top is not None and np.allclose(top["eigenvalues"], t_top["eigenvalues"], rtol=1e-6)
    inside = t_tr is not None and t_tr["ci"][0] <= tr["estimate"] <= t_tr["ci"][1]
    if t_tr is not None:
        print(f"\ntrace: new {tr['estimate']:.4g} [{tr['ci'][0]:.4g}, {tr['ci'][1]:.4g}] vs today "
              f"{t_tr['estimate']:.4g} [{t_tr['ci'][0]:.4g}, {t_tr['ci'][1]:.4g}]; top-5 new {top['eigenvalues']}"
              f" today {t_top['eigenvalues']}")
    ratios = [m["result"]["plan"]["eta_seconds"] / m["seconds"] for m in new.values()]
    print(f"load average after: {os.getloadavg()}")
    print(f"summary: `landscape hessian RUN` {hvps_hessian_cmd} HVPs (goal <= 80, today "
          f"{t_top['hvps'] + t_tr['hvps'] if t_top else 223}), eigenvalues {'same' if same else 'NOT compared/same'}, "
          f"trace {'inside' if inside else 'NOT inside'} today's CI; report analyses {total_new / 60:.1f} min "
          f"(goal <= 10 on an idle machine); ETA/wall {min(ratios):.2f}..{max(ratios):.2f} (goal 0.67..1.5)")


if __name__ == "__main__":
    main()
