"""`landscape hessian` and `landscape.analysis.hessian.analyze` on a tiny trained checkpoint."""

from __future__ import annotations

import copy
import importlib
import json
import re

import numpy as np
import pytest
import torch

from landscape import load_checkpoint
from landscape.analysis.hessian import analyze
from landscape.hessian import top_eigenvalues


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from landscape.train import TrainConfig, train

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: avoid thread contention on a shared 2-core machine
    cfg = TrainConfig(model="cnn-tiny", img_size=16, epochs=1, keep="last", out=str(tmp_path_factory.mktemp("hess")))
    yield train(cfg, progress=False).run_dir
    torch.set_num_threads(before)


def test_cli_writes_a_cached_record_with_certified_numbers(cli, run_dir, tmp_path, monkeypatch):
    out, png = tmp_path / "h.json", tmp_path / "d.png"
    args = [run_dir, "--top-k", "2", "--samples", "40", "--batch-size", "16", "--tol", "1e-4", "--seed", "3",
            "--per-layer", "--plot", png, "--json", out, "--device", "cpu"]
    res = cli("hessian", *args)
    assert res.code == 0, res.err
    assert "cached:" not in res.out and re.search(r"^\d+ HVPs in \d+\.\d s", res.out, re.M)
    again = cli("hessian", *args)  # a re-run says where its numbers come from
    created = json.loads(out.read_text())["provenance"]["created"]
    assert again.code == 0 and f"cached: computed {created} with top_k=2, trace=True, density=True," in again.out
    assert "samples=40, batch_size=16, tol=0.0001, seed=3," in again.out
    assert re.search(r"^when computed: \d+ HVPs in \d+\.\d s", again.out, re.M)
    assert "BN in eval mode" in res.out and "40 images" in res.out and "per-layer diagonal blocks" in res.out
    record = json.loads(out.read_text())
    stored = list((run_dir / "analysis").glob("hessian-*.json"))
    assert len(stored) == 1 and json.loads(stored[0].read_text()) == record
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    s, r = record["settings"], record["result"]
    assert (s["checkpoint"], s["top_k"], s["samples"], s["seed"], s["density"]) == ("final.pt", 2, 40, 3, True)
    assert record["provenance"]["bn_mode"] == r["bn_mode"] == "eval" and "versions" in record["provenance"]
    assert r["n_samples"] == 40 and r["split"] == "train"
    assert (r["loss_reduction"], r["autocast"], r["dtype"]) == ("mean", False, "float32")
    # a flat bulk puts +-5% out of this tiny run's reach: one warning, an early stop, no other warning
    assert r["warnings"] == ([] if r["trace"]["stopped_by"] != "unreachable" else [r["warnings"][0]])
    assert all(w.startswith("trace: a 95% CI of +-0.05 x |trace| needs about") for w in r["warnings"])
    assert all(r["top_k"]["converged"]) and r["trace"]["ci"][0] <= r["trace"]["estimate"] <= r["trace"]["ci"][1]
    assert r["hvps"] == (r["top_k"]["hvps"] + r["trace"]["hvps"] + r["density"]["hvps"]
                         + sum(b["hvps"] for b in r["per_layer"]))
    assert sum(map(sum, r["density"]["weights"])) == pytest.approx(1.0)
    assert [b["name"] for b in r["per_layer"]] == ["features.0", "features.1", "features.4", "features.5", "head"]
    assert sum(b["num_params"] for b in r["per_layer"]) == r["num_params"]
    # the same Hessian in float64, straight from the engine, tightly converged
    ck = load_checkpoint(run_dir, device="cpu")
    loader = ck.loader("train", batch_size=40, samples=40, seed=3)
    exact = top_eigenvalues(copy.deepcopy(ck.model).double(), ck.loss_fn, loader, k=2, tol=1e-9, max_hvps=300)
    np.testing.assert_allclose(r["top_k"]["eigenvalues"], exact.eigenvalues, rtol=2e-4)
    # a second call with the same settings is answered from the cache
    module = importlib.import_module("landscape.analysis.hessian")
    monkeypatch.setattr(module, "_compute", lambda *a, **k: pytest.fail("recomputed a cached record"))
    again = analyze(ck, top_k=2, samples=40, batch_size=16, tol=1e-4, seed=3, per_layer=True, density=True,
                    progress=False)
    assert again["result"] == record["result"] and again["path"] == str(stored[0])


@pytest.mark.parametrize(
    "args, message",
    [
        (["missing.pt"], "checkpoint not found"),
        (["RUN", "--top-k", "0"], "--top-k must be an integer >= 1"),
        (["RUN", "--split", "holdout"], "--split must be one of train, val, test, got 'holdout'"),
        (["RUN", "--tol", "2"], "--tol must be in (0, 1)"),
        (["RUN", "--samples", "0"], "--samples must be an integer >= 1"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(cli, run_dir, tmp_path, args, message):
    args = [str(run_dir) if a == "RUN" else (str(tmp_path / a) if a == "missing.pt" else a) for a in args]
    res = cli("hessian", *args)
    assert res.code == 2
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
