"""Granulated Psi and the robust view on constructed tables with known answers; the correlate CLI and report panel."""

from __future__ import annotations

import itertools
import math

import pytest

from landscape.report.granulated import (
    AXES,
    granulated,
    kendall,
    predictors,
    psi_axis,
)
from landscape.report.inference import cluster_bootstrap_ci, holm, permutation_p
from landscape.report.robust import IN_SITE, robust_sign_error, worst_domain_tau


def _row(opt, seed, m, t, lr=0.001, envs=None, gap=None, sizes=None):
    return {"name": f"{opt}-s{seed}", "group": opt,
            "axes": {"optimizer": opt, "seed": seed, "model": "cnn", "rho": None, "lr": lr, "epochs": 10},
            "measures": {"m": m}, "targets": {"test_balanced_accuracy": t, "gap": gap}, "environments": envs or {},
            "environment_sizes": sizes or {e: 100 for e in envs or {}}}


def _table():
    # across optimizers (fixed seed) m and t rise together: tau = +1 in each seed group
    # across seeds (fixed optimizer): a: t order (0, 2, 1) -> tau 1/3; b, c: t falls -> tau -1
    rows = []
    for i, opt in enumerate("abc"):
        for s in range(3):
            noise = {"a": [0, 2, 1], "b": [2, 1, 0], "c": [2, 1, 0]}[opt][s]
            rows.append(_row(opt, s, m=10 * i + s, t=100 * i + noise))
    return rows


def test_psi_averages_hyper_parameter_axes_only_not_the_seed():
    rows = _table()
    assert psi_axis(rows, "m", "test_balanced_accuracy", "optimizer")["psi"] == pytest.approx(1.0)
    seed = psi_axis(rows, "m", "test_balanced_accuracy", "seed")
    assert seed["psi"] == pytest.approx((1 / 3 - 1 - 1) / 3) and seed["n_groups"] == 3
    g = granulated(rows, "m", "test_balanced_accuracy")
    assert g["psi_by_axis"] == {"optimizer": pytest.approx(1.0)} and g["axes_without_groups"] == []
    assert g["psi"] == pytest.approx(1.0)  # Jiang: the seed is not an axis
    with_seed = granulated(rows, "m", "test_balanced_accuracy", axes=AXES)  # what counting the seed would give
    assert set(with_seed["psi_by_axis"]) == {"optimizer", "seed"}
    assert with_seed["psi"] == pytest.approx((1.0 + (1 / 3 - 2) / 3) / 2) != g["psi"]


def test_axes_with_fewer_than_three_runs_say_so():
    rows = [_row("a", 0, 1, 1), _row("a", 0, 2, 3, lr=0.01), _row("b", 0, 3, 2)]
    g = granulated(rows, "m", "test_balanced_accuracy")
    assert g["axes"]["lr"]["psi"] is None and "fewer than 3" in g["axes"]["lr"]["note"]
    assert g["psi_by_axis"]["lr"] is None and g["axes_without_groups"] == ["lr"]
    # the optimizer axis carries lr with it: the three runs form one group
    assert g["axes"]["optimizer"]["psi"] == pytest.approx(kendall([1, 2, 3], [1, 3, 2]))
    assert g["psi"] == pytest.approx(1 / 3)
    two = granulated(rows[:2], "m", "test_balanced_accuracy")
    assert two["psi"] is None and "fewer than 3" in two["note"]


def test_worst_domain_tau_uses_the_sign_fixed_in_advance_and_skips_small_domains():
    envs = [{IN_SITE: s, "scanner 1": [0, 2, 1, 3][s], "scanner 2": -s, "tiny": s} for s in range(4)]
    sizes = {IN_SITE: 100, "scanner 1": 60, "scanner 2": 50, "tiny": 25}
    rows = [_row("a", s, m=s, t=0, envs=envs[s], sizes=sizes) for s in range(4)]
    # a complexity measure (direction +1) should fall as AUROC rises: expected sign -1, so the worst is the
    # largest tau (1.0 in-site), whatever the data's mean sign
    r = worst_domain_tau(rows, "m", direction=1)
    assert r["expected_sign"] == -1 and r["excluded_domains"] == ["tiny"] and "tiny" not in r["environments"]
    assert r["environments"]["scanner 2"] == pytest.approx(-1.0)
    assert r["worst"] == pytest.approx(1.0) and r["worst_domain"] == IN_SITE
    flat = worst_domain_tau(rows, "m", direction=-1)  # larger should mean better: expected sign +1
    assert flat["worst"] == pytest.approx(-1.0) and flat["worst_domain"] == "scanner 2"
    assert worst_domain_tau(rows, "m", 1, min_domain_size=61)["note"].startswith("needs 2 domains")


