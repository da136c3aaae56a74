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
OWN_TESTS = {"busi_study.py": "tests/test_busi_study_example.py"}


def test_there_are_examples():
    names = {p.name for p in EXAMPLES}
    assert {"hessian_of_your_model.py", "sam_in_your_loop.py", "timm_surface.py", "finetune.py"} <= names


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
