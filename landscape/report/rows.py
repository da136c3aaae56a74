"""One flat row of numbers per run: test metrics, generalization gap and flatness.

Definitions
-----------
* ``gap`` (generalization gap) = train balanced accuracy - test balanced
  accuracy, both of the final weights, the train split evaluated without
  augmentation. Positive means the model does better on the images it saw.
* flatness: every measure an analysis shows as a column
  (:func:`landscape.analysis.columns`: ``lambda_max``, ``hessian_trace``,
  ``sharpness_worst``, ...), read from its record by the measure registry
  (:data:`landscape.measures.REGISTRY`, the definitions in docs/measures.md),
  with its extras as ``<measure>_<extra>`` (``lambda_max_certified``,
  ``hessian_trace_ci``, ``sharpness_worst_rho``, ``sharpness_worst_std``).
* ``gradient_evaluations``: the forward/backward passes over a mini-batch
  that training took (the checkpoint's count; None before it was recorded).
* ``group``: what seeds are aggregated over: the optimizer (with its base
  when not Adam, its compute-matching tag, and the model when several models
  are compared).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from landscape.analysis import columns
from landscape.measures import REGISTRY
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
#: Generalization quantities on the other axis.
TARGETS = {"balanced_accuracy": "test balanced accuracy", "gap": "generalization gap (train − test balanced accuracy)"}


def flatness_measures(rows: Sequence[dict]) -> dict[str, str]:
    """Measure name -> title of every analysis column that some row has a value of, in registration order."""
    return {name: REGISTRY[name].title for name in columns() if any(r.get(name) is not None for r in rows)}


def group_name(run: Run, several_models: bool) -> str:
    """Seeds of the same group are aggregated: optimizer, its base if not the default one (a base optimizer
    is its own), ``-cm`` when compute-matched to SAM and ``-cm-<target>`` to another optimizer
    (:func:`landscape.train.config.cm_suffix`), model if several.
    """
    from landscape.optim.base import DEFAULT_BASE
    from landscape.optim.registry import get_optimizer, list_optimizers
    from landscape.train.config import cm_suffix

    opt = run.meta["optimizer"]
    name = run.optimizer
    spec = get_optimizer(name) if name in list_optimizers() else None  # None: not registered in this session
    if opt.get("base") not in (None, DEFAULT_BASE) and not (spec and spec.is_base):
        name += f"({opt['base']})"
    matched = opt.get("compute_matched")
    if isinstance(matched, dict):
        name += cm_suffix(matched["matched_to"])
    elif matched is True and spec and spec.passes == 1:  # checkpoints from before gradient budgets (twice the epochs)
        name += "-cm"
    return f"{run.model}/{name}" if several_models else name


def run_rows(runs: Sequence[Run]) -> list[dict]:
    """Per-run rows (plain data, None where unknown); labels unique across runs."""
    several_models = len({r.model for r in runs}) > 1
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
            "gradient_evaluations": run.meta.get("gradient_evaluations"),
            "hyper": dict(run.meta["optimizer"].get("hyper") or {}),
            **{key: _num(test.get(src)) for key, src in METRICS},
            "auroc_malignant": _num(test.get("auroc_malignant")),
            "train_balanced_accuracy": _num(train.get("balanced_accuracy")),
        }
        ba, tba = row["balanced_accuracy"], row["train_balanced_accuracy"]
        row["gap"] = None if ba is None or tba is None else tba - ba
        row.update(_flatness(run))
        rows.append(row)
    labels = [f"{r['group']} s{r['seed']}" for r in rows]
    for row, label in zip(rows, labels):
        row["label"] = label if labels.count(label) == 1 else row["name"]
    return rows


def _flatness(run: Run) -> dict:
    """``{measure: value, measure_extra: ...}`` of every analysis column (None where the run has no record)."""
    out = {}
    for name in columns():
        value, extras = REGISTRY[name].read(run.measured.get(name))
        out[name] = _num(value)
        out.update({f"{name}_{k}": v if isinstance(v, (bool, list)) or v is None else _num(v)
                    for k, v in extras.items()})
    return out


def _num(v) -> float | None:
    if v is None:
        return None
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None
