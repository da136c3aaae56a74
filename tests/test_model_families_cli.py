"""``landscape train`` -> ``hessian`` -> ``sharpness`` -> ``surface`` on one tiny model of each family.

The architectures are the timm families of the seed study, shrunk with
``--model-arg`` (timm's own constructor arguments, recorded in the checkpoint
so every later command rebuilds the same model). VGG has no width argument
in timm, so its run uses the real ``vgg11`` convolutions at 32 px on a
24-image folder cut from the phantom (the full phantom epoch would take
minutes on one core).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from landscape.checkpoint import load_checkpoint
from landscape.cli.train_cmd import parse_model_args
from landscape.data.phantom import load_phantom

#: family -> (model, --model-arg values, --img-size)
FAMILIES = {
    "resnet": ("resnet50", ["layers=1,1,1,1", "channels=2,2,2,2"], 16),
    "vgg": ("vgg11", ["mlp_ratio=0.0005"], 32),
    "vit": ("vit_tiny_patch16_224", ["patch_size=8", "embed_dim=8", "depth=1", "num_heads=2"], 16),
    "swin": ("swin_tiny_patch4_window7_224",
             ["patch_size=4", "embed_dim=8", "depths=1,1", "num_heads=1,2", "window_size=2"], 16),
    "cnn-small": ("cnn-small", ["width=2"], 16),
}


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def small_phantom_folder(root, per_class: int = 8, img_size: int = 32):
    """The first ``per_class`` phantom images of each class as PNGs in ``root/<class>/``."""
    images = load_phantom(seed=0, img_size=img_size)
    for c, name in enumerate(images.classes):
        (root / name).mkdir(parents=True)
        for i in np.flatnonzero(images.labels == c)[:per_class]:
            Image.fromarray(images.pixels[i, 0].numpy()).save(root / name / f"{name} ({i}).png")
    return root


@pytest.mark.slow
@pytest.mark.parametrize("family", list(FAMILIES))
def test_train_then_every_analysis(cli, tmp_path, family):
    name, model_args, size = FAMILIES[family]
    data = ["--data", small_phantom_folder(tmp_path / "data", img_size=size)] if family == "vgg" else []
    flags = [a for arg in model_args for a in ("--model-arg", arg)]
    res = cli("train", "--model", name, *flags, "--img-size", size, "--epochs", 1, "--batch-size", 32,
              "--keep", "last", "--out", tmp_path, "--run-name", family, "--device", "cpu", *data)
    assert res.code == 0, res.err
    run = tmp_path / family
    ck = load_checkpoint(run, device="cpu")
    kwargs = ck.meta["model"]["kwargs"]
    assert kwargs["img_size"] == size and kwargs.items() >= parse_model_args(model_args).items()
    assert sum(p.numel() for p in ck.model.parameters()) == ck.meta["model"]["num_params"]

    res = cli("hessian", run, "--top-k", 1, "--no-trace", "--samples", 4, "--tol", "1e-2", "--device", "cpu")
    assert res.code == 0, res.err
    [record] = [json.loads(p.read_text()) for p in (run / "analysis").glob("hessian-*.json")]
    assert record["result"]["top_k"]["converged"] == [True]

    res = cli("sharpness", run, "--rho", "0.01", "--m", 2, "--samples", 4, "--steps", 2, "--device", "cpu")
    assert res.code == 0, res.err
    [record] = [json.loads(p.read_text()) for p in (run / "analysis").glob("sharpness-*.json")]
    assert record["result"]["mean"][0] >= 0

    directions = "random" if family == "vgg" else "eigen"
    res = cli("surface", run, "--directions", directions, "--grid", 3, "--samples", 4, "--device", "cpu")
    assert res.code == 0, res.err
    [record] = [json.loads(p.read_text()) for p in (run / "analysis").glob("surface-*.json")]
    assert np.isfinite(record["result"]["loss"]).all() and record["result"]["center_error"] <= 1e-5


def test_model_args_parse_numbers_lists_and_strings():
    assert parse_model_args(["layers=1,1,1,1", "drop_rate=0.1", "global_pool=avg", "class_token=false"]) == {
        "layers": [1, 1, 1, 1], "drop_rate": 0.1, "global_pool": "avg", "class_token": False}


@pytest.mark.parametrize("args, message", [
    (["--model-arg", "img_size=32"], "--model-arg img_size is not allowed: it is set by --img-size"),
    (["--model-arg", "depth"], "--model-arg takes key=value, got 'depth'"),
    (["--model", "resnet18", "--model-arg", "bogus=1"], "model 'resnet18' takes no argument 'bogus'"),
    (["--model", "cnn-small", "--model-arg", "depth=2"], "model 'cnn-small' takes no argument 'depth'"),
])
def test_bad_model_args_are_one_line_errors(cli, tmp_path, args, message):
    res = cli("train", *args, "--epochs", 1, "--img-size", 16, "--out", tmp_path, "--device", "cpu")
    lines = res.err.strip().splitlines()
    assert res.code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
