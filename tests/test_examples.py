"""Every ``examples/*.py`` runs with ``--tiny`` (seconds-scale settings), so that the examples cannot rot.

Convention: each example takes ``--tiny``; new examples are picked up by the glob.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
#: Examples that a test of their own runs with ``--tiny`` (on data that may be absent), so they run once.
OWN_TESTS = {"busi_study.py": "tests/test_busi_study_example.py", "custom_analysis.py": "tests/test_examples.py",
             "custom_optimizer.py": "tests/test_examples.py"}


def test_there_are_examples():
    assert {"hessian_of_your_model.py", "sam_in_your_loop.py", "timm_surface.py", "custom_analysis.py",
            "custom_optimizer.py", "finetune.py"} <= {p.name for p in EXAMPLES}


def _run_example(name: str, *args, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    res = subprocess.run([sys.executable, str(ROOT / "examples" / name), *map(str, args)], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, f"{name} failed:\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}"
    return res


def _import_example(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"example_{Path(name).stem}", ROOT / "examples" / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_with_tiny_settings(script, tmp_path):
    if script.name in OWN_TESTS:
        pytest.skip(f"run (with checks of what it writes) by {OWN_TESTS[script.name]}")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    res = subprocess.run([sys.executable, str(script), "--tiny"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, f"{script.name} failed:\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}"
    assert res.stdout.strip(), f"{script.name} printed nothing"


@pytest.mark.slow
def test_custom_analysis_example_adds_its_panel_and_column_to_the_report(tmp_path):
    import json

    from landscape.checkpoint import read_payload

    _run_example("custom_analysis.py", "--tiny", "--out", tmp_path / "out", cwd=tmp_path)
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert 'id="weight-norms"' in page and "Weight norm per layer" in page
    numbers = json.loads((tmp_path / "out" / "report.json").read_text())
    assert numbers["missing"] == [] and numbers["summary"]["measures"]["weight_norm"] == "||W||_F (all layers)"
    assert {c["measure"] for c in numbers["summary"]["correlations"]} >= {"weight_norm", "lambda_max"}
    for row in numbers["rows"]:  # the column against the weights, summed independently in float64
        state = read_payload(row["path"])["state_dict"]
        want = sum(float((v.double() ** 2).sum()) for k, v in state.items() if v.dim() > 1 and "running" not in k)
        assert row["weight_norm"] == pytest.approx(want ** 0.5, rel=1e-12)


def test_custom_optimizer_takes_the_extragradient_step_on_a_quadratic():
    import torch

    from landscape.optim import create_optimizer, get_optimizer
    from landscape.optim.registry import _REGISTRY

    module = _import_example("custom_optimizer.py")
    try:
        assert get_optimizer("extragradient").passes == 2
        a, w0, lr, gamma = 3.0, 2.0, 0.1, 0.05
        w = torch.nn.Parameter(torch.tensor([w0], dtype=torch.float64))
        opt = create_optimizer("extragradient", [w], base="sgd", lr=lr, momentum=0.0, gamma=gamma)
        assert isinstance(opt, module.Extragradient)

        def closure():
            opt.zero_grad()
            loss = 0.5 * a * (w ** 2).sum()
            loss.backward()
            return loss

        loss = opt.step(closure)
        # L = a w^2 / 2: the look-ahead point is w0 (1 - gamma a), where the gradient is a w0 (1 - gamma a)
        assert loss.item() == pytest.approx(0.5 * a * w0 ** 2, rel=1e-15)
        assert w.item() == pytest.approx(w0 - lr * a * w0 * (1 - gamma * a), rel=1e-14)
    finally:
        _REGISTRY.pop("extragradient", None)


@pytest.mark.slow
def test_custom_optimizer_example_trains_with_two_passes_per_step(tmp_path):
    from landscape.checkpoint import read_payload

    res = _run_example("custom_optimizer.py", "--tiny", "--out", tmp_path / "runs", cwd=tmp_path)
    assert "extragradient (2 passes per step)" in res.stdout
    (run,) = (tmp_path / "runs").iterdir()
    meta = read_payload(run / "final.pt")["optimizer"]
    assert (meta["name"], meta["passes_per_step"], meta["hyper"]["gamma"]) == ("extragradient", 2, 0.02)
