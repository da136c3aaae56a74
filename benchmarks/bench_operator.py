"""The Hessian operator's cost when its data stay on the device against when they stream, same run.

cnn-small at 64 px on ``--samples`` random grey images in batches of
``--batch-size``, from a ``DataLoader`` (not shuffled).  Three ways, each
timed as the best of ``--repeats`` products after one warm-up product:

* kept: the default budget keeps every batch and its first-order graph;
* batches kept, graphs rebuilt: a budget that holds the batches only;
* streamed: ``graph_memory=0``, every batch re-read from the loader and
  moved to the device one at a time (what a data set larger than the
  device gets).

The peer is one gradient of the mean loss over the same data.  Goals:
kept / gradient <= 3.5, streamed / kept <= 2.5 (rebuilding a graph costs a
forward and a create-graph backward more).

    python benchmarks/bench_operator.py [--samples 256] [--batch-size 32] [--threads 1]
"""

from __future__ import annotations

import argparse

import torch
from bench_hessian import best_of
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import landscape


def warm_best_of(fn, repeats: int) -> float:
    """Best of ``repeats`` timed calls after one warm-up call (which builds the retained graphs)."""
    fn()
    return best_of(fn, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = landscape.create_model("cnn-small", num_classes=3, img_size=64).eval()
    data = TensorDataset(torch.randn(args.samples, 1, 64, 64), torch.randint(0, 3, (args.samples,)))
    loader = DataLoader(data, batch_size=args.batch_size)
    loss_fn = nn.CrossEntropyLoss()
    batch_bytes = args.batch_size * 64 * 64 * 4 + args.batch_size * 8
    n_batches = len(loader)

    def gradient():
        model.zero_grad()
        for x, y in loader:
            (loss_fn(model(x), y) * len(y) / args.samples).backward()

    ops = {"kept": landscape.hessian_operator(model, loss_fn, loader),
           "batches kept, graphs rebuilt": landscape.hessian_operator(model, loss_fn, loader,
                                                                      graph_memory=batch_bytes * n_batches),
           "streamed": landscape.hessian_operator(model, loss_fn, loader, graph_memory=0)}
    v = torch.randn(ops["kept"].size)
    grad_s = warm_best_of(gradient, args.repeats)
    print(f"cnn-small 64 px, {args.samples} images in {n_batches} batches, {ops['kept'].size} parameters, "
          f"{args.threads} thread(s); one gradient: {grad_s:.3f} s")
    times = {}
    for name, op in ops.items():
        times[name] = warm_best_of(lambda op=op: op @ v, args.repeats)
        kept = len(op.batches.kept)
        print(f"{name:30s} {times[name]:.3f} s per HVP  ({times[name] / grad_s:.2f} x gradient; "
              f"{kept} of {n_batches} batches on the device)")
    print(f"streamed / kept: {times['streamed'] / times['kept']:.2f} (goal <= 2.5); "
          f"kept / gradient: {times['kept'] / grad_s:.2f} (goal <= 3.5)")


if __name__ == "__main__":
    main()
