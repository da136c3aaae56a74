r"""Tables for papers: one tidy CSV row per run, and LaTeX ``booktabs`` tables (`landscape export`).

CSV columns (one row per run, every value from the runs' records, nothing
computed): the run's settings (``run``, ``group``, ``optimizer``, ``model``,
``seed``, ``data``, ``split_hash``, ``epoch``, ``hyper_<name>``), its test
metrics of the final weights (:data:`landscape.report.rows.METRICS`,
``train_balanced_accuracy``, ``gap``), the training compute (``gradient_evaluations``: forward/backward
passes of training, empty for runs trained before they were counted), the analysis columns of the report's
runs table (``lambda_max``, ``hessian_trace`` with ``hessian_trace_ci_low/high``,
``sharpness_worst`` with its radius, ...), the external evaluation (``external_source``,
``external_auroc``, ``external_drop_auroc``, ``external_auroc_<environment>``)
and every measure of :data:`landscape.measures.REGISTRY` that some run has
(``measure_<name>``, units in ``docs/measures.md``), after
``weights_invariant``: False when the run's weight-based measures were
computed with a normalisation left unfolded (not invariant to a
function-preserving rescaling), empty without any. Empty cells are unknown.
Floats are written with full precision (``repr``), so ``pandas.read_csv``
gives back the records' values exactly.

LaTeX: the per-optimizer table (mean with a 95% t-interval over seeds) and
the which-measure-predicts table (the cells of `landscape correlate`: Kendall
τ within seeds with its 95% interval over seeds, * where Holm p < 0.05, and
the granulated Ψ of Jiang et al. 2020), both ``booktabs`` tables (``\\usepackage{booktabs}``).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path

from landscape.io import atomic_write_text
from landscape.measures import REGISTRY
from landscape.measures.catalogue import WEIGHTS
from landscape.report.collect import Run
from landscape.report.correlate import correlate_runs, predictor_rows
from landscape.report.granulated import TARGETS
from landscape.report.rows import METRICS, flatness_measures, run_rows

#: Settings columns first, in this order.
SETTINGS = ("run", "group", "optimizer", "model", "seed", "data", "split_hash", "epoch")
#: Columns of the report's rows copied as they are (then every analysis column, see :func:`tidy_rows`).
COPIED = (*(key for key, _ in METRICS), "auroc_malignant", "train_balanced_accuracy", "gap")
#: Keys of the report's rows that are not columns of the CSV (or come first under another name).
NOT_COPIED = {"name", "path", "hyper", "label", *SETTINGS}
#: Per-optimizer LaTeX columns before the flatness measures: (row key, header).
GROUP_COLUMNS = (("balanced_accuracy", "test bal.\\ acc."), ("auroc", "test AUROC"), ("gap", "gap"),
                 ("external_auroc", "external AUROC"))


def tidy_rows(runs: Sequence[Run]) -> list[dict]:
    """One flat dict per run (see the module doc); keys absent for a run are None."""
    rows = []
    for row, pred in zip(run_rows(runs), predictor_rows(runs)):
        flat = {"run": row["name"], **{k: row[k] for k in SETTINGS[1:]}}
        flat.update({f"hyper_{k}": _cell(v) for k, v in sorted(row["hyper"].items())})
        flat.update({k: row[k] for k in COPIED})
        for key, value in row.items():  # the analysis columns (lambda_max, hessian_trace, ...) and their extras
            if key in NOT_COPIED or key in COPIED:
                continue
            if isinstance(value, (list, tuple)) and len(value) == 2:  # a confidence interval
                flat[f"{key}_low"], flat[f"{key}_high"] = value
            else:
                flat[key] = _cell(value)
        flat.update(external_source=pred["external_source"], external_auroc=pred["targets"]["external_auroc"],
                    external_drop_auroc=pred["targets"]["drop"])
        source = pred["external_source"]
        for env, auroc in pred["environments"].items():
            if source and env.startswith(f"{source}: "):
                flat[f"external_auroc_{env.removeprefix(source + ': ')}"] = auroc
        weight_based = [m for m in REGISTRY if WEIGHTS in REGISTRY[m].tags and pred["measures"].get(m) is not None]
        flat["weights_invariant"] = not pred["not_invariant"] if weight_based else None
        flat.update({f"measure_{m}": pred["measures"].get(m) for m in REGISTRY})
        rows.append(flat)
    columns = list(dict.fromkeys(k for r in rows for k in r))
    measures = [c for c in columns if c.startswith("measure_") and any(r.get(c) is not None for r in rows)]
    keep = [c for c in columns if not c.startswith("measure_")] + measures
    return [{c: r.get(c) for c in keep} for r in rows]


def csv_text(rows: Sequence[dict]) -> str:
    """``rows`` as CSV: full-precision floats, empty cells for None, ``True``/``False`` for booleans."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    columns = list(rows[0]) if rows else []
    writer.writerow(columns)
    for r in rows:
        writer.writerow(["" if r[c] is None else repr(r[c]) if isinstance(r[c], float) else r[c] for c in columns])
    return buf.getvalue()


