"""Paired optimizer comparisons against a baseline (what `landscape compare` runs).

Conventions
-----------
* Runs pair when they share the model (and its arguments), the seed and the
  split hash: `landscape train` seeds the initial weights and the data order
  from the seed, so such runs differ only in the optimizer. A run whose
  baseline partner is missing (or ambiguous: two baseline runs with the same
  key) is listed in ``unpaired`` with the reason, never paired silently.
* For each group (optimizer) and target, ``d_s = value(group, s) - value(baseline, s)``
  over the ``n`` pairs: mean, sample sd, the 95% t-interval
  ``mean +- t_{0.975, n-1} sd / sqrt(n)``, the two-sided paired t-test ``p``,
  and ``p_holm`` (Holm over every group x target cell of the table).
* ``mdd``: the smallest true mean difference the paired t-test detects with
  80% power at alpha = 0.05 (two-sided), from the observed ``sd``: the
  ``delta`` with ``P(|T| > t_{0.975, n-1}) = 0.8`` for ``T`` noncentral t with
  ``n - 1`` degrees of freedom and noncentrality ``delta sqrt(n) / sd``.
* Targets: in-site test balanced accuracy, in-site test AUROC (malignant vs
  rest), the gap (train - test balanced accuracy), external AUROC and the
  in-site -> external AUROC drop (records of `landscape evaluate`).
* Test-set noise of each run (``test_uncertainty``): a 95% bootstrap CI over
  the in-site test images (images resampled: the in-site folder carries no
  patient ids) of balanced accuracy and AUROC, and the external AUROC CI of
  the evaluation record (resampled by its group column, e.g. patient, when
  the CSV gave one).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import integrate, optimize, stats

from landscape.errors import LandscapeError
from landscape.optim.base import DEFAULT_BASE
from landscape.report.collect import Run, collect
from landscape.report.correlate import predictor_row
from landscape.report.inference import holm
from landscape.report.rows import group_name
from landscape.report.stats import percentile_interval

TARGETS = {
    "test_balanced_accuracy": "in-site test balanced accuracy",
    "test_auroc": "in-site test AUROC (malignant vs rest)",
    "gap": "generalization gap (train − test balanced accuracy)",
    "external_auroc": "external AUROC (benign vs malignant)",
    "drop": "in-site → external AUROC drop",
}
ALPHA = 0.05
POWER = 0.8


def min_detectable(sd: float, n: int, alpha: float = ALPHA, power: float = POWER) -> float | None:
    """Smallest mean difference a two-sided paired t-test on ``n`` pairs detects with ``power`` (see module doc)."""
    if n < 2 or not math.isfinite(sd) or sd <= 0:
        return None
    df = n - 1
    crit = stats.t.ppf(1 - alpha / 2, df)

    def gap(delta: float) -> float:
        nc = delta * math.sqrt(n) / sd
        value = stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc)
        if not math.isfinite(value):  # scipy's nct fails at df = 1: P(|Z + nc| > crit sqrt(V/df)), V ~ chi2(df)
            def reject(u: float) -> float:
                c = crit * math.sqrt(stats.chi2.ppf(u, df) / df)
                return stats.norm.sf(c - nc) + stats.norm.cdf(-c - nc)

            value = integrate.quad(reject, 0.0, 1.0, limit=200)[0]
        return value - power

    hi = sd
    while gap(hi) < 0:
        hi *= 2
    return float(optimize.brentq(gap, 0.0, hi, xtol=1e-9 * sd))


def paired(differences: Sequence[float], alpha: float = ALPHA, power: float = POWER) -> dict:
    """``{"n_pairs", "mean_difference", "sd", "ci", "p", "mdd"}`` of paired differences (None where undefined)."""
    d = np.asarray(differences, dtype=float)
    n = len(d)
    out = {"n_pairs": n, "mean_difference": float(d.mean()) if n else None, "sd": None, "ci": None, "p": None,
           "mdd": None}
    if n < 2:
        return out
    sd = float(d.std(ddof=1))
    out["sd"] = sd
    out["mdd"] = min_detectable(sd, n, alpha, power)
    if sd > 0:
        se = sd / math.sqrt(n)
        half = float(stats.t.ppf(1 - alpha / 2, n - 1)) * se
        out["ci"] = [out["mean_difference"] - half, out["mean_difference"] + half]
        out["p"] = float(2 * stats.t.sf(abs(out["mean_difference"]) / se, n - 1))
    return out


def target_values(run: Run, source: str | None = None) -> dict:
    """The run's value of every :data:`TARGETS` entry (None where its record is missing)."""
    row = predictor_row(run, source)
    return {**row["targets"], "test_auroc": run.metrics("test").get("auroc_malignant")}


def pair_key(run: Run) -> str:
    """What two paired runs share: model and its arguments, seed, split."""
    kwargs = sorted((run.meta["model"].get("kwargs") or {}).items())
    return repr((run.model, kwargs, run.seed, run.split_hash))


