"""The report's text sections: findings, tables, notes and provenance (escaped HTML)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from landscape.analysis import quantities
from landscape.measures import REGISTRY
from landscape.measures.catalogue import RAW
from landscape.report.collect import Run
from landscape.report.html import Table, esc, table
from landscape.report.rows import TARGETS, flatness_measures
from landscape.report.style import corr_text, fmt, fmt_ci, fmt_mean_std

#: Training-config keys that legitimately differ between the runs of one study.
_PER_RUN_KEYS = {"optimizer", "seed", "opt_args", "run_name", "out", "device"}


def title(runs: Sequence[Run]) -> str:
    """``Flatness report — BUSI`` (the data source in capitals; sources joined if mixed)."""
    return "Flatness report — " + " + ".join(dict.fromkeys(r.data.upper() for r in runs))


def measure_cell(row: dict, name: str) -> str:
    """A flatness measure's value as the runs table shows it: ``*`` when not certified, ``± std``, ``[CI]``."""
    value = row.get(name)
    if value is None:
        return "—"
    text = fmt(value, 4)
    if row.get(f"{name}_certified") is False:
        text += "*"
    if row.get(f"{name}_std") is not None:
        text += f" ± {fmt(row[f'{name}_std'], 2)}"
    if row.get(f"{name}_ci"):
        text += f" {fmt_ci(row[f'{name}_ci'], 1)}"
    return text


def measure_header(rows: Sequence[dict], name: str, title: str) -> str:
    """``title``, with the radius when every run that has the measure was taken at the same one."""
    rhos = {r.get(f"{name}_rho") for r in rows if r.get(name) is not None}
    if len(rhos) == 1 and None not in rhos:
        return f"{title} (ρ={fmt(rhos.pop())})"
    return title + (" (ρ differs between runs)" if len(rhos) > 1 else "")


def parameterisation_note(names) -> str:
    """A sentence (escaped HTML, leading space) naming the measures among ``names`` that are taken in the raw
    weights (tag :data:`~landscape.measures.catalogue.RAW`), or ``""`` when there are none.
    """
    raw = [REGISTRY[n].title for n in names if n in REGISTRY and RAW in REGISTRY[n].tags]
    if not raw:
        return ""
    return " " + esc(f"{', '.join(raw)}: taken in the raw weights, so they depend on the parameterisation: a "
                     "function-preserving rescaling (a conv's weights × c with its BatchNorm mean × c and variance × "
                     "c²) changes them, and a difference between optimizers can reflect weight norm rather than "
                     "flatness (Dinh et al. 2017). Adaptive m-sharpness and relative flatness do not change under it.")


def runs_table(rows: Sequence[dict]) -> str:
    """The sortable per-run table."""
    measures = flatness_measures(rows)
    headers = ["run", "optimizer", "model", "seed", "accuracy", "balanced acc.", "macro-F1", "AUROC", "ECE", "NLL",
               "gap", *[measure_header(rows, m, t) for m, t in measures.items()], "hyper-parameters", "path"]
    numeric = [False, False, False, True] + [True] * (7 + len(measures)) + [False, False]
    body = []
    for r in rows:
        hyper = ", ".join(f"{k}={v}" for k, v in sorted(r["hyper"].items()))
        body.append([
            (r["label"], r["label"]), (r["optimizer"], r["optimizer"]), (r["model"], r["model"]),
            (str(r["seed"]), r["seed"]),
            *[(fmt(r[k], 3), r[k]) for k in ("accuracy", "balanced_accuracy", "macro_f1", "auroc", "ece", "nll",
                                             "gap")],
            *[(measure_cell(r, m), r[m]) for m in measures],
            (hyper, hyper), (r["path"], r["path"]),
        ])
    clip = [False] * (len(headers) - 2) + [True, True]
    return f'<div class="wrap">{table(Table(headers, body, numeric=numeric, clip=clip))}</div>' + (
        "<p class=caption>Test-split metrics of each checkpoint. gap = train − test balanced accuracy (train split "
        "evaluated without augmentation). Flatness measures as defined in docs/measures.md: * not certified to its "
        "tolerance, ± std over sub-batches, [95% CI] of an estimate. Click a header to sort."
        f"{parameterisation_note(measures)}</p>")


