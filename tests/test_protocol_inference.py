"""Kendall's tau within seeds (exact p, interval over seeds), Holm over a full table, Jiang's Psi (issue #25).

Every number is checked against an independent answer: brute-force enumeration
of the within-seed permutations, scipy, a hand computation, or a simulation
with a known true within-seed tau.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import pytest
from scipy import stats

from landscape.report import inference
from landscape.report.granulated import axis_groups, granulated, jiang_tau, predictors
from landscape.report.inference import (
    holm,
    interval_over_strata,
    inversion_counts,
    kendall_variance,
    null_distribution,
    stratified_kendall,
)


def _s(x, y) -> int:
    """Kendall's S by a double loop over pairs (independent of the library's matrix form)."""
    return int(sum(np.sign(x[i] - x[j]) * np.sign(y[i] - y[j]) for i in range(len(x)) for j in range(i + 1, len(x))))


def _all_orders(x, y) -> Counter:
    """S over every order of y against x (n! of them, duplicates of tied values counted)."""
    return Counter(_s(x, [y[i] for i in order]) for order in itertools.permutations(range(len(y))))


def _sizes(v) -> tuple[int, ...]:
    return tuple(int(c) for c in np.unique(np.asarray(v), return_counts=True)[1])


def _denominator(x, y) -> float:
    """tau-b denominator sqrt((P - Tx)(P - Ty)) from scipy: S / tau_b, or by pair counting when S = 0."""
    n = len(x)
    p = n * (n - 1) / 2
    tied = [sum(c * (c - 1) / 2 for c in _sizes(v)) for v in (x, y)]
    return math.sqrt((p - tied[0]) * (p - tied[1]))


PATTERNS = [  # (x, y) of one seed: no ties, ties in y, ties in x, ties in both
    ([0, 1, 2, 3, 4, 5], [3, 0, 5, 1, 4, 2]),
    ([0, 1, 2, 3, 4, 5], [1, 1, 0, 2, 2, 2]),
    ([2, 2, 0, 1, 1, 3, 4], [0, 1, 2, 3, 4, 5, 6]),
    ([0, 0, 1, 1, 1, 2], [5, 3, 3, 1, 1, 1]),
    ([0, 0, 1, 2, 2, 2, 3], [1, 0, 0, 1, 2, 2, 2]),
]


def test_inversion_counts_are_the_mahonian_and_q_multinomial_numbers():
    assert inversion_counts((1, 1, 1, 1)) == (1, 3, 5, 6, 5, 3, 1)  # Mahonian numbers, n = 4 (sum 4!)
    assert inversion_counts((2, 2)) == (1, 1, 2, 1, 1)  # the q-binomial [4 choose 2]_q (sum 6)
    assert sum(inversion_counts((2, 1, 3))) == math.factorial(6) // (2 * 1 * 6)  # distinct words


@pytest.mark.parametrize("x, y", PATTERNS)
def test_null_distribution_and_variance_equal_enumeration(x, y):
    counts = _all_orders(x, y)
    n = len(x)
    p = n * (n - 1) // 2
    expected = np.zeros(2 * p + 1)
    for s, c in counts.items():
        expected[s + p] = c / math.factorial(n)
    np.testing.assert_allclose(null_distribution(_sizes(x), _sizes(y)), expected, rtol=0, atol=1e-15)
    values = np.array(list(counts.elements()), dtype=float)
    assert kendall_variance(_sizes(x), _sizes(y)) == pytest.approx(values.var(), rel=1e-12)
    assert values.mean() == pytest.approx(0.0, abs=1e-12)


def test_p_and_p_floor_are_exact_over_every_within_seed_permutation():
    strata = [([3.0, 1.0, 2.0], [0.5, 0.1, 0.5]),  # ties in y
              ([1.0, 2.0, 2.0, 4.0], [0.3, 0.2, 0.2, 0.9]),  # ties in both
              ([4.0, 3.0, 2.0, 1.0], [0.1, 0.4, 0.2, 0.3])]
    x = [v for xs, _ in strata for v in xs]
    y = [v for _, ys in strata for v in ys]
    seeds = [s for s, (xs, _) in enumerate(strata) for _ in xs]
    per_seed = [list(_all_orders(xs, ys).elements()) for xs, ys in strata]
    totals = np.array([sum(c) for c in itertools.product(*per_seed)])  # 6 * 24 * 24 equally likely tables
    observed = sum(_s(xs, ys) for xs, ys in strata)
    out = stratified_kendall(x, y, seeds)
    assert out["p"] == pytest.approx(np.mean(np.abs(totals) >= abs(observed)), rel=1e-12)
    assert out["p_floor"] == pytest.approx(np.mean(np.abs(totals) == np.abs(totals).max()), rel=1e-12)
    assert out["p_method"] == "exact permutation within seeds" and out["stratified"] and out["n_strata"] == 3
    # tau = sum S / sum D: scipy's per-seed tau-b weighted by its denominator
    d = [_denominator(xs, ys) for xs, ys in strata]
    taus = [stats.kendalltau(xs, ys).statistic for xs, ys in strata]
    assert out["kendall_tau"] == pytest.approx(sum(t * w for t, w in zip(taus, d)) / sum(d), rel=1e-12)


def test_one_seed_is_scipys_tau_b_with_its_exact_or_asymptotic_p():
    x = [3.0, 8.0, 1.0, 6.0, 2.0, 9.0, 4.0, 7.0, 5.0]
    y = [2.0, 9.0, 3.0, 5.0, 1.0, 8.0, 6.0, 4.0, 7.0]
    one = stratified_kendall(x, y, [0] * 9)
    ref = stats.kendalltau(x, y, method="exact")
    assert one["kendall_tau"] == pytest.approx(ref.statistic, rel=1e-12)
    assert one["p"] == pytest.approx(ref.pvalue, rel=1e-10) and one["p_floor"] == pytest.approx(2 / math.factorial(9))
    assert one["kendall_ci"] is None and "3 needed" in one["tau_note"]  # one seed: no interval over seeds
    # 12 runs with ties in both: beyond enumeration, the normal approximation with the tie-corrected variance
    xt = [3.1, 0.4, 2.2, 2.2, 5.0, 1.7, 4.4, 0.4, 3.9, 2.8, 1.1, 4.4]
    yt = [0.61, 0.80, 0.70, 0.66, 0.52, 0.74, 0.58, 0.81, 0.55, 0.66, 0.77, 0.60]
    tied = stratified_kendall(xt, yt, [0] * 12)
    ref = stats.kendalltau(xt, yt, method="asymptotic")
    assert tied["kendall_tau"] == pytest.approx(ref.statistic, rel=1e-12)
    assert tied["p"] == pytest.approx(ref.pvalue, rel=1e-9) and tied["p_method"].startswith("normal approximation")
    big = np.random.default_rng(0).permutation(151).astype(float)  # past the exact word distribution's 150 runs
    large = stratified_kendall(np.arange(151.0), big, [0] * 151)
    ref = stats.kendalltau(np.arange(151.0), big, method="asymptotic")
    assert large["p"] == pytest.approx(ref.pvalue, rel=1e-9) and large["p_method"].startswith("normal approximation")
    free = stratified_kendall(x, y, list(range(9)))  # every run its own seed: one stratum over all runs
    assert not free["stratified"] and free["p"] == one["p"] and free["kendall_ci"] is None


def test_normal_fallback_floor_is_the_most_extreme_order(monkeypatch):
    strata = [([0, 0, 1, 2, 2], [1.0, 0.0, 0.0, 2.0, 2.0]), ([1, 1, 0, 2, 3], [0.0, 1.0, 1.0, 1.0, 2.0])]
    monkeypatch.setattr(inference, "EXACT_MAX_RUNS", 4)
    null_distribution.cache_clear()
    try:
        out = stratified_kendall([v for xs, _ in strata for v in xs], [v for _, ys in strata for v in ys],
                                 [0] * 5 + [1] * 5)
    finally:
        null_distribution.cache_clear()
    per_seed = [list(_all_orders(xs, ys).elements()) for xs, ys in strata]
    sd = math.sqrt(sum(np.var(v) for v in per_seed))
    totals = np.array([sum(c) for c in itertools.product(*per_seed)])
    observed = sum(_s(xs, ys) for xs, ys in strata)
    assert out["p"] == pytest.approx(2 * stats.norm.sf(abs(observed) / sd), rel=1e-12)
    assert out["p_floor"] == pytest.approx(2 * stats.norm.sf(np.abs(totals).max() / sd), rel=1e-12)
    assert out["p_method"].startswith("normal approximation (a seed of more than 150 runs, or of more than 4 with")


def test_a_seed_shift_is_not_a_correlation():
    """The issue's example: perfectly negative within each seed, every seed shifted up in both values."""
    rank = np.tile(np.arange(7.0), 5)
    seed = np.repeat(np.arange(5), 7)
    x, y = rank + 10 * seed, -rank + 10 * seed
    assert stats.kendalltau(x, y).statistic > 0.5  # pooled over runs: the shift reads as a positive correlation
    out = stratified_kendall(x, y, seed)
    assert out["kendall_tau"] == -1.0 and out["kendall_ci"] == [-1.0, -1.0]
    assert out["p"] == pytest.approx(2 / 5040 ** 5) == out["p_floor"]


