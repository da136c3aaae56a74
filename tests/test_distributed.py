"""torch.distributed under torchrun: 2 local gloo ranks give the numbers of 1 process.

Each multi-process run is a ``torchrun --standalone --nproc-per-node 2`` subprocess
with its own short timeout, so a hang fails the test instead of stalling the suite.
The work itself is in tests/dist_helper.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
HELPER = ROOT / "tests" / "dist_helper.py"
TORCHRUN = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
TIMEOUT = 240  # seconds per subprocess: generous for 2 busy cores, short enough never to stall the suite

pytestmark = [pytest.mark.slow, pytest.mark.skipif(TORCHRUN is None, reason="torchrun not found")]


def _env(**extra) -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "LANDSCAPE_DIST_TIMEOUT": "2", **extra}


def _start(args: list[str], ranks: int) -> subprocess.Popen:
    """``args`` as one process (ranks=1, no torchrun) or under torchrun with ``ranks`` local processes."""
    cmd = [sys.executable, *args] if ranks == 1 else \
        [TORCHRUN, "--standalone", f"--nproc-per-node={ranks}", "--no-python", sys.executable, *args]
    return subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _finish(proc: subprocess.Popen, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    """Wait for ``proc``; past ``timeout`` kill its whole process group and fail."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.communicate()
        pytest.fail(f"{proc.args} did not finish within {timeout} s")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _run(args: list[str], ranks: int, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    return _finish(_start(args, ranks), timeout)


def _result(proc: subprocess.Popen, out: Path) -> dict:
    done = _finish(proc)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "result.json").read_text())


def _helper(mode: str, out: Path, ranks: int) -> dict:
    return _result(_start([str(HELPER), mode, str(out)], ranks), out)


@pytest.fixture(scope="module")
def numbers(tmp_path_factory):
    """The helper's ``numbers`` on 1 process and on 2 ranks (run side by side)."""
    one, two = tmp_path_factory.mktemp("one"), tmp_path_factory.mktemp("two")
    procs = [_start([str(HELPER), "numbers", str(out)], ranks) for out, ranks in ((one, 1), (two, 2))]
    return _result(procs[0], one), _result(procs[1], two)


def _close(a, b, rtol=1e-6, atol=1e-12):
    np.testing.assert_allclose(np.asarray(b, dtype=float), np.asarray(a, dtype=float), rtol=rtol, atol=atol)


def test_hessian_two_ranks_equal_one(numbers):
    one, two = numbers
    assert (one["world_size"], two["world_size"], two["gathered"]) == (1, 2, [0, 1])
    h1, h2 = one["hessian"], two["hessian"]
    assert h1["local_samples"] == 13 and h2["local_samples"] == 7 and h2["num_samples"] == 13  # 7 + 6: uneven
    _close(h1["hv"], h2["hv"])
    _close(h1["eigenvalues"], h2["eigenvalues"])
    _close(h1["trace"], h2["trace"])
    _close(h1["nodes"], h2["nodes"], atol=1e-9)
    _close(h1["weights"], h2["weights"], atol=1e-9)
    assert (h1["eig_hvps"], h1["trace_hvps"], h1["hvps"]) == (h2["eig_hvps"], h2["trace_hvps"], h2["hvps"])


def test_sharpness_two_ranks_equal_one(numbers):
    one, two = (n["sharpness"] for n in numbers)
    for key in ("average", "worst", "base"):
        _close(one[key], two[key])
    assert one["passes"] == two["passes"]


@pytest.mark.parametrize("optimizer", ["adam", "sam", "gsam"])
def test_training_two_ranks_equal_one(numbers, optimizer):
    """Global batch 11 over 2 ranks (6 + 5 samples) trains the same weights as one process, float64."""
    one, two = (torch.load(n["train"][optimizer], weights_only=True) for n in numbers)
    assert (one["world_size"], two["world_size"]) == (1, 2)
    assert one["state_dict"].keys() == two["state_dict"].keys()
    for name, w1 in one["state_dict"].items():
        assert w1.dtype == torch.float64
        _close(w1, two["state_dict"][name])


