"""examples/busi_study.py --tiny runs end to end on a subset of the real BUSI and BUS-BRA folders."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_busi_study_example_tiny(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("busi_study", ROOT / "examples" / "busi_study.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    if not (mod.BUSI / "benign").is_dir() or not (mod.BUSBRA / "bus_data.csv").is_file():
        pytest.skip("BUSI or BUS-BRA not found beside the project")
    assert mod.main(["--tiny", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "results.md").read_text()
    assert "## Task: benign vs malignant" in text and "compute-matched" in text
    summary = json.loads((tmp_path / "binary" / "study.json").read_text())
    sam = summary["selection"]["cnn-small/sam"]
    assert set(sam["candidates"]) == {"rho0.02", "rho0.1"} and sam["selected"] in sam["candidates"]
    assert "| cnn-small/sam | rho0.02: " in text and "| cnn-small/adam-cm |" in text
    # paired comparisons of the two seeds, against plain and compute-matched adam
    assert "| sam | test_balanced_accuracy | 2 |" in text and "| adam-cm | external_auroc | 2 |" in text
    assert "Holm" in text and "detectable" in text and "dist_init" in text
    assert summary["settings"]["classes"] == ["benign", "malignant"]
