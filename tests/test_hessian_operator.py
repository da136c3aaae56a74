"""The HVP operator equals the dense Hessian (torch.func.hessian, float64) times a vector."""

from __future__ import annotations

import pytest
import torch
from test_hessian_models import batches, cnn, data, dense_hessian, mlp, one_thread, reference  # noqa: F401
from torch import nn

from landscape.errors import LandscapeError
from landscape.hessian import MatrixOperator, hvp_operator

CE = nn.CrossEntropyLoss()


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_hvp_equals_dense_hessian_times_v(kind):
    model, x, y, h, _ = reference(kind)
    op = hvp_operator(model, CE, batches(x, y, 16))  # 16 + 16 + 8: uneven last batch
    assert (op.size, op.dtype, op.device, op.num_samples) == (h.shape[0], torch.float64, x.device, 40)
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        v = torch.randn(op.size, generator=g, dtype=torch.float64)
        torch.testing.assert_close(op.matvec(v), h @ v, rtol=1e-10, atol=1e-12)
    assert op.hvps == 3


def test_uneven_batches_equal_one_big_batch_and_leave_the_model_alone():
    model, x, y, h, _ = reference("cnn")
    model.train()
    bn = model.features[1]
    stats = (bn.running_mean.clone(), bn.running_var.clone())
    v = torch.randn(h.shape[0], generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    whole = hvp_operator(model, CE, [(x, y)]).matvec(v)
    for size in (7, 16, 39):
        torch.testing.assert_close(hvp_operator(model, CE, batches(x, y, size)).matvec(v), whole, rtol=1e-12,
                                   atol=1e-13)
    torch.testing.assert_close(whole, h @ v, rtol=1e-10, atol=1e-12)
    # products ran in eval mode (BN running statistics, untouched) and the training flags came back
    assert model.training and bn.training
    assert torch.equal(bn.running_mean, stats[0]) and torch.equal(bn.running_var, stats[1])
    model.eval()


def test_retained_graphs_give_the_same_products_as_rebuilt_ones():
    model, x, y, h, _ = reference("cnn")
    v = torch.randn(h.shape[0], generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    ops = [hvp_operator(model, CE, batches(x, y, 16), graph_memory=m) for m in (None, 0, 200_000)]
    for op in ops:
        first = op.matvec(v)
        torch.testing.assert_close(op.matvec(v), first, rtol=0, atol=1e-14)  # second product reuses or rebuilds
        torch.testing.assert_close(first, h @ v, rtol=1e-10, atol=1e-12)


def test_operator_is_a_snapshot_of_the_weights():
    model = mlp(3)
    x, y = data("mlp")
    op = hvp_operator(model, CE, [(x, y)])
    v = torch.ones(op.size, dtype=torch.float64)
    before = op.matvec(v)
    with torch.no_grad():
        model[0].weight.add_(1.0)
    torch.testing.assert_close(op.matvec(v), before, rtol=0, atol=0)


class _WithSpare(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = mlp(4)
        self.spare = nn.Linear(3, 3).double()  # never called: unused

    def forward(self, x):
        return self.net(x)


def test_frozen_and_unused_parameters_are_excluded():
    model = _WithSpare()
    model.net[0].bias.requires_grad_(False)
    x, y = data("mlp")
    op = hvp_operator(model, CE, batches(x, y, 15))
    assert op.names == ["net.0.weight", "net.2.weight", "net.2.bias"]
    assert op.unused == ["spare.weight", "spare.bias"]
    h = dense_hessian(model, CE, x, y, names=op.names)
    v = torch.randn(op.size, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    torch.testing.assert_close(op.matvec(v), h @ v, rtol=1e-10, atol=1e-12)
    # parameter-shaped views round-trip, absent names are zero
    parts = op.unflatten(v)
    assert list(parts) == op.names and parts["net.0.weight"].shape == (12, 10)
    torch.testing.assert_close(op.flatten(parts), v)
    assert op.flatten({}).abs().sum() == 0
    # an explicit subset, even a frozen parameter, is the matching block of the dense Hessian
    sub = ["net.0.bias", "net.2.bias"]
    op2 = hvp_operator(model, CE, [(x, y)], params=sub)
    w = torch.randn(op2.size, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    torch.testing.assert_close(op2.matvec(w), dense_hessian(model, CE, x, y, names=sub) @ w, rtol=1e-10, atol=1e-12)


def test_bad_inputs_raise_one_line_errors():
    model = mlp()
    x, y = data("mlp")
    cases = [
        (lambda: hvp_operator(model, CE, []), "data has no samples"),
        (lambda: hvp_operator(model, CE, [x]), "(inputs, targets)"),
        (lambda: hvp_operator(model, CE, [(x, y)], params=["nope"]), "not a parameter of the model: 'nope'"),
        (lambda: hvp_operator(model, nn.CrossEntropyLoss(reduction="none"), [(x, y)]), "must return a scalar"),
        (lambda: hvp_operator(model, lambda out, t: out.sum() * float("nan"), [(x, y)]), "not finite"),
        (lambda: MatrixOperator(torch.zeros(2, 3)), "square matrix"),
    ]
    for make, message in cases:
        with pytest.raises(LandscapeError, match=None) as err:
            make()
        assert message in str(err.value) and "\n" not in str(err.value)