def design_table(rows: Sequence[dict], selection: dict | None = None) -> str:
    """Per group: the settings chosen on validation (with ``selection``, a study's), the number of candidates,
    and the training compute (gradient evaluations: forward/backward passes of training, mean and range over seeds).
    """
    groups = list(dict.fromkeys(r["group"] for r in rows))
    chosen = {key.split("/", 1)[-1]: entry for key, entry in (selection or {}).items()}
    headers = ["group", "runs", "candidates (mean validation score)", "selected", "candidates tried",
               "gradient evaluations (mean, range)"]
    body = []
    for g in groups:
        counts = [r["gradient_evaluations"] for r in rows if r["group"] == g and r.get("gradient_evaluations")]
        mean = sum(counts) / len(counts) if counts else None
        compute = "—" if not counts else f"{mean:,.0f} ({min(counts):,}–{max(counts):,})"
        entry = chosen.get(g)
        cands = "—" if entry is None else ", ".join(
            f"{tag or 'default'}: " + ("—" if c.get("mean_val") is None else f"{c['mean_val']:.3f}")
            for tag, c in entry["candidates"].items())
        selected = "—" if entry is None else (entry.get("selected") or "default")
        budget = entry.get("tuning_budget") if entry else None
        body.append([(g, g), (str(sum(r["group"] == g for r in rows)), sum(r["group"] == g for r in rows)),
                     (cands, cands), (selected, selected), ("—" if budget is None else str(budget), budget),
                     (compute, mean)])
    numeric = [False, True, False, False, True, True]
    note = ("Settings chosen per group on the validation split only (test and external data never choose); "
            "candidates tried is each group's tuning budget (equal budgets: a fair comparison). "
            if selection else "No study selection was given (a report of single runs). ")
    return f'<div class="wrap">{table(Table(headers, body, numeric=numeric))}</div>' + (
        "<p class=caption>" + esc(note + "Gradient evaluations count every forward/backward pass of training "
                                  "(SAM 2 per step, CR-SAM 3); a compute-matched group (-cm) takes exactly those "
                                  "of the run it is matched to, seed by seed.") + "</p>")


def groups_table(summary: dict) -> str:
    """Mean ± std over seeds per group."""
    measures = summary["measures"]
    keys = ("balanced_accuracy", "accuracy", "macro_f1", "auroc", "ece", "gap", *measures)
    headers = ["group", "runs", "balanced acc.", "accuracy", "macro-F1", "AUROC", "ECE", "gap", *measures.values()]
    body = [[(g["group"], g["group"]), (str(g["n_runs"]), g["n_runs"]),
             *[(fmt_mean_std(g[k]), g[k]["mean"]) for k in keys]] for g in summary["groups"]]
    numeric = [False] + [True] * (len(headers) - 1)
    return f'<div class="wrap">{table(Table(headers, body, numeric=numeric))}</div>' + (
        "<p class=caption>Mean ± sample standard deviation over the seeds of each group."
        f"{parameterisation_note(measures)}</p>")


def correlations_table(summary: dict) -> str:
    """Kendall tau within seeds, its interval, exact p and Holm p for every panel of the scatter (the predictor
    table's cells).
    """
    headers = ["flatness measure", "against", "runs", "seeds", "Kendall τ (within seeds)", "95% CI", "p", "Holm p"]
    body = []
    for c in summary["correlations"]:
        body.append([(summary["measures"][c["measure"]], c["measure"]), (TARGETS[c["target"]], c["target"]),
                     (str(c["n"]), c["n"]), (str(c["n_strata"]), c["n_strata"]),
                     (fmt(c["kendall_tau"], 3), c["kendall_tau"]), (fmt_ci(c["kendall_ci"]), None),
                     (fmt(c["p"], 2), c["p"]), (fmt(c["p_holm"], 2), c["p_holm"])])
    numeric = [False, False] + [True] * 6
    return table(Table(headers, body, numeric=numeric)) + (
        "<p class=caption>Kendall τ within seeds: concordant minus discordant pairs of runs of the same seed, over "
        "the tau-b denominators of the seeds (a seed shift in both values does not count). 95% CI: t-interval "
        "over the seeds (atanh scale; at least 3 seeds). p: exact permutation test within seeds; Holm p: adjusted "
        "over the whole table of the section “Which measure predicts generalization?”, which holds these same "
        "cells. A CI that contains 0 is no evidence of a monotone relation (docs/correlation.md)."
        f"{parameterisation_note(summary['measures'])}</p>")


