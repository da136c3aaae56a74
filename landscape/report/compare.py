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
* Test-set noise of each run (``test_uncertainty``): a 95% percentile
  bootstrap CI of its in-site test balanced accuracy and AUROC that resamples
  the test split's near-duplicate groups (:mod:`landscape.data.duplicates`, as
  training formed them; singletons are their own group) with replacement, so
  copies of one scan count once (the in-site folder carries no patient ids);
  ``ci_unit`` names the unit. The external AUROC CI is the evaluation
  record's (resampled by its group column, e.g. patient, when the CSV gave
  one; ``external_ci_unit``).
* Compute: each run's ``gradient_evaluations`` (forward/backward passes over a
  mini-batch in training, recorded in its checkpoint; None for checkpoints
  from before the count), summarised per group (``groups``); each cell's
  ``compute_ratio`` is the mean over its group's pairs of run / baseline
  gradient evaluations, ``budget_matched_pairs`` (of ``n_paired_runs``) counts
  the pairs whose baseline run took the run's gradient evaluations as its
  budget, and ``baseline_compute`` says what the baseline is compute-matched
  to (``landscape train --compute-matched``), if anything.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import integrate, optimize, stats

from landscape.errors import LandscapeError
from landscape.external.bootstrap import group_weights, percentile_ci
from landscape.external.scoring import auroc_rows, balanced_accuracy_rows
from landscape.optim.base import DEFAULT_BASE
from landscape.report.collect import Run, collect
from landscape.report.correlate import predictor_row
from landscape.report.inference import holm
from landscape.report.rows import group_name

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


#: Largest number of (resample, image) weights held at once by :func:`in_site_cis`.
CHUNK = 2_000_000


