"""benchmarks/gpu_check.py: one line and exit 0 without CUDA; its CUDA path (smoke sizes) on a GPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")
def test_without_cuda_one_line_and_exit_0(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path / "out")], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 1 and done.stdout.startswith("gpu_check: no CUDA device")
    assert not (tmp_path / "out").exists()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.skipif(os.environ.get("LANDSCAPE_GPU_CHECK") == "1", reason="gpu_check.py itself is running")
def test_cuda_path_writes_every_figure(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path), "--smoke", "--skip", "tests,nccl",
                           "--budget-s", "240"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((tmp_path / "gpu_check.json").read_text())
    hvp = record["sections"]["hvp"]
    for name in ("resnet50", "vit_small_patch16_224"):
        assert hvp[name]["gradient_s"] > 0 and hvp[name]["hvp_s"] > 0
    train = record["sections"]["train"]
    assert train["fp32"]["returncode"] == 0 and train["amp_flag"] and train["bf16"]["returncode"] == 0
    hessian = record["sections"]["hessian"]
    assert hessian["returncode"] == 0 and len(hessian["result"]["result"]["top_k"]["eigenvalues"]) == 5
    assert (tmp_path / "summary.md").read_text().startswith("# GPU check")
