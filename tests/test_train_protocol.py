"""The fair-study training options: --stop-train-loss (equal fit, Jiang et al.) and --classes (a binary task)."""

from __future__ import annotations

import pytest

from landscape.io import read_json


def _cfg(out, **kw):
    from landscape.train import TrainConfig

    return TrainConfig(model="cnn-tiny", img_size=16, out=str(out), keep="last", **kw)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A 3-epoch run whose target is never reached: its history says where a target is first reached."""
    from landscape.train import train

    return train(_cfg(tmp_path_factory.mktemp("ref"), epochs=3, stop_train_loss=1e-9), progress=False)


def test_stop_train_loss_stops_where_history_first_crosses(reference, tmp_path):
    from landscape.checkpoint import read_payload
    from landscape.train import train

    losses = [h["train_eval_loss"] for h in reference.history]
    assert losses[1] < losses[0]  # the phantom's loss falls, so epoch 2 is the first to reach losses[1]
    target = losses[1]
    res = train(_cfg(tmp_path, epochs=3, stop_train_loss=target), progress=False)
    history = read_json(res.run_dir / "history.json")
    first = next(h["epoch"] for h in history if h["train_eval_loss"] <= target)
    assert first == 2 and len(history) == first  # stopped at the first crossing, not at the cap
    assert [h["train_eval_loss"] for h in history] == pytest.approx(losses[:2], abs=1e-6)  # same seeded run
    final = read_payload(res.run_dir / "final.pt")
    assert final["epoch"] == 2
    assert final["stopping"] == {"rule": "train_eval_loss", "target": target, "epoch": 2, "reached": True, "cap": 3,
                                 "train_eval_loss": pytest.approx(target, abs=1e-6)}


def test_an_unreached_target_runs_to_the_cap_and_says_so(tmp_path):
    from landscape.checkpoint import read_payload
    from landscape.train import train

    res = train(_cfg(tmp_path, epochs=2, stop_train_loss=1e-9), progress=False)
    assert read_payload(res.run_dir / "final.pt")["stopping"] == {
        "rule": "train_eval_loss", "target": 1e-9, "epoch": 2, "reached": False, "cap": 2,
        "train_eval_loss": res.history[-1]["train_eval_loss"]}


def test_classes_trains_on_a_subset_of_the_folder(tmp_path):
    from landscape.checkpoint import load_checkpoint
    from landscape.data import load_images
    from landscape.train import train

    res = train(_cfg(tmp_path, epochs=1, classes=["Malignant", "benign"]), progress=False)
    ck = load_checkpoint(res.run_dir, device="cpu")
    assert ck.classes == ["benign", "malignant"] and ck.model.head.out_features == 2
    split = ck.meta["data"]["split"]
    files = split["train"] + split["val"] + split["test"] + [e["file"] if isinstance(e, dict) else e
                                                             for e in split.get("excluded", [])]
    full = load_images(None, img_size=16)
    want = {f for f, y in zip(full.files, full.labels) if full.classes[y] != "normal"}
    assert set(files) == want
    _, y = ck.tensors("test")
    names = [full.classes[full.labels[full.files.index(f)]] for f in split["test"]]
    assert [ck.classes[v] for v in y.tolist()] == names  # labels follow the subset's class order


@pytest.mark.parametrize("classes,message", [(["benign"], "at least two"), (["benign", "cat"], "cat is not"),
                                             (["benign", "benign"], "must not repeat"),
                                             (["Benign", "benign"], "must not repeat")])
def test_bad_classes_are_named(tmp_path, classes, message):
    from landscape.errors import LandscapeError
    from landscape.train import train

    with pytest.raises(LandscapeError, match=message):
        train(_cfg(tmp_path, epochs=1, classes=classes), progress=False)


def test_cli_flags(cli, tmp_path):
    res = cli("train", "--model", "cnn-tiny", "--img-size", "16", "--epochs", "1", "--out", str(tmp_path / "o"),
              "--stop-train-loss", "-1")
    assert res.code == 2 and "--stop-train-loss must be a positive" in res.err
    res = cli("train", "--model", "cnn-tiny", "--img-size", "16", "--epochs", "1", "--out", str(tmp_path / "o"),
              "--classes", "benign,dog")
    assert res.code == 2 and "--classes" in res.err and "dog" in res.err