def in_site_cis(labels: np.ndarray, probs: np.ndarray, groups: np.ndarray, positive: int | None, n_boot: int,
                seed: int) -> dict:
    """95% percentile CIs ``{"test_balanced_accuracy_ci", "test_auroc_ci"}`` (``[low, high]`` or None) of the
    predictions ``probs [n, K]`` against ``labels [n]``, resampling the ``groups [n]`` ids whole
    (:func:`landscape.external.bootstrap.group_weights`); the AUROC is of class ``positive`` vs the rest (None: not
    computed).
    """
    rng = np.random.default_rng(seed)
    labels, pred = np.asarray(labels), np.asarray(probs).argmax(1)
    step = max(1, CHUNK // len(labels))
    bacc, auroc = [], []
    for start in range(0, n_boot, step):
        w = group_weights(groups, min(step, n_boot - start), rng)
        bacc.append(balanced_accuracy_rows(labels, pred, w))
        if positive is not None:
            auroc.append(auroc_rows(np.asarray(probs)[:, positive], labels == positive, w))

    def ci(parts):
        return percentile_ci(np.concatenate(parts), n_boot)[0] if parts else None

    return {"test_balanced_accuracy_ci": ci(bacc), "test_auroc_ci": ci(auroc)}


def near_duplicate_groups(ck, split: str = "test") -> np.ndarray:
    """``int64 [n]``: the near-duplicate group (0..G-1) of each image of ``split`` of checkpoint ``ck``, in
    manifest order.

    The groups are those training formed: the split manifest's duplicate settings on the images of its
    classes (cached on disk with the data), checked against the manifest's group counts; a manifest that
    records no duplicate group makes every image its own group without reading the data.
    """
    from landscape.data import find_duplicates, load_images
    from landscape.data.subset import keep_classes

    data = ck.meta["data"]
    manifest = data["split"]
    files = manifest[split]
    if manifest.get("n_duplicate_groups") == 0:
        return np.arange(len(files), dtype=np.int64)
    images = load_images(None if data["kind"] == "phantom" else ck.data_root, img_size=data["img_size"],
                         seed=data.get("phantom_seed") or 0)
    if list(manifest["classes"]) != list(images.classes):
        images = keep_classes(images, manifest["classes"])
    settings = {k: v for k, v in (manifest.get("duplicates") or {}).items() if k != "method"}
    dups = find_duplicates(images, **settings)
    recorded = (manifest.get("n_groups"), manifest.get("n_duplicate_groups"))
    if recorded != (dups.n_groups, len(dups.groups)) and None not in recorded:
        raise LandscapeError(f"near-duplicate groups of {images.root or images.name} ({dups.n_groups} groups, "
                             f"{len(dups.groups)} with copies) differ from those of {ck.path}'s split ({recorded[0]}, "
                             f"{recorded[1]}): the data or the duplicate detection changed since training")
    where = {f: i for i, f in enumerate(images.files)}
    return np.unique(dups.group_ids[[where[f] for f in files]], return_inverse=True)[1].astype(np.int64)


def ci_unit(groups: np.ndarray) -> str:
    """What :func:`in_site_cis` resampled, in words."""
    n, g = len(groups), len(np.unique(groups))
    if g == n:
        return f"test images ({n}; no near-duplicates among them, no patient ids in the in-site folder)"
    return f"near-duplicate groups ({g} over {n} test images; no patient ids in the in-site folder)"


def run_uncertainty(run: Run, n_boot: int = 1000, seed: int = 0, source: str | None = None,
                    split_groups: dict | None = None) -> dict:
    """95% bootstrap CIs of the run's in-site test metrics (over near-duplicate groups, :func:`in_site_cis`) and
    its external AUROC CI. ``split_groups`` caches :func:`near_duplicate_groups` by split hash across runs.
    """
    from landscape.checkpoint import load_checkpoint
    from landscape.metrics import softmax
    from landscape.report.correlate import external_record
    from landscape.train.evaluate import predict

    ck = load_checkpoint(run.path, device="cpu")
    x, y = ck.tensors("test")
    probs = softmax(predict(ck.model, x).numpy().astype(np.float64))
    labels = y.numpy()
    cache = {} if split_groups is None else split_groups
    if ck.split_hash not in cache:
        cache[ck.split_hash] = near_duplicate_groups(ck)
    ids = cache[ck.split_hash]
    mal = ck.classes.index("malignant") if "malignant" in ck.classes else None
    rec = external_record(run, source)
    ext = rec["result"]["external"] if rec else None
    return {"n_test": int(len(labels)), "n_groups": int(len(np.unique(ids))), "ci_unit": ci_unit(ids),
            **in_site_cis(labels, probs, ids, mal, n_boot, seed),
            "external_auroc_ci": ext["overall"].get("auroc_ci") if ext else None,
            "external_ci_unit": (f"groups of {ext['group_column']}" if ext and ext.get("group_column")
                                 else "images" if ext else None)}


def gradient_evaluations(run: Run) -> int | None:
    """Forward/backward passes over a mini-batch that training took (the checkpoint's top-level
    ``gradient_evaluations``; None in checkpoints from before the count).
    """
    value = run.meta.get("gradient_evaluations")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def matched_to(run: Run) -> str | None:
    """The optimizer whose run set this run's gradient budget (``--compute-matched``), ``"twice the epochs"`` for
    checkpoints from before gradient budgets, None when not compute-matched.
    """
    matched = run.meta["optimizer"].get("compute_matched")
    if isinstance(matched, dict):
        return str(matched["matched_to"])
    return "twice the epochs" if matched is True else None


def budget_matched(run: Run, base: Run) -> bool:
    """Whether ``base`` was compute-matched to ``run``: its gradient budget is ``run``'s gradient evaluations."""
    matched = base.meta["optimizer"].get("compute_matched")
    count = gradient_evaluations(run)
    return isinstance(matched, dict) and count is not None and matched.get("gradient_budget") == count


def group_compute(runs: Sequence[Run], names: Sequence[str]) -> dict[str, dict]:
    """Per group (``names[i]`` is run ``i``'s): ``{"n_runs", "n_counted", "gradient_evaluations_mean",
    "gradient_evaluations_min", "gradient_evaluations_max", "matched_to"}`` (``matched_to``: the distinct
    :func:`matched_to` values of its runs, None left out).
    """
    out = {}
    for g in dict.fromkeys(names):
        members = [r for r, n in zip(runs, names) if n == g]
        counts = [c for c in map(gradient_evaluations, members) if c is not None]
        out[g] = {"n_runs": len(members), "n_counted": len(counts),
                  "gradient_evaluations_mean": float(np.mean(counts)) if counts else None,
                  "gradient_evaluations_min": min(counts, default=None),
                  "gradient_evaluations_max": max(counts, default=None),
                  "matched_to": sorted({m for m in map(matched_to, members) if m is not None})}
    return out


def baseline_compute(runs: Sequence[Run], baseline: str) -> dict:
    """``{"matched_to", "text"}``: what the ``baseline`` group's runs are compute-matched to, in words."""
    targets = {matched_to(r) for r in runs}
    if targets == {None}:
        return {"matched_to": None, "text": f"{baseline} is not compute-matched: it took its own number of gradient "
                                            "evaluations (compute_ratio compares them)"}
    if len(targets) > 1:
        named = ", ".join(sorted(str(t) for t in targets))
        return {"matched_to": sorted(map(str, targets)),
                "text": f"{baseline} mixes runs compute-matched differently ({named})"}
    (target,) = targets
    if target == "twice the epochs":
        return {"matched_to": target, "text": f"{baseline} ran twice the epochs (checkpoints from before gradient "
                                              "budgets): a doubled cap, not matched to any run's gradient evaluations"}
    return {"matched_to": target, "text": f"{baseline} is compute-matched to {target}: each {baseline} run took the "
                                          f"gradient evaluations of the {target} run of its seed (to less than one "
                                          "step)"}


def compare_runs(runs: Sequence[Run], baseline: str = DEFAULT_BASE, source: str | None = None, n_boot: int = 1000,
                 seed: int = 0, uncertainty: bool = True) -> dict:
    """Paired differences of every group against ``baseline`` on every target (see module docstring)."""
    matched, unpaired = pairs(runs, baseline)
    values = {r.name: target_values(r, source) for r in runs}
    several = len({x.model for x in runs}) > 1
    names = [group_name(r, several) for r in runs]
    cells = []
    for group, members in matched.items():
        ordered = sorted(members, key=lambda p: p[0].seed)
        ratios = [gradient_evaluations(r) / gradient_evaluations(b) for r, b in ordered
                  if gradient_evaluations(r) is not None and gradient_evaluations(b)]
        compute = {"compute_ratio": float(np.mean(ratios)) if ratios else None,
                   "budget_matched_pairs": sum(budget_matched(r, b) for r, b in ordered), "n_paired_runs": len(ordered)}
        for t in TARGETS:
            rows = [{"seed": r.seed, "run": r.name, "baseline_run": b.name, "value": values[r.name][t],
                     "baseline_value": values[b.name][t], "gradient_evaluations": gradient_evaluations(r),
                     "baseline_gradient_evaluations": gradient_evaluations(b)} for r, b in ordered]
            usable = [p for p in rows if p["value"] is not None and p["baseline_value"] is not None]
            for p in usable:
                p["difference"] = p["value"] - p["baseline_value"]
            cell = {"group": group, "target": t, **paired([p["difference"] for p in usable]), "pairs": usable,
                    "missing_values": len(rows) - len(usable), **compute}
            cells.append(cell)
    for c, p in zip(cells, holm([c["p"] for c in cells])):
        c["p_holm"] = p
    per_run, split_groups = [], {}
    for r, g in zip(runs, names):
        entry = {"run": r.name, "group": g, "seed": r.seed, "values": values[r.name],
                 "gradient_evaluations": gradient_evaluations(r), "matched_to": matched_to(r)}
        if uncertainty:
            entry["test_uncertainty"] = run_uncertainty(r, n_boot, seed, source, split_groups)
        per_run.append(entry)
    return {"baseline": baseline, "targets": TARGETS, "alpha": ALPHA, "power": POWER, "cells": cells,
            "unpaired": unpaired, "runs": per_run, "groups": group_compute(runs, names),
            "baseline_compute": baseline_compute([r for r, g in zip(runs, names) if g == baseline], baseline),
            "n_boot": n_boot, "seed": seed,
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
