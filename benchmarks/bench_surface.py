"""2D loss-surface throughput and centre error versus loss-landscapes' ``random_plane``.

Both evaluate an 11x11 filter-normalised random plane of the same trained
cnn-small BUSI checkpoint on the same 256 training images (one batch), in the
same process, alternating runs (best of ``--repeats``). The unit of cost is a
grid point (one forward pass over the 256 images). Reported: points per
second and |loss at the grid centre - the model's own loss|.
Goal: >= 1.5x loss-landscapes' points/s and a centre error <= 1e-6.

loss-landscapes (PyPI 3.0.6) scales each direction to ||w|| / steps per step
and starts at ``w - (steps/2)(d1 + d2)``, adding a step *before* each
evaluation and walking the rows back and forth. For steps = 11 its row ``i`` is
at ``(i - 5.5)`` steps along d1, and along d2 even rows sit at ``(j - 4.5)`` and
odd rows at ``(j - 5.5)`` steps: the grid is misaligned by one step between
rows and never contains the model, and its "centre" ``[5][5]`` lies (-0.5, -0.5)
steps (0.71 step = 0.064 ||w||) away from it.

    python benchmarks/bench_surface.py [--ckpt RUN/final.pt] [--data ../shared/data/busi]

Needs ``pip install loss-landscapes`` (the ``bench`` extra). Without
``--ckpt`` it trains cnn-small on BUSI for ``--epochs`` first.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from _common import DEFAULT_DATA, trained_checkpoint

from landscape.checkpoint import load_checkpoint
from landscape.directions import random_directions
from landscape.surface import axis, evaluate_surface


def checkpoint_path(args) -> Path:
    """``--ckpt``, or a cnn-small trained on ``--data`` for ``--epochs``."""
    return trained_checkpoint(args.ckpt, args.data, args.epochs, args.img_size, "surface")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", help="trained cnn-small checkpoint (default: train one)")
    parser.add_argument("--data", default=str(DEFAULT_DATA) if DEFAULT_DATA.is_dir() else None)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--img-size", type=int, default=64)
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--steps", type=int, default=11, help="points per axis (odd, so the centre exists)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    try:
        import loss_landscapes
        from loss_landscapes.metrics import Loss
    except ImportError:
        raise SystemExit("needs loss-landscapes: pip install loss-landscapes (the bench extra)") from None

    ck = load_checkpoint(checkpoint_path(args), device="cpu")
    model, loss_fn = ck.model, ck.loss_fn
    x, y = next(iter(ck.loader("train", batch_size=args.samples, samples=args.samples, seed=args.seed)))
    with torch.no_grad():
        model_loss = float(loss_fn(model(x), y))
    n = args.steps
    # loss-landscapes' plane reaches (steps/2) steps of ||w||/steps: +-0.5 ||w||; a filter-normalised
    # direction has about the weights' norm, so span 0.5 covers the same region
    dirs = random_directions(model, 2, seed=args.seed)
    xs = axis(n, -0.5, 0.5)

    def ours():
        t = time.perf_counter()
        res = evaluate_surface(model, loss_fn, (x, y), dirs, xs, xs, batch_size=args.samples)
        return time.perf_counter() - t, float(res.loss[n // 2, n // 2])

    def peer():
        torch.manual_seed(args.seed)
        t = time.perf_counter()
        res = loss_landscapes.random_plane(model, Loss(loss_fn, x, y), distance=1, steps=n, normalization="filter",
                                           deepcopy_model=True)
        return time.perf_counter() - t, float(np.asarray(res)[n // 2, n // 2])

    times = {"landscape": [], "loss-landscapes": []}
    centre = {}
    for _ in range(args.repeats):
        for name, fn in (("landscape", ours), ("loss-landscapes", peer)):
            seconds, centre[name] = fn()
            times[name].append(seconds)
            print(f"  {name:16s} {n * n / seconds:7.2f} points/s  centre loss {centre[name]:.7f}", flush=True)

    pps = {k: n * n / min(v) for k, v in times.items()}
    err = {k: abs(c - model_loss) for k, c in centre.items()}
    print(f"\ncnn-small {ck.meta['data']['source']} {ck.meta['data']['img_size']} px, {len(y)} images, "
          f"{n}x{n} filter-normalised random plane, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"model loss {model_loss:.7f}")
    print(f"{'':22s}{'landscape':>14s}{'loss-landscapes':>18s}{'ratio':>10s}")
    ratio = pps["landscape"] / pps["loss-landscapes"]
    print(f"{'points / s':22s}{pps['landscape']:14.3f}{pps['loss-landscapes']:18.3f}{ratio:10.2f}x")
    print(f"{'seconds (best)':22s}{min(times['landscape']):14.2f}{min(times['loss-landscapes']):18.2f}")
    print(f"{'centre loss':22s}{centre['landscape']:14.7f}{centre['loss-landscapes']:18.7f}")
    print(f"{'|centre - model|':22s}{err['landscape']:14.2e}{err['loss-landscapes']:18.2e}")
    print("why: loss-landscapes adds a step before each evaluation and snakes along rows, so its [5][5] is "
          "(-0.5, -0.5) steps from the model and alternate rows are shifted by a step; our axes contain 0 exactly.")
    ok = pps["landscape"] >= 1.5 * pps["loss-landscapes"] and err["landscape"] <= 1e-6
    print(f"summary: {pps['landscape'] / pps['loss-landscapes']:.2f}x loss-landscapes' points/s (goal >= 1.5x), "
          f"centre error {err['landscape']:.1e} vs {err['loss-landscapes']:.2f} (goal <= 1e-6): "
          f"{'PASS' if ok else 'FAIL'}")


if __name__ == "__main__":
    main()
