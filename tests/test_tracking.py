"""TensorBoard scalars read back with TensorBoard's own event reader equal history.json and final.pt."""

from __future__ import annotations

import sys

import pytest

from landscape.io import read_json, safe_torch_load

pytest.importorskip("tensorboard")


def _scalars(folder) -> dict[str, dict[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder))
    acc.Reload()
    return {tag: {e.step: e.value for e in acc.Scalars(tag)} for tag in acc.Tags()["scalars"]}


def test_event_files_equal_history_and_final_metrics(cli, tmp_path):
    res = cli("train", "--model", "cnn-tiny", "--img-size", "32", "--epochs", "2", "--optimizer", "sam",
              "--rho", "0.07", "--out", tmp_path, "--tensorboard", "-q")
    assert res.code == 0, res.err
    run = tmp_path / "phantom-cnn-tiny-sam-s0"
    got = _scalars(run / "tensorboard")
    history = read_json(run / "history.json")
    f32 = pytest.approx  # event files store float32
    for rec in history:
        e = rec["epoch"]
        assert got["train/loss"][e] == f32(rec["train_loss"], rel=1e-6)
        assert got["train/lr"][e] == f32(rec["lr"], rel=1e-6)
        assert rec["grad_norm"] > 0 and got["train/grad_norm"][e] == f32(rec["grad_norm"], rel=1e-6)
        assert got["optimizer/rho"][e] == f32(0.07, rel=1e-6)
        for key in ("balanced_accuracy", "accuracy", "auroc_macro", "ece"):
            assert got[f"val/{key}"][e] == f32(rec["val"][key], rel=1e-6)
    assert sorted(got["train/loss"]) == [1, 2]
    final = safe_torch_load(run / "final.pt")["metrics"]
    for split in ("train", "val", "test"):
        assert got[f"final/{split}/balanced_accuracy"] == {2: f32(final[split]["balanced_accuracy"], rel=1e-6)}


def test_study_style_dir_names_each_run_and_missing_package_is_one_line(cli, tmp_path, monkeypatch):
    res = cli("train", "--model", "cnn-tiny", "--img-size", "32", "--epochs", "1", "--optimizer", "adam,sgd",
              "--out", tmp_path / "runs", "--tensorboard", tmp_path / "tb", "-q")
    assert res.code == 0, res.err
    names = sorted(p.name for p in (tmp_path / "tb").iterdir())
    assert names == ["phantom-cnn-tiny-adam-s0", "phantom-cnn-tiny-sgd-s0"]
    assert "optimizer/rho" not in _scalars(tmp_path / "tb" / "phantom-cnn-tiny-adam-s0")
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # what an install without the [tracking] extra has
    res = cli("train", "--model", "cnn-tiny", "--out", tmp_path / "other", "--tensorboard")
    assert res.code == 2 and res.err.startswith("error: tensorboard is not installed; --tensorboard needs it")
    assert not (tmp_path / "other").exists()  # refused before any work