def test_sam_local_is_per_replica_m_sharpness(numbers):
    """--sam-local on 2 ranks: each replica its own perturbation, directions averaged (reference by hand)."""
    _close(numbers[0]["sam_local"], numbers[1]["sam_local"])


def test_resume_with_another_world_size(numbers, tmp_path):
    """Epoch 1 on 2 ranks (then interrupted), epoch 2 resumed in one process: the weights of 2 epochs in one."""
    stopped = _run([str(HELPER), "stop-after-1", str(tmp_path)], ranks=2)
    assert stopped.returncode != 0 and "stopped during epoch 2" in stopped.stderr
    run = next((tmp_path / "runs").iterdir())
    assert (run / "epoch_001.pt").is_file() and not (run / "final.pt").exists()
    resumed = torch.load(_helper("resume", tmp_path, 1)["final"], weights_only=True)
    reference = torch.load(numbers[0]["train"]["adam"], weights_only=True)
    for name, w in reference["state_dict"].items():
        _close(w, resumed["state_dict"][name])


def test_surface_two_ranks_equal_one_point_for_point(numbers):
    one, two = (n["surface"] for n in numbers)
    assert one["evaluated"] == two["evaluated"] == 20
    _close(one["loss"], two["loss"], rtol=1e-12)
    _close(one["accuracy"], two["accuracy"], rtol=0)


def test_surface_killed_on_two_ranks_resumes_on_one(numbers, tmp_path):
    killed = _run([str(HELPER), "surface-kill", str(tmp_path)], ranks=2)
    assert killed.returncode != 0
    assert (tmp_path / "surface.partial.npz").is_file() and not (tmp_path / "result.json").exists()
    resumed = _helper("surface", tmp_path, 1)["surface"]
    assert 0 < resumed["evaluated"] < 20  # some rows came from the partial file
    np.testing.assert_array_equal(resumed["loss"], numbers[0]["surface"]["loss"])
    np.testing.assert_array_equal(resumed["accuracy"], numbers[0]["surface"]["accuracy"])


def test_a_failing_rank_stops_every_rank(tmp_path):
    start = time.perf_counter()
    proc = _run([str(HELPER), "fail", str(tmp_path)], ranks=2, timeout=120)
    assert proc.returncode != 0
    assert time.perf_counter() - start < 120
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: rank 1 of 2: deliberate failure"], proc.stderr[-3000:]
    assert not (tmp_path / "result.json").exists()


def test_study_parallel_runs_trains_each_run_once(tmp_path):
    args = ["-m", "landscape", "study", "--quick", "--models", "mlp-tiny", "--optimizers", "adam,sgd", "--seeds", "1",
            "--epochs", "1", "--img-size", "8", "--out", str(tmp_path), "--parallel", "runs"]
    proc = _run(args, ranks=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    study = json.loads((tmp_path / "study.json").read_text())
    par = study["settings"]["parallel"]
    assert par["mode"] == "runs" and par["world_size"] == 2
    assert sorted(par["ranks"].values()) == [0, 1]  # one run per rank
    assert sorted(study["trained"]) == sorted(par["ranks"]) and study["reused"] == []
    for run in par["ranks"]:
        history = json.loads((tmp_path / run / "history.json").read_text())
        assert [h["epoch"] for h in history] == [1]  # trained once, one epoch
        assert torch.load(tmp_path / run / "final.pt", weights_only=True)["world_size"] == 1
    assert (tmp_path / "report.html").is_file()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_nccl_hvp_equals_cpu(numbers, tmp_path):
    """Under torchrun on CUDA (nccl), each rank on cuda:LOCAL_RANK: the HVP equals one CPU process."""
    ranks = min(2, torch.cuda.device_count())
    got = _helper("hvp-device", tmp_path, ranks)
    assert got["device"] == "cuda:0" and got["world_size"] == ranks
    _close(numbers[0]["hessian"]["hv"], got["hv"], rtol=1e-9)
