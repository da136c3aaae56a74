"""Checkpoint round trip, safe loading, and the analysis cache."""

import pickle

import pytest
import torch

from landscape import load_checkpoint
from landscape.checkpoint import find_record, latest, store
from landscape.errors import LandscapeError
from landscape.io import read_json
from landscape.train import TrainConfig, predict, train
from landscape.train.prepare import prepare_data


@pytest.fixture(scope="module")
def run(tiny_run):
    """(config, run folder) of the shared tiny run."""
    return TrainConfig.from_dict(read_json(tiny_run / "config.json")), tiny_run


def test_round_trip_rebuilds_model_and_exact_split(run):
    cfg, run_dir = run
    ck = load_checkpoint(run_dir, device="cpu")
    assert ck.path.name == "final.pt" and ck.data_name == "phantom"
    assert not ck.model.training
    prepared = prepare_data(cfg)
    for split in ("train", "val", "test"):
        x, y = ck.tensors(split)
        x0, y0 = prepared.tensors[split]
        assert torch.equal(x, x0) and torch.equal(y, y0)
    x, y = ck.tensors("test")
    pred = predict(ck.model, x).argmax(1)
    assert (pred == y).float().mean().item() == pytest.approx(ck.meta["metrics"]["test"]["accuracy"])
    batches = list(ck.loader("train", batch_size=50, samples=120, seed=1))
    assert [len(b[1]) for b in batches] == [50, 50, 20]
    again = torch.cat([b[0] for b in ck.loader("train", batch_size=50, samples=120, seed=1)])
    assert torch.equal(torch.cat([b[0] for b in batches]), again)
    assert [p.name for p in ck.epoch_paths()] == ["epoch_000.pt", "epoch_001.pt", "epoch_002.pt"]


def test_load_weights_of_same_and_other_architecture(run, tmp_path):
    cfg, run_dir = run
    ck = load_checkpoint(run_dir / "final.pt")
    sd = ck.load_weights(run_dir / "epoch_000.pt")
    assert set(sd) == set(ck.model.state_dict())
    other = train(cfg.replace(model="mlp-tiny", out=str(tmp_path), epochs=1), progress=False)
    with pytest.raises(LandscapeError, match="not the same architecture"):
        ck.load_weights(other.final)


def test_bad_checkpoint_files(tmp_path):
    with pytest.raises(LandscapeError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x00not a zip" * 10)
    with pytest.raises(LandscapeError, match="cannot read checkpoint"):
        load_checkpoint(corrupt)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(LandscapeError, match="not a landscape checkpoint"):
        load_checkpoint(foreign)

    class Evil:
        def __reduce__(self):
            return (print, ("unpickled!",))

    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(LandscapeError):
        load_checkpoint(evil)
    with pytest.raises(LandscapeError, match="no final.pt"):
        load_checkpoint(tmp_path)


def test_analysis_cache(tmp_path):
    settings = {"k": 3, "seed": 0}
    assert find_record(tmp_path, "hessian", settings) is None
    store(tmp_path, "hessian", settings, {"eigenvalues": [3.0, float("nan")]}, {"seed": 0})
    record = find_record(tmp_path, "hessian", {"seed": 0, "k": 3})
    assert record["result"]["eigenvalues"] == [3.0, None]
    assert record["provenance"]["versions"]["torch"] == torch.__version__
    assert find_record(tmp_path, "hessian", {"k": 4, "seed": 0}) is None
    assert latest(tmp_path, "hessian")["settings"] == settings
