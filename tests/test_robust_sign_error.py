"""Dziugaite et al.'s robust sign error: Hoeffding weights and the effective-sample-size drop by hand,
"not enough data", and by simulation (7 optimizers x 5 seeds) a null measure against a predictive one and
the chance level carried by every value."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from landscape.errors import LandscapeError
from landscape.report.granulated import kendall
from landscape.report.robust import (
    IN_SITE,
    MIN_EFFECTIVE_SAMPLE_SIZE,
    MIN_WEIGHT,
    hoeffding_confidence,
    robust_sign_error,
)


def _row(opt, seed, m, gap, n_test=100, envs=None, sizes=None):
    row = {"name": f"{opt}-s{seed}", "group": opt,
           "axes": {"optimizer": opt, "seed": seed, "model": "cnn", "rho": None, "lr": 0.001, "epochs": 10},
           "measures": {"m": m}, "targets": {"gap": gap}, "environments": envs or {},
           "environment_sizes": sizes or {}}
    if n_test is not None:
        row["n_test"] = n_test
    return row


def test_constants_are_the_papers():
    assert MIN_WEIGHT == 0.5 and MIN_EFFECTIVE_SAMPLE_SIZE == 12


def test_hoeffding_confidence_by_hand():
    # both gaps within |delta| / 2 of their means: (1 - 2 exp(-2 n (delta / 2)^2)) per gap
    assert hoeffding_confidence(0.2, 100, 100) == pytest.approx(0.531921422608486, rel=1e-12)  # (1 - 2e^-2)^2
    assert hoeffding_confidence(-0.2, 100, 400) == pytest.approx(0.7288401079900195, rel=1e-12)  # (1-2e^-2)(1-2e^-8)
    assert hoeffding_confidence(0.1, 100, 100) == 0.0  # 1 - 2 e^-0.5 < 0: within the noise
    assert hoeffding_confidence(0.0, 10**6, 10**6) == 0.0
    np.testing.assert_allclose(hoeffding_confidence(np.array([0.3, 0.4]), 100, 100),
                               [0.9560576530633774, 0.9986585996290888], rtol=1e-12)


def _hand_table(n_test=100, domain_size=None):
    """Optimizers a, b, c x seeds 0-3 (n_test test images); the drop on "X: dom" equals the gap."""
    data = {"a": ([1, 1, 1, 1], [0.0, 0.0, 0.0, 0.0]),
            "b": ([2, 2, 0, 0], [0.3, 0.3, 0.4, 0.4]),
            "c": ([5, 5, 5, 5], [0.0, 0.0, 0.0, 0.3])}
    rows = []
    for opt, (ms, gs) in data.items():
        for s in range(4):
            envs = sizes = None
            if domain_size is not None:
                envs = {IN_SITE: 0.9, "X: dom": 0.9 - gs[s], "X: tiny": 0.5}
                sizes = {IN_SITE: n_test, "X: dom": domain_size, "X: tiny": 10}
            rows.append(_row(opt, s, ms[s], gs[s], n_test=n_test, envs=envs, sizes=sizes))
    return rows


def test_weights_effective_sample_size_and_drop_by_hand():
    # n = 100: v(|delta|) = (w - 1/2)+ with w = (1 - 2 exp(-50 delta^2))^2:
    #   v(0.3) = 0.9560576530633774 - 0.5 = 0.4560576530633774, v(0.4) = 0.4986585996290888, v(0.1) = v(0) = 0
    # a-b: 16 run pairs (every seed with every seed); 8 at |delta| = 0.3 (b0, b1: measure ordered as the gap,
    #   error 0), 8 at 0.4 (b2, b3: ordered against it, error 1): sign error v4 / (v3 + v4) = 0.5223 (the
    #   unweighted share would be 1/2); ESS = 8 (v3 + v4)^2 / (v3^2 + v4^2) = 15.968 >= 12: kept
    # a-c: 12 pairs at delta 0, 4 at 0.3: ESS = 4 < 12, dropped
    # b-c: 6 at 0.3, 6 at 0.4, 2 at 0 and 2 at 0.1 (w = 0): ESS = 6 (v3 + v4)^2 / (v3^2 + v4^2) = 11.976: dropped
    out = robust_sign_error(_hand_table(), "m", direction=1, n_perm=50)
    site = out["in_site"]
    ab, ac, bc = (site["environments"][f"optimizer: {p}"] for p in ("a vs b", "a vs c", "b vs c"))
    assert ab["kept"] and ab["n_pairs"] == 16 and ab["n_weighted"] == 16
    assert ab["sign_error"] == pytest.approx(0.5223107894338078, rel=1e-12)
    assert ab["effective_sample_size"] == pytest.approx(15.96820593987554, rel=1e-12)
    assert ab["total_weight"] == pytest.approx(8 * (0.4560576530633774 + 0.4986585996290888), rel=1e-12)
    assert not ac["kept"] and ac["sign_error"] is None and ac["n_weighted"] == 4
    assert ac["effective_sample_size"] == pytest.approx(4.0)
    assert not bc["kept"] and bc["sign_error"] is None and bc["n_weighted"] == 12
    assert bc["effective_sample_size"] == pytest.approx(11.976154454906656, rel=1e-12)
    assert site["worst"] == pytest.approx(0.5223107894338078) and site["worst_environment"] == "optimizer: a vs b"
    assert site["mean"] == pytest.approx(0.5223107894338078) and site["n_kept"] == 1 and site["note"] is None
    # the direction is fixed in advance: a measure expected to fall with the gap gets v3 / (v3 + v4)
    flipped = robust_sign_error(_hand_table(), "m", direction=-1, n_perm=50)["in_site"]
    assert flipped["worst"] == pytest.approx(0.4776892105661922, rel=1e-12)


def test_cross_site_weights_use_the_domain_size_by_hand():
    # the drop on "X: dom" equals the gap; with 50 domain images (fewer than the 100 test images) n = 50:
    #   v(0.3) = (1 - 2e^-2.25)^2 - 1/2 = 0.1228390879055119, v(0.4) = (1 - 2e^-4)^2 - 1/2 = 0.4280792949566734
    #   a-b: v4 / (v3 + v4) = 0.7770; ESS = 8 (v3 + v4)^2 / (v3^2 + v4^2) = 12.24: kept; b-c: 9.18, dropped
    out = robust_sign_error(_hand_table(domain_size=50), "m", direction=1, n_perm=50)["cross_site"]
    assert out["domains"] == ["X: dom"] and out["excluded_domains"] == ["X: tiny"]
    ab = out["environments"]["X: dom | optimizer: a vs b"]
    assert ab["sign_error"] == pytest.approx(0.7770285186939557, rel=1e-12)
    assert ab["effective_sample_size"] == pytest.approx(12.241969873496725, rel=1e-12)
    assert out["environments"]["X: dom | optimizer: b vs c"]["effective_sample_size"] == pytest.approx(
        9.181477405122545, rel=1e-12)
    assert out["worst"] == pytest.approx(0.7770285186939557) and out["n_kept"] == 1
    assert out["worst_environment"] == "X: dom | optimizer: a vs b"


def test_environments_of_a_grid_follow_the_axes():
    # rho and lr travel with the optimizer: a pair that changes the optimizer is an optimizer pair whatever
    # its rho and lr; one that keeps it and changes rho (lr) alone is a rho (lr) pair; each name is unique
    settings = [("sam", 0.05, 0.001), ("sam", 0.1, 0.001), ("adam", None, 0.001), ("adam", None, 0.01)]
    rows = []
    for opt, rho, lr in settings:
        for s in range(2):
            r = _row(opt, s, 1.0, 0.1)
            r["axes"].update(rho=rho, lr=lr)
            rows.append(r)
    envs = robust_sign_error(rows, "m", 1, n_perm=5)["in_site"]["environments"]
    assert {(e["axis"], e["n_pairs"]) for e in envs.values()} == {("rho", 4), ("lr", 4), ("optimizer", 4)}
    assert sorted(envs) == sorted([
        "rho: 0.05 vs 0.1 [optimizer=sam, lr=0.001]", "lr: 0.001 vs 0.01 [optimizer=adam, rho=None]",
        *(f"optimizer: sam (rho={rho}, lr=0.001) vs adam (rho=None, lr={lr})"
          for rho in (0.05, 0.1) for lr in (0.001, 0.01))])


def test_not_enough_data_is_none_with_a_note():
    # 20 test images: no gap difference here is beyond Hoeffding's noise, every weight is 0
    out = robust_sign_error(_hand_table(n_test=20), "m", direction=1, n_perm=20)["in_site"]
    assert out["worst"] is None and out["mean"] is None and out["chance"] is None and out["n_kept"] == 0
    assert out["note"].startswith("not enough data") and "largest 0.0" in out["note"]
    assert all(not e["kept"] and e["sign_error"] is None for e in out["environments"].values())
    # three configurations, one seed: three pairs, each an environment of one sample, never a number
    rows = [_row(o, 0, m, g, n_test=10**6) for o, m, g in (("a", 1, 0.1), ("b", 2, 0.5), ("c", 3, 0.9))]
    three = robust_sign_error(rows, "m", direction=1, n_perm=20)["in_site"]
    assert len(three["environments"]) == 3 and three["worst"] is None and three["note"].startswith("not enough")
    assert robust_sign_error(rows, "m", 1, n_perm=20)["cross_site"]["note"].startswith("not enough data")


def test_test_set_size_comes_from_the_rows_or_the_argument():
    rows = _hand_table(n_test=None)
    with pytest.raises(LandscapeError, match="n_test must be given"):
        robust_sign_error(rows, "m", direction=1)
    given = robust_sign_error(rows, "m", direction=1, n_perm=20, n_test=100)["in_site"]
    assert given["worst"] == pytest.approx(0.5223107894338078)
    for r in rows:  # the in-site size of an external-evaluation record stands in for n_test
        r["environment_sizes"] = {IN_SITE: 100}
    assert robust_sign_error(rows, "m", 1, n_perm=20)["in_site"]["worst"] == pytest.approx(0.5223107894338078)
    with pytest.raises(LandscapeError, match="n_perm"):
        robust_sign_error(rows, "m", 1, n_perm=0)


def test_rows_carry_the_test_set_size(tiny_runs):
    from landscape.report.collect import collect
    from landscape.report.correlate import predictor_rows

    runs, _ = collect(tiny_runs, compute=False, progress=False)
    rows = predictor_rows(runs)
    assert [r["n_test"] for r in rows] == [run.metrics("test")["n"] for run in runs] and rows[0]["n_test"] > 0
    for r, m in zip(rows, (1.0, 2.0)):
        r["measures"] = {"m": m}
    # adam and sam, one seed: one environment of one run pair, weighed at the recorded test-set size
    site = robust_sign_error(rows, "m", 1, n_perm=5)["in_site"]
    assert [e["n_pairs"] for e in site["environments"].values()] == [1] and site["note"].startswith("not enough")


def test_chance_permutes_the_measure_within_seed():
    # every seed has one run per optimizer: the permuted measure keeps each seed's values, so the chance of a
    # measure whose value is its seed (constant within seed) is its own value: a tie in every same-seed pair
    rows = _hand_table()
    for r in rows:
        r["measures"]["m"] = float(r["axes"]["seed"])
    out = robust_sign_error(rows, "m", direction=1, n_perm=30, seed=3)["in_site"]
    assert out["chance"]["p05"] == out["chance"]["p95"] == pytest.approx(out["worst"])


# ---- simulation: 7 optimizers x 5 seeds ------------------------------------------------------------------
# The true gap of a run is its optimizer's effect plus seed noise (sd 0.01); four optimizers lie within 1.5
# points of each other, three apart. The observed gap adds the test set's Monte-Carlo noise
# (n = 1000 images, sd sqrt(0.16 / n)). The predictive measure is the true gap plus noise (sd 0.02):
# Kendall tau about 0.7 with the observed gap. The null measure is independent of everything.
N_TEST, REPS, N_PERM = 1000, 150, 40
EFFECTS = np.array([0.0, 0.005, 0.01, 0.015, 0.15, 0.25, 0.35])


@functools.lru_cache(maxsize=1)
def _simulation() -> dict:
    rng = np.random.default_rng(2020)
    out: dict = {"tau": [], "predictive": [], "null": []}
    for rep in range(REPS):
        true = EFFECTS[:, None] + 0.01 * rng.standard_normal((7, 5))
        gap = true + np.sqrt(0.16 / N_TEST) * rng.standard_normal((7, 5))
        predictive = true + 0.02 * rng.standard_normal((7, 5))
        null = rng.standard_normal((7, 5))
        rows = [_row(f"opt{o}", s, None, gap[o, s], n_test=N_TEST) for o in range(7) for s in range(5)]
        for r, p, z in zip(rows, predictive.ravel(), null.ravel()):
            r["measures"] = {"predictive": p, "null": z}
        out["tau"].append(kendall(predictive.ravel(), gap.ravel()))
        for m in ("predictive", "null"):
            out[m].append(robust_sign_error(rows, m, direction=1, n_perm=N_PERM, seed=rep)["in_site"])
    return out


def test_null_measure_scores_worse_than_a_predictive_one_in_90_percent_of_simulations():
    sim = _simulation()
    assert np.mean(sim["tau"]) == pytest.approx(0.7, abs=0.05)
    pred, null = ([r["worst"] for r in sim[m]] for m in ("predictive", "null"))
    assert None not in pred and None not in null
    assert np.mean(np.array(pred) < np.array(null)) >= 0.9  # 1.0 here; the pre-#25 rule gave 0.77-0.85


def test_null_chance_level_is_one_half_and_calibrated():
    sim = _simulation()
    null, pred = sim["null"], sim["predictive"]
    # the mean over environments of a measure independent of the gap: 1/2, observed and permuted alike
    assert np.mean([r["mean_chance"]["mean"] for r in null]) == pytest.approx(0.5, abs=0.01)
    assert np.mean([r["mean"] for r in null]) == pytest.approx(0.5, abs=0.03)
    # the worst of ~15 environments is not 1/2 even by chance; the null's worst falls inside its chance band
    assert 0.6 < np.mean([r["chance"]["mean"] for r in null]) < 0.9
    above = np.mean([r["worst"] > r["chance"]["p95"] for r in null])
    assert above <= 0.1  # a within-seed permutation is exchangeable with the null: about 5%
    # a predictive measure is better than chance: below the 5th percentile of its permuted worst
    assert np.mean([r["worst"] < r["chance"]["p05"] for r in pred]) >= 0.9