def _simulate(rng, reps, seeds, runs, tau):
    """Runs of each seed: bivariate normal with Kendall tau ``tau`` (r = sin(pi tau / 2)), plus one seed shift of sd 3
    added to both variables (a seed that raises the measure raises the target). ``(x, y)``: [reps, seeds, runs]."""
    r = math.sin(math.pi * tau / 2)
    u, v = rng.standard_normal((2, reps, seeds, runs))
    shift = 3.0 * rng.standard_normal((reps, seeds, 1))
    return u + shift, r * u + math.sqrt(1 - r * r) * v + shift


def _s_batched(x, y):
    return (np.sign(x[..., :, None] - x[..., None, :]) * np.sign(y[..., :, None] - y[..., None, :])).sum((-1, -2)) / 2


@pytest.mark.parametrize("seeds, tau", [(5, 0.0), (5, 0.5), (5, 0.8), (3, 0.0), (3, 0.5)])
def test_interval_covers_the_true_within_seed_tau(seeds, tau):
    """7 optimizers x ``seeds`` seeds, a seed shift in both variables: the 95% interval covers >= 93%."""
    rng = np.random.default_rng(int(100 * tau) + seeds)
    reps, runs = 2000, 7
    x, y = _simulate(rng, reps, seeds, runs, tau)
    s = _s_batched(x, y)  # [reps, seeds]; no ties: D = 21 in every seed
    d = np.full_like(s, runs * (runs - 1) / 2)
    low, high = interval_over_strata(s, d)
    coverage = np.mean((low <= tau) & (tau <= high))
    assert coverage >= 0.93, coverage
    assert np.mean(s.sum(1) / d.sum(1)) == pytest.approx(tau, abs=0.01)  # unbiased for the within-seed tau
    for i in range(5):  # the cell's interval is this one
        cell = stratified_kendall(x[i].ravel(), y[i].ravel(), np.repeat(np.arange(seeds), runs))
        assert cell["kendall_ci"] == pytest.approx([low[i], high[i]], rel=1e-12)
        assert cell["kendall_tau"] == pytest.approx(s[i].sum() / d[i].sum(), rel=1e-12)


