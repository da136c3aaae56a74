"""Wall time of ``landscape study --quick``, broken down by stage.

Runs the quick study in a fresh folder, then runs it again (the resumed re-run
is the peer: it must skip all training and analyses). Prints seconds and share
per stage (train, Hessian, sharpness, surfaces, report), the Hessian-vector
products spent, and the goal check (fresh run <= 600 s on 2 CPU cores).

    python benchmarks/bench_study.py                  # phantom, temporary folder
    python benchmarks/bench_study.py --data ../shared/data/busi --out /tmp/quick_busi
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch

GOAL_S = 600.0


def hvps(run_dirs: list[Path]) -> int:
    """Hessian-vector products recorded in the runs' Hessian records."""
    from landscape.checkpoint import records

    total = 0
    for run_dir in run_dirs:
        for rec in records(run_dir, "hessian"):
            res = rec["result"]
            total += int((res.get("top_k") or {}).get("hvps") or 0) + int((res.get("trace") or {}).get("hvps") or 0)
            total += int((res.get("density") or {}).get("hvps") or 0)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="image folder (default: the built-in phantom)")
    parser.add_argument("--out", default=None, help="study folder (default: a temporary folder, removed afterwards)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (the goal is for 2 cores)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from landscape.study import QUICK, run_study

    torch.set_num_threads(args.threads)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench_study_"))
    try:
        t0 = time.perf_counter()
        fresh = run_study(data=args.data, quick=True, out=out, progress=False, seed=args.seed)
        fresh_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = run_study(data=args.data, quick=True, out=out, progress=False, seed=args.seed)
        again_s = time.perf_counter() - t0
        n_hvp = hvps(fresh.run_dirs)
    finally:
        if not args.out:
            shutil.rmtree(out, ignore_errors=True)

    print(f"quick preset: {QUICK.epochs} epochs, {QUICK.seeds} seeds, {QUICK.img_size} px, "
          f"{len(fresh.run_dirs)} runs, {args.threads} threads, device "
          f"{'cuda' if torch.cuda.is_available() else 'cpu'}")
    print(f"{'stage':<10} {'fresh s':>9} {'share':>7} {'re-run s':>9}")
    for stage, sec in fresh.seconds.items():
        print(f"{stage:<10} {sec:9.1f} {sec / fresh_s:7.1%} {again.seconds[stage]:9.1f}")
    other = fresh_s - sum(fresh.seconds.values())
    print(f"{'other':<10} {other:9.1f} {other / fresh_s:7.1%}")
    print(f"{'total':<10} {fresh_s:9.1f} {1:7.1%} {again_s:9.1f}")
    hessian_s = fresh.seconds["hessian"]
    print(f"Hessian-vector products: {n_hvp} ({hessian_s / max(n_hvp, 1):.3f} s per HVP incl. data loading)")
    print(f"re-run / fresh: {again_s / fresh_s:.3f}x (trained {len(again.trained)} runs on the re-run)")
    verdict = "PASS" if fresh_s <= GOAL_S else "FAIL"
    shares = ", ".join(f"{k} {v / fresh_s:.0%}" for k, v in fresh.seconds.items())
    print(f"SUMMARY: study --quick {fresh_s:.0f} s ({shares}); re-run {again_s:.0f} s = {again_s / fresh_s:.2f}x; "
          f"goal <= {GOAL_S:.0f} s: {verdict}")


if __name__ == "__main__":
    main()
