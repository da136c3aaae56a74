"""HVP budgets of `landscape hessian`: the cap is never exceeded, counted independently of the engine."""

from __future__ import annotations

import json

import pytest

from landscape.analysis.hessian import analyze
from landscape.hessian.operator import HessianOperator


@pytest.fixture
def run_dir(tiny_run):
    return tiny_run


@pytest.fixture
def products(monkeypatch):
    """Every HVP made by any HessianOperator (per-layer block operators included)."""
    calls = []
    real = HessianOperator.matvec

    def counted(self, v):
        calls.append(1)
        return real(self, v)

    monkeypatch.setattr(HessianOperator, "matvec", counted)
    return calls


@pytest.mark.parametrize("budget", [3, 17, 45, 90])
def test_budget_hvps_is_never_exceeded(run_dir, products, budget):
    rec = analyze(run_dir, top_k=3, trace=True, density=True, per_layer=True, samples=24, batch_size=24,
                  tol=1e-6, budget_hvps=budget, progress=False, seed=budget)
    res = rec["result"]
    assert len(products) <= budget and res["hvps"] == len(products)
    assert res["plan"]["cap"] == budget and res["top_k"]["hvps"] >= 3
    spent = res["top_k"]["hvps"] + sum((res[k] or {}).get("hvps", 0) for k in ("trace", "density"))
    assert spent + sum(b["hvps"] for b in res["per_layer"] or []) == len(products)
    if budget < 20:  # too little left for a trace: skipped with a warning, not overspent
        assert res["trace"] is None and any("trace skipped" in w for w in res["warnings"])


def test_shared_krylov_run_is_counted_per_output(run_dir, products):
    rec = analyze(run_dir, top_k=2, density=True, samples=24, batch_size=24, progress=False, seed=7,
                  density_settings={"steps": 12})
    r = rec["result"]
    top, tr, dens = r["top_k"], r["trace"], r["density"]
    assert tr["shared_hvps"] == top["hvps"] and top["shared_hvps"] == 0
    assert dens["shared_hvps"] == min(12, top["hvps"] + tr["rank"] - top["hvps"]) == min(12, tr["rank"])
    # fresh runs cost their steps; the shared one only the steps it lacked
    assert dens["hvps"] == (dens["runs"] - 1) * 12 + max(0, 12 - tr["rank"])
    assert top["hvps"] + tr["hvps"] + dens["hvps"] == r["hvps"] == len(products)
    plan = r["plan"]
    assert plan["unit"] == "HVP" and plan["planned"] == sum(plan["parts"].values()) and plan["unit_seconds"] > 0


def test_cli_budget_and_plan(cli, run_dir, tmp_path):
    out = tmp_path / "h.json"
    res = cli("hessian", run_dir, "--top-k", "2", "--samples", "24", "--batch-size", "24", "--budget-hvps", "30",
              "--json", out, "--device", "cpu", "--seed", "11")
    assert res.code == 0, res.err
    record = json.loads(out.read_text())
    assert record["settings"]["budget_hvps"] == 30 and record["result"]["hvps"] <= 30
    bad = cli("hessian", run_dir, "--top-k", "3", "--budget-hvps", "2")
    assert bad.code == 2 and "--budget-hvps must be >= top_k=3" in bad.out + bad.err
