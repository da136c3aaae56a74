"""examples/busi_study.py --tiny runs end to end on a subset of the real BUSI and BUS-BRA folders."""

from __future__ import annotations

import importlib.util
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
    assert "| adam | 1 |" in text and "| sam | 1 |" in text and "BUS-BRA AUROC" in text
    assert "dist_init" in text