def test_null_p_is_calibrated_and_tau_centred_under_a_seed_shift():
    rng = np.random.default_rng(7)
    x, y = _simulate(rng, 600, 5, 7, 0.0)
    seed = np.repeat(np.arange(5), 7)
    cells = [stratified_kendall(a.ravel(), b.ravel(), seed) for a, b in zip(x, y)]
    p = np.array([c["p"] for c in cells])
    tau = np.array([c["kendall_tau"] for c in cells])
    pooled = np.array([stats.kendalltau(a.ravel(), b.ravel()).statistic for a, b in zip(x[:100], y[:100])])
    assert pooled.mean() > 0.3  # the pooled tau is not centred: the shared seed shift pushes it up
    assert abs(tau.mean()) < 0.02  # the within-seed tau is
    for alpha in (0.01, 0.05, 0.2, 0.5):  # an exact test of a discrete statistic: at most alpha (+ 2.5 MC sd)
        assert np.mean(p <= alpha) <= alpha + 2.5 * math.sqrt(alpha * (1 - alpha) / len(p)), alpha


def _rows(n_measures=20, seeds=5, optimizers=7):
    rng = np.random.default_rng(3)
    rows = []
    for s in range(seeds):
        for o in range(optimizers):
            gap = 0.01 * o + 0.05 * s + rng.normal(0, 0.002)  # the optimizer orders the gap within every seed
            rows.append({"name": f"o{o}-s{s}", "group": f"o{o}", "n_test": 150, "not_invariant": {},
                         "axes": {"optimizer": f"o{o}", "seed": s, "model": "cnn", "rho": None, "lr": 1e-3,
                                  "epochs": 10},
                         "measures": {f"m{j}": gap + rng.normal(0, 1e-5) for j in range(n_measures)},
                         "targets": {"test_balanced_accuracy": 0.9 - gap, "gap": gap, "external_auroc": 0.8 - gap,
                                     "drop": gap + 0.1},
                         "environments": {}, "environment_sizes": {}})
    return rows


