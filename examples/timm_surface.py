"""A 2D loss surface of a timm model along two filter-normalised random directions (Li et al., 2018).

Uses random images so that it runs offline; put your own DataLoader in ``data``.
Run: python examples/timm_surface.py [--tiny] [--model resnet18] [--png surface.png]
"""

import argparse

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from landscape.directions import random_directions
from landscape.surface import axis, evaluate_surface

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--tiny", action="store_true", help="seconds-scale settings")
parser.add_argument("--model", default=None, help="a timm model name (default resnet18; test_resnet with --tiny)")
parser.add_argument("--png", default=None, help="write the contour plot here")
args = parser.parse_args()
name = args.model or ("test_resnet" if args.tiny else "resnet18")
size, n, points = (32, 16, 3) if args.tiny else (64, 128, 11)

import timm  # noqa: E402  (after argparse, so --help is instant)

torch.manual_seed(0)
model = timm.create_model(name, pretrained=False, num_classes=3, in_chans=1).eval()
data = DataLoader(TensorDataset(torch.randn(n, 1, size, size), torch.randint(0, 3, (n,))), batch_size=32)
directions = random_directions(model, 2, seed=0)  # filter-normalised, BN and biases left out
xs = ys = axis(points, -1.0, 1.0)  # exact 0 in the middle
surface = evaluate_surface(model, nn.CrossEntropyLoss(), data, directions, xs, ys)
centre = surface.loss[points // 2, points // 2]
print(f"{name}: {points}x{points} surface, loss at the weights {centre:.4f}, "
      f"min {surface.loss.min():.4f}, max {surface.loss.max():.4f} ({surface.evaluated} points evaluated)")
if args.png:
    from landscape.surface.plot import plot_png

    plot_png(args.png, xs, ys, surface.loss, xlabel="direction 1", ylabel="direction 2", title=name)
    print("saved", args.png)
