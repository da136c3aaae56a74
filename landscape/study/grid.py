"""Hyper-parameter grids and validation-only selection for ``run_study``.

A grid maps an optimizer name (or ``"*"``: every optimizer the parameter
applies to) to ``{parameter: [values]}``; ``lr`` is the peak learning rate,
any other name an optimizer hyper-parameter (``rho``, ``eta``, ...). Every
optimizer of the study becomes one :class:`Variant` per combination of its
values (one variant without a grid), plus, with ``compute_matched``, the
compute-matched copy of each one-pass optimizer (``adam-cm``: twice the
epochs). Each (model, variant group) keeps the candidate with the best mean
validation score over seeds; test and external data are never read to choose.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from landscape.errors import LandscapeError
from landscape.optim.base import DEFAULT_BASE

#: Validation metrics a study may select on, and whether larger is better.
SELECT_METRICS = {"balanced_accuracy": True, "accuracy": True, "macro_f1": True, "auroc_macro": True,
                  "auroc_malignant": True, "nll": False, "ece": False}


@dataclass(frozen=True)
class Variant:
    """One trained setting of an optimizer: ``group`` (report label), ``setting`` (grid values), ``tag`` (folder)."""

    optimizer: str
    group: str
    setting: dict = field(default_factory=dict)
    compute_matched: bool = False

    @property
    def tag(self) -> str:
        """Sub-folder of the study's runs for this setting ("" without a grid)."""
        return "_".join(f"{k}{v:g}" if isinstance(v, float) else f"{k}{v}" for k, v in sorted(self.setting.items()))

    def config(self, base):
        """``base`` (a TrainConfig) with this variant's optimizer, learning rate, hyper-parameters and folder."""
        hyper = {k: v for k, v in self.setting.items() if k != "lr"}
        out = Path(base.out) / self.tag if self.tag else Path(base.out)
        return base.replace(optimizer=self.optimizer, lr=self.setting.get("lr", base.lr), opt_args=hyper,
                            compute_matched=self.compute_matched, out=str(out))


def parse_grid(items: Sequence[str], parse_value) -> dict[str, dict[str, list]]:
    """CLI ``--grid`` items (``rho=0.01,0.05`` or ``sam,asam:rho=0.02,0.05``) -> a grid dict."""
    grid: dict[str, dict[str, list]] = {}
    for item in items:
        scope, _, assignment = item.rpartition(":")
        key, sep, values = assignment.partition("=")
        if not sep or not key.strip() or not values.strip():
            raise LandscapeError(f"grid must be PARAM=V1,V2 or OPTIMIZER:PARAM=V1,V2, got {item!r}")
        parsed = [parse_value(v.strip()) for v in values.split(",") if v.strip()]
        for opt in [o.strip() for o in scope.split(",") if o.strip()] or ["*"]:
            grid.setdefault(opt, {})[key.strip()] = parsed
    return grid


def _applies(name: str, param: str, base: str) -> bool:
    from landscape.optim import hyper_defaults

    return param == "lr" or param in hyper_defaults(name, base)


def variants(names: Sequence[str], grid: dict | None = None, compute_matched: bool = False,
             base: str = DEFAULT_BASE) -> list[Variant]:
    """Every setting to train (see module docstring); LandscapeError for a parameter that applies nowhere."""
    from landscape.optim import get_optimizer

    grid = grid or {}
    unknown = [o for o in grid if o != "*" and o not in names]
    if unknown:
        raise LandscapeError(f"grid names optimizer(s) {', '.join(unknown)} that the study does not train "
                             f"({', '.join(names)})")
    for opt, params in grid.items():
        for param, values in params.items():
            if not values:
                raise LandscapeError(f"grid {param} has no values")
            targets = names if opt == "*" else [opt]
            if not any(_applies(n, param, base) for n in targets):
                raise LandscapeError(f"grid parameter {param} applies to none of {', '.join(targets)}")
    out = []
    for name in names:
        mine = {p: v for p, v in grid.get("*", {}).items() if _applies(name, p, base)}
        mine.update(grid.get(name, {}))
        keys = sorted(mine)
        for combo in itertools.product(*(mine[k] for k in keys)):
            setting = dict(zip(keys, combo))
            out.append(Variant(name, name, setting))
            if compute_matched and get_optimizer(name).passes == 1:
                out.append(Variant(name, f"{name}-cm", setting, compute_matched=True))
    return out


def validation_score(run_dir: Path, metric: str) -> float | None:
    """The final weights' validation ``metric`` (from ``final.pt``)."""
    from landscape.checkpoint import read_payload

    value = ((read_payload(Path(run_dir) / "final.pt").get("metrics") or {}).get("val") or {}).get(metric)
    return None if value is None else float(value)


def select(trained: Sequence[tuple[str, int, Variant, Path]], metric: str = "balanced_accuracy") -> dict:
    """Per ``"model/group"``: every candidate's validation scores and the selected one.

    ``trained``: ``(model, seed, variant, run_dir)``. A candidate's score is
    the mean over its seeds; the best wins (the first in grid order on a tie;
    a candidate with a missing score never wins).
    """
    if metric not in SELECT_METRICS:
        raise LandscapeError(f"select_by must be one of {', '.join(SELECT_METRICS)}, got {metric!r}")
    sign = 1.0 if SELECT_METRICS[metric] else -1.0
    out: dict[str, dict] = {}
    for model, _seed, variant, run_dir in trained:
        entry = out.setdefault(f"{model}/{variant.group}", {"metric": metric, "candidates": {}})
        cand = entry["candidates"].setdefault(variant.tag, {"setting": variant.setting, "runs": [], "val": []})
        cand["runs"].append(str(run_dir))
        cand["val"].append(validation_score(run_dir, metric))
    for entry in out.values():
        best, best_score = None, None
        for tag, cand in entry["candidates"].items():
            vals = cand["val"]
            cand["mean_val"] = None if any(v is None for v in vals) else sum(vals) / len(vals)
            if cand["mean_val"] is not None and (best_score is None or sign * cand["mean_val"] > sign * best_score):
                best, best_score = tag, cand["mean_val"]
        entry["selected"] = best
        entry["selected_setting"] = None if best is None else entry["candidates"][best]["setting"]
        entry["selected_runs"] = [] if best is None else entry["candidates"][best]["runs"]
    return out
