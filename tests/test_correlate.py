"""Granulated Psi and the robust view on constructed tables with known answers; the correlate CLI and report panel."""

from __future__ import annotations

import itertools
import math

import pytest

from landscape.report.granulated import (
    AXES,
    granulated,
    predictors,
    psi_axis,
)
from landscape.report.inference import holm, stratified_kendall
from landscape.report.robust import IN_SITE, worst_domain_tau


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


def test_two_runs_make_a_psi_group_and_the_optimizer_axis_fixes_lr():
    rows = [_row("a", 0, 1, 1), _row("a", 0, 2, 3, lr=0.01), _row("b", 0, 3, 2)]
    g = granulated(rows, "m", "test_balanced_accuracy")
    # lr axis: a at lr 0.001 and 0.01 (m 1 -> 2, t 1 -> 3): one group of two, tau +1
    assert g["axes"]["lr"] == {"psi": 1.0, "n_groups": 1, "n_runs": 2, "taus": [1.0], "note": None}
    # optimizer axis: lr fixed, so only a and b at lr 0.001 (m 1 -> 3, t 1 -> 2) differ in the optimizer alone
    assert g["axes"]["optimizer"] == {"psi": 1.0, "n_groups": 1, "n_runs": 2, "taus": [1.0], "note": None}
    assert g["psi"] == 1.0 and g["axes_without_groups"] == []
    one = granulated(rows[:1], "m", "test_balanced_accuracy")
    assert one["psi"] is None and one["note"] == "no hyper-parameter varies"
    apart = granulated([rows[1], rows[2]], "m", "test_balanced_accuracy")  # they differ in optimizer and lr
    assert apart["psi"] is None and apart["axes_without_groups"] == ["optimizer", "lr"]
    assert apart["axes"]["lr"]["note"] == "no two runs with values differ only in lr"


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


def test_holm_step_down_by_hand():
    # m = 4 (None does not count): sorted 0.005, 0.01, 0.03, 0.04 -> 4*0.005, 3*0.01, 2*0.03, max(0.06, 1*0.04)
    assert holm([0.01, 0.04, 0.03, 0.005, None]) == pytest.approx([0.03, 0.06, 0.06, 0.02, None])
    assert holm([0.5, 0.9]) == [1.0, 1.0]


def test_permutation_p_is_stratified_by_seed():
    x = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    y = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    strata = [0, 0, 1, 1, 2, 2]
    # exact: the 8 within-stratum permutations of y, share with |sum of within-stratum concordances| >= 3
    sums = []
    for swaps in itertools.product([False, True], repeat=3):
        sums.append(sum(-1 if sw else 1 for sw in swaps))
    exact = sum(abs(v) >= 3 for v in sums) / 8
    got = stratified_kendall(x, y, strata)
    assert got["stratified"] and got["p"] == pytest.approx(exact, rel=1e-12) and got["kendall_tau"] == 1.0
    free = stratified_kendall(x, y, list(range(6)))  # one run per seed: over all runs
    assert not free["stratified"] and free["p"] == pytest.approx(2 / math.factorial(6), rel=1e-12)


def test_predictors_sorts_by_psi():
    rows = _table()
    for r in rows:
        r["measures"]["flat"] = 5.0  # constant: Jiang's tau 0 in every group (a tie counts 0), sorted after m
    out = predictors(rows, ["flat", "m"])
    assert out["measures"] == ["m", "flat"] and out["sorted_by"] == "test_balanced_accuracy"
    cell = next(c for c in out["cells"] if c["measure"] == "m" and c["target"] == "gap")
    assert cell["psi"] is None and cell["kendall_tau"] is None


def test_correlate_cli_and_report_panel(tiny_runs, tmp_path, cli, quick_analyses):  # correlate computes the rest
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
    res = cli("correlate", *map(str, runs), "--json", str(tmp_path / "c.json"))
    assert res.code == 0, res.err
    data = json.loads((tmp_path / "c.json").read_text())
    assert data["n_runs"] == 2 and "dist_init" in data["measures"]
    cell = next(c for c in data["cells"] if c["measure"] == "dist_init")
    # two runs of one seed: too few for Kendall's tau, one group of the optimizer axis for Psi (tau +-1 or 0)
    assert cell["kendall_tau"] is None and "fewer than 3" in cell["tau_note"] and cell["psi"] in (-1.0, 0.0, 1.0)
    out = build_report(runs, tmp_path / "r.html", compute=False, progress=False)
    page = out.read_text()
    assert "Which measure predicts generalization?" in page and "dist_init" in page


def test_panel_escapes_user_strings():
    from landscape.report.predictor_panel import predictors_section

    rows = [_row("<script>alert(1)</script>", s, m=s, t=s, envs={"<b>scanner</b>": s, IN_SITE: -s}) for s in range(3)]
    result = predictors(rows, ["m"])
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
    out = predictors(rows, ["pacbayes_sigma", "pacbayes_flatness", "m"])
    assert set(out["measures"]) == {"pacbayes_sigma", "m"} and out["equivalent"]["pacbayes_sigma"] == [
        "pacbayes_flatness"]
    assert out["multiple_comparisons"].startswith("Holm over")
    assert equivalents(["log_prod_spec", "log_sum_spec"], rows) == {"log_prod_spec": ["log_sum_spec"]}
    rows[0]["axes"]["model"] = "other"  # with two architectures the layer count differs: not a transform
    assert equivalents(["log_prod_spec", "log_sum_spec"], rows) == {"log_prod_spec": [], "log_sum_spec": []}