def findings(rows: Sequence[dict], summary: dict) -> str:
    """A few plain sentences computed from the numbers (no judgement beyond the CIs)."""
    items = []
    first = next(iter(summary["measures"]), None)  # the first flatness measure some run has
    groups = [g for g in summary["groups"] if first is not None and g[first]["mean"] is not None]
    if len(groups) >= 2:
        flat = min(groups, key=lambda g: g[first]["mean"])
        items.append(f"Flattest by mean {summary['measures'][first]}: {flat['group']} "
                     f"({fmt_mean_std(flat[first])}).")
    scored = [g for g in summary["groups"] if g["balanced_accuracy"]["mean"] is not None]
    if len(scored) >= 2:
        best = max(scored, key=lambda g: g["balanced_accuracy"]["mean"])
        items.append(f"Best mean test balanced accuracy: {best['group']} ({fmt_mean_std(best['balanced_accuracy'])}).")
    for c in summary["correlations"]:
        title = summary["measures"].get(c["measure"], c["measure"])
        sharp = c["measure"] not in REGISTRY or "sharpness" in REGISTRY[c["measure"]].tags
        if c["kendall_tau"] is None:
            items.append(f"{title} vs {TARGETS[c['target']]}: {corr_text(c)}, so no direction.")
            continue
        items.append(f"{title} vs {TARGETS[c['target']]} over {c['n']} runs: Kendall τ within seeds = "
                     f"{c['kendall_tau']:+.2f} {fmt_ci(c['kendall_ci'])}, Holm p = {fmt(c.get('p_holm'), 2)}. "
                     f"{direction(c, sharp)}")
    if len(rows) < 3:
        items.append(f"Only {len(rows)} run(s): rank correlations need at least 3.")
    return "<ul>" + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>" if items else ""


#: What each target's rising means, for the direction sentences ("sharper runs had ...").
RISING = {"balanced_accuracy": ("higher test balanced accuracy", "lower test balanced accuracy"),
          "gap": ("a larger generalization gap", "a smaller generalization gap")}
#: The sign of tau that the flatness hypothesis (flatter minima generalize better) predicts.
HYPOTHESIS_SIGN = {"balanced_accuracy": -1, "gap": +1}


def direction(c: dict, sharp: bool = True) -> str:
    """The correlation in words: which way sharper runs went, and whether that supports the flatness hypothesis.

    Supports/contradicts only when the 95% CI of Kendall τ excludes 0; otherwise (or without an interval: fewer
    than 3 seeds) it says which way it leans. A measure that is not a sharpness (``sharp=False``) gets the
    direction only.
    """
    tau, ci, target = c["kendall_tau"], c["kendall_ci"], c["target"]
    open_ci = "the 95% CI includes 0" if ci else "there is no 95% CI (fewer than 3 seeds)"
    higher, lower = RISING[target]
    went = higher if tau > 0 else lower if tau < 0 else None
    who = "Sharper runs" if sharp else f"Runs with a larger {c['measure']}"
    if went is None:
        return f"{who} were neither better nor worse here (τ = 0)."
    if not sharp:
        return f"{who} had {went}" + (" (95% CI excludes 0)." if ci and (ci[0] > 0 or ci[1] < 0) else
                                      f", but {open_ci}.")
    agrees = (tau > 0) == (HYPOTHESIS_SIGN[target] > 0)
    sentence = f"{who} had {went}"
    if ci and (ci[0] > 0 or ci[1] < 0):
        verdict = "supports" if agrees else "contradicts"
        return f"{sentence}: this {verdict} the flatness hypothesis (flatter minima generalize better)."
    lean = "with" if agrees else "against"
    return f"{sentence}, leaning {lean} the flatness hypothesis, but {open_ci}: no evidence either way."


