"""Seconds per epoch of cnn-small on BUSI at 64 px, and the share spent on data.

The data share is the time of batch selection + augmentation (everything
before the optimizer step) over the whole epoch. Goal: <= 10%. The peer is
plain torch: the same model and batches stepped with ``torch.optim.Adam`` and
no closure interface, so the ratio shows what our trainer's interface costs.

    python benchmarks/bench_train.py [--data ../shared/data/busi] [--epochs 2]
"""

from __future__ import annotations

import argparse
import time

import torch
from _common import DEFAULT_DATA
from torch import nn

from landscape.data import augment
from landscape.optim import create_optimizer
from landscape.train import TrainConfig
from landscape.train.prepare import build_model, prepare_data


def run_epoch(model, step, x, y, batch_size, seed):
    """One epoch; returns (total seconds, data seconds)."""
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(y), generator=gen)
    data_s = 0.0
    t_epoch = time.perf_counter()
    model.train()
    for i in range(len(y) // batch_size):
        t0 = time.perf_counter()
        idx = perm[i * batch_size : (i + 1) * batch_size]
        xb = augment(x[idx], gen)
        yb = y[idx]
        data_s += time.perf_counter() - t0
        step(xb, yb)
    return time.perf_counter() - t_epoch, data_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(DEFAULT_DATA) if DEFAULT_DATA.is_dir() else None)
    parser.add_argument("--img-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()

    cfg = TrainConfig(data=args.data, img_size=args.img_size, batch_size=args.batch_size)
    t0 = time.perf_counter()
    prepared = prepare_data(cfg)
    load_s = time.perf_counter() - t0
    x, y = prepared.tensors["train"]
    loss_fn = nn.CrossEntropyLoss()

    model, _ = build_model(cfg, len(prepared.classes))
    opt = create_optimizer("adam", model, lr=1e-3)

    def ours(xb, yb):
        def closure():
            model.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            return loss

        opt.step(closure)

    peer_model, _ = build_model(cfg, len(prepared.classes))
    peer_opt = torch.optim.Adam(peer_model.parameters(), lr=1e-3)

    def plain(xb, yb):
        peer_opt.zero_grad(set_to_none=True)
        loss_fn(peer_model(xb), yb).backward()
        peer_opt.step()

    run_epoch(model, ours, x, y, args.batch_size, 0)  # warm-up
    run_epoch(peer_model, plain, x, y, args.batch_size, 0)
    ours_t, peer_t, data_t = [], [], []
    for e in range(args.epochs):
        total, data = run_epoch(model, ours, x, y, args.batch_size, e + 1)
        ours_t.append(total)
        data_t.append(data)
        peer_t.append(run_epoch(peer_model, plain, x, y, args.batch_size, e + 1)[0])
    ours_s, peer_s = min(ours_t), min(peer_t)
    share = data_t[ours_t.index(ours_s)] / ours_s
    source = prepared.data_meta["source"]
    print(f"data: {source}, {len(y)} training images at {args.img_size} px, batch {args.batch_size}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'measure':<34}{'value':>10}")
    print(f"{'decode + split + normalise (s)':<34}{load_s:>10.2f}")
    print(f"{'epoch, landscape trainer (s)':<34}{ours_s:>10.2f}")
    print(f"{'epoch, plain torch Adam (s)':<34}{peer_s:>10.2f}")
    print(f"{'ratio landscape / plain':<34}{ours_s / peer_s:>10.2f}")
    print(f"{'data share of the epoch':<34}{share:>10.1%}")
    verdict = "meets" if share <= 0.10 else "misses"
    print(f"summary: cnn-small on {source} at {args.img_size} px: {ours_s:.2f} s/epoch "
          f"({ours_s / peer_s:.2f}x plain Adam), data {share:.1%} of the epoch ({verdict} the <= 10% goal)")


if __name__ == "__main__":
    main()
