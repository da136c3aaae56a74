"""CPU cost of the seed study's architectures: one SAM training step and one Hessian-vector product.

For each (model, input size): a batch of ``--images`` random 1-channel
images, 3 classes, float32, ``torch.set_num_threads(--threads)``. Reported:
CPU seconds of this process (``time.process_time``, so a shared, busy
machine does not inflate them; with one thread they are the wall time on an
idle core), median of ``--repeats`` after one warm-up:

* ``sam step s``: one SAM step (two forward/backward passes) on the batch;
  ``epoch s`` extrapolates it to one phantom epoch (546 training images,
  ``ceil(546 / images)`` steps);
* ``hvp s``: one Hessian-vector product on the same images (graph rebuilt,
  math attention), through :class:`landscape.hessian.HessianOperator`;
* for attention models, ``grad fused/math``: one gradient with the fused
  SDPA kernel over one with the math kernel (the price of math attention
  for first-order work; HVPs cannot use the fused kernel at all).

    nice python benchmarks/bench_families.py [--sizes 32,64,224] [--images 8]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from landscape.hessian import HessianOperator
from landscape.models import create
from landscape.optim import create_optimizer

MODELS = ["vit_tiny_patch16_224", "swin_tiny_patch4_window7_224", "vit_small_patch16_224", "resnet50", "vgg16"]
TRAIN_IMAGES = 546


def timed(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


def measure(name: str, size: int, images: int, repeats: int) -> dict:
    torch.manual_seed(0)
    model = create(name, num_classes=3, in_chans=1, img_size=size)
    x, y = torch.randn(images, 1, size, size), torch.arange(images) % 3
    loss_fn = nn.CrossEntropyLoss()
    opt = create_optimizer("sam", model, lr=1e-3)

    def closure():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        return loss

    model.train()
    step = timed(lambda: opt.step(closure), repeats)
    op = HessianOperator(model, loss_fn, [(x, y)], graph_memory=0)
    v = torch.randn(op.size)
    hvp = timed(lambda: op.matvec(v), repeats)
    row = {"model": name, "size": size, "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
           "sam_step_s": step, "epoch_s": step * math.ceil(TRAIN_IMAGES / images), "hvp_s": hvp}
    if "vit" in name or "swin" in name:
        model.eval()

        def grad():
            model.zero_grad()
            loss_fn(model(x), y).backward()

        fused = timed(grad, repeats)
        with sdpa_kernel(SDPBackend.MATH):
            math_s = timed(grad, repeats)
        row["grad_fused_over_math"] = fused / math_s
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--sizes", default="32,64,224")
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print("| model | px | params (M) | SAM step s | epoch s (extrap.) | HVP s | grad fused/math |")
    print("|---|---|---|---|---|---|---|")
    for name in args.models.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            try:
                r = measure(name, size, args.images, args.repeats)
            except Exception as exc:  # report and go on: one size failing must not hide the others
                print(f"| {name} | {size} | failed: {type(exc).__name__}: {str(exc).splitlines()[0][:80]} |",
                      flush=True)
                continue
            ratio = f"{r['grad_fused_over_math']:.2f}" if "grad_fused_over_math" in r else "-"
            print(f"| {name} | {size} | {r['params_m']:.1f} | {r['sam_step_s']:.2f} | {r['epoch_s']:.0f} | "
                  f"{r['hvp_s']:.2f} | {ratio} |", flush=True)


if __name__ == "__main__":
    main()
