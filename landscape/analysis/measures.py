"""``analyze``: the measure suite of one checkpoint, cached as a ``measures`` record."""

from __future__ import annotations

import math
import time
from pathlib import Path

from landscape import logs
from landscape.analysis.cache import as_checkpoint, cached, model_provenance
from landscape.analysis.measure_context import MeasureContext
from landscape.analysis.memory import check_analysis_memory
from landscape.analysis.registry import AnalysisSpec, register_analysis
from landscape.checkpoint import Checkpoint
from landscape.checkpoint.cache import newest_for, register_schema
from landscape.cost import CostPlan, time_pass
from landscape.errors import LandscapeError
from landscape.measures import REGISTRY, MeasureSpec, select_measures
from landscape.measures.catalogue import WEIGHTS
from landscape.measures.curvature import GGN_CHUNK
from landscape.progress import progress_bar

METRICS = ("loss", "accuracy")


def _check(samples, ggn_samples, draws, depth, target, metric) -> None:
    for value, name in ((samples, "samples"), (ggn_samples, "ggn_samples"), (draws, "draws"), (depth, "depth")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise LandscapeError(f"{name} must be a positive integer, got {value!r}")
    if draws < 2:
        raise LandscapeError(f"draws must be >= 2 (the Monte-Carlo error needs two noise samples), got {draws}")
    if metric not in METRICS:
        raise LandscapeError(f"metric must be loss or accuracy, got {metric!r}")
    if not (isinstance(target, (int, float)) and 0 < target < (1 if metric == "accuracy" else float("inf"))):
        raise LandscapeError(f"target must be > 0 (and < 1 for accuracy), got {target!r}")


def analyze(ck: Checkpoint | str | Path, measures: str | list[str] | None = "all", samples: int = 512,
                     ggn_samples: int = 256, draws: int = 8, depth: int = 12, target: float = 0.1,
                     metric: str = "accuracy", seed: int = 0, device: str | None = None,
                     data_root: str | Path | None = None, progress: bool = True,
                     budget_memory: float | None = None) -> dict:
    """Compute the registry's measures of a checkpoint; returns its ``measures`` cache record plus ``"path"``.

    ``samples`` seeded training images feed the output, Fisher-Rao and
    PAC-Bayes measures, ``ggn_samples`` the exact GGN trace; ``draws``,
    ``depth``, ``target`` and ``metric`` set the PAC-Bayes sigma search
    (``metric="accuracy"``: Jiang's training-accuracy drop; ``"loss"``: the
    loss-increase variant). Weight-based measures see the network with
    eval-mode BatchNorm folded in (``provenance.weights`` states the convention
    and, as ``invariant``/``reason``/``unfolded``, whether a normalisation
    stayed unfolded so that they are not invariant); a fold that would change
    the logits raises :class:`LandscapeError`.
    Measures read from other records (lambda_max, Hessian trace, m-sharpness)
    are not part of this record: :func:`measure_values` merges them.
    Their peak memory (:func:`peak_copies`) is checked against ``budget_memory``
    GiB (default: what is available) before any work.
    ``result`` = ``{"values": {name: float | None}, "details": {group: ...},
    "seconds": {group: s}}``.
    """
    _check(samples, ggn_samples, draws, depth, target, metric)
    specs = [s for s in select_measures(measures) if s.compute is not None]
    groups = list(dict.fromkeys(s.group for s in specs))
    ck = as_checkpoint(ck, device, data_root)
    check_analysis_memory(ck.model, peak_copies(groups, len(ck.classes)), f"the measures of {ck.run_dir.name}",
                          budget_memory, params=("ggn_samples",) if "ggn" in groups else ())
    settings = {"split": "train", "groups": groups, "samples": samples, "ggn_samples": ggn_samples, "draws": draws,
                "depth": depth, "target": float(target), "metric": metric, "seed": int(seed)}

    def compute(full: dict) -> tuple[dict, dict]:
        with logs.run_context(ck.run_dir.name):
            result, weights = _compute(ck, full, groups, progress)
        return result, {"split": "train", "bn_mode": "eval", "weights": weights, **model_provenance(ck.model)}

    return cached(ck, "measures", settings, compute)


def peak_copies(groups: list[str], num_classes: int) -> int:
    """Parameter-sized vectors the measure ``groups`` hold at once: the weights at init, BatchNorm-folded and
    perturbed (PAC-Bayes) besides the model (4), and for the exact GGN trace the per-image logit Jacobians of one
    chunk (``GGN_CHUNK x classes``, twice for ``jacrev``'s work space).
    """
    return 4 + (2 * GGN_CHUNK * num_classes if "ggn" in groups else 0)


def _compute(ck: Checkpoint, settings: dict, groups: list[str], progress: bool) -> tuple[dict, dict]:
    by_group = {s.group: s.compute for s in REGISTRY.values() if s.compute is not None}
    search_evals = settings["depth"] + 5  # bisection plus bracketing, an upper bound for the bar
    total = sum(search_evals if g.startswith("pacbayes") else 1 for g in groups)
    values: dict = {}
    details: dict = {}
    seconds: dict = {}
    with progress_bar("measures", total, progress) as bar:
        ctx = MeasureContext(ck, settings, progress=bar.advance)
        for group in groups:
            bar.update(description=f"measures: {group}")
            t0 = time.perf_counter()
            out = dict(by_group[group](ctx))
            details[group] = out.pop("details", None)
            values.update(out)
            seconds[group] = time.perf_counter() - t0
            if not group.startswith("pacbayes"):
                bar.advance()
    return {"values": values, "details": details, "seconds": seconds}, ctx.folded.summary()


def measure_values(path: str | Path, sha: str, specs: list[MeasureSpec] | None = None) -> dict[str, float | None]:
    """Every measure of the checkpoint file ``path`` (file hash prefix ``sha``) found in its run's records.

    Computed measures come from the newest ``measures`` record that holds
    them, reused ones from the newest ``hessian``/``sharpness`` record that
    provides them; a measure with no record is None.
    """
    out: dict[str, float | None] = {}
    for spec in specs or list(REGISTRY.values()):
        if spec.compute is not None:
            rec = newest_for(path, sha, "measures", lambda r, n=spec.name: n in r["result"]["values"])
            out[spec.name] = None if rec is None else rec["result"]["values"][spec.name]
        else:
            rec = newest_for(path, sha, spec.source, lambda r, f=spec.extract: f(r) is not None)
            out[spec.name] = None if rec is None else spec.extract(rec)
    return out


def weights_invariance(record: dict) -> dict:
    """``{"invariant", "reason", "unfolded"}`` of a ``measures`` record's weight convention.

    Records written before the flag existed are judged by their ``unfolded`` list (invariant when empty).
    """
    weights = (record.get("provenance") or {}).get("weights") or {}
    unfolded = list(weights.get("unfolded") or [])
    invariant = bool(weights.get("invariant", not unfolded))
    reason = weights.get("reason") or (None if invariant else
                                       f"{len(unfolded)} normalisation module(s) not folded: {', '.join(unfolded[:5])}")
    return {"invariant": invariant, "reason": reason, "unfolded": unfolded}


def not_invariant(path: str | Path, sha: str, specs: list[MeasureSpec] | None = None) -> dict[str, str]:
    """``{measure: reason}`` of the checkpoint's weight-based measures (tag ``"weights"``) that are not invariant.

    For each such measure with a value, the record :func:`measure_values`
    reads it from decides: a normalisation left unfolded there means the value
    changes under a function-preserving rescaling. Tables mark these values.
    """
    out: dict[str, str] = {}
    for spec in specs or list(REGISTRY.values()):
        if WEIGHTS not in spec.tags or spec.compute is None:
            continue
        rec = newest_for(path, sha, "measures", lambda r, n=spec.name: n in r["result"]["values"])
        if rec is None or rec["result"]["values"][spec.name] is None:
            continue
        info = weights_invariance(rec)
        if not info["invariant"]:
            out[spec.name] = info["reason"]
    return out


def cost(ck, kw: dict, measure: bool) -> CostPlan:
    """Forward passes over ``samples`` training images: the two PAC-Bayes sigma searches (bracketing plus
    ``depth`` bisection steps, ``draws`` each), the exact GGN trace (``C`` per-sample gradients of
    ``ggn_samples`` images, ~3 forward passes each), ~3 for the output measures and norms and 1 for relative
    flatness (the penultimate features).
    """
    x, y = ck.tensors("train")
    n = min(int(kw["samples"]), len(y))
    parts = {"pacbayes": 2 * (int(kw["depth"]) + 5) * int(kw["draws"]),
             "ggn": math.ceil(3 * len(ck.classes) * min(int(kw["ggn_samples"]), len(y)) / max(n, 1)), "outputs": 3,
             "relative_flatness": 1}
    plan = CostPlan("measures", "forward pass", parts)
    if measure:
        device = next(ck.model.parameters()).device
        plan.unit_seconds = time_pass(ck.model, ck.loss_fn, [(x[:n].to(device), y[:n].to(device))], backward=False)
    return plan


#: What every stored ``measures`` result must hold.
SCHEMA = {"values": dict, "details": dict, "seconds": dict}
register_schema("measures", SCHEMA)

register_analysis(AnalysisSpec(
    "measures", "measures", analyze, cost=cost,
    provides={"measures": lambda r: bool(r["result"].get("values"))},
    # the report's measures on 256 images with 4 draws x 8 bisection steps (not 512; 8 x 12), so that all of
    # one 64 px cnn-small run's default analyses fit 10 minutes on 2 CPU cores (README)
    report_defaults={"samples": 256, "ggn_samples": 128, "draws": 4, "depth": 8},
    quick_defaults={"samples": 64, "ggn_samples": 32, "draws": 2, "depth": 6},
    description="generalization-measure suite (norms, margin-normalised norms, GGN trace, Fisher-Rao, PAC-Bayes, "
                "outputs)",
))
