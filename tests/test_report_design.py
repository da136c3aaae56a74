"""The report's design table: the settings a study chose on validation, its tuning budgets, the compute."""

from __future__ import annotations

from landscape.report.content import design_table


def _rows():
    return [{"group": "adam", "gradient_evaluations": 100}, {"group": "adam", "gradient_evaluations": 140},
            {"group": "sam", "gradient_evaluations": 240}, {"group": "adam-cm", "gradient_evaluations": 240},
            {"group": "<b>x</b>", "gradient_evaluations": None}]


def test_design_table_shows_choices_budgets_and_compute_by_hand():
    selection = {"cnn-small/adam": {"candidates": {"lr0.001": {"mean_val": 0.8125}, "lr0.003": {"mean_val": 0.75}},
                                    "selected": "lr0.001", "tuning_budget": 2},
                 "cnn-small/sam": {"candidates": {"rho0.05": {"mean_val": 0.5}, "rho0.1": {"mean_val": 0.6}},
                                   "selected": "rho0.1", "tuning_budget": 2}}
    html = design_table(_rows(), selection)
    assert "lr0.001: 0.812, lr0.003: 0.750" in html and "rho0.05: 0.500, rho0.1: 0.600" in html
    assert "120 (100–140)" in html and "240 (240–240)" in html  # mean (min–max) of the seeds' counts
    assert ">rho0.1<" in html and "validation split only" in html
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html  # user strings are escaped


def test_design_table_without_a_study_still_shows_compute():
    html = design_table(_rows())
    assert "No study selection" in html and "120 (100–140)" in html
