"""One flat row of numbers per run: test metrics, generalization gap and flatness.

Definitions
-----------
* ``gap`` (generalization gap) = train balanced accuracy - test balanced
  accuracy, both of the final weights, the train split evaluated without
  augmentation. Positive means the model does better on the images it saw.
* ``lambda_max``: the largest Hessian eigenvalue of the training loss;
  ``lambda_max_certified`` whether its Lanczos residual met the tolerance.
* ``trace`` (with ``trace_ci``, 95%): the Hessian trace estimate.
* ``m_sharpness``: mean over sub-batches of the sharpness at radius
  ``m_sharpness_rho``, the largest radius every run was measured at.
* ``group``: what seeds are aggregated over: the optimizer (with its base
  when not Adam, and the model when several models are compared).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from landscape.report.collect import Run

#: (row key, key in the checkpoint's test metrics) of the per-run metrics.
METRICS = (
    ("accuracy", "accuracy"),
    ("balanced_accuracy", "balanced_accuracy"),
    ("macro_f1", "macro_f1"),
    ("auroc", "auroc_macro"),
    ("ece", "ece"),
    ("nll", "nll"),
)
#: Flatness measures plotted against generalization, with axis titles.
MEASURES = {"lambda_max": "λ_max (top Hessian eigenvalue)", "trace": "Hessian trace", "m_sharpness": "m-sharpness"}
#: Generalization quantities on the other axis.
TARGETS = {"balanced_accuracy": "test balanced accuracy", "gap": "generalization gap (train − test balanced accuracy)"}


def common_rho(runs: Sequence[Run]) -> float | None:
    """The largest sharpness radius present in every run that has a sharpness record."""
    grids = [rec["result"]["rhos"] for rec in (r.found.get("m_sharpness") for r in runs) if rec]
    if not grids:
        return None
    shared = [rho for rho in grids[0] if all(any(math.isclose(rho, o, rel_tol=1e-9) for o in g) for g in grids[1:])]
    return max(shared) if shared else None


def group_name(run: Run, several_models: bool) -> str:
    """Seeds of the same group are aggregated: optimizer, its base if not the default one (a base optimizer
    is its own), ``-cm`` when compute-matched, model if several.
    """
    from landscape.optim.base import DEFAULT_BASE
    from landscape.optim.registry import get_optimizer, list_optimizers

    opt = run.meta["optimizer"]
    name = run.optimizer
    spec = get_optimizer(name) if name in list_optimizers() else None  # None: not registered in this session
    if opt.get("base") not in (None, DEFAULT_BASE) and not (spec and spec.is_base):
        name += f"({opt['base']})"
    if opt.get("compute_matched") and spec and spec.passes == 1:
        name += "-cm"
    return f"{run.model}/{name}" if several_models else name


def run_rows(runs: Sequence[Run]) -> list[dict]:
    """Per-run rows (plain data, None where unknown); labels unique across runs."""
    several_models = len({r.model for r in runs}) > 1
    rho = common_rho(runs)
    rows = []
    for run in runs:
        test, train = run.metrics("test"), run.metrics("train")
        row = {
            "name": run.name,
            "path": str(run.path),
            "group": group_name(run, several_models),
            "optimizer": run.optimizer,
            "model": run.model,
            "seed": run.seed,
            "data": run.data,
            "split_hash": run.split_hash,
            "epoch": run.meta.get("epoch"),
            "hyper": dict(run.meta["optimizer"].get("hyper") or {}),
            **{key: _num(test.get(src)) for key, src in METRICS},
            "auroc_malignant": _num(test.get("auroc_malignant")),
            "train_balanced_accuracy": _num(train.get("balanced_accuracy")),
        }
        ba, tba = row["balanced_accuracy"], row["train_balanced_accuracy"]
        row["gap"] = None if ba is None or tba is None else tba - ba
        row.update(_flatness(run, rho))
        rows.append(row)
    labels = [f"{r['group']} s{r['seed']}" for r in rows]
    for row, label in zip(rows, labels):
        row["label"] = label if labels.count(label) == 1 else row["name"]
    return rows


def _flatness(run: Run, rho: float | None) -> dict:
    out = {"lambda_max": None, "lambda_max_certified": None, "trace": None, "trace_ci": None, "m_sharpness": None,
           "m_sharpness_std": None, "m_sharpness_rho": rho}
    if run.found.get("lambda_max"):
        top = run.found["lambda_max"]["result"]["top_k"]
        i = max(range(len(top["eigenvalues"])), key=lambda j: top["eigenvalues"][j])
        out["lambda_max"] = _num(top["eigenvalues"][i])
        out["lambda_max_certified"] = bool(top["converged"][i]) if top.get("converged") else None
    if run.found.get("trace"):
        tr = run.found["trace"]["result"]["trace"]
        out["trace"] = _num(tr.get("estimate"))
        ci = tr.get("ci")
        out["trace_ci"] = [_num(ci[0]), _num(ci[1])] if ci else None
    rec = run.found.get("m_sharpness")
    if rec and rho is not None:
        res = rec["result"]
        i = min(range(len(res["rhos"])), key=lambda j: abs(res["rhos"][j] - rho))
        out["m_sharpness"] = _num(res["mean"][i])
        out["m_sharpness_std"] = _num((res.get("std") or [None] * len(res["rhos"]))[i])
    return out


def _num(v) -> float | None:
    if v is None:
        return None
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None
