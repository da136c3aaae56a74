"""The optimizer, model, analysis and panel registries: the CLI and the docs follow them; users can extend them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn

from landscape.analysis import AnalysisSpec, get_analysis, list_analyses, quantities, register_analysis
from landscape.errors import LandscapeError
from landscape.optim import OptimSpec, create_optimizer, get_optimizer, list_optimizers, register_optimizer
from landscape.optim.registry import _REGISTRY, optimizer_markdown
from landscape.optim.sam import SAM

ROOT = Path(__file__).resolve().parents[1]


def test_readme_optimizer_table_is_the_registry():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = re.search(r"<!-- optimizers:.*?-->\n(.*?)\n<!-- /optimizers -->", readme, re.S).group(1)
    assert table == optimizer_markdown()
    listed = re.search(r"one run folder per optimizer \(([^)]*)\)", readme).group(1)
    assert [n.strip().lower().replace("-", "") for n in listed.split(",")] == list_optimizers()


def test_cli_help_choices_and_flags_come_from_the_specs(cli):
    res = cli("train", "--help")
    text = " ".join(res.out.split())
    for name in list_optimizers():
        assert name in text
    from landscape.cli.train_cmd import HYPER_FLAGS

    takes = {k for name in list_optimizers() for k in get_optimizer(name).defaults}
    assert set(HYPER_FLAGS) <= takes  # every flag sets a real hyper-parameter
    import typer

    from landscape.cli.app import register
    from landscape.optim.registry import flag_help

    params = {p.name: p for p in typer.main.get_command(register()).commands["train"].params}
    for key in HYPER_FLAGS:
        assert params[key].help == flag_help(key)
    assert flag_help("gamma") == ("wsam: sharpness weight, in [0, 1), default 0.9; "
                                  "crsam: weight of the curvature penalty, default 0.1.")
    assert ", ".join(list_optimizers()) in params["optimizer"].help
    res = cli("list", "optimizers")
    assert res.code == 0 and all(name in res.out for name in list_optimizers())


class HalfSAM(SAM):
    """SAM whose ascent step uses half the radius (a test optimizer)."""

    name = "halfsam"

    def radius(self) -> float:
        return 0.5 * self.hyper["rho"]


@pytest.fixture
def halfsam():
    spec = register_optimizer(OptimSpec("halfsam", HalfSAM, {"rho": 0.2}, 2, "SAM at half the radius"))
    yield spec
    _REGISTRY.pop("halfsam")


def test_user_optimizer_plugs_in_with_one_registration(halfsam):
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    x, y = torch.randn(8, 3), torch.tensor([0, 1] * 4)
    opt = create_optimizer("halfsam", model, base="sgd", lr=0.1, momentum=0.0)
    assert "halfsam" in list_optimizers() and opt.hyper["rho"] == 0.2 and opt.passes_per_step == 2
    w = {k: v.detach().clone() for k, v in model.named_parameters()}

    def loss_at(params):
        return nn.functional.cross_entropy(torch.func.functional_call(model, params, (x,)), y)

    g = torch.func.grad(loss_at)(w)  # independent answer: gradient at w + 0.1 g/||g||, then plain SGD
    norm = torch.sqrt(sum((t ** 2).sum() for t in g.values()))
    g_plus = torch.func.grad(loss_at)({k: w[k] + 0.1 * g[k] / norm for k in w})

    def closure():
        opt.zero_grad()
        loss = loss_at(dict(model.named_parameters()))
        loss.backward()
        return loss

    opt.step(closure)
    for k, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), w[k] - 0.1 * g_plus[k], rtol=1e-6, atol=1e-7)
    with pytest.raises(LandscapeError, match="already registered"):
        register_optimizer(OptimSpec("halfsam", HalfSAM, {"rho": 0.2}, 2, "again"))
    with pytest.raises(LandscapeError, match="passes=3"):
        register_optimizer(OptimSpec("badsam", HalfSAM, {"rho": 0.2}, 3, "wrong passes"))
    with pytest.raises(LandscapeError, match="rho must be > 0"):
        create_optimizer("halfsam", model, rho=-1.0)


def test_user_model_registration():
    from landscape.models import create, list_models, register_model
    from landscape.models.registry import _BUILTIN

    register_model("linear-test", lambda num_classes, in_chans, img_size, **kw: nn.Sequential(
        nn.Flatten(), nn.Linear(in_chans * img_size * img_size, num_classes)))
    try:
        model = create("linear-test", num_classes=3, in_chans=1, img_size=8)
        assert "linear-test" in list_models() and model(torch.zeros(2, 1, 8, 8)).shape == (2, 3)
        with pytest.raises(LandscapeError, match="already registered"):
            register_model("linear-test", lambda *a, **k: None)
    finally:
        _BUILTIN.pop("linear-test")


def test_analysis_registry_drives_report_quantities_and_study_stages():
    from landscape.analysis.registry import _REGISTRY as ANALYSES
    from landscape.report.panels import _PANELS as PANELS
    from landscape.report.panels import Panel, panels, register_panel
    from landscape.study.presets import QUICK
    from landscape.study.run import stages

    assert list_analyses() == ["hessian", "sharpness", "sharpness_adaptive", "surface_1d", "surface_2d", "measures"]
    assert list(quantities()) == ["lambda_max", "hessian_trace", "density", "m_sharpness", "m_sharpness_adaptive",
                                  "surface_1d", "surface_2d", "measures"]
    assert stages() == ("train", "hessian", "sharpness", "surfaces", "measures", "report")
    assert stages(external=True) == ("train", "hessian", "sharpness", "surfaces", "measures", "evaluate", "report")
    assert QUICK.analyses()["surface_2d"] == {"grid": 11, "samples": 64}
    calls = []

    def norm_of_weights(ck, seed=0, progress=True, scale=1.0):
        calls.append((seed, scale))
        return {"kind": "weights", "result": {"norm": scale}}

    spec = register_analysis(AnalysisSpec("weights", "weights", norm_of_weights,
                                          provides={"weight_norm": lambda r: "norm" in r["result"]},
                                          report_defaults={"scale": 2.0}, quick_defaults={"scale": 0.5}))
    try:
        assert quantities()["weight_norm"][0] == "weights" and stages()[-2:] == ("weights", "report")
        assert QUICK.analyses()["weights"] == {"scale": 0.5}
        assert get_analysis("weights").run(None, seed=3, overrides={"scale": 4.0}) == spec.compute(None, scale=4.0)
        assert calls[0] == (3, 4.0)
        with pytest.raises(LandscapeError, match="already provided"):
            register_analysis(AnalysisSpec("other", "other", norm_of_weights, provides={"hessian_trace": bool}))
        register_panel(Panel("weights", "Weight norms", "One bar per run.", (), lambda d, rows, s: None),
                       before="density")
        ids = [p.id for p in panels()]
        assert ids.index("weights") == ids.index("density") - 1
    finally:
        ANALYSES.pop("weights")
        PANELS[:] = [p for p in PANELS if p.id != "weights"]


def test_analysis_columns_must_be_measures_read_from_its_own_records():
    from landscape.analysis import AnalysisSpec, list_analyses, register_analysis

    def driver(ck, seed=0, progress=True):
        return {}

    with pytest.raises(LandscapeError, match="not measures read from 'weights'"):  # lambda_max reads hessian records
        register_analysis(AnalysisSpec("weights", "weights", driver, provides={}, columns=("lambda_max",)))
    with pytest.raises(LandscapeError, match="not measures"):
        register_analysis(AnalysisSpec("weights", "weights", driver, provides={}, columns=("no_such_measure",)))
    assert "weights" not in list_analyses()


def test_analysis_settings_are_defaults_then_report_defaults_then_overrides_adapted_then_options():
    from landscape.analysis import AnalysisSpec

    def driver(ck, m=128, samples=512, seed=0, progress=True):
        return {}

    spec = AnalysisSpec("x", "x", driver, provides={}, report_defaults={"samples": 256},
                        adapt=lambda images, kw: {**kw, "m": min(kw["m"], images)})  # "ck" is an image count here
    assert spec.settings(100, seed=2) == {"m": 100, "samples": 256, "seed": 2}
    assert spec.settings(1000, overrides={"m": 64, "samples": 32}) == {"m": 64, "samples": 32, "seed": 0}
    # a report option the driver takes is used as given, after adapt; one it does not take, or None, is ignored
    assert spec.settings(100, options={"m": 300, "n_boot": 5}) == {"m": 300, "samples": 256, "seed": 0}
    assert spec.settings(100, options={"m": None}) == {"m": 100, "samples": 256, "seed": 0}
