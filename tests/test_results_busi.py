"""The committed BUSI results (results/busi/) and the prose generated from them cannot drift apart.

* docs/results.md and README's "Results on BUSI" block are exactly what
  ``examples/busi_study.py --render`` makes of the committed files;
* every paired difference and 95% t-interval printed in docs/results.md is
  recomputed here from ``runs.csv`` alone (pairs by model, seed and split);
* the run is the protocol the issue asks for: >= 5 seeds on the binary task,
  a compute-matched baseline with the gradient evaluations of its matched runs,
  wall time within 75 minutes.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import re
from pathlib import Path

import pytest
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results" / "busi"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("busi_study_render", ROOT / "examples" / "busi_study.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_docs_results_are_generated_from_the_committed_files(example):
    assert (ROOT / "docs" / "results.md").read_text() == example.render_results(RESULTS)


def test_readme_summary_is_generated_and_short(example):
    text = (ROOT / "README.md").read_text()
    start, end = example.README_MARKERS
    block = text.split(start, 1)[1].split(end, 1)[0].strip("\n")
    assert block == example.render_summary(RESULTS)
    assert len(block.splitlines()) <= 25
    assert "under review" not in block.lower() and "pending" not in block.lower()


def _runs(task: str) -> list[dict]:
    with open(RESULTS / task / "runs.csv", newline="") as f:
        return list(csv.DictReader(f))


def _paired_from_csv(runs: list[dict], group: str, baseline: str, column: str) -> tuple[int, float, list | None]:
    key = lambda r: (r["model"], r["seed"], r["split_hash"])  # noqa: E731
    base = {key(r): r for r in runs if r["group"] == baseline}
    d = [float(r[column]) - float(base[key(r)][column]) for r in runs
         if r["group"] == group and key(r) in base and r[column] != "" and base[key(r)][column] != ""]
    n = len(d)
    mean = sum(d) / n
    if n < 2:
        return n, mean, None
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
    half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    return n, mean, None if sd == 0 else [mean - half, mean + half]


def test_every_paired_difference_in_the_docs_is_recomputed_from_runs_csv(example):
    text = (ROOT / "docs" / "results.md").read_text()
    run = json.loads((RESULTS / "run.json").read_text())
    checked = 0
    for task in run["tasks"]:
        runs = _runs(task)
        section = text.split("## Task:")[1 + run["tasks"].index(task)]
        for block in re.split(r"### Paired differences from ", section)[1:]:
            baseline = block.split()[0]
            for line in block.splitlines():
                m = re.match(r"\| (\S+) \| (\w+) \| (\d+) \| ([+-]\d\.\d{3})(?: \[(-?\d\.\d{3}), (-?\d\.\d{3})\])? \|",
                             line)
                if not m:
                    continue
                group, target, n_pairs, mean = m.group(1), m.group(2), int(m.group(3)), m.group(4)
                n, value, ci = _paired_from_csv(runs, group, baseline, example.PAIRED_TARGETS[target][0])
                assert n == n_pairs, line
                assert abs(value - float(mean)) <= 5e-4 + 1e-12, line  # equal at the printed precision
                if m.group(5) is not None:
                    assert abs(ci[0] - float(m.group(5))) <= 5e-4 + 1e-12, line
                    assert abs(ci[1] - float(m.group(6))) <= 5e-4 + 1e-12, line
                checked += 1
    assert checked >= 2 * 5 * 6  # two baselines x five targets x (at least) six other groups


def test_the_committed_run_is_the_protocol():
    run = json.loads((RESULTS / "run.json").read_text())
    assert "binary" in run["tasks"] and len(run["seeds"]) >= 5
    assert run["wall_time_s"] <= 75 * 60
    summary = json.loads((RESULTS / "binary" / "summary.json").read_text())
    sizes = {g: len(e["candidates"]) for g, e in summary["selection"].items() if "-cm" not in g}
    assert len(set(sizes.values())) == 1, sizes  # equal tuning budget
    groups = {g.split("/")[-1] for g in sizes}
    assert {"adam", "sgd", "sam", "asam", "gsam", "wsam", "crsam"} <= groups
    stopping = json.loads((RESULTS / "binary" / "stopping.json").read_text())
    runs = _runs("binary")
    evals = {s["run"]: s["gradient_evaluations"] for s in stopping}
    by_key = {(r["group"], r["seed"]): evals[r["run"]] for r in runs}
    matched = run["settings"]["matched_to"]
    matched_groups = [g for g, _ in by_key if g.endswith("-cm")]
    assert {"adam-cm", "sgd-cm"} <= set(matched_groups)
    for (group, seed), value in by_key.items():
        if group.endswith("-cm"):  # the same gradient evaluations as the matched optimizer's run of its seed
            assert value == by_key[(matched, seed)]
