"""Report statistics and building blocks against independent answers (no training needed)."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import numpy as np
import pytest

from landscape.report.grids import downsample, keep_indices, shared_range, surface_arrays
from landscape.report.html import Table, esc, script_json, table
from landscape.report.stats import aggregate, mean_std


def test_mean_std_and_aggregate():
    assert mean_std([1.0, 2.0, 4.0]) == {"mean": pytest.approx(7 / 3), "std": pytest.approx(np.std([1, 2, 4], ddof=1)),
                                         "n": 3}
    assert mean_std([5.0, None]) == {"mean": 5.0, "std": None, "n": 1}
    assert mean_std([None]) == {"mean": None, "std": None, "n": 0}
    rows = [{"g": "sam", "v": 1.0}, {"g": "adam", "v": 3.0}, {"g": "sam", "v": 2.0}, {"g": "adam", "v": None}]
    agg = aggregate(rows, "g", ["v"])
    assert [a["g"] for a in agg] == ["sam", "adam"]
    assert agg[0]["n_runs"] == 2 and agg[0]["v"]["mean"] == pytest.approx(1.5)
    assert agg[1]["n_runs"] == 2 and agg[1]["v"] == {"mean": 3.0, "std": None, "n": 1}


def test_surface_orientation_and_downsampling():
    xs, ys = np.linspace(-1, 1, 101), np.linspace(-2, 2, 7)
    loss = xs[:, None] ** 2 + 10 * ys[None, :]  # loss[i][j] at (x_i, y_j)
    x, y, z = surface_arrays({"x": xs.tolist(), "y": ys.tolist(), "loss": loss.tolist()})
    assert z.shape == (7, 101)
    assert z[3, 10] == pytest.approx(xs[10] ** 2 + 10 * ys[3])
    dx, dy, dz = downsample(x, y, z, max_points=51)
    assert len(dx) <= 51 and len(dy) == 7
    assert 0.0 in dx and dx[0] == -1 and dx[-1] == 1  # centre and ends kept
    np.testing.assert_allclose(dz, dx[None, :] ** 2 + 10 * dy[:, None])
    for n in (11, 51, 101, 201, 1001, 64):
        idx = keep_indices(n, 51)
        assert len(idx) <= 51 and idx[0] == 0 and idx[-1] == n - 1
        if n % 2:
            assert (n - 1) // 2 in idx
    with pytest.raises(Exception, match="shape"):
        surface_arrays({"x": [0, 1], "y": [0, 1, 2], "loss": [[0, 1], [2, 3]]})


def test_shared_range_clips_outliers():
    a = np.linspace(0, 1, 100)
    b = np.concatenate([np.linspace(0.5, 1.5, 99), [1e6]])
    lo, hi = shared_range([a, b])
    assert lo == 0.0
    assert hi == pytest.approx(np.quantile(np.concatenate([a, b]), 0.95))
    assert shared_range([np.array([np.nan])]) is None


def test_script_json_cannot_close_the_script_element():
    text = json.dumps({"name": "</script><script>alert(1)</script> & \u2028"})
    safe = script_json(text)
    assert "<" not in safe and ">" not in safe and "&" not in safe and "\u2028" not in safe
    assert json.loads(safe) == json.loads(text)


def test_table_escapes_cells_and_sort_keys():
    nasty = '<img src=x onerror="alert(1)">'
    out = table(Table(["run", "value"], [[(nasty, nasty), ("1.5", 1.5)]], numeric=[False, True]))
    tags = []

    class Collect(HTMLParser):
        def handle_starttag(self, tag, attrs):
            tags.append(tag)

    Collect().feed(out)
    assert "img" not in tags
    assert esc(nasty) in out


def _synthetic_run(tmp_path, optimizer: str, seed: int, grid: int):
    """A Run with analysis records shaped as the analyzers write them (inputs for the page builder)."""
    from landscape.report.collect import Run

    rng = np.random.default_rng(seed)
    lam = 5.0 + rng.random()
    xs = np.linspace(-1, 1, grid)
    plane = (0.4 + lam * xs[:, None] ** 2 + 0.5 * lam * xs[None, :] ** 2).tolist()
    meta = {
        "optimizer": {"name": optimizer, "base": "adam", "hyper": {"rho": 0.05}},
        "model": {"name": "cnn-small"}, "seed": seed, "epoch": 30, "versions": {"torch": "x"}, "train": {"epochs": 30},
        "data": {"source": "busi", "kind": "folder", "root": "/data/busi", "img_size": 64,
                 "classes": ["benign", "malignant", "normal"], "split": {"hash": "abc"}},
        "metrics": {"test": {"n": 156, "accuracy": 0.8, "balanced_accuracy": 0.75 + 0.01 * rng.random(),
                             "macro_f1": 0.7, "auroc_macro": 0.9, "ece": 0.05, "nll": 0.6},
                    "train": {"balanced_accuracy": 0.95}},
    }
    grid_d = np.linspace(-1, 10, 1000)
    hessian = {"settings": {"top_k": 5}, "result": {"top_k": {"eigenvalues": [lam]},
                                                     "trace": {"estimate": 10 * lam, "ci": [9 * lam, 11 * lam]},
                                                     "density": {"grid": grid_d.tolist(),
                                                                 "density": np.exp(-grid_d ** 2).tolist()}}}
    sharp = {"settings": {"m": 128},
             "result": {"kind": "worst", "rhos": [0.05, 0.1], "mean": [0.01 * lam, 0.04 * lam], "std": [0.001, 0.002]}}
    surf1 = {"settings": {"dim": 1}, "result": {"dim": 1, "directions": "random", "x": xs.tolist(),
                                                "loss": (xs ** 2).tolist()}}
    surf2 = {"settings": {"dim": 2}, "result": {"dim": 2, "directions": "random", "x": xs.tolist(), "y": xs.tolist(),
                                                "loss": plane}}
    found = {"lambda_max": hessian, "hessian_trace": hessian, "density": hessian, "m_sharpness": sharp,
             "surface_1d": surf1, "surface_2d": surf2}
    measured = {"lambda_max": hessian, "hessian_trace": hessian, "sharpness_worst": sharp}
    return Run(tmp_path / f"busi-cnn-small-{optimizer}-s{seed}" / "final.pt", meta, "0" * 16, found, measured)


def test_page_of_every_optimizer_with_large_surfaces_stays_under_10_mb(tmp_path):
    from landscape.optim import list_optimizers
    from landscape.report.build import MAX_BYTES, render

    opts = list_optimizers()
    runs = [_synthetic_run(tmp_path, o, s, 301) for o in opts for s in range(3)]
    document, numbers, data = render(runs, [])
    assert len(document.encode("utf-8")) <= MAX_BYTES
    assert document.count("Plotly.newPlot") == 1  # one loader for every figure
    assert document.count('<script type="text/javascript">') == 1  # plotly.js embedded once
    assert len(data["planes_2d"]["series"][0]["x"]) == 51  # 301 x 301 planes kept at 51 x 51
    assert numbers["title"] == "Flatness report — BUSI"
    assert len(numbers["rows"]) == 3 * len(opts) and len(numbers["summary"]["groups"]) == len(opts)
    c = next(c for c in numbers["summary"]["correlations"] if c["measure"] == "lambda_max" and c["target"] == "gap")
    # lambda_max and the gap depend on the seed only: every association is between seeds, none within one, so
    # the within-seed tau is undefined (a pooled tau over runs would read the seed shift as a correlation)
    assert c["n"] == 3 * len(opts) and c["kendall_tau"] is None and c["n_strata"] == 0
    same = next(p for p in numbers["predictors"]["cells"] if p["measure"] == "lambda_max" and p["target"] == "gap")
    assert c == same  # the summary shows the predictor table's cell


def test_oversized_page_gets_its_surfaces_thinned(tmp_path, monkeypatch):
    from landscape.report import build

    runs = [_synthetic_run(tmp_path, o, 0, 51) for o in ("adam", "sam", "asam")]
    full, _, data = build.render(runs, [])
    assert len(data["planes_2d"]["series"][0]["x"]) == 51
    monkeypatch.setattr(build, "MAX_BYTES", len(full.encode("utf-8")) - 1)
    thin, _, data = build.render(runs, [])
    assert len(data["planes_2d"]["series"][0]["x"]) == len(keep_indices(51, 21))
    assert len(thin) < len(full)