def test_holm_over_80_cells_can_reach_below_0_01():
    out = predictors(_rows(), [f"m{j}" for j in range(20)])
    assert out["multiple_comparisons"] == "Holm over 80 cells"
    floor = 2 / 5040 ** 5  # 5 seeds of 7 untied runs
    assert all(c["p_floor"] == pytest.approx(floor) for c in out["cells"])
    assert out["holm_floor"] == pytest.approx(80 * floor)
    assert max(c["p_holm"] for c in out["cells"]) < 0.01  # every cell, not just the best one
    assert holm([c["p"] for c in out["cells"]]) == [c["p_holm"] for c in out["cells"]]


def _psi_row(opt, seed, rho, lr, m, t):
    return {"name": f"{opt}-{rho}-{lr}-s{seed}", "group": opt,
            "axes": {"optimizer": opt, "seed": seed, "model": "cnn", "rho": rho, "lr": lr, "epochs": 10},
            "measures": {"m": m}, "targets": {"gap": t}}


def test_psi_fixes_rho_and_lr_on_the_optimizer_axis_and_counts_groups_of_two():
    rows = [  # seed 0: sam@0.05 ordered with adam, sam@0.1 against it; seed 1: both with it; sgd runs at lr 1e-2
        _psi_row("adam", 0, None, 1e-3, 1.0, 1.0), _psi_row("sam", 0, 0.05, 1e-3, 2.0, 2.0),
        _psi_row("sam", 0, 0.1, 1e-3, 3.0, 0.5), _psi_row("sgd", 0, None, 1e-2, 9.0, 9.0),
        _psi_row("adam", 1, None, 1e-3, 1.0, 1.0), _psi_row("sam", 1, 0.05, 1e-3, 2.0, 2.0),
        _psi_row("sam", 1, 0.1, 1e-3, 3.0, 3.0), _psi_row("sgd", 1, None, 1e-2, 0.0, 9.0),
    ]
    groups = sorted(sorted(r["name"] for r in g) for g in axis_groups(rows, "optimizer"))
    # adam (no rho) joins the group of each rho of sam at its lr; sgd has no partner at lr 1e-2
    assert groups == [["adam-None-0.001-s0", "sam-0.05-0.001-s0"], ["adam-None-0.001-s0", "sam-0.1-0.001-s0"],
                      ["adam-None-0.001-s1", "sam-0.05-0.001-s1"], ["adam-None-0.001-s1", "sam-0.1-0.001-s1"],
                      ["sgd-None-0.01-s0"], ["sgd-None-0.01-s1"]]
    g = granulated(rows, "m", "gap")
    # optimizer: +1 (adam-sam0.05, s0), -1 (adam-sam0.1, s0), +1, +1 (s1) -> 1/2
    assert g["axes"]["optimizer"]["taus"] == [1.0, -1.0, 1.0, 1.0] and g["psi_by_axis"]["optimizer"] == 0.5
    # rho: sam 0.05 vs 0.1 within each seed: m rises, t falls (s0) and rises (s1) -> 0; adam, sgd: no partner
    assert g["axes"]["rho"]["taus"] == [-1.0, 1.0] and g["psi_by_axis"]["rho"] == 0.0
    # lr: only sgd has lr 1e-2, and it differs in the optimizer too
    assert g["psi_by_axis"]["lr"] is None and g["axes_without_groups"] == ["lr"]
    assert g["psi"] == pytest.approx(0.25)


