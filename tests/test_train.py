"""Trainer: learning the phantom, determinism, resume equivalence, NaN stop, CLI errors."""

import json

import pytest
import torch

from landscape.errors import LandscapeError
from landscape.io import safe_torch_load
from landscape.train import TrainConfig, train

FAST = dict(model="cnn-small", model_kwargs={"width": 8}, img_size=32, batch_size=32)


def _cfg(tmp_path, **kw):
    return TrainConfig(out=str(tmp_path), **{**FAST, **kw})


def _same_weights(a, b):
    sa, sb = safe_torch_load(a)["state_dict"], safe_torch_load(b)["state_dict"]
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_phantom_is_learned_well_above_chance(tmp_path):
    result = train(_cfg(tmp_path, epochs=6, lr=3e-3, model_kwargs={"width": 16}), progress=False)
    test = result.metrics["test"]
    # chance balanced accuracy is 1/3
    assert test["balanced_accuracy"] > 0.6, test
    assert test["auroc_macro"] > 0.8, test


def test_run_folder_contents_and_metadata(tmp_path):
    result = train(_cfg(tmp_path, epochs=2), progress=False)
    run = result.run_dir
    assert run.name == "phantom-cnn-small-adam-s0"
    names = {p.name for p in run.iterdir()}
    assert {"final.pt", "best.pt", "epoch_000.pt", "epoch_001.pt", "epoch_002.pt", "history.json",
            "config.json"} <= names
    payload = torch.load(run / "final.pt", weights_only=True)
    for key in ("format_version", "state_dict", "model", "optimizer", "data", "seed", "epoch", "metrics", "versions"):
        assert key in payload
    assert payload["data"]["source"] == "phantom"
    assert payload["optimizer"]["passes_per_step"] == 1
    assert set(payload["data"]["split"]) >= {"train", "val", "test", "hash"}
    assert {"accuracy", "balanced_accuracy", "macro_f1", "per_class_recall", "auroc_macro", "auroc_malignant", "ece",
            "nll"} <= set(payload["metrics"]["test"])
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]


def test_same_seed_same_weights_and_keep_last(tmp_path):
    a = train(_cfg(tmp_path / "a", epochs=2), progress=False)
    b = train(_cfg(tmp_path / "b", epochs=2, keep="last"), progress=False)
    assert _same_weights(a.final, b.final)
    # keep last: the initial weights; the newest epoch file was the resume point until final.pt replaced it
    assert sorted(p.name for p in b.run_dir.glob("epoch_*.pt")) == ["epoch_000.pt"]
    assert all("optimizer_state" not in torch.load(p, weights_only=True) for p in a.run_dir.glob("*.pt"))


def test_resume_equals_uninterrupted(tmp_path, monkeypatch):
    full = train(_cfg(tmp_path / "full", epochs=3, optimizer="sgd", opt_args={"momentum": 0.9}), progress=False)

    from landscape.train import loop

    original = loop._Trainer.train_epoch

    def interrupted(self, epoch, *args):
        if epoch == 3:
            raise KeyboardInterrupt
        return original(self, epoch, *args)

    cfg = _cfg(tmp_path / "cut", epochs=3, optimizer="sgd", opt_args={"momentum": 0.9})
    monkeypatch.setattr(loop._Trainer, "train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, progress=False)
    monkeypatch.setattr(loop._Trainer, "train_epoch", original)
    assert not (cfg.run_dir("phantom") / "final.pt").exists()
    with_state = [p.name for p in loop.epoch_files(cfg.run_dir("phantom"))
                  if "optimizer_state" in torch.load(p, weights_only=True)]
    assert with_state == ["epoch_002.pt"]  # only the newest epoch file carries the optimizer state
    resumed = train(cfg, progress=False, resume=True)
    assert _same_weights(full.final, resumed.final)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]


def test_finished_run_is_not_overwritten(tmp_path):
    cfg = _cfg(tmp_path, epochs=1)
    train(cfg, progress=False)
    with pytest.raises(LandscapeError, match="already holds a finished run"):
        train(cfg, progress=False)
    again = train(cfg, progress=False, resume=True)  # nothing left to do
    assert again.final.exists()


