"""BatchNorm folding never fails silently: timm's norm+activation modules, pre-activation blocks, the fallback."""

from __future__ import annotations

import math
import shutil
from types import SimpleNamespace

import pytest
import timm
import torch
from torch import nn

from landscape.analysis.measure_context import MeasureContext
from landscape.errors import LandscapeError
from landscape.measures import REGISTRY, norms
from landscape.measures.catalogue import WEIGHTS
from landscape.measures.fold import fold_batchnorm

SIZE = 32
#: timm models whose BatchNorm is timm's BatchNormAct2d (traced through by plain torch.fx before the fix)
NORM_ACT = ["efficientnet_b0", "mobilenetv3_small_050"]
#: the groups whose values come from the folded weights (margin: log_spec_orig, path_norm_over_margin)
WEIGHT_GROUPS = ("norms", "margin", "fisher_rao", "pacbayes", "pacbayes_mag")


def _randomise_bn(model: nn.Module) -> nn.Module:
    """Non-trivial running statistics and affine parameters; eps = 0, so rescaling is exactly function-preserving."""
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eps = 0.0
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=gen, dtype=torch.float64) * 0.6 - 0.3)
                m.running_var.copy_(torch.rand(n, generator=gen, dtype=torch.float64) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(n, generator=gen, dtype=torch.float64) + 0.5)
                m.bias.copy_(torch.rand(n, generator=gen, dtype=torch.float64) * 0.4 - 0.2)
    return model


def _timm(name: str, seed: int = 0, **kwargs) -> nn.Module:
    torch.manual_seed(seed)
    model = timm.create_model(name, pretrained=False, num_classes=3, in_chans=1, **kwargs).double().eval()
    return _randomise_bn(model)


def _conv_bn_pairs(model: nn.Module) -> list[tuple[nn.Module, nn.Module]]:
    """Each BatchNorm with the conv registered right before it (a BatchNorm's own drop/act children skipped)."""
    units, inside = [], None
    for name, m in model.named_modules():
        if inside is not None and name.startswith(inside + "."):
            continue
        if isinstance(m, nn.BatchNorm2d):
            units.append(m)
            inside = name
        elif not list(m.children()):
            units.append(m)
    return [(a, b) for a, b in zip(units, units[1:]) if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d)]


@torch.no_grad()
def _rescale(model: nn.Module, c: float) -> None:
    for conv, bn in _conv_bn_pairs(model):
        conv.weight.mul_(c)
        bn.running_mean.mul_(c)
        bn.running_var.mul_(c * c)


def _x(n: int = 4) -> torch.Tensor:
    return torch.randn(n, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(5), dtype=torch.float64)


def _context(model: nn.Module, init: dict) -> MeasureContext:
    x = _x(12)
    y = model(x).argmax(1)
    y[:2] = (y[:2] + 1) % 3  # a few misfits so that the losses and margins are not degenerate
    ck = SimpleNamespace(model=model, loss_fn=nn.CrossEntropyLoss(), tensors=lambda split: (x, y),
                         meta={"data": {"split": {"train": list(range(100))}}, "model": {"name": "net"}})
    ctx = MeasureContext(ck, {"samples": 12, "seed": 0, "draws": 2, "depth": 3, "target": 0.1, "metric": "loss"})
    ctx.__dict__["init_state"] = init
    return ctx


def _values(model: nn.Module, init: dict, groups) -> dict:
    ctx = _context(model, init)
    out = {}
    for group in groups:
        spec = next(s for s in REGISTRY.values() if s.group == group)
        values = dict(spec.compute(ctx))
        values.pop("details")
        out.update(values)
    return out


