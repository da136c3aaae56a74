"""`landscape sharpness` and `landscape.analysis.sharpness.analyze` on a tiny trained checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest

from landscape import load_checkpoint
from landscape.analysis.sharpness import analyze
from landscape.sharpness import sub_batches, worst_case_sharpness


@pytest.fixture(scope="module")
def run_dir(tiny_run):
    return tiny_run


def test_cli_writes_a_cached_record_that_matches_the_api(cli, run_dir, tmp_path):
    out = tmp_path / "sharp.json"
    args = [run_dir, "--rho", "0.01,0.05", "--m", "32", "--samples", "96", "--steps", "4", "--seed", "2", "--device",
            "cpu"]
    res = cli("sharpness", *args, "--json", out)
    assert res.code == 0, res.err
    assert "m-sharpness, worst-case l2, standard, m=32, 3 sub-batches" in res.out
    record = json.loads(out.read_text())
    stored = list((run_dir / "analysis").glob("sharpness-*.json"))
    assert len(stored) == 1 and json.loads(stored[0].read_text()) == record
    assert record["settings"]["checkpoint"] == "final.pt" and record["provenance"]["bn_mode"] == "eval"
    result = record["result"]
    assert (result["kind"], result["norm"], result["adaptive"], result["m"], result["steps"], result["seed"]) == (
        "worst", "l2", False, 32, 4, 2)
    # the same numbers straight from the core API on the same sub-batches
    ck = load_checkpoint(run_dir, device="cpu")
    x, y = ck.tensors("train")
    direct = worst_case_sharpness(ck.model, ck.loss_fn, sub_batches(x, y, m=32, samples=96, seed=2), [0.01, 0.05],
                                  steps=4, seed=2)
    np.testing.assert_allclose(result["mean"], direct.mean, rtol=1e-6)
    assert result["mean"][1] > result["mean"][0] > 0
    # a second call is answered from the cache, an average-case call adds a record
    again = analyze(ck, rhos=[0.01, 0.05], m=32, samples=96, steps=4, seed=2, progress=False)
    assert again["result"] == record["result"] and again["path"] == str(stored[0])
    res = cli("sharpness", run_dir, "--kind", "average", "--rho", "0.05", "--m", "48", "--samples", "96", "--draws",
              "2",
              "--adaptive", "--device", "cpu")
    assert res.code == 0, res.err
    assert "MC stderr" in res.out and "average-case, adaptive |w|" in res.out
    assert len(list((run_dir / "analysis").glob("sharpness-*.json"))) == 2


@pytest.mark.parametrize(
    "args, message",
    [
        (["missing.pt"], "checkpoint not found"),
        (["RUN", "--rho", "0.1,abc"], "--rho must be a comma list"),
        (["RUN", "--rho", "0.1,-0.2"], "every rho must be a finite number > 0"),
        (["RUN", "--m", "0"], "--m (sub-batch size) must be a positive integer"),
        (["RUN", "--kind", "best"], "--kind must be worst or average"),
        (["RUN", "--norm", "l1"], "unknown norm"),
        (["RUN", "--kind", "average", "--norm", "linf"], "--norm applies to --kind worst only"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(cli, run_dir, tmp_path, args, message):
    args = [str(run_dir) if a == "RUN" else (str(tmp_path / a) if a == "missing.pt" else a) for a in args]
    res = cli("sharpness", *args)
    assert res.code == 2
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
