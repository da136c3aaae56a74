"""`landscape surface` and `landscape.analysis.surface.analyze` on tiny trained checkpoints."""

from __future__ import annotations

import copy
import importlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.optim.swa_utils import update_bn

from landscape import load_checkpoint
from landscape.analysis.surface import analyze
from landscape.surface import axis

analyze_module = importlib.import_module("landscape.analysis.surface")


@pytest.fixture(scope="module")
def runs(tiny_run, tiny_runs, tmp_path_factory):
    """The shared cnn-tiny run (every epoch's weights), a second cnn-tiny, and an mlp-tiny (another architecture)."""
    from landscape.train import TrainConfig, train

    out = str(tmp_path_factory.mktemp("surface"))
    main, other = tiny_run, tiny_runs[1]
    mlp = train(TrainConfig(model="mlp-tiny", img_size=32, epochs=1, keep="last", out=out), progress=False).run_dir
    return {"main": main, "other": other, "mlp": mlp}


def subset_loss(model, ck, split="test", samples=48, seed=0) -> float:
    """The model's loss on the same seeded subset, computed independently (one pass, float64 mean)."""
    total, n = 0.0, 0
    with torch.no_grad():
        for x, y in ck.loader(split, batch_size=1000, samples=samples, seed=seed):
            total += float(torch.nn.functional.cross_entropy(model(x).double(), y, reduction="sum"))
            n += len(y)
    return total / n


