"""Surface evaluation against closed forms, update_bn, symmetry and resume (models built here)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn
from torch.optim.swa_utils import update_bn

from landscape.directions import interp_direction, random_directions
from landscape.errors import LandscapeError
from landscape.surface import axis, evaluate_surface, parse_grid
from landscape.surface.fold import Folded


class Quadratic(nn.Module):
    """Outputs its weight; with :func:`quadratic_loss` the loss is exactly ``w'Aw/2 - b'w``."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w.clone())

    def forward(self, x):
        return self.w.reshape(-1)


def quadratic_problem(seed=0, linear=True, at_zero=False):
    gen = torch.Generator().manual_seed(seed)
    m = torch.randn(6, 6, generator=gen, dtype=torch.float64)
    a = m @ m.T + torch.eye(6, dtype=torch.float64)
    b = torch.randn(6, generator=gen, dtype=torch.float64) if linear else torch.zeros(6, dtype=torch.float64)
    w = torch.zeros(3, 2, dtype=torch.float64) if at_zero else torch.randn(3, 2, generator=gen, dtype=torch.float64)
    d1 = {"w": torch.randn(3, 2, generator=gen, dtype=torch.float64)}
    d2 = {"w": torch.randn(3, 2, generator=gen, dtype=torch.float64)}

    def loss_fn(out, y):
        return 0.5 * out @ a @ out - b @ out

    data = (torch.zeros(10, 1, dtype=torch.float64), torch.zeros(10, dtype=torch.long))
    return Quadratic(w), loss_fn, data, d1, d2, (a, b, w)


def closed_form(a, b, v):
    v = v.reshape(-1)
    return float(0.5 * v @ a @ v - b @ v)


@pytest.mark.parametrize("fast", [True, False])
def test_quadratic_surfaces_match_closed_form(fast):
    model, loss_fn, data, d1, d2, (a, b, w) = quadratic_problem()
    xs, ys = axis(5, -0.7, 0.7), axis(4, -2.0, 1.5)
    two = evaluate_surface(model, loss_fn, data, [d1, d2], xs, ys, batch_size=3, fast=fast)
    expected = np.array([[closed_form(a, b, w + x * d1["w"] + y * d2["w"]) for y in ys] for x in xs])
    assert two.loss.shape == (5, 4)
    np.testing.assert_allclose(two.loss, expected, rtol=1e-12, atol=1e-12)
    assert np.isnan(two.accuracy).all()  # outputs are not logits
    one = evaluate_surface(model, loss_fn, data, [d2], axis(7, -1.0, 3.0), batch_size=4, fast=fast)
    expected1 = [closed_form(a, b, w + x * d2["w"]) for x in axis(7, -1.0, 3.0)]
    np.testing.assert_allclose(one.loss, expected1, rtol=1e-12, atol=1e-12)


def test_symmetric_problem_gives_a_symmetric_surface():
    model, loss_fn, data, d1, d2, _ = quadratic_problem(linear=False, at_zero=True)
    xs, ys = axis(7, -1.5, 1.5), axis(5, -1.0, 1.0)
    assert np.array_equal(xs, -xs[::-1]) and xs[3] == 0.0
    res = evaluate_surface(model, loss_fn, data, [d1, d2], xs, ys)
    np.testing.assert_allclose(res.loss, res.loss[::-1, ::-1], rtol=1e-14, atol=0)


def bn_cnn(seed=0, dtype=torch.float32) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3),
    ).to(dtype)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_()
    return model.eval()


def images(n=40, seed=0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 8, 8, generator=gen).to(dtype), torch.randint(0, 3, (n,), generator=gen)


def plain_loss(model, x, y) -> float:
    with torch.no_grad():
        return float(nn.CrossEntropyLoss()(model(x).double(), y))


def test_center_equals_model_loss_and_model_is_untouched():
    model = bn_cnn()
    before = copy.deepcopy(model.state_dict())
    x, y = images()
    dirs = random_directions(model, 2, seed=0, include_bias_bn=True)
    xs, ys = axis(5, -1, 1), axis(3, -0.5, 0.5)
    fast = evaluate_surface(model, nn.CrossEntropyLoss(), (x, y), dirs, xs, ys, batch_size=16)
    exact = evaluate_surface(model, nn.CrossEntropyLoss(), (x, y), dirs, xs, ys, batch_size=16, fast=False)
    reference = plain_loss(model, x, y)
    assert abs(fast.loss[2, 1] - reference) <= 1e-6
    assert abs(exact.loss[2, 1] - reference) <= 1e-6
    np.testing.assert_allclose(fast.loss, exact.loss, rtol=1e-5)
    with torch.no_grad():
        assert abs(exact.accuracy[2, 1] - float((model(x).argmax(1) == y).double().mean())) == 0
    evaluate_surface(model, nn.CrossEntropyLoss(), (x, y), dirs, xs, ys, bn="recompute", bn_data=images(24, seed=1))
    assert not model.training
    state = model.state_dict()
    assert all(torch.equal(state[k], before[k]) for k in before)


