"""`study --grid`: every setting trained, each optimizer's setting chosen on validation only, recorded."""

from __future__ import annotations

import json
import warnings

import pytest

from landscape.checkpoint import read_payload
from landscape.errors import LandscapeError
from landscape.study.grid import Variant, matched_targets, matched_variant, parse_grid, tuning_budgets, variants


@pytest.fixture(scope="module")
def grid_study(tmp_path_factory):
    from landscape.study import run_study

    out = tmp_path_factory.mktemp("grid-study")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run_study(out=out, models=("cnn-tiny",), optimizers="adam,sam", seeds=1, epochs=1, img_size=16,
                           quick=True, progress=False, grid={"sam": {"rho": [0.01, 0.5]}}, compute_matched=True)
    result.warnings = [str(w.message) for w in caught]
    return out, result


def test_grid_selects_the_best_validation_score_and_reports_only_it(grid_study):
    out, result = grid_study
    summary = json.loads((out / "study.json").read_text())
    sam = summary["selection"]["cnn-tiny/sam"]
    assert set(sam["candidates"]) == {"rho0.01", "rho0.5"}
    scores = {}
    for tag, cand in sam["candidates"].items():  # the runs' own validation metrics
        (run,) = cand["runs"]
        own = read_payload(f"{run}/final.pt")["metrics"]["val"]["balanced_accuracy"]
        assert cand["val"] == [own] and read_payload(f"{run}/final.pt")["optimizer"]["hyper"]["rho"] == \
            cand["setting"]["rho"]
        scores[tag] = own
    best = max(scores, key=lambda t: (scores[t], -list(scores).index(t)))
    assert sam["selected"] == best and sam["metric"] == "balanced_accuracy"
    assert summary["settings"]["selection_data"].startswith("validation split only")
    # compute-matched adam beside plain adam: the gradient evaluations of the selected sam run
    assert {"cnn-tiny/adam", "cnn-tiny/adam-cm"} <= set(summary["selection"])
    cm = summary["selection"]["cnn-tiny/adam-cm"]["selected_runs"][0]
    (sam_run,) = sam["selected_runs"]
    evals = read_payload(f"{sam_run}/final.pt")["gradient_evaluations"]
    assert cm.endswith("-cm") and read_payload(f"{cm}/final.pt")["gradient_evaluations"] == evals
    assert summary["selection"]["cnn-tiny/adam-cm"]["matched_to"] == {"group": "cnn-tiny/sam",
                                                                     "setting": sam["selected_setting"],
                                                                     "gradient_budgets": [evals]}
    # the tuning budgets: 1 candidate for adam, 2 for sam, stated and warned about in one line
    assert {g: e["tuning_budget"] for g, e in summary["selection"].items()} == {
        "cnn-tiny/adam": 1, "cnn-tiny/sam": 2, "cnn-tiny/adam-cm": 1}
    (warning,) = [w for w in result.warnings if "tuning budget" in w]
    assert "adam 1, sam 2" in warning and "\n" not in warning
    # only the selected runs are analysed and reported
    numbers = json.loads((out / "report.json").read_text())
    assert len(numbers["rows"]) == 3 == len(result.run_dirs) and len(summary["candidates"]) == 4
    assert sorted(summary["runs"]) == sorted(str(d) for d in result.run_dirs)
    loser = next(t for t in sam["candidates"] if t != best)
    assert not any(str(d).startswith(str(out / loser)) for d in result.run_dirs)


def test_parse_grid_and_variants():
    def value(text):
        return float(text)

    grid = parse_grid(["rho=0.01,0.05", "sam,asam:lr=0.001"], value)
    assert grid == {"*": {"rho": [0.01, 0.05]}, "sam": {"lr": [0.001]}, "asam": {"lr": [0.001]}}
    plan = variants(["adam", "sam"], {"*": {"rho": [0.01, 0.05]}})
    assert plan == [Variant("adam", "adam", {}), Variant("sam", "sam", {"rho": 0.01}),
                    Variant("sam", "sam", {"rho": 0.05})]
    assert plan[1].tag == "rho0.01" and plan[0].tag == ""
    assert tuning_budgets(plan) == {"adam": 1, "sam": 2}
    assert matched_targets(["adam", "sam", "crsam"], True) == ["sam"]
    assert matched_targets(["adam", "sam", "crsam"], "sam,crsam") == ["sam", "crsam"]
    assert matched_targets(["adam", "sam"], False) == []
    cm = matched_variant(Variant("adam", "adam", {"lr": 0.001}), "crsam", {"rho": 0.05})
    assert (cm.group, cm.tag, cm.matched_to) == ("adam-cm-crsam", "lr0.001_cm-crsam-rho0.05", "crsam")
    assert matched_variant(plan[0], "sam", {}).tag == "cm-sam"
    for names, value, message in ((["adam", "sam"], "crsam", "does not train"),
                                  (["adam", "sgd", "sam"], "sgd", "one pass per step"),
                                  (["sam", "crsam"], "sam", "no one-pass optimizer")):
        with pytest.raises(LandscapeError, match=message):
            matched_targets(names, value)
    with pytest.raises(LandscapeError, match="applies to none"):
        variants(["adam"], {"*": {"rho": [0.1]}})
    with pytest.raises(LandscapeError, match="does not train"):
        variants(["adam"], {"sam": {"rho": [0.1]}})
    with pytest.raises(LandscapeError, match="grid must be"):
        parse_grid(["rho"], value)


def test_study_cli_refuses_bad_grid_and_metric(cli, tmp_path):
    base = ("study", "--models", "cnn-tiny", "--optimizers", "adam", "--seeds", "1", "--epochs", "1",
            "--img-size", "16", "--quick", "--out", str(tmp_path / "s"))
    res = cli(*base, "--grid", "rho=0.1")
    assert res.code == 2 and "rho applies to none" in res.err
    res = cli(*base, "--select-by", "test_auroc")
    assert res.code == 2 and "--select-by must be one of" in res.err
    res = cli(*base, "--compute-matched", "sam")
    assert res.code == 2 and "error: --compute-matched names sam, which the study does not train" in res.err
    sam = tuple("sam" if a == "adam" else a for a in base)
    for item, message in (("rho=abc", "bad value for rho: 'abc'"), ("lr=abc", "lr must be a number > 0, got 'abc'"),
                          ("rho=-1", "rho must be > 0")):  # refused, not dropped for the defaults
        res = cli(*sam, "--grid", item)
        assert res.code == 2 and message in res.err and len(res.err.strip().splitlines()) == 1, res.err
    res = cli(*sam, "--compute-matched", "sam")
    assert res.code == 2 and "trains no one-pass optimizer to match" in res.err
    assert not (tmp_path / "s").exists()
