"""Fixed costs of every command: wall time against ``python -c "import torch"``, measured in the same run.

Each command runs as a fresh ``python -m landscape`` process (what a user
types), with ``OMP_NUM_THREADS=--threads`` and its own empty cache folder
(``LANDSCAPE_CACHE``), twice: *cold* (the decoded-data cache empty) and *warm*
(the same command again). The peer is ``python -c "import torch"``, the floor
of any command that computes anything; every row prints its ratio to it.

Commands: ``landscape --help``, ``landscape study --help``, a 1-epoch
``train`` of cnn-small on BUSI at 64 px, a tiny ``surface`` (1D, 5 points, 64
test images) and a tiny ``hessian`` (top-1 on 64 training images) of that run.

Goals: ``--help`` <= 0.3x ``import torch``; the tiny ``surface`` with a warm
cache <= 2x. ``--study`` adds ``study --quick`` side by side with ``--base``
(default ``main``; checked out with ``git worktree`` into a temp folder and run
from there): goal >= 1.5x faster than the base. It takes several minutes.

    python benchmarks/bench_startup.py [--data ../shared/data/busi] [--repeats 3] [--study [--base REV]]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import DEFAULT_DATA

ROOT = Path(__file__).resolve().parents[1]


def timed(args: list[str], env: dict, cwd: Path, repeats: int = 1) -> float:
    """Best wall time of ``repeats`` runs of ``args`` (seconds); raises with its stderr if one fails."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"failed ({done.returncode}): {' '.join(args)}\n{done.stderr[-2000:]}")
        best = min(best, seconds)
    return best


def environment(code: Path, cache: Path, threads: int) -> dict:
    """The environment of one side: its code first on the path, its cache folder, its thread count."""
    env = dict(os.environ, PYTHONPATH=str(code), LANDSCAPE_CACHE=str(cache), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    env.pop("LANDSCAPE_DEBUG", None)
    return env


def landscape(*args) -> list[str]:
    return [sys.executable, "-m", "landscape", *[str(a) for a in args]]


def measure_commands(args, work: Path) -> list[dict]:
    """Rows ``{name, cold, warm}`` of the fixed-cost commands on BUSI (cold: empty cache)."""
    cache = work / "cache"
    env = environment(ROOT, cache, args.threads)
    run = work / "runs" / "busi-cnn-small-s0"
    rows = [{"name": "landscape --help", "cold": timed(landscape("--help"), env, ROOT, args.repeats)},
            {"name": "landscape study --help", "cold": timed(landscape("study", "--help"), env, ROOT, args.repeats)}]
    commands = [
        ("train, 1 epoch", ["train", "--data", args.data, "--model", "cnn-small", "--epochs", 1, "--img-size", 64,
                            "--out", work / "runs", "--run-name", run.name, "--seed", 0, "--overwrite"]),
        ("surface, 1D 5 points", ["surface", run, "--dim", 1, "--grid", 5, "--samples", 64, "--seed", 0,
                                  "--out", work / "surface"]),
        ("hessian, top-1", ["hessian", run, "--top-k", 1, "--no-trace", "--samples", 64, "--seed", 0]),
    ]
    for name, command in commands:
        row = {"name": name}
        for state in ("cold", "warm"):
            if state == "cold":
                subprocess.run(["rm", "-rf", str(cache)], check=True)
            if name != "train, 1 epoch":  # analyses are cached in the run folder: drop them
                subprocess.run(["rm", "-rf", str(run / "analysis"), str(work / "surface")], check=True)
            row[state] = timed(landscape(*command), env, ROOT)
        rows.append(row)
    return rows


def measure_study(args, work: Path) -> dict:
    """``study --quick`` here and at ``--base``, alternating, best of ``--study-repeats`` each."""
    base = work / "base"
    subprocess.run(["git", "worktree", "add", "--detach", str(base), args.base], cwd=ROOT, check=True,
                   capture_output=True)
    try:
        best = {"this": float("inf"), "base": float("inf")}
        for i in range(args.study_repeats):
            for side, code in (("base", base), ("this", ROOT)):
                out = work / f"study-{side}-{i}"
                env = environment(code, work / f"cache-{side}-{i}", args.threads)
                best[side] = min(best[side], timed(landscape("study", "--quick", "--out", out), env, code))
        return best
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--repeats", type=int, default=3, help="best of N for import torch and --help")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--study", action="store_true", help="also study --quick against --base (minutes)")
    parser.add_argument("--base", default="main", help="git revision to compare study --quick with")
    parser.add_argument("--study-repeats", type=int, default=1)
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    if not Path(args.data).is_dir():
        raise SystemExit(f"BUSI not found at {args.data} (--data)")

    with tempfile.TemporaryDirectory(prefix="landscape-startup-") as tmp:
        work = Path(tmp)
        env = environment(ROOT, work / "cache", args.threads)
        t_torch = timed([sys.executable, "-c", "import torch"], env, ROOT, args.repeats)
        print(f'python -c "import torch": {t_torch:.2f} s (best of {args.repeats}), {args.threads} thread(s)',
              flush=True)
        rows = measure_commands(args, work)
        study = measure_study(args, work) if args.study else None

    print()
    print(f"{'command':<26}{'cold s':>8}{'warm s':>8}{'cold/torch':>12}{'warm/torch':>12}")
    for row in rows:
        warm = row.get("warm")
        print(f"{row['name']:<26}{row['cold']:>8.2f}" + (f"{warm:>8.2f}" if warm else f"{'-':>8}")
              + f"{row['cold'] / t_torch:>11.2f}x" + (f"{warm / t_torch:>11.2f}x" if warm else f"{'-':>12}"))
    named = {row["name"]: row for row in rows}
    goals = [("--help <= 0.3x import torch", named["landscape --help"]["cold"] / t_torch, 0.3, "<="),
             ("tiny surface, warm cache <= 2x import torch", named["surface, 1D 5 points"]["warm"] / t_torch, 2.0,
              "<=")]
    if study:
        print(f"\nstudy --quick: this {study['this']:.1f} s, {args.base} {study['base']:.1f} s")
        goals.append((f"study --quick >= 1.5x faster than {args.base}", study["base"] / study["this"], 1.5, ">="))
    print()
    for text, value, limit, op in goals:
        ok = value <= limit if op == "<=" else value >= limit
        print(f"goal {text}: {value:.2f} -> {'met' if ok else 'NOT met'}")
    if args.json:
        Path(args.json).write_text(json.dumps({"import_torch_s": t_torch, "threads": args.threads, "rows": rows,
                                               "study": study}, indent=2) + "\n")


if __name__ == "__main__":
    main()
