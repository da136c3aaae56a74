"""Hessian of any nn.Module's loss on a DataLoader: top eigenvalues, trace and spectral density.

One operator H (``H @ v``, ``H.to_scipy()``), one shared Krylov run for the
three estimators. No landscape checkpoint needed.
Run: python examples/hessian_of_your_model.py [--tiny]
"""

import argparse

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import landscape

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--tiny", action="store_true", help="seconds-scale settings")
args = parser.parse_args()
n, width = (64, 16) if args.tiny else (1024, 128)

torch.manual_seed(0)
model = nn.Sequential(nn.Flatten(), nn.Linear(64, width), nn.Tanh(), nn.Linear(width, 3))
data = DataLoader(TensorDataset(torch.randn(n, 1, 8, 8), torch.randint(0, 3, (n,))), batch_size=32)
loss_fn = nn.CrossEntropyLoss()

H = landscape.hessian_operator(model, loss_fn, data)  # batches streamed past a memory budget
basis = H.krylov(seed=0)  # shared: the trace and density reuse the top-k products
top = landscape.top_eigenvalues(H, k=3, tol=1e-3, krylov=basis)
tr = landscape.trace(H, rtol=0.05, max_hvps=60 if args.tiny else 200, krylov=basis)
density = landscape.spectral_density(H, runs=1 if args.tiny else 4, steps=20, krylov=basis)
print(f"H: {H.shape}, {H.dtype}, loss reduction {H.reduction}, {H.hvps} Hessian-vector products in all")
print("top eigenvalues:", [f"{v:.4g}" for v in top.eigenvalues], "certified:", top.converged)
print(f"trace: {tr.estimate:.4g}  95% CI [{tr.ci[0]:.4g}, {tr.ci[1]:.4g}]  ({tr.hvps} Hessian-vector products)")
print(f"density: {len(density.grid)} grid points, bandwidth {density.bandwidth:.3g}")
