"""Add your own optimizer: a two-pass extragradient method, registered and trained through `landscape.train`.

Extragradient (Korpelevich, 1976) takes each step with the gradient at a
look-ahead point:

    g = grad L(w),   w_half = w - gamma * g,   step(grad L(w_half)),

two forward/backward passes per step, like SAM (which looks *up*-hill:
``w + rho g / ||g||``). One ``register_optimizer`` call makes it a choice of
``landscape train --optimizer``, ``landscape list optimizers`` and the
report's groups; its spec's ``passes`` (2) is what compute-matched training
and the report read.
Run: python examples/custom_optimizer.py [--tiny]
"""

from __future__ import annotations

import argparse

import torch

from landscape.optim import ClosureOptimizer, OptimSpec, register_optimizer
from landscape.optim.base import nonnegative
from landscape.optim.perturb import check_finite


class Extragradient(ClosureOptimizer):
    """The base optimizer (Adam or SGD) stepping with the gradient at ``w - gamma * grad L(w)``."""

    name = "extragradient"
    passes_per_step = 2

    @classmethod
    def check_hyper(cls, hyper: dict, given: dict) -> dict:
        nonnegative(cls.name, hyper, "gamma")
        return super().check_hyper(hyper, given)

    def step(self, closure) -> torch.Tensor:
        loss = closure()  # pass 1: gradients at w
        check_finite(loss)
        with torch.no_grad():
            moves = [None if p.grad is None else -self.hyper["gamma"] * p.grad for p in self._params]
            for p, move in zip(self._params, moves):
                if move is not None:
                    p.add_(move)
        closure()  # pass 2: gradients at the look-ahead point
        with torch.no_grad():
            for p, move in zip(self._params, moves):
                if move is not None:
                    p.sub_(move)
        self.base_optimizer.step()
        return loss.detach()


register_optimizer(OptimSpec("extragradient", Extragradient, {"gamma": 0.01}, 2,
                             "steps with the gradient at a look-ahead point w - gamma g",
                             help={"gamma": "look-ahead step size"}, paper="Korpelevich, 1976"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="seconds-scale settings")
    parser.add_argument("--out", default="custom_optimizer", help="folder for the run")
    args = parser.parse_args()

    from landscape.train import TrainConfig, train

    cfg = TrainConfig(optimizer="extragradient", opt_args={"gamma": 0.02}, model="cnn-tiny" if args.tiny else
                      "cnn-small", img_size=32 if args.tiny else 64, epochs=1 if args.tiny else 10, out=args.out)
    result = train(cfg, progress=False)
    test = result.metrics["test"]
    print(f"extragradient ({Extragradient.passes_per_step} passes per step): test balanced accuracy "
          f"{test['balanced_accuracy']:.3f}, run folder {result.run_dir}")


if __name__ == "__main__":
    main()