def tex_escape(text) -> str:
    r"""``text`` safe inside a LaTeX table cell (``& % $ # _ { } ~ ^ \\``)."""
    out = []
    for ch in str(text):
        if ch == "\\":
            out.append("\\textbackslash{}")
        elif ch in "&%$#_{}":
            out.append("\\" + ch)
        elif ch == "~":
            out.append("\\textasciitilde{}")
        elif ch == "^":
            out.append("\\textasciicircum{}")
        else:
            out.append(ch)
    return "".join(out)


def mean_ci(values: Sequence[float | None], level: float = 0.95) -> tuple[float | None, float | None, int]:
    """``(mean, half-width of the t-interval, n)`` of the finite values; half-width None for one value."""
    from scipy import stats

    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    n = len(vals)
    if n == 0:
        return None, None, 0
    mean = sum(vals) / n
    if n == 1:
        return mean, None, 1
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1))
    return mean, float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n), n


def _num(value: float | None, digits: int = 3) -> str:
    """``value`` to ``digits`` significant digits, plain (powers of ten outside 1e-4 <= |x| < 1e6); ``--`` if None."""
    if value is None:
        return "--"
    rounded = float(f"{value:.{digits}g}")
    if rounded == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(rounded)))
    if not -4 <= magnitude < 6:
        mant, exp = f"{rounded:.{digits - 1}e}".split("e")
        return f"${mant} \\times 10^{{{int(exp)}}}$"
    return f"{rounded:.{max(digits - 1 - magnitude, 0)}f}"


def _tabular(spec: str, header: list[str], body: list[list[str]], caption: str, label: str) -> str:
    lines = ["\\begin{table}[t]", "\\centering", f"\\caption{{{caption}}}", f"\\label{{{label}}}",
             f"\\begin{{tabular}}{{{spec}}}", "\\toprule", " & ".join(header) + " \\\\", "\\midrule"]
    lines += [" & ".join(cells) + " \\\\" for cells in body]
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def group_table(rows: Sequence[dict], measures: dict[str, str] | None = None, level: float = 0.95) -> str:
    """The per-optimizer table: runs, then mean ± CI half-width over seeds of each metric and of each flatness
    measure named in ``measures`` (headed by its name, as in the CSV), the columns some run has.
    """
    groups = list(dict.fromkeys(r["group"] for r in rows))
    wanted = [*GROUP_COLUMNS, *((k, f"\\texttt{{{tex_escape(k)}}}") for k in (measures or {}))]
    columns = [(k, h) for k, h in wanted if any(r.get(k) is not None for r in rows)]
    body = []
    for g in groups:
        members = [r for r in rows if r["group"] == g]
        cells = [tex_escape(g), str(len(members))]
        for key, _ in columns:
            mean, half, _n = mean_ci([r.get(key) for r in members], level)
            cells.append(_num(mean) if half is None else f"{_num(mean)} $\\pm$ {_num(half, 2)}")
        body.append(cells)
    header = ["optimizer", "runs", *(h for _, h in columns)]
    caption = (f"Per optimizer: mean $\\pm$ half-width of the {level:.0%} $t$-interval over seeds "
               "(one run: mean only).").replace("%", "\\%")
    return _tabular("l" + "r" * (len(header) - 1), header, body, caption, "tab:optimizers")


