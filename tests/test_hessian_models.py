"""Exact references for the Hessian tests: tiny float64 models, data and dense Hessians.

Imported by the other ``test_hessian*`` modules; its own test checks the
dense-Hessian oracle against a closed form.
"""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn
from torch.func import functional_call


def mlp(seed: int = 0) -> nn.Module:
    """10 -> 12 (tanh) -> 3: 171 parameters."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(10, 12), nn.Tanh(), nn.Linear(12, 3)).double()


class TinyBNCNN(nn.Module):
    """Two 3x3 convs with BatchNorm (eval mode, non-trivial running statistics), avg pool, linear: 267 parameters."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Tanh(),
            nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.Softplus(),
            nn.AdaptiveAvgPool2d(2),
        )
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


def cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = TinyBNCNN().double()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.3, 0.3)
    return model.eval()


def data(kind: str, n: int = 40, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs for ``kind`` ("mlp" or "cnn") and 3-class targets, float64."""
    g = torch.Generator().manual_seed(seed)
    shape = (n, 10) if kind == "mlp" else (n, 1, 6, 6)
    return torch.randn(shape, generator=g, dtype=torch.float64), torch.randint(0, 3, (n,), generator=g)


def batches(x: torch.Tensor, y: torch.Tensor, size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(x[i:i + size], y[i:i + size]) for i in range(0, len(y), size)]


def dense_hessian(model: nn.Module, loss_fn, x: torch.Tensor, y: torch.Tensor, names=None) -> torch.Tensor:
    """``torch.func.hessian`` of the mean loss over ``(x, y)`` w.r.t. the flattened ``names`` (default: trainable)."""
    params = dict(model.named_parameters())
    state = {**{n: p.detach() for n, p in params.items()}, **dict(model.named_buffers())}
    names = [n for n, p in params.items() if p.requires_grad] if names is None else list(names)
    shapes = [params[n].shape for n in names]
    sizes = [params[n].numel() for n in names]

    def loss(flat):
        parts = {n: t.view(s) for n, t, s in zip(names, torch.split(flat, sizes), shapes)}
        return loss_fn(functional_call(model, {**state, **parts}, (x,)), y)

    flat = torch.cat([params[n].detach().reshape(-1) for n in names])
    was = model.training
    model.eval()
    h = torch.func.hessian(loss)(flat)
    model.train(was)
    return (h + h.T) / 2


@functools.lru_cache(maxsize=None)
def reference(kind: str):
    """``(model, x, y, dense Hessian, ascending eigenvalues)`` for ``kind`` ("mlp"/"cnn"), computed once per session.

    Callers must leave the model's weights as they found them.
    """
    model = mlp() if kind == "mlp" else cnn()
    x, y = data(kind)
    h = dense_hessian(model, nn.CrossEntropyLoss(), x, y)
    return model, x, y, h, torch.linalg.eigvalsh(h)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one thread avoids contention on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_dense_hessian_oracle_matches_closed_form():
    # Least squares: loss = mean((X w + b - t)^2) has Hessian (2/N) [X 1]^T [X 1].
    torch.manual_seed(0)
    model = nn.Linear(5, 1).double()
    x, t = torch.randn(30, 5, dtype=torch.float64), torch.randn(30, 1, dtype=torch.float64)
    h = dense_hessian(model, nn.MSELoss(), x, t)
    xb = torch.cat([x, torch.ones(30, 1, dtype=torch.float64)], 1)
    torch.testing.assert_close(h, 2 / 30 * xb.T @ xb, rtol=1e-12, atol=1e-12)
