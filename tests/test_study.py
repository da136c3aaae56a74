"""The one-command study: trains, analyses and reports; a re-run does nothing; a half-finished study completes."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
import torch

from landscape.checkpoint import records
from landscape.io import safe_torch_load
from landscape.study import run_study

TINY_STUDY = dict(models=("cnn-tiny",), optimizers="adam,sam", seeds=1, epochs=2, img_size=32, quick=True,
                  progress=False)


def _files(out):
    """mtime of every checkpoint and analysis file of the study's runs."""
    return {p: p.stat().st_mtime_ns for p in out.glob("*/**/*") if p.is_file() and p.suffix in (".pt", ".json", ".npz")}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    return out, run_study(out=out, **TINY_STUDY)


def test_study_trains_analyses_and_reports(study):
    out, result = study
    names = sorted(d.name for d in result.run_dirs)
    assert names == ["phantom-cnn-tiny-adam-s0", "phantom-cnn-tiny-sam-s0"]
    assert sorted(result.trained) == names and result.reused == []
    for run_dir in result.run_dirs:
        assert (run_dir / "final.pt").is_file()
        assert len(records(run_dir, "hessian")) == 1
        assert sorted(r["result"]["adaptive"] for r in records(run_dir, "sharpness")) == [False, True]
        assert sorted(r["result"]["dim"] for r in records(run_dir, "surface")) == [1, 2]
    numbers = json.loads((out / "report.json").read_text())
    assert sorted(r["name"] for r in numbers["rows"]) == names
    assert numbers["missing"] == []
    assert all(r["lambda_max"] is not None and r["sharpness_worst"] is not None for r in numbers["rows"])
    assert all(r["sharpness_adaptive_worst"] is not None for r in numbers["rows"])  # in every study
    summary = json.loads((out / "study.json").read_text())
    assert set(summary["seconds"]) == {"train", "hessian", "sharpness", "surfaces", "measures", "report"}  # no external
    assert all(len(records(d, "measures")) == 1 for d in result.run_dirs)
    assert "dist_init" in numbers["predictors"]["measures"]
    assert summary["settings"]["optimizers"] == ["adam", "sam"] and summary["settings"]["seeds"] == [0]
    assert result.report == out / "report.html" and result.report.stat().st_size > 1_000_000  # plotly.js inline
    tidy = pd.read_csv(out / "runs.csv")  # the paper tables beside the report
    assert list(tidy["run"]) == names and list(tidy["lambda_max"]) == [r["lambda_max"] for r in numbers["rows"]]
    assert (out / "tables.tex").read_text().count("\\begin{tabular}") == 2
    assert summary["tables"] == {"csv": str(out / "runs.csv"), "latex": str(out / "tables.tex")}
    for run_dir in result.run_dirs:  # the quick preset keeps what its analyses need: no per-surface HTML
        assert not list((run_dir / "analysis").glob("*.html"))
        assert sorted(p.name for p in run_dir.glob("*.pt")) == ["best.pt", "epoch_000.pt", "final.pt"]


def test_rerun_trains_and_computes_nothing(study):
    out, _ = study
    before = _files(out)
    again = run_study(out=out, **TINY_STUDY)
    assert again.trained == [] and sorted(again.reused) == sorted(d.name for d in again.run_dirs)
    assert _files(out) == before  # no checkpoint or analysis file was rewritten


def test_half_finished_study_completes_with_identical_weights(study, tmp_path, monkeypatch):
    from landscape.train import loop

    out, _ = study
    copy = tmp_path / "study"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("phantom-cnn-tiny-sam-s0"))
    sam = copy / "phantom-cnn-tiny-sam-s0"
    adam = copy / "phantom-cnn-tiny-adam-s0"
    reference = safe_torch_load(out / sam.name / "final.pt")["state_dict"]
    original = loop._Trainer.train_epoch

    def interrupted(self, epoch, *args):  # sam is killed during its last epoch
        if self.cfg.optimizer == "sam" and epoch == 2:
            raise KeyboardInterrupt
        return original(self, epoch, *args)

    monkeypatch.setattr(loop._Trainer, "train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_study(out=copy, **TINY_STUDY)
    monkeypatch.setattr(loop._Trainer, "train_epoch", original)
    assert not (sam / "final.pt").exists() and (sam / "epoch_001.pt").exists()
    sharp = next((adam / "analysis").glob("sharpness-*.json"))
    sharp_value = json.loads(sharp.read_text())["result"]["mean"]
    sharp.unlink()  # an analysis that never finished
    untouched = {p: p.stat().st_mtime_ns for p in (adam / "analysis").glob("hessian-*.json")}
    result = run_study(out=copy, **TINY_STUDY)
    assert result.trained == ["phantom-cnn-tiny-sam-s0"]
    resumed = safe_torch_load(sam / "final.pt")["state_dict"]
    assert resumed.keys() == reference.keys()
    assert all(torch.equal(resumed[k], reference[k]) for k in reference)
    assert json.loads(next((adam / "analysis").glob("sharpness-*.json")).read_text())["result"]["mean"] == sharp_value
    assert {p: p.stat().st_mtime_ns for p in untouched} == untouched


def test_study_cli_rejects_bad_input(cli, tmp_path):
    res = cli("study", "--optimizers", "adam,nope", "--out", tmp_path)
    assert res.code == 2 and "nope" in res.err and len(res.err.strip().splitlines()) == 1
    res = cli("study", "--seeds", "0", "--out", tmp_path)
    assert res.code == 2 and "--seeds" in res.err
    assert not any(tmp_path.iterdir())  # nothing trained
    res = cli("study", "--help")
    assert res.code == 0 and "Examples" in res.out and "--quick" in res.out
