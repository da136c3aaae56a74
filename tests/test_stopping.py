"""Stopping as Jiang et al.: the cross-entropy of the whole training split in eval mode, checked after each epoch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from landscape.io import read_json, safe_torch_load


def _cfg(out, **kw):
    from landscape.train import TrainConfig

    return TrainConfig(model="cnn-tiny", img_size=16, out=str(out), **kw)


def _by_hand(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """-mean log softmax(z)[y] in float64 numpy, the logits of ``model`` in eval mode."""
    model.eval()
    with torch.no_grad():
        z = model(x).double().numpy()
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(y)), y.numpy()].mean())


def test_mean_cross_entropy_is_the_eval_mode_loss_of_every_image():
    from landscape.train.evaluate import mean_cross_entropy

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5),
                          nn.Linear(8, 3))
    model.train()
    x, y = torch.randn(300, 3, 4), torch.randint(0, 3, (300,))
    model(x)  # running statistics that differ from the batch's
    model.train()
    got = mean_cross_entropy(model, x, y, batch_size=64)  # several batches
    assert model.training  # the mode is restored
    assert got == pytest.approx(_by_hand(model, x, y), rel=1e-6)
    with torch.no_grad():  # the train-mode loss (batch statistics, dropout) is another number
        assert abs(float(nn.functional.cross_entropy(model.train()(x), y)) - got) > 1e-3


@pytest.fixture(scope="module")
def never_stops(tmp_path_factory):
    """3 epochs with an unreachable target: every epoch records train_eval_loss."""
    from landscape.train import train

    return train(_cfg(tmp_path_factory.mktemp("ref"), epochs=3, stop_train_loss=1e-9), progress=False)


def test_train_eval_loss_is_the_whole_training_split_in_eval_mode(never_stops):
    from landscape.models import create
    from landscape.train.prepare import prepare_data

    prep = prepare_data(_cfg(never_stops.run_dir.parent, epochs=3))
    x, y = prep.tensors["train"]
    for h in never_stops.history:  # every epoch's weights, from its epoch file
        payload = safe_torch_load(never_stops.run_dir / f"epoch_{h['epoch']:03d}.pt")
        model = create("cnn-tiny", **payload["model"]["kwargs"])
        model.load_state_dict(payload["state_dict"])
        assert h["train_eval_loss"] == pytest.approx(_by_hand(model, x, y), rel=1e-6)
        assert h["train_eval_loss"] != pytest.approx(h["train_loss"], rel=1e-3)  # not the running mini-batch mean


def test_the_stop_rule_reads_train_eval_loss_not_the_minibatch_mean(never_stops, tmp_path):
    """A target between the two losses of an epoch: the eval-mode one decides."""
    from landscape.train import train

    history = never_stops.history
    epoch = next((h for h in history if h["train_eval_loss"] < h["train_loss"]), None)
    assert epoch is not None, history
    target = (epoch["train_eval_loss"] + epoch["train_loss"]) / 2
    first = next(h["epoch"] for h in history if h["train_eval_loss"] <= target)
    assert history[first - 1]["train_loss"] > target  # where the mini-batch mean would not have stopped
    res = train(_cfg(tmp_path, epochs=3, stop_train_loss=target), progress=False)
    assert [h["epoch"] for h in res.history] == list(range(1, first + 1))
    stopping = safe_torch_load(res.final)["stopping"]
    assert stopping["rule"] == "train_eval_loss" and stopping["epoch"] == first and stopping["reached"]
    assert stopping["train_eval_loss"] == res.history[-1]["train_eval_loss"] <= target


def test_an_interrupted_stopping_run_resumes_to_the_same_history(tmp_path, monkeypatch):
    from landscape.train import loop, train

    cfg = _cfg(tmp_path / "full", epochs=3, stop_train_loss=1e-9, optimizer="sam")
    full = train(cfg, progress=False)
    original = loop._Trainer.train_epoch

    def interrupted(self, epoch, *args):
        if epoch == 3:
            raise KeyboardInterrupt
        return original(self, epoch, *args)

    cut = cfg.replace(out=str(tmp_path / "cut"))
    monkeypatch.setattr(loop._Trainer, "train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(cut, progress=False)
    monkeypatch.setattr(loop._Trainer, "train_epoch", original)
    resumed = train(cut, progress=False, resume=True)

    def same(history):
        return [{k: v for k, v in h.items() if k != "seconds"} for h in history]

    assert same(read_json(resumed.run_dir / "history.json")) == same(full.history)
    from landscape.train.prepare import prepare_data

    steps = len(prepare_data(cfg).tensors["train"][1]) // cfg.batch_size
    a, b = safe_torch_load(full.final), safe_torch_load(resumed.final)
    assert a["gradient_evaluations"] == b["gradient_evaluations"] == 3 * steps * 2  # SAM: two passes a step
    assert a["stopping"] == b["stopping"]