def notes(runs: Sequence[Run], missing: Sequence[dict]) -> str:
    """Warnings: missing analyses, mixed data/splits, analyses with settings that differ across runs."""
    out = []
    if missing:
        items = "".join(f"<li>{esc(m['run'])}: {esc(m['quantity'])}</li>" for m in missing)
        out.append(f"<div class=note><b>Missing (not computed with --no-compute):</b><ul>{items}</ul>"
                   "Run <code>landscape report</code> without <code>--no-compute</code> to compute them.</div>")
    hashes = sorted({r.split_hash for r in runs})
    if len(hashes) > 1 or len({r.data for r in runs}) > 1:
        out.append(f"<div class=note>The runs use different data or splits ({esc(', '.join(hashes))}); "
                   "their test metrics are not directly comparable.</div>")
    for quantity, settings in analysis_settings(runs).items():
        if len(settings) > 1:
            out.append(f"<div class=note>{esc(quantity)} was computed with {len(settings)} different settings "
                       "across runs (see Provenance); compare its values with care.</div>")
    return "".join(out)


def analysis_settings(runs: Sequence[Run]) -> dict[str, list[dict]]:
    """Distinct settings behind each quantity across runs (the checkpoint's own name and hash left out)."""
    out: dict[str, list[dict]] = {}
    for quantity in quantities():
        shared = [{k: v for k, v in r.found[quantity]["settings"].items() if not k.startswith("checkpoint")}
                  for r in runs if r.found.get(quantity)]
        distinct = {json.dumps(s, sort_keys=True, default=str): s for s in shared}
        if distinct:
            out[quantity] = list(distinct.values())
    return out


def provenance(runs: Sequence[Run], rows: Sequence[dict], report_settings: dict, versions: dict) -> str:
    """Data source, split hash, training and analysis settings, versions; all escaped."""
    data = {json.dumps({k: v for k, v in r.meta["data"].items() if k != "split"}, sort_keys=True, default=str): r
            for r in runs}
    data_rows = [[(r.data, r.data), (r.meta["data"].get("kind", ""), None), (str(r.meta["data"].get("root")), None),
                  (str(r.meta["data"].get("img_size")), None), (", ".join(r.meta["data"].get("classes", [])), None),
                  (r.split_hash, r.split_hash)] for r in data.values()]
    parts = ["<h3>Data</h3>" + table(Table(["source", "kind", "root", "img size", "classes", "split hash"], data_rows,
                                           sortable=False))]
    configs = {json.dumps({k: v for k, v in (r.meta.get("train") or {}).items() if k not in _PER_RUN_KEYS},
                          sort_keys=True, indent=1, default=str) for r in runs}
    parts.append("<h3>Training settings</h3>" + "".join(f"<pre>{esc(c)}</pre>" for c in sorted(configs)))
    hyper = {r["group"]: r["hyper"] for r in rows}
    parts.append("<h3>Optimizer hyper-parameters</h3>" + table(Table(
        ["group", "hyper-parameters"], [[(g, g), (json.dumps(h, sort_keys=True, default=str), None)]
                                        for g, h in hyper.items()], sortable=False)))
    shared: dict[str, list[str]] = {}  # quantities computed by the same records share one block
    for quantity, settings in analysis_settings(runs).items():
        text = "\n\n".join(json.dumps(s, sort_keys=True, indent=1, default=str) for s in settings)
        shared.setdefault(text, []).append(quantity)
    for text, names in shared.items():
        parts.append(f"<h3>Analysis settings: {esc(', '.join(names))}</h3><pre>{esc(text)}</pre>")
    train_versions = {json.dumps(r.meta.get("versions"), sort_keys=True) for r in runs}
    parts.append("<h3>Versions</h3><p>Report generated with:</p>"
                 f"<pre>{esc(json.dumps(versions, indent=1, sort_keys=True))}</pre><p>Checkpoints trained with:</p>"
                 + "".join(f"<pre>{esc(v)}</pre>" for v in sorted(train_versions)))
    parts.append(f"<h3>Report settings</h3><pre>{esc(json.dumps(report_settings, indent=1, default=str))}</pre>")
    return "".join(parts)
