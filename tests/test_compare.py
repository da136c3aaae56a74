"""`landscape compare`: paired differences over seeds against a hand computation; the detectable effect."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from landscape.report.compare import min_detectable, paired


@pytest.fixture(scope="module")
def small_study(tmp_path_factory):
    """cnn-tiny on the phantom at 16 px, 1 epoch: adam and sam with seeds 0-1, plus sam seed 2 without adam."""
    from landscape.train import TrainConfig, train, train_all

    out = tmp_path_factory.mktemp("compare-study")
    cfg = TrainConfig(model="cnn-tiny", img_size=16, epochs=1, out=str(out))
    for s in range(2):
        train_all(cfg.replace(seed=s), ["adam", "sam"], progress=False)
    train(cfg.replace(seed=2, optimizer="sam"), progress=False)
    return out


def _bacc(run_dir):
    from landscape.checkpoint import read_payload

    return read_payload(run_dir / "final.pt")["metrics"]["test"]["balanced_accuracy"]


def test_compare_gives_the_paired_differences_computed_by_hand(small_study, cli, tmp_path):
    res = cli("compare", str(small_study), "--baseline", "adam", "--json", str(tmp_path / "c.json"),
              "--n-boot", "50")
    assert res.code == 0, res.err
    out = json.loads((tmp_path / "c.json").read_text())
    runs = {p.name: p for p in small_study.iterdir()}
    by_hand = [_bacc(runs[f"phantom-cnn-tiny-sam-s{s}"]) - _bacc(runs[f"phantom-cnn-tiny-adam-s{s}"])
               for s in range(2)]
    cell = next(c for c in out["cells"] if c["group"] == "sam" and c["target"] == "test_balanced_accuracy")
    assert cell["n_pairs"] == 2 and [p["seed"] for p in cell["pairs"]] == [0, 1]
    assert [p["difference"] for p in cell["pairs"]] == pytest.approx(by_hand, abs=1e-12)
    mean, sd = np.mean(by_hand), np.std(by_hand, ddof=1)
    assert cell["mean_difference"] == pytest.approx(mean, abs=1e-12)
    if sd > 0:
        half = stats.t.ppf(0.975, 1) * sd / math.sqrt(2)
        assert cell["ci"] == pytest.approx([mean - half, mean + half])
        assert cell["p"] == pytest.approx(stats.ttest_rel([_bacc(runs[f"phantom-cnn-tiny-sam-s{s}"]) for s in range(2)],
                                                          [_bacc(runs[f"phantom-cnn-tiny-adam-s{s}"])
                                                           for s in range(2)]).pvalue)
    # the seed-2 sam run has no adam partner: reported, never paired
    assert out["unpaired"] == [{"run": "phantom-cnn-tiny-sam-s2", "group": "sam", "seed": 2,
                                "reason": "no adam run with the same model, seed and split"}]
    ps = [c["p"] for c in out["cells"] if c["p"] is not None]
    assert all(c["p_holm"] is None or c["p_holm"] >= c["p"] for c in out["cells"]) and len(ps) >= 1
    unc = next(r for r in out["runs"] if r["run"] == "phantom-cnn-tiny-adam-s0")["test_uncertainty"]
    lo, hi = unc["test_balanced_accuracy_ci"]
    assert lo <= _bacc(runs["phantom-cnn-tiny-adam-s0"]) <= hi
    assert "unpaired runs" in res.out and "detectable" in res.out


def test_compare_refuses_an_unknown_baseline(small_study, cli, tmp_path):
    res = cli("compare", str(small_study), "--baseline", "lion", "--json", str(tmp_path / "c.json"))
    assert res.code == 2 and "baseline 'lion' is not among" in res.err and not (tmp_path / "c.json").exists()


@pytest.mark.parametrize("n", [2, 5])
def test_min_detectable_difference_has_80_percent_power(n):
    sd = 0.04
    mdd = min_detectable(sd, n)
    # independent check: simulate paired designs with true difference mdd and count t-test rejections
    rng = np.random.default_rng(0)
    d = rng.normal(mdd, sd, size=(40000, n))
    t = d.mean(1) / (d.std(1, ddof=1) / math.sqrt(n))
    power = np.mean(np.abs(t) > stats.t.ppf(0.975, n - 1))
    assert power == pytest.approx(0.8, abs=0.01)
    # and it is close to the usual normal-approximation formula (t quantiles), which it slightly exceeds
    approx = (stats.t.ppf(0.975, n - 1) + stats.t.ppf(0.8, n - 1)) * sd / math.sqrt(n)
    assert mdd == pytest.approx(approx, rel=0.05 if n == 5 else 0.3)
    assert min_detectable(sd, 1) is None and min_detectable(0.0, 5) is None


def test_paired_by_hand():
    out = paired([0.01, 0.03, 0.02])
    assert out["mean_difference"] == pytest.approx(0.02) and out["sd"] == pytest.approx(0.01)
    half = stats.t.ppf(0.975, 2) * 0.01 / math.sqrt(3)
    assert out["ci"] == pytest.approx([0.02 - half, 0.02 + half])
    assert out["p"] == pytest.approx(2 * stats.t.sf(0.02 / (0.01 / math.sqrt(3)), 2))
    assert paired([0.5])["ci"] is None and paired([0.5])["n_pairs"] == 1


def test_report_shows_the_paired_panel(small_study, tmp_path):
    from landscape.report import build_report

    page = build_report([small_study], tmp_path / "r.html", compute=False, progress=False).read_text()
    assert "Paired differences from adam" in page and "Holm" in page


def test_a_seed_counts_once_per_group(monkeypatch):
    """Two sam settings of one seed (e.g. two rhos) share one adam run: neither is paired silently."""
    from types import SimpleNamespace

    from landscape.report import compare

    monkeypatch.setattr(compare, "group_name", lambda run, several: run.group)
    monkeypatch.setattr(compare, "pair_key", lambda run: run.seed)
    runs = [SimpleNamespace(name=f"{g}{tag}-s{s}", group=g, seed=s, model="m")
            for g, tag, s in [("adam", "", 0), ("adam", "", 1), ("sam", "a", 0), ("sam", "b", 0), ("sam", "", 1)]]
    out, unpaired = compare.pairs(runs, "adam")
    assert [(r.name, b.name) for r, b in out["sam"]] == [("sam-s1", "adam-s1")]
    assert [u["run"] for u in unpaired] == ["sama-s0", "samb-s0"]
    assert all("2 sam runs with the same model, seed and split" in u["reason"] for u in unpaired)
