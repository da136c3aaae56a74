"""A checkpoint's 1D/2D loss surface, cached as a ``surface`` record in its run's ``analysis/``.

Writes ``surface-<hash>.npz`` (arrays and axes), ``.png`` and, with
``html=True``, a self-contained interactive ``.html`` (4.8 MB of plotly.js each;
the report is the interactive artifact, so it is opt-in) next to the record
(``<hash>`` is the record's settings hash). While it runs, a
``surface-<hash>.partial.npz`` holds the finished rows; a killed run started
again with the same settings resumes from it and gives identical arrays.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from landscape import distributed, logs
from landscape.analysis.cache import as_checkpoint, cached, model_provenance
from landscape.analysis.direction_plan import make_plan, parse_spec, spec_settings
from landscape.analysis.memory import check_analysis_memory
from landscape.analysis.registry import AnalysisSpec, register_analysis
from landscape.checkpoint import Checkpoint
from landscape.checkpoint.cache import register_schema
from landscape.checks import check_seed
from landscape.cost import CostPlan, announce
from landscape.errors import LandscapeError
from landscape.io import atomic_write_bytes, check_writable, stable_hash
from landscape.surface.evaluate import BN_MODES, evaluate_point, evaluate_surface, forward_seconds, prepare_batches
from landscape.surface.grid import axis, center_index, check_grid_memory, interp_axis, parse_grid
from landscape.surface.plot import plot_html, plot_png

DEFAULT_BN_SAMPLES = 512


def analyze(
    ck: Checkpoint | str | Path,
    dim: int = 2,
    directions: str = "random",
    grid: int | str | tuple[int, int] = 21,
    span: float = 1.0,
    split: str = "test",
    bn: str = "eval",
    samples: int | None = None,
    seed: int = 0,
    progress: bool = True,
    out_dir: str | Path | None = None,
    bn_samples: int = DEFAULT_BN_SAMPLES,
    batch_size: int = 256,
    include_bias_bn: bool = False,
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] | None = None,
    fast: bool = True,
    html: bool = False,
    device: str | None = None,
    data_root: str | Path | None = None,
    budget_memory: float | None = None,
) -> dict:
    """Loss and accuracy of ``ck``'s model on a 1D or 2D grid of weights around it.

    ``ck``: a loaded :class:`~landscape.checkpoint.Checkpoint` or a path (then
    ``device`` and ``data_root`` load it). ``directions``: ``random``,
    ``eigen``, ``interp:OTHER.pt`` or ``pca`` (axes in
    :mod:`landscape.analysis.direction_plan`; ``x_range``/``y_range`` override them).
    ``grid``: points per axis, ``N`` or ``(N, M)``. ``split``/``samples``: the
    evaluation data (a subset seeded by ``seed``). ``bn``: ``eval`` (frozen
    statistics) or ``recompute`` (re-estimated at every point on
    ``bn_samples`` training images). ``seed`` also seeds random directions.

    ``center_error`` is ``|loss at (0, 0) - model_loss|`` (``bn="eval"``
    only: recomputed statistics change the centre on purpose). For
    ``interp``, ``endpoint_loss``/``endpoint_accuracy`` hold the values at
    ``t = 0`` and ``t = 1``. ``html``: also write the interactive HTML.

    Returns the cache record ``{"kind", "settings", "result", "provenance"}``
    plus ``"path"``; a stored record with the same settings whose files still
    exist is returned without recomputing.
    """
    if dim not in (1, 2):
        raise LandscapeError(f"dim must be 1 or 2, got {dim!r}")
    sizes = parse_grid(grid, dim)
    check_grid_memory(sizes)
    check_seed(seed)
    check_writable(out_dir, folder=True)
    if bn not in BN_MODES:
        raise LandscapeError(f"bn must be eval or recompute, got {bn!r}")
    if not (isinstance(span, (int, float)) and math.isfinite(span) and span > 0):
        raise LandscapeError(f"span must be a positive number, got {span!r}")
    if samples is not None and samples < 1:
        raise LandscapeError(f"samples must be >= 1, got {samples}")
    if bn_samples < 1:
        raise LandscapeError(f"bn_samples must be >= 1, got {bn_samples}")
    if batch_size < 1:
        raise LandscapeError(f"batch_size must be >= 1, got {batch_size}")
    kind, other = parse_spec(directions)
    ck = as_checkpoint(ck, device, data_root)
    # the directions, the centre weights and the BatchNorm-folded copy beside the model (the grid's arrays live in
    # host memory: check_grid_memory above)
    check_analysis_memory(ck.model, dim + 2, f"the {'x'.join(map(str, sizes))} surface of {ck.run_dir.name}",
                          budget_memory)
    settings = {
        "dim": dim,
        "directions": kind,
        **spec_settings(kind, other, ck),
        "grid": list(sizes),
        "span": float(span),
        "x_range": None if x_range is None else [float(v) for v in x_range],
        "y_range": None if y_range is None or dim == 1 else [float(v) for v in y_range],
        "split": split,
        "samples": samples,
        "bn": bn,
        "bn_samples": bn_samples if bn == "recompute" else None,
        "batch_size": batch_size,
        "include_bias_bn": bool(include_bias_bn) if kind in ("random", "interp") else None,
        **({"t_axis": "exact-endpoints"} if kind == "interp" else {}),
        "fast": bool(fast),
        "html": bool(html),
        "seed": seed,
    }
    out = Path(out_dir) if out_dir is not None else ck.analysis_dir

    def compute(full: dict) -> tuple[dict, dict]:
        with logs.run_context(ck.run_dir.name):
            return _compute(ck, full, kind, other, sizes, out, x_range, y_range, progress)

    def files_exist(record: dict) -> bool:
        return all(Path(p).is_file() for p in record["result"]["files"].values())

    return cached(ck, "surface", settings, compute, valid=files_exist, outputs=(out,))


def _compute(ck, settings: dict, kind: str, other, sizes, out: Path, x_range, y_range, progress: bool):
    """Evaluate the grid, write the ``.npz``/PNG/HTML files; returns ``(result, provenance)``."""
    dim, span, seed, split = settings["dim"], settings["span"], settings["seed"], settings["split"]
    bn, batch_size, fast = settings["bn"], settings["batch_size"], settings["fast"]
    samples, bn_samples = settings["samples"], settings["bn_samples"]
    include_bias_bn = bool(settings["include_bias_bn"])
    start = time.perf_counter()
    model = ck.model
    data = prepare_batches(ck.loader(split, batch_size=batch_size, samples=samples, seed=seed), model, batch_size)
    bn_data = ck.loader("train", batch_size=batch_size, samples=bn_samples, seed=seed) if bn == "recompute" else None
    plan = make_plan(ck, kind, other, dim, float(span), seed, data, include_bias_bn)
    ranges = list(plan.ranges)
    for i, override in enumerate((x_range, y_range)[:dim]):
        if override is not None:
            ranges[i] = (float(override[0]), float(override[1]))
    check_reach(model, plan.directions, ranges[:dim])
    cost = surface_plan(int(np.prod(sizes)), forward_seconds(model, ck.loss_fn, data, fast))
    announce(cost.line(), progress)
    lo, hi = ranges[0]
    xs = interp_axis(sizes[0], lo, hi) if kind == "interp" and lo <= 0 and hi >= 1 else axis(sizes[0], lo, hi)
    ys = axis(sizes[1], *ranges[1]) if dim == 2 else None

    stem = out / f"surface-{stable_hash(settings)}"
    partial = stem.with_name(stem.name + ".partial.npz")
    arrays = evaluate_surface(model, ck.loss_fn, data, plan.directions, xs, ys, bn=bn, bn_data=bn_data,
                              batch_size=batch_size, fast=fast, resume_path=partial, progress=progress)
    model_loss, model_acc = evaluate_point(model, ck.loss_fn, data)
    ci, cj = center_index(xs), (center_index(ys) if dim == 2 else None)
    at_center = ci is not None and (dim == 1 or cj is not None)
    center = (ci,) if dim == 1 else (ci, cj)
    center_loss = float(arrays.loss[center]) if at_center else None
    center_acc = float(arrays.accuracy[center]) if at_center else None

    title = f"{ck.run_dir.name}: {kind} {dim}D, {split} ({sum(len(y) for _, y in data)} images), BN {bn}"
    figure = {"xlabel": plan.labels[0], "ylabel": plan.labels[1] if dim == 2 else None, "title": title,
              "accuracy": arrays.accuracy, "trajectory": plan.trajectory}
    described = plan.describe(seed)
    files = {
        "npz": _save_npz(stem.with_suffix(".npz"), xs, ys, arrays, plan, described, model_loss),
        "png": plot_png(stem.with_suffix(".png"), xs, ys, arrays.loss, **figure),
    }
    if settings["html"]:
        files["html"] = plot_html(stem.with_suffix(".html"), xs, ys, arrays.loss, **figure)
    seconds = time.perf_counter() - start
    result = {
        "dim": dim,
        "directions": kind,
        "x": xs,
        "y": ys,
        "loss": arrays.loss,
        "accuracy": arrays.accuracy,
        "center_loss": center_loss,
        "center_accuracy": center_acc,
        "model_loss": model_loss,
        "model_accuracy": model_acc,
        "center_error": None if center_loss is None or bn != "eval" else abs(center_loss - model_loss),
        **(_endpoints(xs, cj if dim == 2 else None, arrays) if kind == "interp" else {}),
        "bn": bn,
        "split": split,
        "n_samples": sum(len(y) for _, y in data),
        "labels": plan.labels,
        "direction_info": described,
        "info": plan.info,
        "trajectory": plan.trajectory,
        "points": int(arrays.loss.size),
        "points_evaluated": arrays.evaluated,
        "points_per_second": arrays.evaluated / arrays.seconds if arrays.evaluated else None,
        "seconds": seconds,
        "key": arrays.key,
        "files": {k: str(v) for k, v in files.items()},
        "plan": cost.to_dict(),
    }
    if distributed.is_main():
        partial.unlink(missing_ok=True)
    return result, {"split": split, "bn_mode": bn, "analysis_seed": seed, **model_provenance(model)}


def _endpoints(xs: np.ndarray, row: int | None, arrays) -> dict:
    """Loss and accuracy at ``t = 0`` (this model) and ``t = 1`` (the other), on the ``y = 0`` row in 2D."""
    at = [np.flatnonzero(xs == t) for t in (0.0, 1.0)]
    if any(hit.size == 0 for hit in at) or (arrays.loss.ndim == 2 and row is None):
        return {"endpoint_loss": None, "endpoint_accuracy": None}
    index = [(hit[0],) if row is None else (hit[0], row) for hit in at]
    return {"endpoint_loss": [float(arrays.loss[i]) for i in index],
            "endpoint_accuracy": [float(arrays.accuracy[i]) for i in index]}


def _save_npz(path: Path, xs, ys, arrays, plan, described: list[dict], model_loss: float) -> Path:
    """The arrays, axes and trajectory as one ``.npz`` (written atomically)."""
    extra = {}
    if plan.trajectory is not None:
        t = plan.trajectory
        extra = {"trajectory_epochs": np.asarray(t["epochs"]), "trajectory_x": np.asarray(t["x"]),
                 "trajectory_distance": np.asarray(t["distance"]),
                 "explained_variance": np.asarray(plan.info["explained_variance"])}
        if t["y"] is not None:
            extra["trajectory_y"] = np.asarray(t["y"])
    buf = io.BytesIO()
    np.savez(buf, x=xs, y=np.asarray([] if ys is None else ys, dtype=np.float64), loss=arrays.loss,
             accuracy=arrays.accuracy, model_loss=np.float64(model_loss), key=np.array(arrays.key),
             direction_hashes=np.array([d["hash"] for d in described]), **extra)
    return atomic_write_bytes(path, buf.getvalue())


def check_reach(model, directions, ranges) -> None:
    """Refuse, before evaluating, a grid whose farthest point overflows the model's dtype (``--span 1e308``)."""
    params = dict(model.named_parameters())
    dtype = next(iter(params.values())).dtype
    reach = max(float(p.detach().abs().max()) for p in params.values())
    for d, (lo, hi) in zip(directions, ranges):
        biggest = max((float(v.detach().abs().max()) for v in d.values()), default=0.0)
        reach += max(abs(lo), abs(hi), abs(hi - lo)) * biggest
    limit = torch.finfo(dtype).max
    if not math.isfinite(reach) or reach >= limit:
        raise LandscapeError(f"span overflows: the farthest grid point has weights of size {reach:.3g}, beyond "
                             f"the {limit:.3g} of {str(dtype).removeprefix('torch.')}; use a smaller span",
                             params=("span",))