def test_nan_loss_stops_cleanly_and_keeps_last_checkpoint(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = torch.nn.CrossEntropyLoss.forward

    def poisoned(self, logits, target):
        calls["n"] += 1
        loss = real(self, logits, target)
        return loss * float("nan") if calls["n"] > 20 else loss

    monkeypatch.setattr(torch.nn.CrossEntropyLoss, "forward", poisoned)
    with pytest.raises(LandscapeError, match="non-finite loss.*last good checkpoint: .*epoch_001.pt"):
        train(_cfg(tmp_path, epochs=3), progress=False)
    run = _cfg(tmp_path).run_dir("phantom")
    assert (run / "epoch_001.pt").exists() and not (run / "final.pt").exists()


def test_bad_config_values():
    for bad in (dict(epochs=0), dict(batch_size=1), dict(schedule="step"), dict(keep="some")):
        with pytest.raises(LandscapeError):
            TrainConfig(**bad).validate()


def test_cli_train_and_bad_inputs(cli, tmp_path):
    ok = cli("train", "--epochs", "1", "--img-size", "32", "--model", "cnn-tiny", "--out", tmp_path)
    assert ok.code == 0, ok.err
    assert "phantom-cnn-tiny-adam-s0" in ok.out
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (["--data", tmp_path / "missing"], "not"),
        (["--data", empty], ""),
        (["--model", "no-such-net"], "unknown model"),
        (["--optimizer", "adamw2"], "unknown optimizer"),
        (["--optimizer", "adam", "--rho", "0.1"], "rho"),
        (["--opt-arg", "oops"], "key=value"),
        (["--epochs", "0"], "epochs"),
    ]
    for args, needle in cases:
        res = cli("train", "--out", tmp_path / "bad", "--img-size", "32", *args)
        assert res.code == 2, (args, res.err)
        lines = [line for line in res.err.strip().splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:"), res.err
        assert needle in lines[0]
        assert "Traceback" not in res.err


@pytest.mark.busi
def test_short_end_to_end_train_on_busi(busi_dir, tmp_path):
    result = train(_cfg(tmp_path, data=str(busi_dir), epochs=1), progress=False)
    payload = safe_torch_load(result.final)
    assert result.run_dir.name == "busi-cnn-small-adam-s0"
    assert payload["data"]["source"] == "busi"
    split = payload["data"]["split"]
    n = len(split["train"]) + len(split["val"]) + len(split["test"])
    assert 700 < n <= 780
    assert 0.0 <= result.metrics["test"]["balanced_accuracy"] <= 1.0


@pytest.mark.parametrize("epochs", [1, 3])
def test_finish_evaluates_each_split_once_per_distinct_weights(tmp_path, monkeypatch, epochs):
    from landscape.checkpoint import load_checkpoint
    from landscape.train import evaluate, loop

    calls = []

    def counting(model, x, y, classes, batch_size=256):
        calls.append(len(y))
        return evaluate.split_metrics(model, x, y, classes, batch_size)

    monkeypatch.setattr(loop, "split_metrics", counting)
    result = train(_cfg(tmp_path, epochs=epochs, lr=3e-2), progress=False)
    final, best = safe_torch_load(result.final), safe_torch_load(result.best)
    same = best["epoch"] == final["epoch"]
    assert same == (epochs == 1)  # both branches: at 3 epochs this run's best validation score is epoch 2
    # val once per epoch in the loop; then train and test of the final weights, and of best's if they differ
    assert len(calls) == epochs + 2 + (0 if same else 2)
    for path, payload in ((result.final, final), (result.best, best)):  # independent answer: evaluate the file
        ckpt = load_checkpoint(path)
        for split in ("train", "val", "test"):
            expected = evaluate.split_metrics(ckpt.model, *ckpt.tensors(split), ckpt.classes)
            got = payload["metrics"][split]
            assert got.keys() == expected.keys() and got["per_class_recall"] == expected["per_class_recall"]
            assert {k: v for k, v in got.items() if k != "per_class_recall"} == pytest.approx(
                {k: v for k, v in expected.items() if k != "per_class_recall"}, rel=1e-6), (path.name, split)
    assert result.metrics == final["metrics"]
    assert all("optimizer_state" not in safe_torch_load(p) for p in result.run_dir.glob("epoch_*.pt"))
    assert [h["epoch"] for h in safe_torch_load(result.run_dir / f"epoch_{epochs:03d}.pt")["history"]] == \
        list(range(1, epochs + 1))