def _sign_table():
    """Configurations (optimizer, lr) x seeds 0-2 with measure m and gap g (see the hand computation below)."""
    data = {("a", 1): ([1, 1, 1], [0.10, 0.12, 0.11]), ("b", 1): ([2, 2, 0.5], [0.20, 0.22, 0.21]),
            ("a", 2): ([3, 3, 3], [0.11, 0.12, 0.13]), ("a", 3): ([5, 5, 5], [0.10, 0.14, 0.09])}
    rows = []
    for (opt, lr), (ms, gs) in data.items():
        for s in range(3):
            envs = {IN_SITE: 0.9, "X: big": 0.9 - gs[s], "X: small": 0.5}
            rows.append(_row(opt, s, m=ms[s], t=0, lr=lr, gap=gs[s], envs=envs,
                             sizes={IN_SITE: 100, "X: big": 60, "X: small": 10}))
    return rows


def test_robust_sign_error_by_hand():
    out = robust_sign_error(_sign_table(), "m", direction=1)
    # pairs differing in one axis (optimizer carries its lr), per seed error (1 - sign(dm) sign(dg)) / 2:
    #   a1-b1 optimizer: dg = -0.1 x3 (kept), dm = -1, -1, +1.5 -> errors 0, 0, 1 -> 1/3
    #   b1-a2 optimizer: dg ~ +0.09 (kept), dm < 0 -> 1;  b1-a3 optimizer: dg ~ +0.1 (kept), dm < 0 -> 1
    #   a1-a2 lr: dg = -0.01, 0, -0.02: mean 0.01 > se 0.0058 (kept), dm = -2 -> 0, 1/2 (tie), 0 -> 1/6
    #   a1-a3 lr: dg = 0, -0.02, +0.02 (mean 0 < se: dropped); a2-a3 lr: mean 0.01 < se 0.017 (dropped)
    # the robust sign error is the worst kept pair (Dziugaite's sup over environments); the mean rides beside it
    site = out["in_site"]
    assert site["environments"]["axis: optimizer"] == {"sign_error": pytest.approx(1.0),
                                                       "mean_sign_error": pytest.approx(7 / 9), "n_pairs": 3,
                                                       "n_dropped": 0}
    assert site["environments"]["axis: lr"] == {"sign_error": pytest.approx(1 / 6),
                                                "mean_sign_error": pytest.approx(1 / 6), "n_pairs": 1, "n_dropped": 2}
    assert site["worst"] == pytest.approx(1.0) and site["worst_environment"] == "axis: optimizer"
    # cross-site: the drop on "X: big" equals the gap, so the kept pairs over every axis are 1/3, 1, 1, 1/6
    cross = out["cross_site"]
    assert cross["excluded_domains"] == ["X: small"]
    assert cross["environments"]["X: big"]["sign_error"] == pytest.approx(1.0)
    assert cross["environments"]["X: big"]["mean_sign_error"] == pytest.approx((1 / 3 + 1 + 1 + 1 / 6) / 4)
    # the direction is fixed in advance: a measure expected to fall with the gap gets the complement (2/3, 0, 0)
    flipped = robust_sign_error(_sign_table(), "m", direction=-1)["in_site"]["environments"]
    assert flipped["axis: optimizer"]["sign_error"] == pytest.approx(2 / 3)
    assert flipped["axis: optimizer"]["mean_sign_error"] == pytest.approx(2 / 9)
    assert flipped["axis: lr"]["sign_error"] == pytest.approx(5 / 6)


def test_holm_step_down_by_hand():
    # m = 4 (None does not count): sorted 0.005, 0.01, 0.03, 0.04 -> 4*0.005, 3*0.01, 2*0.03, max(0.06, 1*0.04)
    assert holm([0.01, 0.04, 0.03, 0.005, None]) == pytest.approx([0.03, 0.06, 0.06, 0.02, None])
    assert holm([0.5, 0.9]) == [1.0, 1.0]


def test_permutation_p_is_stratified_by_seed():
    x = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    y = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    strata = [0, 0, 1, 1, 2, 2]
    # exact: the 8 within-stratum permutations of y, share with |tau| >= 1
    taus = []
    for swaps in itertools.product([False, True], repeat=3):
        yy = list(y)
        for k, sw in enumerate(swaps):
            if sw:
                yy[2 * k], yy[2 * k + 1] = yy[2 * k + 1], yy[2 * k]
        taus.append(kendall(x, yy))
    exact = sum(abs(t) >= 1 - 1e-12 for t in taus) / 8
    got = permutation_p(x, y, strata, n_perm=4000, seed=1)
    assert got["stratified"] and got["p"] == pytest.approx(exact, abs=0.02)
    free = permutation_p(x, y, list(range(6)), n_perm=4000, seed=1)  # one run per seed: over all runs
    assert not free["stratified"] and free["p"] == pytest.approx(2 / math.factorial(6), abs=0.003)