@pytest.mark.parametrize("name", NORM_ACT)
def test_timm_norm_act_batchnorm_is_folded_and_its_activation_kept(name):
    model = _timm(name)
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    acts = sorted(type(m).__name__ for m in model.modules() if isinstance(m, (nn.SiLU, nn.ReLU, nn.Hardswish)))
    folded = fold_batchnorm(model, input_shape=(1, SIZE, SIZE))
    assert len(folded.pairs) == n_bn == len(_conv_bn_pairs(model)) and folded.unfolded == []
    assert folded.invariant and folded.verified and folded.summary()["invariant"] is True
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.model.modules())
    assert sorted(type(m).__name__ for m in folded.model.modules()
                  if isinstance(m, (nn.SiLU, nn.ReLU, nn.Hardswish))) == acts  # every activation stays in place
    x = _x()
    torch.testing.assert_close(folded.model(x), model(x), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", NORM_ACT)
def test_timm_weight_based_measures_are_invariant_under_rescaling(name):
    groups = WEIGHT_GROUPS if name == "mobilenetv3_small_050" else ("norms", "margin")  # seconds: the rest on one
    init = _timm(name, seed=1).state_dict()
    model = _timm(name)
    before = _values(model, init, groups)
    x = _x()
    logits = model(x)
    raw = norms.spectral_measures(model)["log_prod_spec"]
    _rescale(model, 3.0)
    torch.testing.assert_close(model(x), logits, rtol=1e-10, atol=1e-10)  # the same function
    assert norms.spectral_measures(model)["log_prod_spec"] != pytest.approx(raw, rel=1e-3)  # raw weights moved
    after = _values(model, init, groups)
    weight_based = {s.name for s in REGISTRY.values() if s.group in groups and WEIGHTS in s.tags}
    assert weight_based <= set(before) and {"log_prod_spec", "log_spec_orig", "path_norm_over_margin"} <= weight_based
    for key in weight_based:
        assert before[key] is not None and math.isfinite(before[key]), key
        assert after[key] == pytest.approx(before[key], rel=1e-6), key


def test_preactivation_batchnorm_stays_unfolded_and_the_record_says_not_invariant():
    # ResNetV2-18's pre-activation basic blocks, narrow and one block per stage (seconds, not minutes)
    model = _timm("resnetv2_18", layers=[1, 1, 1, 1], channels=(8, 8, 16, 16), stem_chs=8)
    folded = fold_batchnorm(model, input_shape=(1, SIZE, SIZE), name="resnetv2_18")
    # every block normalises its input before conv1 (norm1) and the head normalises after the last residual sum
    expected = sorted([n for n, _ in model.named_modules() if n.endswith(".norm1")] + ["norm"])
    assert sorted(folded.unfolded) == expected and len(folded.pairs) == 4  # norm2 after conv1 folds
    summary = folded.summary()
    assert summary["invariant"] is False and "5 normalisation module(s) not folded" in summary["reason"]
    x = _x()
    torch.testing.assert_close(folded.model(x), model(x), rtol=1e-9, atol=1e-9)
    details = REGISTRY["log_prod_spec"].compute(_context(model, model.state_dict()))["details"]
    assert details["invariant"] is False and details["unfolded"] == folded.unfolded


class _Untraceable(nn.Module):
    """Data-dependent control flow (torch.fx cannot trace it); conv registered before bn."""

    def __init__(self, bn_first: bool):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)
        self.bn = nn.BatchNorm2d(2)
        self.head = nn.Linear(2, 3)
        self.bn_first = bn_first

    def forward(self, x):
        if float(x.sum()) > 1e9:
            x = x * 0.5
        x = self.conv(self.bn(x)) if self.bn_first else self.bn(self.conv(x))
        return self.head(torch.relu(x).mean((2, 3)))


def _untraceable(bn_first: bool) -> nn.Module:
    torch.manual_seed(0)
    return _randomise_bn(_Untraceable(bn_first).double().eval())