def test_cli_random_plane_writes_npz_png_html_and_caches(cli, runs):
    run = runs["main"]
    res = cli("surface", run, "--grid", "5x3", "--samples", "48", "--device", "cpu", "--html")
    assert res.code == 0, res.err
    assert "loss surface of" in res.out and "centre loss" in res.out
    [record_path] = (run / "analysis").glob("surface-*.json")
    record = json.loads(record_path.read_text())
    result = record["result"]
    assert (result["dim"], result["directions"], result["bn"], result["split"]) == (2, "random", "eval", "test")
    assert record["settings"]["seed"] == 0 and record["provenance"]["versions"]["torch"]
    ck = load_checkpoint(run, device="cpu")
    assert abs(result["center_loss"] - subset_loss(ck.model, ck)) <= 1e-6
    assert result["center_error"] <= 1e-6
    with np.load(result["files"]["npz"]) as z:
        np.testing.assert_array_equal(z["x"], axis(5, -1, 1))
        np.testing.assert_array_equal(z["loss"], np.array(result["loss"]))
        assert z["loss"].shape == (5, 3)
    assert open(result["files"]["png"], "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    html = open(result["files"]["html"], encoding="utf-8").read()
    assert "<script src" not in html and "Plotly.newPlot" in html and len(html) > 1_000_000  # plotly.js inline
    assert [d["seed"] for d in result["direction_info"]] == [0, 0] and len(result["direction_info"][0]["hash"]) == 16
    # same settings: answered from the cache
    again = analyze(ck, grid="5x3", samples=48, html=True, progress=False)
    assert again["path"] == str(record_path) and again["result"] == result


def test_interpolation_at_t1_reproduces_the_other_checkpoint(runs):
    ck = load_checkpoint(runs["main"], device="cpu")
    before = copy.deepcopy(ck.model.state_dict())
    other = load_checkpoint(runs["other"], device="cpu")
    rec = analyze(ck, dim=1, directions=f"interp:{runs['other'] / 'final.pt'}", grid=9, samples=48, progress=False)
    result = rec["result"]
    assert result["x"][6] == 1.0 and result["x"][2] == 0.0
    assert abs(result["loss"][6] - subset_loss(other.model, ck)) <= 1e-6
    assert abs(result["loss"][2] - subset_loss(ck.model, ck)) <= 1e-6
    assert all(torch.equal(v, before[k]) for k, v in ck.model.state_dict().items())  # never modified
    assert result["endpoint_loss"] == [result["loss"][2], result["loss"][6]]


@pytest.mark.parametrize("grid", [2, 3, 11])
def test_interpolation_grid_always_holds_both_endpoints(runs, grid):
    ck = load_checkpoint(runs["main"], device="cpu")
    other = load_checkpoint(runs["other"], device="cpu")
    rec = analyze(ck, dim=1, directions=f"interp:{runs['other'] / 'final.pt'}", grid=grid, samples=24,
                  progress=False)
    x, loss = rec["result"]["x"], rec["result"]["loss"]
    assert len(x) == grid and 0.0 in x and 1.0 in x and x == sorted(x)
    steps = np.diff(x)
    assert np.allclose(steps, steps[0], rtol=1e-12)  # still evenly spaced
    t0, t1 = rec["result"]["endpoint_loss"]
    assert t0 == loss[x.index(0.0)] and t1 == loss[x.index(1.0)]
    assert abs(t0 - subset_loss(ck.model, ck, samples=24)) <= 1e-6
    assert abs(t1 - subset_loss(other.model, ck, samples=24)) <= 1e-6


def test_pca_trajectory_and_bn_recompute(runs):
    ck = load_checkpoint(runs["main"], device="cpu")
    rec = analyze(ck, directions="pca", grid=5, samples=32, progress=False)
    result = rec["result"]
    traj = result["trajectory"]
    assert traj["epochs"] == [0, 1, 2]
    # the final epoch is the model: the origin of the plane
    assert traj["x"][-1] == pytest.approx(0, abs=1e-12) and traj["distance"][-1] == pytest.approx(0, abs=1e-12)
    for cx, cy, dist, length in zip(traj["x"], traj["y"], traj["distance"], traj["length"]):
        assert cx**2 + cy**2 + dist**2 == pytest.approx(length**2, rel=1e-9)
    # three epochs, one of them the origin: two directions explain everything
    assert sum(result["info"]["explained_variance"]) == pytest.approx(1.0, abs=1e-9)
    assert max(abs(v) for v in result["x"]) == pytest.approx(1.2 * max(abs(v) for v in traj["x"]), rel=1e-12)
    with np.load(result["files"]["npz"]) as z:
        np.testing.assert_allclose(z["trajectory_y"], traj["y"])

    rec = analyze(ck, dim=1, grid=3, samples=32, bn="recompute", bn_samples=40, progress=False)
    ref = copy.deepcopy(ck.model)
    update_bn(ck.loader("train", batch_size=256, samples=40, seed=0), ref)
    ref.eval()
    assert abs(rec["result"]["center_loss"] - subset_loss(ref, ck, samples=32)) <= 1e-6
    assert rec["result"]["center_error"] is None and rec["settings"]["bn_samples"] == 40


def test_killed_analysis_resumes_to_identical_arrays(runs, monkeypatch):
    ck = load_checkpoint(runs["main"], device="cpu")
    settings = {"dim": 2, "grid": 4, "samples": 24, "seed": 3, "progress": False}
    real = analyze_module.evaluate_surface

    def killed_after_one_row(*args, **kwargs):
        def kill(row, *_):
            raise KeyboardInterrupt

        return real(*args, **kwargs, callback=kill)

    monkeypatch.setattr(analyze_module, "evaluate_surface", killed_after_one_row)
    with pytest.raises(KeyboardInterrupt):
        analyze(ck, **settings)
    [partial] = (runs["main"] / "analysis").glob("surface-*.partial.npz")
    monkeypatch.setattr(analyze_module, "evaluate_surface", real)
    resumed = analyze(ck, **settings)
    assert resumed["result"]["points_evaluated"] == 12 and not partial.exists()
    for path in resumed["result"]["files"].values():
        Path(path).unlink()  # cached record without files: recomputed from scratch
    straight = analyze(ck, **settings)
    assert straight["result"]["points_evaluated"] == 16
    assert straight["result"]["loss"] == resumed["result"]["loss"]
    assert straight["result"]["accuracy"] == resumed["result"]["accuracy"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["MAIN", "--directions", "interp:MLP"], "mlp-tiny"),
        (["LONE", "--directions", "pca"], "train with --keep all"),
        (["MAIN", "--directions", "sideways"],
         "--directions must be random, eigen, interp:OTHER.pt or pca, got 'sideways'"),
        (["MAIN", "--directions", "interp:missing.pt"], "not found"),
        (["MAIN", "--grid", "1"], "at least 2 points"),
        (["MAIN", "--dim", "3"], "--dim must be 1 or 2"),
        (["MAIN", "--bn", "train"], "--bn must be eval or recompute, got 'train'"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(cli, runs, tmp_path, args, message):
    lone = tmp_path / "copied-out"
    lone.mkdir()
    shutil.copy(runs["main"] / "final.pt", lone / "final.pt")
    paths = {"MAIN": str(runs["main"]), "LONE": str(lone), "interp:MLP": f"interp:{runs['mlp'] / 'final.pt'}"}
    res = cli("surface", *[paths.get(a, a) for a in args], "--device", "cpu")
    assert res.code == 2
    assert res.err.startswith("error: ") and res.err.strip().count("\n") == 0 and message in res.err
    if "MLP" in args[-1]:
        assert "cnn-tiny" in res.err  # names both architectures
