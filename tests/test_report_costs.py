"""`landscape report --dry-run` and the plan of missing analyses: units and ETAs, nothing computed."""

from __future__ import annotations

import pytest

from landscape.analysis.hessian import DENSITY, TRACE
from landscape.cost import CostPlan, duration
from landscape.hessian.budget import expected_parts


def test_dry_run_prints_the_plan_and_computes_nothing(cli, bare_runs, tmp_path, monkeypatch):
    import landscape.report.collect
    from landscape.analysis import list_analyses
    from landscape.hessian.operator import HessianOperator

    def forbidden(*args, **kwargs):
        raise AssertionError("an analysis ran during --dry-run")

    monkeypatch.setattr(landscape.report.collect, "run_analysis", forbidden)
    monkeypatch.setattr(landscape.report.collect, "_compute_missing", forbidden)
    monkeypatch.setattr(HessianOperator, "matvec", forbidden)
    out = tmp_path / "r.html"
    res = cli("report", tmp_path / "runs", "-o", out, "--dry-run")
    assert res.code == 0, res.err
    assert not out.exists() and not out.with_suffix(".json").exists()
    assert all(not (r / "analysis").exists() or not any((r / "analysis").iterdir()) for r in bare_runs)
    text = " ".join(res.err.split())
    assert f"report plan: 2 runs x {2 * len(list_analyses())} missing analyses" in text
    for name in list_analyses():
        assert text.count(name) >= 2


def test_plan_rows_count_the_analyzers_units(bare_runs):
    from landscape.analysis import get_analysis, list_analyses
    from landscape.checkpoint import load_checkpoint
    from landscape.report.costs import plan_run
    from landscape.sharpness.batches import sub_batches

    ck = load_checkpoint(bare_runs[0] / "final.pt")
    names = list_analyses()
    kwargs = {n: get_analysis(n).settings(ck, 0) for n in names}
    times: dict = {}
    plans = {p.analysis: p for p in plan_run(ck, names, kwargs, times)}
    size = sum(p.numel() for p in ck.model.parameters())
    assert plans["hessian"].parts == expected_parts(size, 5, TRACE, {**DENSITY, "runs": None})
    sharp = kwargs["sharpness"]
    n_batches = len(sub_batches(*ck.tensors("train"), m=sharp["m"], samples=sharp["samples"], seed=0))
    assert plans["sharpness"].planned == n_batches * (1 + len(sharp["rhos"]) * (sharp["steps"] + 1))
    adaptive = kwargs["sharpness_adaptive"]
    n_batches = len(sub_batches(*ck.tensors("train"), m=adaptive["m"], samples=adaptive["samples"], seed=0))
    assert plans["sharpness_adaptive"].planned == n_batches * (1 + len(adaptive["rhos"]) * (adaptive["steps"] + 1))
    assert plans["sharpness_adaptive"].unit == "gradient pass"
    assert plans["surface_1d"].planned == kwargs["surface_1d"]["grid"] + 1
    assert plans["surface_2d"].planned == kwargs["surface_2d"]["grid"] ** 2 + 1
    meas, n_train = kwargs["measures"], len(ck.tensors("train")[1])
    n = min(meas["samples"], n_train)
    assert plans["measures"].parts == {"pacbayes": 2 * (meas["depth"] + 5) * meas["draws"], "outputs": 3,
                                       "ggn": -(-3 * len(ck.classes) * min(meas["ggn_samples"], n_train) // n),
                                       "relative_flatness": 1}
    assert all(p.unit_seconds > 0 and p.eta_seconds == pytest.approx(p.planned * p.unit_seconds)
               for p in plans.values())
    # a second run of the same architecture reuses the timed products
    again = plan_run(load_checkpoint(bare_runs[1] / "final.pt"), names, kwargs, times)
    assert [p.unit_seconds for p in again] == [plans[n].unit_seconds for n in names]


def test_analysis_without_a_cost_is_planned_as_one_run_of_unknown_duration(bare_runs):
    from landscape.analysis import AnalysisSpec
    from landscape.checkpoint import load_checkpoint
    from landscape.report.costs import plan_run

    spec = AnalysisSpec("costless", "costless", lambda ck, seed=0, progress=True: {}, provides={})
    registry = __import__("landscape.analysis.registry", fromlist=["_REGISTRY"])._REGISTRY
    registry["costless"] = spec
    try:
        (plan,) = plan_run(load_checkpoint(bare_runs[0] / "final.pt"), ["costless"], {"costless": {}}, {})
    finally:
        registry.pop("costless")
    assert (plan.unit, plan.planned, plan.unit_seconds, plan.eta_seconds) == ("run", 1, None, None)


def test_plan_line_and_durations():
    plan = CostPlan("Hessian", "HVP", {"top-5": 23, "trace": 27}, cap=80, unit_seconds=6.4, eta_seconds=320.0)
    assert plan.planned == 50
    assert plan.line() == "Hessian plan: top-5 ~23 + trace ~27 = ~50 HVPs (cap 80), 6.4 s each: ETA 5.3 min"
    assert CostPlan("surface", "forward pass", {"surface": 2}).line() == "surface plan: ~2 forward passes"
    assert (duration(42), duration(600), duration(7200), duration(None)) == ("42 s", "10.0 min", "2.0 h", "?")


@pytest.mark.cuda
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU")
def test_time_pass_times_cpu_batches_on_a_cuda_model():
    import torch

    from landscape.cost import time_pass

    model = torch.nn.Linear(4, 2).cuda()
    batches = [(torch.randn(8, 4), torch.randint(0, 2, (8,)))]  # on the CPU, as sub_batches cuts them
    assert time_pass(model, torch.nn.CrossEntropyLoss(), batches, backward=True) > 0
    assert model.weight.grad is None