def test_folded_twin_tracks_perturbed_weights_in_float64():
    model = bn_cnn(dtype=torch.float64)
    x, _ = images(dtype=torch.float64)
    work = copy.deepcopy(model)
    folded = Folded(work, channels_last=True)
    assert len(folded.pairs) == 2
    with torch.no_grad():
        for p in work.parameters():
            p.add_(0.1 * torch.randn_like(p))
        work[1].running_var.mul_(1.7)
    folded.refresh()
    with torch.no_grad():
        torch.testing.assert_close(folded.module(folded.prepare_input(x)), work(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fast", [True, False])
def test_recompute_bn_matches_update_bn(fast):
    model = bn_cnn(dtype=torch.float64)
    x, y = images(dtype=torch.float64)
    bn_x, bn_y = images(30, seed=2, dtype=torch.float64)
    dirs = random_directions(model, 2, seed=1)
    xs, ys = axis(3, -0.5, 0.5), axis(3, -0.5, 0.5)
    res = evaluate_surface(model, nn.CrossEntropyLoss(), (x, y), dirs, xs, ys, bn="recompute",
                           bn_data=(bn_x, bn_y), batch_size=8, fast=fast)
    ref = copy.deepcopy(model)
    with torch.no_grad():
        for name, p in ref.named_parameters():
            if name in dirs[0]:
                p.add_(xs[0] * dirs[0][name] + ys[2] * dirs[1][name])
    update_bn([(bx, by) for bx, by in zip(bn_x.split(8), bn_y.split(8))], ref)
    ref.eval()
    assert abs(res.loss[0, 2] - plain_loss(ref, x, y)) < 1e-10
    frozen = evaluate_surface(model, nn.CrossEntropyLoss(), (x, y), dirs, xs, ys, fast=fast)
    assert abs(frozen.loss[0, 2] - res.loss[0, 2]) > 1e-3  # the two modes differ on this model


def test_interpolation_reaches_the_other_model():
    a, b = bn_cnn(0), bn_cnn(1)
    x, y = images()
    ts = axis(9, -0.5, 1.5)
    assert ts[2] == 0.0 and ts[6] == 1.0
    res = evaluate_surface(a, nn.CrossEntropyLoss(), (x, y), [interp_direction(a, b.state_dict())], ts)
    assert abs(res.loss[6] - plain_loss(b, x, y)) <= 1e-6
    assert abs(res.loss[2] - plain_loss(a, x, y)) <= 1e-6


def test_swapping_directions_transposes_the_surface():
    model = bn_cnn()
    x, y = images()
    d1, d2 = random_directions(model, 2, seed=5)
    xs = axis(4, -1, 1)
    one = evaluate_surface(model, nn.CrossEntropyLoss(), (x, y), [d1, d2], xs, xs, fast=False)
    two = evaluate_surface(model, nn.CrossEntropyLoss(), (x, y), [d2, d1], xs, xs, fast=False)
    np.testing.assert_allclose(one.loss, two.loss.T, rtol=1e-6)


def test_interrupted_surface_resumes_to_identical_arrays(tmp_path):
    model = bn_cnn()
    x, y = images()
    dirs = random_directions(model, 2, seed=3)
    xs, ys = axis(5, -1, 1), axis(4, -1, 1)
    straight = evaluate_surface(model, nn.CrossEntropyLoss(), (x, y), dirs, xs, ys)
    partial = tmp_path / "s.partial.npz"

    def stop_after_two(row, loss_row, acc_row):
        if row == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        evaluate_surface(model, nn.CrossEntropyLoss(), (x, y), dirs, xs, ys, resume_path=partial,
                         callback=stop_after_two)
    resumed = evaluate_surface(model, nn.CrossEntropyLoss(), (x, y), dirs, xs, ys, resume_path=partial)
    assert resumed.evaluated == 3 * 4
    assert np.array_equal(resumed.loss, straight.loss) and np.array_equal(resumed.accuracy, straight.accuracy)
    # a partial file from other settings is never mixed in
    other = evaluate_surface(model, nn.CrossEntropyLoss(), (x, y), dirs, xs, axis(4, -2, 2), resume_path=partial)
    assert other.evaluated == 5 * 4


def test_axis_and_grid_validation():
    xs = axis(21, -1.0, 1.0)
    assert xs[10] == 0.0 and np.array_equal(xs, -xs[::-1]) and xs[0] == -1.0
    ts = axis(21, -0.5, 1.5)
    assert ts[5] == 0.0 and ts[15] == 1.0
    assert parse_grid("21x15", 2) == (21, 15) and parse_grid(9, 2) == (9, 9) and parse_grid("7", 1) == (7,)
    for bad in ("1", "5x1", "ax3"):
        with pytest.raises(LandscapeError):
            parse_grid(bad, 2)
    with pytest.raises(LandscapeError, match="at least 2"):
        axis(1, -1, 1)


def test_bad_directions_are_rejected():
    model = bn_cnn()
    x, y = images()
    with pytest.raises(LandscapeError, match="not a parameter"):
        evaluate_surface(model, nn.CrossEntropyLoss(), (x, y), [{"nope": torch.zeros(1)}], axis(3, -1, 1))
    with pytest.raises(LandscapeError, match="needs 2 direction"):
        evaluate_surface(model, nn.CrossEntropyLoss(), (x, y), random_directions(model, 1), axis(3, -1, 1), axis(3, -1,
                                                                                                                 1))
    with pytest.raises(LandscapeError, match="bn_data"):
        evaluate_surface(model, nn.CrossEntropyLoss(), (x, y), random_directions(model, 1), axis(3, -1, 1),
                         bn="recompute")
