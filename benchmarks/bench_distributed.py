"""Strong scaling of the data-parallel HVP and of surface points under ``torchrun`` (CPU, gloo).

    PYTHONPATH=. python benchmarks/bench_distributed.py [--ranks 1,2] [--samples 256] [--img-size 32]

The script starts itself under ``torchrun --standalone --nproc-per-node N`` for
each N (one torch thread per rank). Each run times, on the same global work:

* HVPs per second of cnn-small's Hessian on ``--samples`` phantom-sized random
  images (the operator shards them over the ranks; one all-reduce per HVP);
* surface points per second of a ``--grid``x``--grid`` 2D surface on the same images
  (rows dealt out over the ranks).

Parallel efficiency is ``T1 / (N * TN)`` (T: seconds for the fixed work). With
a CUDA GPU it also reports one HVP of resnet50 at 224 px on 64 images divided
by one gradient (forward + backward) on that GPU. The machine's load average
is printed with the numbers: on a shared machine it bounds what N ranks can
get. Prints one summary line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def _worker(args) -> None:
    from landscape import distributed
    from landscape.hessian.operator import HessianOperator
    from landscape.models import create
    from landscape.surface.evaluate import evaluate_surface

    torch.set_num_threads(1)
    distributed.init()
    torch.manual_seed(0)
    model = create("cnn-small", num_classes=3, in_chans=1, img_size=args.img_size).eval()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(args.samples, 1, args.img_size, args.img_size, generator=g)
    y = torch.randint(0, 3, (args.samples,), generator=g)
    loss = torch.nn.CrossEntropyLoss()
    op = HessianOperator(model, loss, [(x[i:i + args.batch], y[i:i + args.batch]) for i in range(0, len(y),
                                                                                                 args.batch)])
    v = torch.randn(op.size, generator=g)
    op.matvec(v)  # builds and retains the first-order graphs
    distributed.barrier()
    t0 = time.perf_counter()
    for _ in range(args.hvps):
        op.matvec(v)
    hvp_s = (time.perf_counter() - t0) / args.hvps
    del op
    dirs = [{n: torch.randn(p.shape, generator=g) * 0.01 for n, p in model.named_parameters()} for _ in range(2)]
    grid = torch.linspace(-1, 1, args.grid).tolist()
    distributed.barrier()
    t0 = time.perf_counter()
    evaluate_surface(model, loss, (x, y), dirs, grid, grid, batch_size=args.batch)
    surf_s = time.perf_counter() - t0
    if distributed.is_main():
        Path(args.out).write_text(json.dumps({"ranks": distributed.world_size(), "hvp_s": hvp_s, "surface_s": surf_s}))
    distributed.finish()


def _gpu() -> dict | None:
    """resnet50, 224 px, 64 images on one GPU: seconds of one HVP over seconds of one gradient."""
    if not torch.cuda.is_available():
        return None
    from landscape.hessian.operator import HessianOperator
    from landscape.models import create

    dev = torch.device("cuda")
    model = create("resnet50", num_classes=2, in_chans=1, img_size=224).to(dev).eval()
    x, y = torch.randn(64, 1, 224, 224, device=dev), torch.randint(0, 2, (64,), device=dev)
    loss = torch.nn.CrossEntropyLoss()

    def timed(fn, n=5):
        fn()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        torch.cuda.synchronize()
        return (time.perf_counter() - t0) / n

    def grad():
        model.zero_grad(set_to_none=True)
        loss(model(x), y).backward()

    t_grad = timed(grad)
    model.zero_grad(set_to_none=True)
    op = HessianOperator(model, loss, [(x, y)])
    v = torch.randn(op.size, device=dev)
    t_hvp = timed(lambda: op.matvec(v))
    op.release()
    rebuilt = HessianOperator(model, loss, [(x, y)], graph_memory=0)  # no retained graph: every HVP rebuilds it
    t_hvp_rebuild = timed(lambda: rebuilt.matvec(v))
    return {"device": torch.cuda.get_device_name(dev), "grad_s": t_grad, "hvp_s": t_hvp,
            "hvp_over_grad": t_hvp / t_grad, "hvp_rebuilt_over_grad": t_hvp_rebuild / t_grad}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", default="1,2")
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--img-size", type=int, default=32)
    parser.add_argument("--hvps", type=int, default=8)
    parser.add_argument("--grid", type=int, default=8)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--no-gpu", action="store_true", help="Skip the resnet50 GPU measurement.")
    args = parser.parse_args()
    if args.worker:
        _worker(args)
        return
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in [int(r) for r in args.ranks.split(",")]:
            out = Path(tmp) / f"r{n}.json"
            cmd = [torchrun, "--standalone", f"--nproc-per-node={n}", __file__, "--worker", "--out", str(out),
                   "--samples", str(args.samples), "--batch", str(args.batch), "--img-size", str(args.img_size),
                   "--hvps", str(args.hvps), "--grid", str(args.grid)]
            load = os.getloadavg()[0]
            subprocess.run(cmd, env=env, check=True, timeout=1800, stdout=subprocess.DEVNULL)
            rows.append({**json.loads(out.read_text()), "load": load})
    t1 = rows[0]
    for r in rows:
        n = r["ranks"]
        r["hvp_eff"] = t1["hvp_s"] / (n * r["hvp_s"])  # T1 / (N TN): the first entry of --ranks is 1
        r["surface_eff"] = t1["surface_s"] / (n * r["surface_s"])
        print(f"ranks {n}: {1 / r['hvp_s']:.2f} HVP/s (efficiency {r['hvp_eff']:.2f}), "
              f"{args.grid ** 2 / r['surface_s']:.2f} surface points/s (efficiency {r['surface_eff']:.2f}), "
              f"load average {r['load']:.1f} on {os.cpu_count()} cores")
    gpu = None if args.no_gpu else _gpu()
    if gpu:
        print(f"GPU {gpu['device']}: resnet50 224 px, 64 images: HVP / gradient = {gpu['hvp_over_grad']:.2f} "
              f"(graph retained), {gpu['hvp_rebuilt_over_grad']:.2f} (rebuilt); gradient {gpu['grad_s'] * 1000:.0f} ms")
    last = rows[-1]
    print(f"summary: cnn-small {args.img_size}px {args.samples} images, {last['ranks']} ranks: HVP efficiency "
          f"{last['hvp_eff']:.2f}, surface efficiency {last['surface_eff']:.2f}"
          + (f", resnet50 HVP/grad {gpu['hvp_over_grad']:.2f} on {gpu['device']}" if gpu else ", no GPU"))


if __name__ == "__main__":
    main()
