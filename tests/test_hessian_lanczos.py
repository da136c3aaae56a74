"""Lanczos eigenvalues: exact spectra (explicit matrices, dense model Hessians), certificates, budget policy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_hessian_models import batches, one_thread, reference  # noqa: F401
from torch import nn

from landscape.errors import LandscapeError
from landscape.hessian import ConvergenceWarning, MatrixOperator, hvp_operator, per_block, top_eigenvalues

CE = nn.CrossEntropyLoss()


def matrix(eigenvalues, seed: int = 0) -> torch.Tensor:
    """Symmetric matrix with the given spectrum in a random orthonormal basis (float64)."""
    ev = torch.as_tensor(eigenvalues, dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(len(ev), len(ev), generator=torch.Generator().manual_seed(seed),
                                       dtype=torch.float64))
    a = q @ torch.diag(ev) @ q.T
    return (a + a.T) / 2


def test_known_spectrum_top_and_bottom_k_and_true_residuals():
    ev = np.concatenate([[9.0, 7.5, 6.0, 5.5, 5.0], np.linspace(-2.0, 3.0, 190), [-4.0, -6.5, -8.0]])
    a = matrix(ev)
    for which, expect in (("largest", np.sort(ev)[::-1][:5]), ("smallest", np.sort(ev)[:5])):
        res = top_eigenvalues(MatrixOperator(a), k=5, tol=1e-11, max_hvps=200, which=which, return_eigenvectors=True)
        assert all(res.converged) and res.hvps < 200 and res.which == which
        np.testing.assert_allclose(res.eigenvalues, expect, rtol=1e-10)
        for lam, r, v in zip(res.eigenvalues, res.residuals, res.eigenvectors):
            assert v.shape == (len(ev),) and abs(float(v.norm()) - 1) < 1e-12
            true = float((a @ v - lam * v).norm())  # the reported residual is the true one
            assert r <= 1e-11 * abs(lam) and abs(true - r) < 1e-12


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
@pytest.mark.parametrize("which", ["largest", "smallest"])
def test_model_extreme_eigenvalues_match_eigvalsh(kind, which):
    model, x, y, h, ev = reference(kind)
    expect = ev.flip(0)[:4] if which == "largest" else ev[:4]
    res = top_eigenvalues(model, CE, batches(x, y, 16), k=4, tol=1e-10, max_hvps=250, which=which, seed=1,
                          return_eigenvectors=True)
    assert all(res.converged)
    np.testing.assert_allclose(res.eigenvalues, expect.numpy(), rtol=1e-8)
    names = [n for n, _ in model.named_parameters()]
    for lam, r, vec in zip(res.eigenvalues, res.residuals, res.eigenvectors):
        assert list(vec) == names and all(vec[n].shape == p.shape for n, p in model.named_parameters())
        flat = torch.cat([vec[n].reshape(-1) for n in names])
        assert abs(float(flat.norm()) - 1) < 1e-12
        assert float((h @ flat - lam * flat).norm()) <= r + 1e-12


def test_default_tolerance_is_a_certificate_and_cheap():
    model, x, y, h, ev = reference("cnn")
    res = top_eigenvalues(model, CE, batches(x, y, 16), k=2, tol=1e-3)
    assert all(res.converged) and res.hvps <= 15 and res.seconds > 0 and res.seed == 0
    # Weyl: an eigenvalue lies within the residual of each Ritz value
    for lam, r in zip(res.eigenvalues, res.residuals):
        assert r <= 1e-3 * abs(lam) and float((ev - lam).abs().min()) <= r


def test_repeated_eigenvalues_are_found_through_restarts():
    a = matrix([3.0] * 10 + [2.0] * 10 + [1.0] * 10, seed=1)  # Krylov spaces here are 3-dimensional
    res = top_eigenvalues(MatrixOperator(a), k=4, tol=1e-10, max_hvps=30)
    assert all(res.converged)
    np.testing.assert_allclose(res.eigenvalues, [3.0] * 4, rtol=1e-10)


def test_budget_exhaustion_warns_or_raises():
    a = matrix(np.linspace(1.0, 1.1, 100))  # clustered: no chance in 6 products
    with pytest.warns(ConvergenceWarning, match="did not reach residual"):
        res = top_eigenvalues(MatrixOperator(a), k=2, tol=1e-8, max_hvps=6)
    assert res.hvps == 6 and not all(res.converged) and len(res.eigenvalues) == 2
    with pytest.raises(LandscapeError, match="did not reach residual"):
        top_eigenvalues(MatrixOperator(a), k=2, tol=1e-8, max_hvps=6, strict=True)


def test_same_seed_same_numbers():
    a = matrix(np.linspace(-1.0, 4.0, 80), seed=2)
    runs = [top_eigenvalues(MatrixOperator(a), k=2, tol=1e-3, seed=s) for s in (5, 5, 6)]
    assert runs[0].eigenvalues == runs[1].eigenvalues and runs[0].hvps == runs[1].hvps
    assert runs[0].eigenvalues != runs[2].eigenvalues


@pytest.mark.parametrize("kwargs, message", [
    ({"k": 0}, "k must be an integer >= 1"),
    ({"k": 1, "which": "middle"}, "which must be 'largest' or 'smallest'"),
    ({"k": 1, "tol": 0.0}, "tol must be > 0"),
    ({"k": 3, "max_hvps": 2}, "max_hvps must be an integer >= 3"),
    ({"k": 11}, "exceeds the number of parameters"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(LandscapeError, match=message):
        top_eigenvalues(MatrixOperator(torch.eye(10, dtype=torch.float64)), **kwargs)


def test_per_block_values_equal_dense_diagonal_blocks():
    model, x, y, h, _ = reference("cnn")
    data = batches(x, y, 16)
    blocks = per_block(model, CE, data, tol=1e-10, rtol=0.0, max_hvps=160)
    names = [n for n, _ in model.named_parameters()]
    sizes = [p.numel() for _, p in model.named_parameters()]
    offsets = dict(zip(names, np.cumsum([0] + sizes[:-1])))
    assert [b.name for b in blocks] == ["features.0", "features.1", "features.3", "features.4", "head"]
    for b in blocks:
        idx = torch.cat([torch.arange(offsets[n], offsets[n] + dict(zip(names, sizes))[n]) for n in b.params])
        sub = h[idx][:, idx]
        assert b.num_params == len(idx) and b.converged and b.trace_stopped_by == "exact"
        assert b.top_eigenvalue == pytest.approx(float(torch.linalg.eigvalsh(sub)[-1]), rel=1e-8)
        assert b.trace == pytest.approx(float(sub.trace()), rel=1e-10, abs=1e-12)
    custom = per_block(model, CE, data, blocks={"bn": ["features.1.weight", "features.4.weight"]}, tol=1e-10)
    idx = torch.cat([torch.arange(offsets[n], offsets[n] + 4) for n in ("features.1.weight", "features.4.weight")])
    assert custom[0].trace == pytest.approx(float(h[idx][:, idx].trace()), rel=1e-10)
    with pytest.raises(LandscapeError, match="block 'x': 'nope' is not a trainable parameter"):
        per_block(model, CE, data, blocks={"x": ["nope"]})


def test_model_operator_and_model_arguments_agree():
    model, x, y, _, _ = reference("mlp")
    op = hvp_operator(model, CE, batches(x, y, 16))
    a = top_eigenvalues(op, k=1, tol=1e-6)
    b = top_eigenvalues(model, CE, batches(x, y, 16), k=1, tol=1e-6)
    assert a.eigenvalues == b.eigenvalues and a.hvps == b.hvps == op.hvps
    with pytest.raises(LandscapeError, match="pass loss_fn and data"):
        top_eigenvalues(model)
