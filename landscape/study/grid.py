"""Hyper-parameter grids and validation-only selection for ``run_study``.

A grid maps an optimizer name (or ``"*"``: every optimizer the parameter
applies to) to ``{parameter: [values]}``; ``lr`` is the peak learning rate,
any other name an optimizer hyper-parameter (``rho``, ``eta``, ...). Every
optimizer of the study becomes one :class:`Variant` per combination of its
values (one variant without a grid). Each (model, variant group) keeps the
candidate with the best mean validation score over seeds; test and external
data are never read to choose. A fair comparison gives every optimizer as many
candidates (its ``tuning_budget``): the learning rate of Adam and SGD from a
grid as large as each SAM variant's rho grid.

Compute matching (``compute_matched``, :func:`matched_targets`) comes after
the selection: each one-pass optimizer, at its selected setting, gets a copy
per target optimizer (:func:`matched_variant`; group ``adam-cm`` for SAM,
``adam-cm-<target>`` otherwise) whose gradient budget, seed by seed, is the
``gradient_evaluations`` of the target's selected run
(:mod:`landscape.train.matching`).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from landscape.errors import LandscapeError
from landscape.optim.base import DEFAULT_BASE
from landscape.train.config import MATCHED_DEFAULT, cm_suffix

#: Validation metrics a study may select on, and whether larger is better.
SELECT_METRICS = {"balanced_accuracy": True, "accuracy": True, "macro_f1": True, "auroc_macro": True,
                  "auroc_malignant": True, "nll": False, "ece": False}


def setting_tag(setting: dict) -> str:
    """``{"lr": 0.001, "rho": 0.05}`` -> ``"lr0.001_rho0.05"`` ("" for no setting)."""
    return "_".join(f"{k}{v:g}" if isinstance(v, float) else f"{k}{v}" for k, v in sorted(setting.items()))


@dataclass(frozen=True)
class Variant:
    """One trained setting of an optimizer: ``group`` (report label), ``setting`` (grid values), ``tag`` (folder).

    A compute-matched copy (:func:`matched_variant`) names the optimizer it is matched to (``matched_to``) and
    that optimizer's selected setting (``target_setting``), so a changed selection trains into a new folder.
    """

    optimizer: str
    group: str
    setting: dict = field(default_factory=dict)
    matched_to: str | None = None
    target_setting: dict = field(default_factory=dict)

    @property
    def tag(self) -> str:
        """Sub-folder of the study's runs for this setting ("" without a grid; ``..._cm-<target>[-<its tag>]``)."""
        own = setting_tag(self.setting)
        if self.matched_to is None:
            return own
        target = "-".join(filter(None, (f"cm-{self.matched_to}", setting_tag(self.target_setting))))
        return "_".join(filter(None, (own, target)))

    def config(self, base, gradient_budget: int | None = None, matched_run: str | None = None):
        """``base`` (a TrainConfig) with this variant's optimizer, learning rate, hyper-parameters and folder; a
        compute-matched variant also takes ``gradient_budget`` (and ``matched_run``, the folder it came from).
        """
        hyper = {k: v for k, v in self.setting.items() if k != "lr"}
        out = Path(base.out) / self.tag if self.tag else Path(base.out)
        return base.replace(optimizer=self.optimizer, lr=self.setting.get("lr", base.lr), opt_args=hyper,
                            out=str(out), gradient_budget=gradient_budget if self.matched_to else None,
                            matched_to=self.matched_to, matched_run=matched_run if self.matched_to else None)


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


def variants(names: Sequence[str], grid: dict | None = None, base: str = DEFAULT_BASE) -> list[Variant]:
    """Every setting to train (see module docstring); LandscapeError for a parameter that applies nowhere."""
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
            out.append(Variant(name, name, dict(zip(keys, combo))))
    return out


def tuning_budgets(plan: Sequence[Variant]) -> dict[str, int]:
    """Candidates per group of ``plan`` (the settings validation chooses from)."""
    out: dict[str, int] = {}
    for v in plan:
        out[v.group] = out.get(v.group, 0) + 1
    return out


def unequal_budgets(budgets: dict[str, int]) -> str | None:
    """One line naming the groups' different numbers of candidates, or None when they are equal."""
    if len(set(budgets.values())) <= 1:
        return None
    listed = ", ".join(f"{g} {n}" for g, n in budgets.items())
    return (f"unequal tuning budgets ({listed} candidate(s)): the optimizers with more candidates had more chances "
            "on validation; give each as many, e.g. --grid adam,sgd:lr=3e-4,1e-3,3e-3 "
            "--grid sam,gsam:rho=0.02,0.05,0.1")


def matched_targets(names: Sequence[str], compute_matched) -> list[str]:
    """``compute_matched`` as a list of target optimizers: False/None -> [], True -> [``"sam"``], a name, a comma
    list or a sequence of names -> those.

    LandscapeError for a target the study does not train, a one-pass target (nothing to match), or a study
    without one-pass optimizers to match.
    """
    from landscape.optim import get_optimizer

    if compute_matched is None or compute_matched is False:
        return []
    if compute_matched is True:
        targets = [MATCHED_DEFAULT]
    elif isinstance(compute_matched, str):
        targets = [t.strip() for t in compute_matched.split(",") if t.strip()]
    else:
        targets = [str(t).strip() for t in compute_matched]
    if not targets:
        raise LandscapeError(f"compute_matched names no optimizer, got {compute_matched!r}")
    for t in targets:
        if t not in names:
            raise LandscapeError(f"compute_matched names {t}, which the study does not train ({', '.join(names)})",
                                 params=("compute_matched",))
        if get_optimizer(t).passes == 1:
            raise LandscapeError(f"compute_matched names {t}, which takes one pass per step like the baselines: "
                                 "nothing to match", params=("compute_matched",))
    if not any(get_optimizer(n).passes == 1 for n in names):
        raise LandscapeError(f"compute_matched: the study trains no one-pass optimizer to match ({', '.join(names)})",
                             params=("compute_matched",))
    return list(dict.fromkeys(targets))


def matched_variant(baseline: Variant, target: str, target_setting: dict) -> Variant:
    """The compute-matched copy of ``baseline`` (a one-pass optimizer at its selected setting) for ``target``."""
    return Variant(baseline.optimizer, f"{baseline.group}{cm_suffix(target)}", dict(baseline.setting), target,
                   dict(target_setting))


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
