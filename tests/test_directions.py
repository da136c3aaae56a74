"""Landscape directions: filter normalisation by hand, interpolation, trajectory PCA, Hessian eigenvectors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from landscape.directions import (
    eigen_directions,
    filter_normalize,
    interp_direction,
    norm,
    random_directions,
    tensor_hash,
    trainable,
    trajectory_pca,
)
from landscape.errors import LandscapeError


def conv_linear_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 4)
    ).double()


def test_filter_normalisation_matches_hand_computation():
    model = conv_linear_model()
    (d,) = random_directions(model, 1, seed=7)
    # the same draw by hand: float32 Gaussians in named_parameters order from one seeded CPU generator
    gen = torch.Generator().manual_seed(7)
    raw = {n: torch.randn(p.shape, generator=gen, dtype=torch.float32).double() for n, p in model.named_parameters()}
    conv_w, lin_w = model[0].weight.detach(), model[5].weight.detach()
    for name, w in (("0.weight", conv_w), ("5.weight", lin_w)):
        for i in range(w.shape[0]):
            g = raw[name][i]
            expected = g * (w[i].norm() / g.norm())
            torch.testing.assert_close(d[name][i], expected, rtol=1e-12, atol=0)
            assert abs(float(d[name][i].norm() - w[i].norm())) < 1e-12
    # biases and BN parameters are zero (absent) by default
    assert set(d) == {"0.weight", "5.weight"}


def test_include_bias_bn_normalises_each_tensor_and_keeps_weight_part():
    model = conv_linear_model()
    (plain,) = random_directions(model, 1, seed=3)
    (full,) = random_directions(model, 1, seed=3, include_bias_bn=True)
    weights = trainable(model)
    assert set(full) == set(weights)
    for name, w in weights.items():
        if w.ndim <= 1:
            assert abs(float(full[name].norm() - w.norm())) < 1e-12
        else:
            assert torch.equal(full[name], plain[name])


def test_filter_normalize_zero_filter_gets_zero():
    w = {"w": torch.tensor([[0.0, 0.0], [3.0, 4.0]], dtype=torch.float64)}
    d = filter_normalize({"w": torch.tensor([[1.0, 1.0], [0.0, 2.0]], dtype=torch.float64)}, w)
    torch.testing.assert_close(d["w"], torch.tensor([[0.0, 0.0], [0.0, 5.0]], dtype=torch.float64))


def test_random_directions_are_seeded():
    model = conv_linear_model()
    a1, a2 = random_directions(model, 2, seed=0)
    b1, _ = random_directions(model, 2, seed=0)
    c1, _ = random_directions(model, 2, seed=1)
    assert tensor_hash(a1) == tensor_hash(b1) != tensor_hash(c1)
    assert tensor_hash(a1) != tensor_hash(a2)


def test_interp_direction_reaches_other_weights_and_bn_buffers():
    a, b = conv_linear_model(0), conv_linear_model(1)
    b[1].running_mean.normal_()
    d = interp_direction(a, b.state_dict())
    for name, t in {**dict(a.named_parameters()), "1.running_mean": a[1].running_mean,
                    "1.running_var": a[1].running_var}.items():
        torch.testing.assert_close(t.detach() + d[name], b.state_dict()[name], rtol=0, atol=1e-15)
    assert "1.num_batches_tracked" not in d
    with pytest.raises(LandscapeError, match="shape"):
        interp_direction(a, {**b.state_dict(), "5.weight": torch.zeros(5, 3)})


def plane_trajectory():
    """Weights ``w`` and epochs ``w + a_e u + b_e v`` (+ ``c_e z`` off the plane), u, v, z orthonormal."""
    gen = torch.Generator().manual_seed(0)
    shapes = {"a.weight": (4, 3), "b.bias": (5,)}
    weights = {n: torch.randn(s, generator=gen, dtype=torch.float64) for n, s in shapes.items()}
    q, _ = torch.linalg.qr(torch.randn(17, 3, generator=gen, dtype=torch.float64))
    basis = [{"a.weight": q[:12, k].reshape(4, 3), "b.bias": q[12:, k]} for k in range(3)]
    # epoch coordinates orthogonal over epochs, so the principal axes are exactly u and v
    a = np.array([-4.0, -3.0, -2.0, -1.0, 0.0])
    b = np.array([-1.0, 1.0, 1.0, -1.0, 0.0])
    return weights, basis, a, b


def test_pca_of_a_planar_trajectory_is_exact():
    weights, (u, v, _), a, b = plane_trajectory()
    epochs = [{n: weights[n] + ae * u[n] + be * v[n] for n in weights} for ae, be in zip(a, b)]
    pca = trajectory_pca(weights, epochs, k=2)
    assert abs(pca.explained_variance.sum() - 1.0) < 1e-12
    np.testing.assert_allclose(pca.coords, np.stack([a, b], axis=1), atol=1e-12)
    np.testing.assert_allclose(pca.distance, 0.0, atol=1e-12)
    for pc, ref in zip(pca.directions, (u, v)):
        assert abs(norm(pc) - 1.0) < 1e-12
        for n in weights:
            torch.testing.assert_close(pc[n], ref[n], rtol=0, atol=1e-12)
    np.testing.assert_allclose(pca.explained_variance, [(a**2).sum(), (b**2).sum()] / ((a**2).sum() + (b**2).sum()),
                               rtol=1e-12)


def test_pca_distance_off_the_plane_and_variance_share():
    weights, (u, v, z), a, b = plane_trajectory()
    c = 0.03 * np.array([1.0, -1.0, 1.0 / 3.0, -5.0 / 3.0, 0.0])  # orthogonal to a and b over epochs
    epochs = [{n: weights[n] + ae * u[n] + be * v[n] + ce * z[n] for n in weights} for ae, be, ce in zip(a, b, c)]
    pca = trajectory_pca(weights, epochs, k=2)
    total = (a**2).sum() + (b**2).sum() + (c**2).sum()
    assert abs(pca.explained_variance.sum() - (total - (c**2).sum()) / total) < 1e-12
    np.testing.assert_allclose(pca.coords, np.stack([a, b], axis=1), atol=1e-12)
    np.testing.assert_allclose(pca.distance, np.abs(c), atol=1e-12)
    np.testing.assert_allclose(pca.length, np.sqrt(a**2 + b**2 + c**2), rtol=1e-12)


def test_pca_rejects_a_one_dimensional_trajectory():
    weights, (u, _, _), a, _ = plane_trajectory()
    epochs = [{n: weights[n] + ae * u[n] for n in weights} for ae in a]
    with pytest.raises(LandscapeError, match="fewer than 2"):
        trajectory_pca(weights, epochs, k=2)
    assert abs(trajectory_pca(weights, epochs, k=1).explained_variance[0] - 1.0) < 1e-12


def test_eigen_directions_match_dense_hessian():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3)).double()
    x, y = torch.randn(40, 4, dtype=torch.float64), torch.randint(0, 3, (40,))
    loss_fn = nn.CrossEntropyLoss()
    dirs, info = eigen_directions(model, loss_fn, [(x, y)], k=2, seed=0, tol=1e-8, max_hvps=80)
    params = trainable(model)
    names, shapes = list(params), [p.shape for p in params.values()]
    flat = torch.cat([p.reshape(-1) for p in params.values()])

    def loss_of(v):
        parts = torch.split(v, [int(np.prod(s)) for s in shapes])
        return loss_fn(torch.func.functional_call(model, {n: p.reshape(s) for n, p, s in zip(names, parts, shapes)},
                                                  (x,)), y)

    evals, evecs = torch.linalg.eigh(torch.func.hessian(loss_of)(flat))
    np.testing.assert_allclose(info["eigenvalues"], evals.flip(0)[:2].numpy(), rtol=1e-7)
    for d, ref in zip(dirs, evecs.flip(1).T[:2]):
        v = torch.cat([d[n].reshape(-1) for n in names])
        assert abs(abs(float(v @ ref)) - 1.0) < 1e-6