def test_fallback_refuses_a_batchnorm_that_runs_before_its_conv():
    model = _untraceable(bn_first=True)
    with pytest.raises(LandscapeError, match=r"folding BatchNorm into the preceding layers of pre-bn-net .*"
                                             r"registration order\) changes its logits"):
        fold_batchnorm(model, input_shape=(2, 8, 8), name="pre-bn-net")
    with pytest.raises(LandscapeError, match="_Untraceable cannot be traced.*needs input_shape"):
        fold_batchnorm(model)  # no input to check the guess with: refuse rather than guess


def test_fallback_folds_a_batchnorm_that_runs_after_its_conv_and_checks_it():
    model = _untraceable(bn_first=False)
    folded = fold_batchnorm(model, input_shape=(2, 8, 8))
    assert folded.method == "registration order" and folded.verified and folded.pairs == [("conv", "bn")]
    x = torch.randn(3, 2, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(folded.model(x), model(x), rtol=1e-10, atol=1e-10)


def test_not_invariant_marks_the_weight_based_measures_of_a_record(tiny_run, tmp_path, monkeypatch, cli):
    import landscape.analysis.measure_context as mc
    from landscape.analysis.measures import analyze, not_invariant, weights_invariance
    from landscape.checkpoint import load_checkpoint

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("analysis"))
    ck = load_checkpoint(run, device="cpu")
    kw = {"measures": "log_prod_spec,path_norm_over_margin,inverse_margin,margin_p10", "samples": 16,
          "progress": False}
    rec = analyze(ck, **kw)
    assert rec["provenance"]["weights"]["invariant"] is True and not_invariant(ck.path, ck.fingerprint[:16]) == {}

    real = mc.fold_batchnorm

    def leaves_a_norm(*args, **kwargs):  # as if the model had a normalisation that cannot be folded
        folded = real(*args, **kwargs)
        folded.unfolded.append("features.norm")
        return folded

    monkeypatch.setattr(mc, "fold_batchnorm", leaves_a_norm)
    rec = analyze(ck, **{**kw, "samples": 17})
    assert rec["provenance"]["weights"]["invariant"] is False
    marked = not_invariant(ck.path, ck.fingerprint[:16])
    # the weight-based values of the record (its groups': norms and margin), not inverse_margin or margin_p10,
    # which read the logits, and folding does not change them
    assert set(marked) == {"dist_init", "log_prod_spec", "log_sum_spec", "log_prod_frob", "path_norm",
                           "log_spec_orig", "path_norm_over_margin"}
    assert "features.norm" in marked["log_prod_spec"]
    # every table that shows the weight-based values marks them: the predictor table, the CSV, LaTeX, correlate
    from landscape.report.collect import collect
    from landscape.report.correlate import correlate_runs
    from landscape.report.export import predictor_table, tidy_rows
    from landscape.report.predictor_panel import predictors_table

    runs, _ = collect([run], compute=False, progress=False)
    result = correlate_runs(runs)
    assert result["not_invariant"]["log_prod_spec"] == [runs[0].name] and result["not_invariant"]["margin_p10"] == []
    html = predictors_table(result)
    assert "path_norm_over_margin †" in html and "margin_p10 †" not in html and "† not invariant: " in html
    assert tidy_rows(runs)[0]["weights_invariant"] is False
    assert "$^\\dagger$Not invariant" in predictor_table(result)  # one run: no tau rows, the caption says it
    res = cli("measures", str(run), "--measures", kw["measures"], "--samples", "17", "--device", "cpu")
    assert res.code == 0 and "log_prod_spec †" in res.out and "margin_p10 †" not in res.out
    assert "† not invariant: 1 normalisation module(s) not folded (features.norm)" in res.out
    # records written before the flag: judged by their list of unfolded modules
    old = {"provenance": {"weights": {"unfolded": ["bn1"], "folded": 0}}}
    assert weights_invariance(old) == {"invariant": False, "unfolded": ["bn1"],
                                       "reason": "1 normalisation module(s) not folded: bn1"}
    assert weights_invariance({"provenance": {"weights": {"unfolded": []}}})["invariant"] is True