def test_cluster_bootstrap_resamples_whole_clusters():
    x = [0, 1, 2, 3, 4, 5, 6, 7, 8]
    y = [0, 2, 1, 3, 5, 4, 6, 8, 7]
    lo, hi, valid = cluster_bootstrap_ci(x, y, [0, 0, 0, 1, 1, 1, 2, 2, 2], n_boot=300, seed=0)
    assert lo <= kendall(x, y) <= hi and valid == 300
    # within a cluster tau is 1/3, between clusters 1: a resample of one cluster drawn three times gives 1/3
    assert lo == pytest.approx(1 / 3)
    assert cluster_bootstrap_ci(x, y, [0] * 5 + [1] * 4, n_boot=50)[0] is None  # fewer than 3 clusters


def test_predictors_sorts_by_psi():
    rows = _table()
    for r in rows:
        r["measures"]["flat"] = 5.0  # constant: tau undefined everywhere, so no Psi: sorted last
    out = predictors(rows, ["flat", "m"], n_boot=200)
    assert out["measures"] == ["m", "flat"] and out["sorted_by"] == "test_balanced_accuracy"
    cell = next(c for c in out["cells"] if c["measure"] == "m" and c["target"] == "gap")
    assert cell["psi"] is None and cell["kendall_tau"] is None


def test_correlate_cli_and_report_panel(tiny_runs, tmp_path, cli):
    import json
    import shutil

    from landscape.analysis.measures import analyze
    from landscape.report import build_report

    runs = []
    for src in tiny_runs:  # copies: the fixture runs are shared read-only
        dst = tmp_path / src.name
        shutil.copytree(src, dst)
        analyze(dst, measures=["dist_init", "num_params", "path_norm"],
                         progress=False, device="cpu")
        runs.append(dst)
    res = cli("correlate", *map(str, runs), "--json", str(tmp_path / "c.json"), "--n-boot", "50")
    assert res.code == 0, res.err
    data = json.loads((tmp_path / "c.json").read_text())
    assert data["n_runs"] == 2 and "dist_init" in data["measures"]
    cell = next(c for c in data["cells"] if c["measure"] == "dist_init")
    assert cell["kendall_tau"] is None and cell["psi"] is None and "fewer than 3" in cell["note"]
    out = build_report(runs, tmp_path / "r.html", compute=False, progress=False, n_boot=100)
    page = out.read_text()
    assert "Which measure predicts generalization?" in page and "dist_init" in page


def test_panel_escapes_user_strings():
    from landscape.report.predictor_panel import predictors_section

    rows = [_row("<script>alert(1)</script>", s, m=s, t=s, envs={"<b>scanner</b>": s, IN_SITE: -s}) for s in range(3)]
    result = predictors(rows, ["m"], n_boot=50)
    result.update(rows=rows, units={"m": "<i>u</i>"})
    page = predictors_section(result)
    assert "<script>alert" not in page and "<b>scanner" not in page and "<i>u" not in page
    assert "&lt;b&gt;scanner&lt;/b&gt;" in page and "Ψ" in page


def test_monotone_transforms_are_shown_once():
    from landscape.report.granulated import equivalents

    rows = _table()
    for r in rows:
        r["measures"].update(pacbayes_sigma=r["measures"]["m"], pacbayes_flatness=1 / r["measures"]["m"] ** 2
                             if r["measures"]["m"] else None, log_prod_spec=1.0, log_sum_spec=2.0)
    out = predictors(rows, ["pacbayes_sigma", "pacbayes_flatness", "m"], n_boot=50)
    assert set(out["measures"]) == {"pacbayes_sigma", "m"} and out["equivalent"]["pacbayes_sigma"] == [
        "pacbayes_flatness"]
    assert out["multiple_comparisons"].startswith("Holm over")
    assert equivalents(["log_prod_spec", "log_sum_spec"], rows) == {"log_prod_spec": ["log_sum_spec"]}
    rows[0]["axes"]["model"] = "other"  # with two architectures the layer count differs: not a transform
    assert equivalents(["log_prod_spec", "log_sum_spec"], rows) == {"log_prod_spec": [], "log_sum_spec": []}
