"""Time per training step of every optimizer, divided by Adam's, measured in one run.

cnn-small on BUSI at 64 px (the phantom when the BUSI copy is absent), batch 32.
Steps are interleaved (one step of each optimizer per round) so that load from
other processes hits all optimizers alike; each reports the median of its
timed steps after a warm-up. Goals: two-pass optimizers <= 2.1x Adam, CR-SAM
(three passes) <= 3.2x, i.e. nothing beyond the extra forward/backward passes.

With ``pytorch-optimizer`` installed it also runs its SAM and WSAM on the same
batches from the same weights (float64, no BatchNorm statistics involved in
the update) and prints the largest weight difference after the steps.
pytorch-optimizer 4.x sums the squared gradient norms in float32, so its
perturbation differs from the float64 formula by ~1e-9 relative; differences
of that order (growing over steps) are expected, not disagreements.

    python benchmarks/bench_optimizers.py [--data ../shared/data/busi] [--steps 30]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from _common import DEFAULT_DATA
from torch import nn

from landscape.data import load_images, norm_stats, to_float
from landscape.models import create
from landscape.optim import OPTIMIZERS, create_optimizer

GOALS = {1: None, 2: 2.1, 3: 3.2}  # max ratio to Adam by passes per step


def batches(data: str | None, img_size: int, batch_size: int, count: int, seed: int = 0):
    """``count`` distinct (x, y) batches of normalised images, and the data name."""
    images = load_images(data, img_size=img_size, seed=seed)
    x = images.pixels
    mean, std = norm_stats(x)
    x = to_float(x, mean, std)
    y = torch.as_tensor(images.labels)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n = len(y) // batch_size
    out = [(x[perm[i * batch_size : (i + 1) * batch_size]],
            y[perm[i * batch_size : (i + 1) * batch_size]]) for i in range(n)]
    return [out[i % n] for i in range(count)], images.name, len(images.classes)


def make_step(opt, model, loss_fn):
    def step(xb, yb):
        def closure():
            model.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            return loss

        return opt.step(closure)

    return step


def time_optimizers(model0, data, warmup, steps, lr):
    loss_fn = nn.CrossEntropyLoss()
    runs = {}
    for name in OPTIMIZERS:
        model = copy.deepcopy(model0).train()
        opt = create_optimizer(name, model, lr=lr)
        runs[name] = (make_step(opt, model, loss_fn), opt.passes_per_step, [])
    for r in range(warmup + steps):
        xb, yb = data[r]
        for step, _, times in runs.values():
            t0 = time.perf_counter()
            step(xb, yb)
            if r >= warmup:
                times.append(time.perf_counter() - t0)
    return {name: (passes, statistics.median(times)) for name, (_, passes, times) in runs.items()}


def agreement(model0, data, steps, lr):
    """Largest |weight difference| to pytorch-optimizer's SAM and WSAM, or None when not installed."""
    try:
        import pytorch_optimizer as po
    except ImportError:
        return None
    loss_fn = nn.CrossEntropyLoss()
    start = copy.deepcopy(model0).double()
    out = {}
    for ours, build in [
        (dict(name="sam", rho=0.05), lambda m: po.SAM(m.parameters(), torch.optim.SGD, rho=0.05, lr=lr, momentum=0.9)),
        (
            dict(name="wsam", rho=0.05, gamma=0.9),
            lambda m: po.WSAM(m, m.parameters(), torch.optim.SGD, rho=0.05, gamma=0.9, lr=lr, momentum=0.9),
        ),
    ]:
        a, b = copy.deepcopy(start).eval(), copy.deepcopy(start).eval()  # eval: BN uses fixed stats
        opt_a = create_optimizer(ours.pop("name"), a, base="sgd", lr=lr, momentum=0.9, **ours)
        opt_b = build(b)
        for xb, yb in data[:steps]:
            xb = xb.double()
            make_step(opt_a, a, loss_fn)(xb, yb)

            def closure(xb=xb, yb=yb, opt_b=opt_b, b=b):
                opt_b.zero_grad()
                loss = loss_fn(b(xb), yb)
                loss.backward()
                return loss

            if isinstance(opt_b, po.SAM):
                closure()  # pytorch-optimizer's SAM expects the clean gradient before step()
            opt_b.step(closure)
        diff = max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters()))
        moved = max((p - q).abs().max().item() for p, q in zip(a.parameters(), start.parameters()))
        out[type(opt_b).__name__] = (diff, moved)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(DEFAULT_DATA) if DEFAULT_DATA.is_dir() else None)
    parser.add_argument("--model", default="cnn-small")
    parser.add_argument("--img-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    data, data_name, n_classes = batches(args.data, args.img_size, args.batch_size, args.warmup + args.steps, args.seed)
    torch.manual_seed(args.seed)
    model0 = create(args.model, n_classes, img_size=args.img_size)
    print(f"{args.model} on {data_name} at {args.img_size} px, batch {args.batch_size}, "
          f"median of {args.steps} interleaved steps after {args.warmup} warm-up, {torch.get_num_threads()} threads")
    results = time_optimizers(model0, data, args.warmup, args.steps, args.lr)
    adam = results["adam"][1]
    print(f"{'optimizer':<10}{'passes':>7}{'ms/step':>10}{'x Adam':>9}{'x Adam/pass':>13}{'goal':>7}")
    failed = []
    for name, (passes, sec) in results.items():
        ratio = sec / adam
        goal = GOALS[passes]
        ok = goal is None or ratio <= goal
        if not ok:
            failed.append(name)
        mark = "" if goal is None else f"<={goal}" + ("" if ok else " MISSED")
        print(f"{name:<10}{passes:>7}{sec * 1e3:>10.1f}{ratio:>9.2f}{ratio / passes:>13.2f}{mark:>7}")
    agree = agreement(model0, data, 5, 0.05)
    if agree is None:
        print("pytorch-optimizer not installed: agreement check skipped")
    else:
        for peer, (diff, moved) in agree.items():
            print(f"agreement with pytorch_optimizer.{peer} after 5 steps (float64; its norm is float32): "
                  f"max |dw| = {diff:.2e} while the weights moved up to {moved:.2e}")
    two = max(r[1] / adam for r in results.values() if r[0] == 2)
    summary = (f"summary: slowest two-pass optimizer {two:.2f}x Adam (goal <= 2.1), "
               f"CR-SAM {results['crsam'][1] / adam:.2f}x (goal <= 3.2): "
               + ("all goals met" if not failed else "missed by " + ", ".join(failed)))
    print(summary)


if __name__ == "__main__":
    main()
