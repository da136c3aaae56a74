"""Layering of the engine and the drivers: light imports, the Operator protocol, errors that name parameters."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import landscape
from landscape.errors import LandscapeError
from landscape.hessian import HessianOperator, MatrixOperator, Operator, top_eigenvalues


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(m for m in sys.modules if m.startswith('landscape')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


@pytest.mark.parametrize("engine", ["landscape.hessian", "landscape.sharpness", "landscape.directions",
                                    "landscape.surface"])
def test_engine_imports_no_driver_layer(engine):
    loaded = _loaded_after(f"import {engine}")
    assert engine in loaded
    forbidden = ("landscape.train", "landscape.report", "landscape.data", "landscape.checkpoint",
                 "landscape.analysis", "landscape.optim", "landscape.study", "landscape.cli")
    assert not [m for m in loaded if m.startswith(forbidden)]


def test_import_landscape_is_light_and_exposes_the_everyday_api():
    loaded = _loaded_after("import landscape")
    assert loaded == {"landscape"}
    public = {"load_checkpoint", "create_model", "create_optimizer", "top_eigenvalues", "trace", "spectral_density",
              "sharpness", "surface", "build_report", "run_study"}
    assert public <= set(landscape.__all__)
    assert not [n for n in landscape.__all__ if n.startswith("_") and n != "__version__"]


def test_modules_and_functions_are_both_reachable():
    import landscape.hessian.hutchpp as hutchpp
    from landscape.hessian import trace

    assert trace is hutchpp.trace and callable(trace)
    assert landscape.trace.__module__ == landscape.top_eigenvalues.__module__ == "landscape.api"
    # the engine packages stay modules; calling one runs its checkpoint-level driver
    import landscape.analysis.sharpness as driver

    assert landscape.sharpness.worst_case_sharpness.__module__ == "landscape.sharpness.worst"
    assert landscape.sharpness.analyze is driver.analyze
    assert landscape.sharpness is sys.modules["landscape.sharpness"] and callable(landscape.sharpness)


def test_package_hessian_functions_take_a_checkpoint_or_the_engine_inputs(tiny_run):
    ck = landscape.load_checkpoint(tiny_run)
    loader = ck.loader("train", batch_size=128, samples=64, seed=0)
    via_ck = landscape.top_eigenvalues(ck, k=1, samples=64, tol=1e-6)
    via_model = top_eigenvalues(ck.model, ck.loss_fn, loader, k=1, tol=1e-6)
    assert via_ck.eigenvalues[0] == pytest.approx(via_model.eigenvalues[0], rel=1e-9)
    assert landscape.top_eigenvalues(ck.model, ck.loss_fn, loader, k=1, tol=1e-6).eigenvalues == via_model.eigenvalues
    # a run folder works too; the trace of the same Hessian with the same probes equals the engine's
    # (``seed`` seeds both the image subset and the probes, as in ``landscape hessian``)
    tr = landscape.trace(tiny_run, samples=64, max_hvps=40, rtol=0.5, seed=1)
    subset = ck.loader("train", batch_size=128, samples=64, seed=1)
    assert tr.estimate == pytest.approx(landscape.hessian.trace(ck.model, ck.loss_fn, subset, max_hvps=40, rtol=0.5,
                                                                 seed=1).estimate, rel=1e-9)
    dens = landscape.spectral_density(ck, samples=64, runs=1, steps=8)
    engine = landscape.hessian.spectral_density(ck.model, ck.loss_fn, loader, runs=1, steps=8)
    assert sum(dens.weights[0]) == pytest.approx(1.0, abs=1e-12)
    assert dens.nodes[0] == pytest.approx(engine.nodes[0], rel=1e-9, abs=1e-12)


def test_operator_protocol_replaces_duck_typing():
    A = torch.tensor([[2.0, 1.0], [1.0, 3.0]], dtype=torch.float64)
    op = MatrixOperator(A)
    assert isinstance(op, Operator) and not isinstance(torch.nn.Linear(2, 2), Operator)
    model = torch.nn.Linear(2, 2)
    data = [(torch.randn(4, 2), torch.tensor([0, 1, 0, 1]))]
    assert isinstance(HessianOperator(model, torch.nn.CrossEntropyLoss(), data), Operator)
    V = torch.eye(2, dtype=torch.float64)
    assert torch.equal(op.matmat(V), A) and op.hvps == 2
    exact = torch.linalg.eigvalsh(A).max().item()  # (5 + sqrt(5)) / 2

    class Bare:  # only the required members: size, dtype, device, matvec
        size, dtype, device = 2, torch.float64, torch.device("cpu")

        def matvec(self, v):
            return A @ v

    assert isinstance(Bare(), Operator)
    assert top_eigenvalues(Bare(), k=1, tol=1e-10).eigenvalues[0] == pytest.approx(exact, rel=1e-10)


def test_library_errors_name_parameters_and_cli_maps_them_to_flags(capsys):
    from landscape.cli import main

    with pytest.raises(LandscapeError, match="^k must be an integer >= 1"):
        top_eigenvalues(MatrixOperator(torch.eye(2)), k=0)
    err = LandscapeError("top_k must be an integer >= 1, got 0")
    assert err.params == ("top_k",)
    assert LandscapeError("data folder not found: x").params == ()
    assert main(["hessian", "nowhere.pt", "--top-k", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: --top-k must be an integer >= 1, got 0"
    assert main(["-q", "hessian", "nowhere.pt", "--top-k", "0"]) == 2  # a global flag first: still the flag's name
    assert capsys.readouterr().err.strip() == "error: --top-k must be an integer >= 1, got 0"