def test_jiang_tau_counts_ties_as_zero():
    # pairs: (1,1) tie in x -> 0, (1,2) and (1,2) concordant: 2 * 2 ordered pairs / (3 * 2)
    assert jiang_tau([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / 3)
    assert stats.kendalltau([1, 1, 2], [1, 2, 3]).statistic == pytest.approx(2 / math.sqrt(6))  # tau-b differs
    assert jiang_tau([5, 5], [1, 2]) == 0.0 and jiang_tau([1, None], [1, 2]) is None
    rows = [_psi_row(o, s, None, 1e-3, 4.0, t) for s in range(2) for o, t in (("a", 1.0), ("b", 2.0))]
    assert granulated(rows, "m", "gap")["psi"] == 0.0  # a measure constant across the axis: 0, as num_params


def test_summary_and_predictor_table_show_one_tau(tmp_path):
    from landscape.report.collect import Run
    from landscape.report.correlate import correlate_runs
    from landscape.report.rows import run_rows
    from landscape.report.summary import summarize

    runs = []
    for s in range(3):
        for o, (lam, ba) in enumerate([(1.0, 0.70), (2.0, 0.74), (3.0, 0.71 + 0.01 * s), (4.0, 0.80)]):
            record = {"settings": {}, "result": {"top_k": {"eigenvalues": [lam + 10 * s]}}}
            meta = {"optimizer": {"name": f"opt{o}", "hyper": {}}, "model": {"name": "cnn-small"}, "seed": s,
                    "epoch": 3, "train": {"epochs": 3}, "data": {"source": "busi", "split": {"hash": "h"}},
                    "metrics": {"test": {"n": 150, "balanced_accuracy": ba + 0.05 * s},
                                "train": {"balanced_accuracy": 0.99}}}
            runs.append(Run(tmp_path / f"opt{o}-s{s}" / "final.pt", meta, "0" * 16, {}, {"lambda_max": record}))
    rows = run_rows(runs)
    preds = correlate_runs(runs)
    summary = summarize(rows, preds)
    cell = next(c for c in summary["correlations"] if c["measure"] == "lambda_max" and c["target"] == "gap")
    table = next(c for c in preds["cells"] if c["measure"] == "lambda_max" and c["target"] == "gap")
    assert cell == {**table, "target": "gap"} and cell["p_holm"] is not None
    direct = stratified_kendall([r["lambda_max"] for r in rows], [r["gap"] for r in rows], [r["seed"] for r in rows])
    assert cell["kendall_tau"] == direct["kendall_tau"] and cell["kendall_ci"] == direct["kendall_ci"]
