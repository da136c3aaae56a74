"""Every optimizer trains one epoch of cnn-small on a small subset of the real BUSI images.

A narrow cnn-small (width 8) with dropout at 32 px keeps the eight runs within seconds
while still exercising BatchNorm, dropout replay and the checkpoint metadata.
"""

from __future__ import annotations

import math
import os

import pytest
import torch

from landscape.optim import OPTIMIZERS
from landscape.train import TrainConfig, train_all

PER_CLASS = 16


@pytest.fixture(scope="module")
def busi_subset(busi_dir, tmp_path_factory):
    """The first PER_CLASS images (masks left out) of each BUSI class, linked into a new folder."""
    root = tmp_path_factory.mktemp("busi_subset")
    for cls in ("benign", "malignant", "normal"):
        (root / cls).mkdir()
        images = sorted(p for p in (busi_dir / cls).iterdir() if p.suffix == ".png" and "_mask" not in p.name)
        for path in images[:PER_CLASS]:
            os.symlink(path, root / cls / path.name)
    return root


@pytest.mark.busi
@pytest.mark.slow
def test_every_optimizer_trains_an_epoch_on_busi(busi_subset, tmp_path):
    cfg = TrainConfig(data=str(busi_subset), model="cnn-small", model_kwargs={"width": 8, "dropout": 0.2}, img_size=32,
                      epochs=1, batch_size=16,
                      out=str(tmp_path), augment=False, keep="last")
    results = train_all(cfg, progress=False)
    assert [r.run_dir.name.split("-")[-2] for r in results] == list(OPTIMIZERS)
    for name, result in zip(OPTIMIZERS, results):
        final = torch.load(result.final, weights_only=True)
        start = torch.load(result.run_dir / "epoch_000.pt", weights_only=True)
        meta = final["optimizer"]
        assert meta["name"] == name
        assert meta["passes_per_step"] == {"adam": 1, "sgd": 1, "crsam": 3}.get(name, 2)
        assert meta["hyper"]  # every hyper-parameter, defaults included
        assert all(math.isfinite(h["train_loss"]) for h in result.history)
        moved = [k for k, v in final["state_dict"].items()
                 if v.is_floating_point() and not torch.equal(v, start["state_dict"][k])]
        assert "head.weight" in moved or len(moved) > len(final["state_dict"]) // 2, name
