"""`landscape export`: the tidy CSV round-trips the records through pandas; the LaTeX tables parse as booktabs."""

from __future__ import annotations

import math
import re
import shutil

import pandas as pd
import pytest

from landscape.io import read_json, safe_torch_load
from landscape.report.export import group_table, mean_ci, predictor_table, tex_escape


@pytest.fixture(scope="module")
def runs(tiny_runs, tmp_path_factory):
    """Copies of the two tiny runs, each with a cheap Hessian record (top-1 eigenvalue of 16 images)."""
    from landscape.analysis.hessian import analyze

    root = tmp_path_factory.mktemp("export")
    out = []
    for run in tiny_runs:
        copy = shutil.copytree(run, root / run.name)
        analyze(copy, top_k=1, trace=False, samples=16, batch_size=16, seed=0, progress=False, device="cpu")
        out.append(copy)
    return out


def parse_tables(text: str) -> list[dict]:
    """A strict reader of the booktabs tables: environments, rules in order, cells per row = columns."""
    tables = []
    for body in re.findall(r"\\begin\{table\}\[t\]\n(.*?)\\end\{table\}", text, re.S):
        assert body.count("\\begin{tabular}") == 1 and body.count("\\end{tabular}") == 1
        spec = re.search(r"\\begin\{tabular\}\{([lrc]+)\}", body).group(1)
        inner = body.split("\\begin{tabular}{" + spec + "}\n", 1)[1].split("\\end{tabular}", 1)[0]
        lines = inner.strip().split("\n")
        assert lines[0] == "\\toprule" and lines[2] == "\\midrule" and lines[-1] == "\\bottomrule"
        rows = []
        for line in [lines[1], *lines[3:-1]]:
            assert line.endswith(" \\\\"), line
            cells = re.split(r"(?<!\\)&", line[:-3])
            assert len(cells) == len(spec) or (len(cells) == 1 and len(lines) == 5), line
            for cell in cells:
                outside_math = re.sub(r"\$[^$]*\$", "", cell)
                assert not re.search(r"(?<!\\)[_%#^]", outside_math), cell  # special characters escaped
                assert outside_math.count("{") == outside_math.count("}"), cell
            rows.append([c.strip() for c in cells])
        tables.append({"spec": spec, "header": rows[0], "rows": rows[1:],
                       "caption": re.search(r"\\caption\{(.*)\}\n", body).group(1)})
    assert text.count("\\begin{table}") == len(tables) == text.count("\\end{table}")
    return tables


def test_csv_round_trips_the_records_with_pandas_dtypes(runs, cli, tmp_path):
    res = cli("export", *runs, "--csv", tmp_path / "runs.csv")
    assert res.code == 0, res.err
    df = pd.read_csv(tmp_path / "runs.csv")
    assert list(df["run"]) == [r.name for r in runs] and list(df["optimizer"]) == ["adam", "sam"]
    assert df["seed"].dtype == "int64" and df["epoch"].dtype == "int64"
    for col in ("accuracy", "balanced_accuracy", "auroc", "ece", "nll", "gap", "lambda_max", "measure_lambda_max"):
        assert df[col].dtype == "float64", col
    assert df["lambda_max_certified"].dtype == bool
    assert "hyper_rho" in df and math.isnan(df.loc[0, "hyper_rho"]) and df.loc[1, "hyper_rho"] == 0.05
    assert not any(c.startswith("measure_pacbayes") for c in df)  # measures no run has are left out
    for i, run in enumerate(runs):
        test = safe_torch_load(run / "final.pt")["metrics"]["test"]
        train = safe_torch_load(run / "final.pt")["metrics"]["train"]
        hess = read_json(next((run / "analysis").glob("hessian-*.json")))["result"]["top_k"]["eigenvalues"][0]
        assert df.loc[i, "accuracy"] == test["accuracy"] and df.loc[i, "auroc"] == test["auroc_macro"]
        assert df.loc[i, "gap"] == train["balanced_accuracy"] - test["balanced_accuracy"]
        assert df.loc[i, "lambda_max"] == hess == df.loc[i, "measure_lambda_max"]
    assert df["external_auroc"].isna().all()


def test_latex_tables_parse_and_the_study_layout(runs, cli, tmp_path):
    res = cli("export", *runs, "--latex", tmp_path / "t.tex")
    assert res.code == 0, res.err
    groups, predictors = parse_tables((tmp_path / "t.tex").read_text())
    assert groups["header"][:2] == ["optimizer", "runs"] and [r[0] for r in groups["rows"]] == ["adam", "sam"]
    assert "\\texttt{lambda\\_max}" in groups["header"] and "external AUROC" not in groups["header"]
    assert predictors["rows"] == [["(no measure has a Kendall $\\tau$: fewer than 3 runs with values)"]]


def test_group_table_mean_and_t_interval_by_hand():
    rows = [{"group": "sam_rho&co", "balanced_accuracy": v, "auroc": None} for v in (0.5, 0.7, 0.9)]
    rows.append({"group": "adam", "balanced_accuracy": 0.61234, "auroc": 0.8})
    mean, half, n = mean_ci([0.5, 0.7, 0.9])
    assert (mean, n) == (pytest.approx(0.7), 3) and half == pytest.approx(4.302652729911275 * 0.2 / math.sqrt(3))
    table = parse_tables(group_table(rows))[0]
    assert table["spec"] == "lrrr" and table["header"] == ["optimizer", "runs", "test bal.\\ acc.", "test AUROC"]
    assert table["rows"] == [["sam\\_rho\\&co", "3", "0.700 $\\pm$ 0.50", "--"], ["adam", "1", "0.612", "0.800"]]


def test_predictor_table_cells_and_escaping():
    cell = {"kendall_tau": 0.5714, "kendall_ci": [0.1, 0.9], "psi": -0.25, "p_holm": 0.01}
    empty = {"kendall_tau": None, "kendall_ci": None, "psi": None, "p_holm": None}
    preds = {"measures": ["lambda_max", "pacbayes_sigma"], "n_runs": 7, "multiple_comparisons": "Holm over 1 cells",
             "cells": [{"measure": m, "target": t, **(cell if (m, t) == ("lambda_max", "gap") else empty)}
                       for m in ("lambda_max", "pacbayes_sigma")
                       for t in ("test_balanced_accuracy", "gap", "external_auroc", "drop")]}
    table = parse_tables(predictor_table(preds))[0]
    assert table["spec"] == "lrr" and table["header"][1].startswith("$\\tau$ generalization gap")
    assert table["rows"] == [["\\texttt{lambda\\_max}", "+0.57$^*$ [+0.10, +0.90]", "-0.25"],
                             ["\\texttt{pacbayes\\_sigma}", "--", "--"]]
    assert tex_escape("a_b%c#d$e{f}g~h^i\\j") == ("a\\_b\\%c\\#d\\$e\\{f\\}g\\textasciitilde{}h"
                                                  "\\textasciicircum{}i\\textbackslash{}j")


def test_export_needs_an_output(cli, tiny_runs):
    res = cli("export", tiny_runs[0])
    assert res.code == 2 and res.err.strip() == "error: give --csv FILE, --latex FILE or both"