def pairs(runs: Sequence[Run], baseline: str) -> tuple[dict[str, list[tuple[Run, Run]]], list[dict]]:
    """``({group: [(run, baseline run)]}, unpaired)`` (see module docstring)."""
    several = len({r.model for r in runs}) > 1
    groups = [group_name(r, several) for r in runs]
    if baseline not in groups:
        raise LandscapeError(f"baseline {baseline!r} is not among the runs' groups ({', '.join(sorted(set(groups)))})")
    members: dict[tuple, list[Run]] = {}  # (group, model/seed/split): a seed counts once per group
    for r, g in zip(runs, groups):
        members.setdefault((g, pair_key(r)), []).append(r)
    out: dict[str, list[tuple[Run, Run]]] = {}
    unpaired = []
    for r, g in zip(runs, groups):
        if g == baseline:
            continue
        partners, twins = members.get((baseline, pair_key(r)), []), members[(g, pair_key(r))]
        if len(partners) == 1 and len(twins) == 1:
            out.setdefault(g, []).append((r, partners[0]))
        else:
            reason = (f"no {baseline} run with the same model, seed and split" if not partners
                      else f"{len(partners)} {baseline} runs with the same model, seed and split" if len(partners) > 1
                      else f"{len(twins)} {g} runs with the same model, seed and split (pass one setting per group)")
            unpaired.append({"run": r.name, "group": g, "seed": r.seed, "reason": reason})
    return out, unpaired


def _bootstrap(values_of, n: int, n_boot: int, seed: int) -> list[float] | None:
    rng = np.random.default_rng(seed)
    lo, hi, _ = percentile_interval([values_of(rng.integers(0, n, size=n)) for _ in range(n_boot)], n_boot)
    return None if lo is None else [lo, hi]


def run_uncertainty(run: Run, n_boot: int = 1000, seed: int = 0, source: str | None = None) -> dict:
    """95% bootstrap CIs of the run's in-site test metrics (over test images) and its external AUROC CI."""
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score

    from landscape.checkpoint import load_checkpoint
    from landscape.metrics import softmax
    from landscape.report.correlate import external_record
    from landscape.train.evaluate import predict

    ck = load_checkpoint(run.path, device="cpu")
    x, y = ck.tensors("test")
    probs = softmax(predict(ck.model, x).numpy().astype(np.float64))
    labels = y.numpy()
    pred = probs.argmax(1)
    mal = ck.classes.index("malignant") if "malignant" in ck.classes else None

    def bacc(idx):
        return float(balanced_accuracy_score(labels[idx], pred[idx]))

    def auroc(idx):
        t = labels[idx] == mal
        return None if mal is None or t.all() or not t.any() else float(roc_auc_score(t, probs[idx, mal]))

    rec = external_record(run, source)
    ext = rec["result"]["external"] if rec else None
    return {"n_test": int(len(labels)), "resampled": "test images (no patient ids in the in-site folder)",
            "test_balanced_accuracy_ci": _bootstrap(bacc, len(labels), n_boot, seed),
            "test_auroc_ci": _bootstrap(auroc, len(labels), n_boot, seed),
            "external_auroc_ci": ext["overall"].get("auroc_ci") if ext else None,
            "external_resampled": (f"groups of {ext['group_column']}" if ext and ext.get("group_column")
                                   else "images" if ext else None)}


def compare_runs(runs: Sequence[Run], baseline: str = DEFAULT_BASE, source: str | None = None, n_boot: int = 1000,
                 seed: int = 0, uncertainty: bool = True) -> dict:
    """Paired differences of every group against ``baseline`` on every target (see module docstring)."""
    matched, unpaired = pairs(runs, baseline)
    values = {r.name: target_values(r, source) for r in runs}
    cells = []
    for group, members in matched.items():
        for t in TARGETS:
            rows = [{"seed": r.seed, "run": r.name, "baseline_run": b.name, "value": values[r.name][t],
                     "baseline_value": values[b.name][t]} for r, b in sorted(members, key=lambda p: p[0].seed)]
            usable = [p for p in rows if p["value"] is not None and p["baseline_value"] is not None]
            for p in usable:
                p["difference"] = p["value"] - p["baseline_value"]
            cell = {"group": group, "target": t, **paired([p["difference"] for p in usable]), "pairs": usable,
                    "missing_values": len(rows) - len(usable)}
            cells.append(cell)
    for c, p in zip(cells, holm([c["p"] for c in cells])):
        c["p_holm"] = p
    per_run = []
    for r in runs:
        entry = {"run": r.name, "group": group_name(r, len({x.model for x in runs}) > 1), "seed": r.seed,
                 "values": values[r.name]}
        if uncertainty:
            entry["test_uncertainty"] = run_uncertainty(r, n_boot, seed, source)
        per_run.append(entry)
    return {"baseline": baseline, "targets": TARGETS, "alpha": ALPHA, "power": POWER, "cells": cells,
            "unpaired": unpaired, "runs": per_run, "n_boot": n_boot, "seed": seed,
            "multiple_comparisons": f"Holm over {sum(c['p'] is not None for c in cells)} cells",
            "method": "paired t over seeds (same model, seed and split); mdd from the noncentral t at 80% power"}


def compare(inputs: Sequence[str | Path], baseline: str = DEFAULT_BASE, source: str | None = None, n_boot: int = 1000,
            seed: int = 0, progress: bool = True) -> dict:
    """:func:`compare_runs` over the runs ``inputs`` (records and a test-set prediction per run only)."""
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 10:
        raise LandscapeError(f"n_boot must be an integer >= 10, got {n_boot!r}")
    if not baseline:
        raise LandscapeError("baseline must name a group, e.g. adam")
    runs, _ = collect(inputs, compute=False, seed=seed, progress=progress)
    from landscape.io import versions

    return {**compare_runs(runs, baseline, source, n_boot, seed), "inputs": [str(r.path) for r in runs],
            "versions": versions()}
