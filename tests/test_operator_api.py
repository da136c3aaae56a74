"""The operator API: ``hessian_operator`` / ``ggn_operator`` / ``fisher_operator`` on any model, loss and data.

Every number is checked against a dense float64 reference (``torch.func``).
"""

from __future__ import annotations

import weakref

import numpy as np
import pytest
import torch
from scipy.sparse.linalg import eigsh
from test_hessian_models import batches, data, dense_hessian, mlp, one_thread, reference  # noqa: F401
from torch import nn
from torch.func import functional_call, jacrev

import landscape
from landscape.errors import LandscapeError
from landscape.hessian import per_block, top_eigenvalues, trace

CE = nn.CrossEntropyLoss()


def _flat_params(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def _call(model, flat, x):
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    parts = torch.split(flat, [p.numel() for p in model.parameters()])
    return functional_call(model, {n: t.view(s) for n, t, s in zip(names, parts, shapes)}, (x,))


def test_matmul_shape_and_scipy_match_the_dense_hessian():
    model, x, y, h, eig = reference("mlp")
    H = landscape.hessian_operator(model, CE, batches(x, y, 16))
    assert (H.shape, H.dtype, H.device, H.reduction) == ((171, 171), torch.float64, x.device, "mean")
    V = torch.randn(171, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(H @ V, h @ V, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(H @ V[:, 0], h @ V[:, 0], rtol=1e-10, atol=1e-12)
    assert H.hvps == 4
    A = H.to_scipy()
    assert A.shape == (171, 171) and A.dtype == np.float64
    np.testing.assert_allclose(A @ V[:, 1].numpy(), (h @ V[:, 1]).numpy(), rtol=1e-10, atol=1e-12)
    top = np.sort(eigsh(A, k=3, which="LA", tol=1e-10)[0])[::-1]
    np.testing.assert_allclose(top, eig.flip(0)[:3].numpy(), rtol=1e-8)
    ours = top_eigenvalues(H, k=3, tol=1e-8).eigenvalues
    np.testing.assert_allclose(ours, top, rtol=1e-7)
    with pytest.raises(LandscapeError, match=r"multiplies a tensor \[171\]"):
        H @ torch.ones(5, dtype=torch.float64)


def test_estimators_share_one_krylov_run_on_the_operator():
    model, x, y, h, eig = reference("mlp")
    H = landscape.hessian_operator(model, CE, [(x, y)])
    basis = H.krylov(seed=3)
    top = top_eigenvalues(H, k=2, tol=1e-6, seed=3, krylov=basis)
    used = H.hvps
    tr = trace(H, rtol=0.0, max_hvps=30, seed=3, krylov=basis)
    assert tr.shared_hvps == used and H.hvps == used + tr.hvps  # the top-k products were not repeated
    alone = top_eigenvalues(landscape.hessian_operator(model, CE, [(x, y)]), k=2, tol=1e-6, seed=3)
    assert top.eigenvalues == alone.eigenvalues
    np.testing.assert_allclose(top.eigenvalues, eig.flip(0)[:2].numpy(), rtol=1e-5)


def test_dict_batches_and_batch_fn_give_the_numbers_of_tuples():
    model, x, y, h, _ = reference("mlp")
    v = torch.randn(171, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    tuples = landscape.hessian_operator(model, CE, batches(x, y, 16)) @ v
    for loader, fn in [
        ([{"image": a, "label": b} for a, b in batches(x, y, 16)], None),
        ([{"input": a, "target": b, "id": 0} for a, b in batches(x, y, 16)], None),
        ([{"pixels": a, "y": b} for a, b in batches(x, y, 16)], lambda d: (d["pixels"], d["y"])),
    ]:
        torch.testing.assert_close(landscape.hessian_operator(model, CE, loader, batch_fn=fn) @ v, tuples,
                                   rtol=1e-13, atol=1e-15)
    with pytest.raises(LandscapeError, match="keys pixels, y: the default batch_fn reads image/label"):
        landscape.hessian_operator(model, CE, [{"pixels": x, "y": y}])


class _Stream:
    """A re-iterable loader that makes its batches on the fly and counts how many are alive at once."""

    def __init__(self, x, y, size):
        self.x, self.y, self.size = x, y, size
        self.alive = self.most_alive = 0

    def _gone(self):
        self.alive -= 1

    def __iter__(self):
        for i in range(0, len(self.y), self.size):
            xb = self.x[i:i + self.size].clone()  # a fresh tensor, as a loader's collate makes
            self.alive += 1
            self.most_alive = max(self.most_alive, self.alive)
            weakref.finalize(xb, self._gone)
            yield xb, self.y[i:i + self.size]
            del xb


def test_data_past_the_budget_streams_one_batch_at_a_time():
    model, x, y, h, _ = reference("cnn")
    loader = _Stream(x, y, 8)  # 5 batches of 2368 bytes (inputs and targets)
    H = landscape.hessian_operator(model, CE, loader, graph_memory=5000)  # room for 2 batches, not for graphs
    assert len(H.batches.kept) == 2 and H.batches.streamed and H.num_samples == 40
    loader.most_alive = loader.alive
    v = torch.randn(H.size, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    torch.testing.assert_close(H @ v, h @ v, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(H @ v, h @ v, rtol=1e-10, atol=1e-12)
    assert loader.most_alive - loader.alive <= 1  # of the re-read batches, one at a time was alive
    # everything streamed (nothing kept), and a loader that shuffles is refused
    nothing = landscape.hessian_operator(model, CE, loader, graph_memory=0)
    assert nothing.batches.kept == [] and nothing.batches.kept_bytes == 0
    torch.testing.assert_close(nothing @ v, h @ v, rtol=1e-10, atol=1e-12)
    loader.x = x.flip(0)
    with pytest.raises(LandscapeError, match="shuffle=False, no random augmentation"):
        nothing @ v
    # a one-shot generator is fine when it fits, refused when it would have to be re-read
    fits = landscape.hessian_operator(model, CE, iter(batches(x, y, 8)))
    torch.testing.assert_close(fits @ v, h @ v, rtol=1e-10, atol=1e-12)
    with pytest.raises(LandscapeError, match="one-shot iterator"):
        landscape.hessian_operator(model, CE, iter(batches(x, y, 8)), graph_memory=0)


def test_reduction_is_checked_and_the_result_is_the_mean_hessian():
    model, x, y, h, _ = reference("mlp")
    v = torch.randn(171, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    for loss_fn, reduction in [(nn.CrossEntropyLoss(reduction="sum"), "sum"),
                               (lambda out, t: nn.functional.cross_entropy(out, t, reduction="sum"), "sum"),
                               (lambda out, t: nn.functional.cross_entropy(out, t), "mean")]:
        H = landscape.hessian_operator(model, loss_fn, batches(x, y, 16))  # uneven: 16 + 16 + 8
        assert H.reduction == reduction
        torch.testing.assert_close(H @ v, h @ v, rtol=1e-10, atol=1e-12)
    with pytest.raises(LandscapeError, match="neither the mean nor the sum"):
        landscape.hessian_operator(model, lambda out, t: nn.functional.cross_entropy(out, t) ** 2, [(x, y)])
    with pytest.raises(LandscapeError, match="reduction must be 'mean' or 'sum'"):
        landscape.hessian_operator(model, CE, [(x, y)], reduction="max")


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_ggn_and_empirical_fisher_equal_their_dense_definitions(kind):
    model, x, y, h, _ = reference(kind)
    size = h.shape[0]
    flat = _flat_params(model)
    jac = jacrev(lambda w: _call(model, w, x))(flat)  # [N, C, P]
    p = torch.softmax(model(x).detach(), 1)
    h_out = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]  # CE Hessian in the logits, per sample
    ggn = torch.einsum("ncp,ncd,ndq->pq", jac, h_out, jac) / len(y)
    per_sample = jacrev(lambda w: nn.functional.cross_entropy(_call(model, w, x), y, reduction="none"))(flat)
    fisher = per_sample.T @ per_sample / len(y)
    V = torch.randn(size, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    G = landscape.ggn_operator(model, CE, batches(x, y, 16))
    F = landscape.fisher_operator(model, CE, batches(x, y, 16))
    torch.testing.assert_close(G @ V, ggn @ V, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(F @ V, fisher @ V, rtol=1e-10, atol=1e-12)
    assert (G.kind, F.kind, G.shape, F.dtype) == ("ggn", "fisher", (size, size), torch.float64)
    assert not torch.allclose(ggn, h, rtol=1e-3, atol=1e-6)  # the tanh layers make the Hessian differ
    # a linear model under squared error: the GGN is the Hessian
    x, V = data("mlp")[0], torch.randn(33, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    lin = nn.Linear(10, 3).double()
    t = torch.randn(40, 3, dtype=torch.float64)
    mse = nn.MSELoss()
    torch.testing.assert_close(landscape.ggn_operator(lin, mse, batches(x, t, 16)) @ V,
                               dense_hessian(lin, mse, x, t) @ V, rtol=1e-10, atol=1e-12)


def test_per_block_takes_the_operator():
    model, x, y, _, _ = reference("mlp")
    H = landscape.hessian_operator(model, CE, batches(x, y, 16))
    ours = per_block(H, max_hvps=60)
    theirs = per_block(model, CE, batches(x, y, 16), max_hvps=60)
    assert [b.name for b in ours] == ["0", "2"]
    assert [b.top_eigenvalue for b in ours] == [b.top_eigenvalue for b in theirs]
    block = dense_hessian(model, CE, x, y, names=["2.weight", "2.bias"])
    assert ours[1].trace == pytest.approx(float(block.trace()), rel=1e-10)  # 39 parameters: exact


def test_a_half_precision_model_gets_a_float32_hessian_never_under_autocast():
    model = mlp(1)
    x, y = data("mlp")
    reference_h = dense_hessian(model.float(), CE, x.float(), y)
    model = model.bfloat16()
    H = landscape.hessian_operator(model, CE, [(x, y)])
    assert H.dtype == torch.float32 and next(model.parameters()).dtype == torch.bfloat16
    v = torch.randn(171, generator=torch.Generator().manual_seed(5))
    exact = dense_hessian(model.float(), CE, x.float(), y) @ v  # the bf16 weights, in float32
    model.bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = H @ v
    torch.testing.assert_close(inside, exact, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(reference_h @ v, exact, rtol=1e-4, atol=1e-5)  # the weights were rounded
