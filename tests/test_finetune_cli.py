"""``landscape train`` for fine-tuning: local pretrained weights, AdamW groups, SAM, mixed precision.

Runs use a 12-image folder cut from the phantom (a resnet18 epoch on the full
phantom takes minutes on one core).
"""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
from test_model_families_cli import one_thread, small_phantom_folder  # noqa: F401 (one_thread: autouse)

from landscape.checkpoint import load_checkpoint
from landscape.io import safe_torch_load
from landscape.models import create


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return small_phantom_folder(tmp_path_factory.mktemp("data"), per_class=4, img_size=32)


def _resnet18_state(seed: int = 5) -> dict:
    import timm

    torch.manual_seed(seed)
    return timm.create_model("resnet18", pretrained=False, num_classes=1000).state_dict()


def _train(cli, folder, out, *args):
    return cli("train", "--data", folder, "--img-size", 32, "--epochs", 1, "--batch-size", 4, "--out", out,
               "--run-name", "run", "--device", "cpu", *args)


@pytest.mark.slow
def test_pretrained_file_gives_the_backbone_adapted_conv_fresh_head_and_sha(cli, folder, tmp_path):
    from timm.models._manipulate import adapt_input_conv

    state = _resnet18_state()
    file = tmp_path / "resnet18.pth"
    torch.save(state, file)
    res = _train(cli, folder, tmp_path, "--model", "resnet18", "--pretrained", file)
    assert res.code == 0, res.err
    start = safe_torch_load(tmp_path / "run" / "epoch_000.pt")
    loaded = start["state_dict"]
    for key, value in state.items():
        if key.startswith("fc."):
            continue
        expected = adapt_input_conv(1, value) if key == "conv1.weight" else value
        assert torch.equal(loaded[key], expected), key
    assert loaded["conv1.weight"].shape == (64, 1, 7, 7)
    torch.manual_seed(0)  # the run's seed: the head is the model's own fresh initialisation for 3 classes
    fresh = create("resnet18", num_classes=3, in_chans=1, img_size=32).state_dict()
    assert torch.equal(loaded["fc.weight"], fresh["fc.weight"]) and torch.equal(loaded["fc.bias"], fresh["fc.bias"])
    info = start["model"]["weights"]
    assert info["sha256"] == hashlib.sha256(file.read_bytes()).hexdigest()
    assert (info["adapted"], info["head"], info["normalization"]) == (["conv1.weight"], ["fc.weight", "fc.bias"],
                                                                      None)
    assert start["data"]["normalization"] == "data" and start["data"]["channels"] == 1
    assert start["train"]["weights"] == str(file)
    # the run's checkpoint rebuilds without the file (the weights are in it)
    ck = load_checkpoint(tmp_path / "run", device="cpu", data_root=folder)
    assert ck.tensors("test")[0].shape[1] == 1


@pytest.mark.slow
def test_cache_folder_with_rgb_stem_uses_the_weights_normalisation(cli, folder, tmp_path):
    from safetensors.torch import save_file

    state = _resnet18_state(6)
    snap = tmp_path / "models--timm--resnet18.test" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in state.items()}, snap / "model.safetensors")
    imagenet = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    (snap / "config.json").write_text(json.dumps({"architecture": "resnet18", "pretrained_cfg": imagenet}))
    res = _train(cli, folder, tmp_path / "out", "--model", "resnet18", "--weights", snap.parents[1], "--in-chans", 3)
    assert res.code == 0, res.err
    start = safe_torch_load(tmp_path / "out" / "run" / "epoch_000.pt")
    assert torch.equal(start["state_dict"]["conv1.weight"], state["conv1.weight"])  # RGB stem kept as is
    assert start["model"]["weights"]["adapted"] == [] and start["model"]["weights"]["normalization"] == imagenet
    data = start["data"]
    assert (data["normalization"], data["channels"], data["mean"], data["std"]) == ("weights", 3, imagenet["mean"],
                                                                                    imagenet["std"])
    x = load_checkpoint(tmp_path / "out" / "run", device="cpu", data_root=folder).tensors("test")[0]
    grey = x[:, 0] * 0.229 + 0.485  # back to pixel units: the three channels hold the same grey image
    torch.testing.assert_close(x[:, 1] * 0.224 + 0.456, grey)
    torch.testing.assert_close(x[:, 2] * 0.225 + 0.406, grey)