def predictor_table(predictors: dict) -> str:
    """Which measure predicts generalization: per measure and target, Kendall τ [95% CI] and Ψ."""
    cells = {(c["measure"], c["target"]): c for c in predictors["cells"]}
    targets = [t for t in TARGETS if any(cells[(m, t)]["kendall_tau"] is not None for m in predictors["measures"])]
    body = []
    marked = [m for m in predictors["measures"] if (predictors.get("not_invariant") or {}).get(m)]
    for m in predictors["measures"]:
        row = [f"\\texttt{{{tex_escape(m)}}}" + ("$^\\dagger$" if m in marked else "")]
        for t in targets:
            c = cells[(m, t)]
            tau = "--" if c["kendall_tau"] is None else f"{c['kendall_tau']:+.2f}"
            ci = c["kendall_ci"]
            tau += "$^*$" if c["p_holm"] is not None and c["p_holm"] < 0.05 else ""
            row.append(tau if not ci else f"{tau} [{ci[0]:+.2f}, {ci[1]:+.2f}]")
            row.append("--" if c.get("psi") is None else f"{c['psi']:+.2f}")
        body.append(row)
    if not targets:
        body = [["(no measure has a Kendall $\\tau$: fewer than 3 runs with values)"]]
    header = ["measure", *(h for t in targets for h in (f"$\\tau$ {tex_escape(TARGETS[t])}", "$\\Psi$"))]
    caption = (f"Which measure predicts generalization over {predictors['n_runs']} runs: Kendall $\\tau$ within "
               "seeds with its 95\\% $t$-interval over seeds ($^*$: Holm-adjusted exact permutation $p < 0.05$, "
               f"{tex_escape(predictors['multiple_comparisons'])}), and the granulated $\\Psi$ (Jiang et al., 2020)."
               + (" $^\\dagger$Not invariant: computed on weights with a normalisation left unfolded in some runs."
                  if marked else ""))
    return _tabular("l" + "r" * (len(header) - 1), header, body, caption, "tab:predictors")


def export(runs: Sequence[Run], csv_path: str | Path | None = None, latex_path: str | Path | None = None,
           seed: int = 0) -> dict:
    """Write the tidy CSV and/or the LaTeX tables of ``runs``; returns ``{"rows", "csv", "latex"}``.

    The predictor table is :func:`landscape.report.correlate.correlate_runs` (``seed``: its chance permutations).
    """
    rows = tidy_rows(runs)
    if csv_path is not None:
        atomic_write_text(Path(csv_path), csv_text(rows))
    if latex_path is not None:
        predictors = correlate_runs(runs, seed=seed)
        report_rows = [{**r, "external_auroc": t["external_auroc"]} for r, t in
                       zip(run_rows(runs), (p["targets"] for p in predictors["rows"]))]
        text = ("% landscape export: \\usepackage{booktabs}\n"
                + group_table(report_rows, flatness_measures(report_rows)) + "\n"
                + predictor_table(predictors))
        atomic_write_text(Path(latex_path), text)
    return {"rows": rows, "csv": csv_path, "latex": latex_path}


def _cell(value):
    """A hyper-parameter as one CSV cell: lists and tuples joined with ``;``."""
    return ";".join(map(str, value)) if isinstance(value, (list, tuple)) else value