def _random_plane(dim: int) -> Callable[[dict], bool]:
    return lambda r: r["result"].get("dim") == dim and r["result"].get("directions") == "random"


def surface_plan(points: int, unit_seconds: float | None = None) -> CostPlan:
    """``points`` grid points plus the model itself, each one forward pass over the evaluation data.

    ``unit_seconds``: one such pass as the surface runs it (see
    :func:`landscape.surface.evaluate.forward_seconds`); None leaves the ETA unknown.
    """
    plan = CostPlan("surface", "forward pass", {"surface": points + 1}, cap=points + 1)
    if unit_seconds is not None:
        plan.unit_seconds = unit_seconds
        plan.eta_seconds = plan.planned * plan.unit_seconds
    return plan


def cost(ck, kw: dict, measure: bool) -> CostPlan:
    """Forward passes over the evaluation data of a run with settings ``kw`` on ``ck``: one per grid point."""
    points = math.prod(parse_grid(kw["grid"], kw["dim"]))
    seconds = None
    if measure:
        loader = ck.loader(kw["split"], batch_size=kw["batch_size"], samples=kw["samples"], seed=kw["seed"])
        seconds = forward_seconds(ck.model, ck.loss_fn, prepare_batches(loader, ck.model, kw["batch_size"]),
                                  kw["fast"])
    return surface_plan(points, seconds)


_GRID = [(float, None, [(float, None)])]
#: What every stored ``surface`` result must hold.
SCHEMA = {"dim": int, "directions": str, "x": [float], "y": (None, [float]), "loss": _GRID, "accuracy": _GRID,
          "center_loss": (float, None), "model_loss": (float, None), "bn": str, "split": str, "files": {"npz": str}}
register_schema("surface", SCHEMA)

register_analysis(AnalysisSpec(
    "surface_1d", "surface", analyze, cost=cost, provides={"surface_1d": _random_plane(1)},
    report_defaults={"dim": 1, "directions": "random"}, quick_defaults={"grid": 21, "samples": 64},
    stage="surfaces", description="1D loss curve along a filter-normalised random direction",
))
register_analysis(AnalysisSpec(
    "surface_2d", "surface", analyze, cost=cost, provides={"surface_2d": _random_plane(2)},
    report_defaults={"dim": 2, "directions": "random"}, quick_defaults={"grid": 11, "samples": 64},
    stage="surfaces", description="2D loss surface on two filter-normalised random directions",
))
