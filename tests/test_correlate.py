"""Granulated Psi and the robust view on constructed tables with known answers; the correlate CLI and report panel."""

from __future__ import annotations

import pytest

from landscape.report.granulated import (
    granulated,
    kendall,
    predictors,
    psi_axis,
    robust,
)


def _row(opt, seed, m, t, lr=0.001, envs=None):
    return {"name": f"{opt}-s{seed}", "group": opt,
            "axes": {"optimizer": opt, "seed": seed, "model": "cnn", "rho": None, "lr": lr, "epochs": 10},
            "measures": {"m": m}, "targets": {"test_balanced_accuracy": t}, "environments": envs or {}}


def _table():
    # across optimizers (fixed seed) m and t rise together: tau = +1 in each seed group
    # across seeds (fixed optimizer): a: t order (0, 2, 1) -> tau 1/3; b, c: t falls -> tau -1
    rows = []
    for i, opt in enumerate("abc"):
        for s in range(3):
            noise = {"a": [0, 2, 1], "b": [2, 1, 0], "c": [2, 1, 0]}[opt][s]
            rows.append(_row(opt, s, m=10 * i + s, t=100 * i + noise))
    return rows


def test_psi_on_a_constructed_table():
    rows = _table()
    assert psi_axis(rows, "m", "test_balanced_accuracy", "optimizer")["psi"] == pytest.approx(1.0)
    seed = psi_axis(rows, "m", "test_balanced_accuracy", "seed")
    assert seed["psi"] == pytest.approx((1 / 3 - 1 - 1) / 3) and seed["n_groups"] == 3
    g = granulated(rows, "m", "test_balanced_accuracy")
    assert set(g["axes"]) == {"optimizer", "seed"}  # only these vary
    assert g["psi"] == pytest.approx((1.0 + (1 / 3 - 2) / 3) / 2)


def test_axes_with_fewer_than_three_runs_say_so():
    rows = [_row("a", 0, 1, 1), _row("a", 0, 2, 3, lr=0.01), _row("b", 0, 3, 2)]
    g = granulated(rows, "m", "test_balanced_accuracy")
    assert g["axes"]["lr"]["psi"] is None and "fewer than 3" in g["axes"]["lr"]["note"]
    # the optimizer axis carries lr with it: the three runs form one group
    assert g["axes"]["optimizer"]["psi"] == pytest.approx(kendall([1, 2, 3], [1, 3, 2]))
    assert g["psi"] == pytest.approx(1 / 3)
    two = granulated(rows[:2], "m", "test_balanced_accuracy")
    assert two["psi"] is None and "fewer than 3" in two["note"]


def test_robust_view_takes_the_worst_environment():
    rows = [_row("a", s, m=s, t=0, envs={"site": s, "scanner 1": [0, 2, 1, 3][s], "scanner 2": -s}) for s in range(4)]
    r = robust(rows, "m")
    assert r["environments"]["site"] == pytest.approx(1.0) and r["environments"]["scanner 2"] == pytest.approx(-1.0)
    # mean tau = (1 + 2/3 - 1)/3 > 0, so the worst is the most negative one: the sign flips on scanner 2
    assert r["worst"] == pytest.approx(-1.0)
    rows2 = [_row("a", s, m=s, t=0, envs={"site": s}) for s in range(4)]
    assert robust(rows2, "m")["worst"] is None and "2 environments" in robust(rows2, "m")["note"]


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

    rows = [_row("<script>alert(1)</script>", s, m=s, t=s, envs={"<b>scanner</b>": s, "site": -s}) for s in range(3)]
    result = predictors(rows, ["m"], n_boot=50)
    result.update(rows=rows, units={"m": "<i>u</i>"})
    page = predictors_section(result)
    assert "<script>alert" not in page and "<b>scanner" not in page and "<i>u" not in page
    assert "&lt;b&gt;scanner&lt;/b&gt;" in page and "Ψ" in page
