"""Jiang et al.'s conditional-mutual-information test against hand computations and a constructed confounder."""

from __future__ import annotations

import math

import pytest

from landscape.report.cmi import cmi_test, conditional_mi


def _row(name, a, b, seed, gap, measures):
    return {"name": name, "group": f"a{a}", "targets": {"gap": gap}, "measures": measures,
            "axes": {"optimizer": f"a{a}", "seed": seed, "model": "m", "rho": None, "lr": b, "epochs": 1}}


def test_unconditional_mi_by_hand():
    rows = [_row(str(i), 0, 0, i, g, {"m": m}) for i, (g, m) in enumerate([(1, 1), (2, 3), (3, 2)])]
    out = conditional_mi(rows, "m")
    # 6 ordered pairs: (V_mu, V_g) = (-1,-1) x2, (+1,+1) x2, (+1,-1), (-1,+1); marginals uniform
    want = 2 / 3 * math.log((1 / 3) / (1 / 4)) + 1 / 3 * math.log((1 / 6) / (1 / 4))
    assert out["n_pairs"] == 6 and out["mi"] == pytest.approx(want)
    assert out["h"] == pytest.approx(math.log(2)) and out["normalised"] == pytest.approx(want / math.log(2))


def test_a_measure_that_only_tracks_a_hyper_parameter_gets_k_zero():
    rows = []
    for a in (0, 1):  # the optimizer axis drives the gap; lr (b) does not
        for b in (0.1, 0.2):
            for seed, noise in enumerate((0.01, 0.03, 0.02)):
                gap = 1.0 * a + noise + 0.001 * b
                rows.append(_row(f"{a}{b}{seed}", a, b, seed, gap, {"proxy": float(a), "oracle": gap}))
    proxy = cmi_test(rows, "proxy")
    # unconditionally the proxy carries information about the gap's sign ...
    assert proxy["by_condition"][""] > 0.3
    # ... but none once the optimizer is fixed: within a = a' it is constant, across it the sign is fixed
    assert proxy["k"] == pytest.approx(0.0, abs=1e-12) and "optimizer" in proxy["argmin"]
    oracle = cmi_test(rows, "oracle")
    assert oracle["k"] == pytest.approx(1.0)  # the gap itself: full information under every conditioning
    assert set(oracle["by_condition"]) == {"", "optimizer", "lr", "optimizer,lr"}