def test_a_wrong_architecture_file_is_one_error_line_before_any_work(cli, folder, tmp_path, monkeypatch):
    from safetensors.torch import save_file

    import landscape.train.loop

    def no_data(cfg):
        raise AssertionError("the data were loaded before the weights were checked")

    monkeypatch.setattr(landscape.train.loop, "prepare_data", no_data)
    file = tmp_path / "linear.safetensors"

    save_file(torch.nn.Linear(3, 2).state_dict(), file)
    res = _train(cli, folder, tmp_path / "out", "--model", "cnn-tiny", "--pretrained", file)
    assert res.code == 2
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --weights") and "do not fit" in lines[0]
    assert "missing" in lines[0] and "unexpected 2 (bias, weight)" in lines[0]
    assert not (tmp_path / "out" / "run").exists()
    res = _train(cli, folder, tmp_path / "out", "--model", "cnn-tiny", "--weights", tmp_path / "nope.pth")
    assert res.code == 2 and "not found" in res.err and len(res.err.strip().splitlines()) == 1


def test_sam_adamw_no_decay_groups_and_bf16_are_recorded(cli, folder, tmp_path):
    res = _train(cli, folder, tmp_path, "--model", "cnn-tiny", "--optimizer", "sam", "--base", "adamw",
                 "--no-decay-norm-bias", "--weight-decay", "0.05", "--amp", "bf16", "--lr", "0.002")
    assert res.code == 0, res.err
    final = safe_torch_load(tmp_path / "run" / "final.pt")
    opt = final["optimizer"]
    assert (opt["base"], opt["amp"], final["train"]["amp"]) == ("adamw", "bf16", "bf16")
    decay, no_decay = opt["groups"]
    model = create("cnn-tiny", num_classes=3)
    n_matrix = sum(p.numel() for p in model.parameters() if p.ndim > 1)
    assert (decay["weight_decay"], decay["num_params"], decay["lr"]) == (0.05, n_matrix, 0.002)
    assert (no_decay["weight_decay"], no_decay["num_params"]) == (0.0, final["model"]["num_params"] - n_matrix)
    res = _train(cli, folder, tmp_path / "bad", "--model", "cnn-tiny", "--amp", "fp8")
    assert res.code == 2 and "--amp must be bf16 or fp16" in res.err


def test_study_takes_each_models_weights_and_checks_them_before_any_run(cli, folder, tmp_path):
    """`study --weights MODEL=PATH` (and `--pretrained MODEL=PATH`): bad input is one error line, nothing written."""
    from safetensors.torch import save_file

    file = tmp_path / "linear.safetensors"
    save_file(torch.nn.Linear(3, 2).state_dict(), file)
    out = tmp_path / "study"

    def study(*args):
        return cli("study", "--data", folder, "--models", "cnn-tiny", "--optimizers", "adam", "--seeds", 1,
                   "--epochs", 1, "--img-size", 32, "--out", out, *args)

    for args, words in [(("--pretrained", f"cnn-tiny={file}"), ("do not fit", "unexpected 2 (bias, weight)")),
                        (("--weights", f"resnet18={file}"), ("resnet18", "does not train")),
                        (("--weights", "cnn-tiny"), ("MODEL=PATH",))]:
        res = study(*args)
        lines = res.err.strip().splitlines()
        assert res.code == 2 and len(lines) == 1 and lines[0].startswith("error:"), res.err
        assert all(w in lines[0] for w in words), lines[0]
    assert not any(out.glob("**/final.pt")) and not any(out.glob("**/epoch_*.pt"))
