"""Checkpoint-level Hessian analysis, cached in the run folder's ``analysis/``."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

from landscape import logs
from landscape.analysis.cache import as_checkpoint, cached
from landscape.analysis.memory import check_analysis_memory
from landscape.analysis.registry import AnalysisSpec, register_analysis
from landscape.checkpoint.cache import register_schema
from landscape.checkpoint.load import SPLITS
from landscape.checks import check_positive, check_positive_int, check_seed
from landscape.cost import CostPlan, Meter, announce, time_pass
from landscape.errors import LandscapeError
from landscape.hessian.blocks import module_blocks, per_block
from landscape.hessian.budget import cap_for, expected_parts
from landscape.hessian.density import runs_needed, spectral_density
from landscape.hessian.hutchpp import PILOT
from landscape.hessian.hutchpp import trace as estimate_trace
from landscape.hessian.krylov import Krylov, generator
from landscape.hessian.lanczos import (
    LANCZOS_STREAM,
    ConvergenceWarning,
    default_eigen_budget,
    top_eigenvalues,
)
from landscape.hessian.operator import HessianOperator
from landscape.io import check_writable, write_json
from landscape.progress import progress_bar

# Engine settings recorded with every result (they change the numbers).  The density's runs=None:
# as many as its Beta variance needs (see landscape.hessian.density), at most max_runs; shared: its
# first run is the top-k/trace Krylov run.
TRACE = {"method": "hutch++", "rtol": 0.05, "max_hvps": 100, "stop_early": True}
DENSITY = {"runs": None, "max_runs": 4, "steps": 40, "shared": True}
BLOCKS = {"rtol": 0.05, "max_hvps": 100}
#: What every result says of its parameterisation (``result["parameterisation"]``): the Hessian is taken in the
#: raw weights, so lambda_max, the trace and the density change under function-preserving rescalings (a conv's
#: weights x c with its BatchNorm mean x c and variance x c^2 is the same network, but that conv's Hessian block
#: scales by 1/c^2; Dinh et al. 2017).
PARAMETERISATION = "raw weights; not invariant to BatchNorm rescaling"


def _check(top_k, split, samples, batch_size, tol, seed, budget_hvps) -> None:
    check_seed(seed)
    check_positive_int(top_k, "top_k")
    if budget_hvps is not None and check_positive_int(budget_hvps, "budget_hvps") < top_k:
        raise LandscapeError(f"budget_hvps must be >= top_k={top_k} (one HVP per eigenvalue at least), "
                             f"got {budget_hvps}")
    if split not in SPLITS:
        raise LandscapeError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if samples is not None:
        check_positive_int(samples, "samples")
    check_positive_int(batch_size, "batch_size")
    if not (isinstance(tol, (int, float)) and 0 < tol < 1):
        raise LandscapeError(f"tol must be in (0, 1), got {tol!r}")


def analyze(ck, top_k: int = 5, trace: bool = True, density: bool = False, per_layer: bool = False,
            split: str = "train", samples: int | None = 512, batch_size: int = 128, tol: float = 1e-3,
            seed: int = 0, progress: bool = True, json_path: str | Path | None = None,
            plot_path: str | Path | None = None, device: str | None = None,
            data_root: str | Path | None = None, trace_settings: dict | None = None,
            density_settings: dict | None = None, budget_hvps: int | None = None,
            budget_memory: float | None = None) -> dict:
    """Top-k eigenvalues, trace, density and per-layer breakdown of a checkpoint's Hessian.

    ``ck`` is a loaded :class:`~landscape.checkpoint.Checkpoint` or a path
    (``.pt`` or run folder; then ``device`` and ``data_root`` load it).  The
    Hessian is of the mean cross-entropy over ``samples`` seeded images of ``split`` (all when None),
    BatchNorm in eval mode.  Returns the cache record ``{"kind", "settings",
    "result", "provenance"}`` plus ``"path"`` (its JSON file); a stored record
    with the same settings (which include the checkpoint's name and file hash)
    is returned without recomputing.
    ``json_path`` writes a copy; ``plot_path`` writes the density PNG and
    implies ``density``.  ``trace_settings``/``density_settings`` override
    entries of :data:`TRACE`/:data:`DENSITY` (e.g. a smaller HVP budget for
    quick studies).  ``budget_hvps`` caps the HVPs of the whole analysis
    (never exceeded: outputs share it in order, top-k first).  Before
    computing it states its plan (expected HVPs per output, see
    :mod:`landscape.hessian.budget`) and, after two products, an ETA; the
    plan is stored under ``result["plan"]``. The Lanczos basis (at most
    ``min(max_hvps, n)`` vectors of the ``n`` parameters) must fit in
    ``budget_memory`` GiB (default: the memory available), checked before the plan.
    """
    _check(top_k, split, samples, batch_size, tol, seed, budget_hvps)
    if budget_memory is not None:
        check_positive(budget_memory, "budget_memory")
    check_writable(json_path, plot_path)
    density = bool(density or plot_path is not None)
    ck = as_checkpoint(ck, device, data_root)
    settings = {"top_k": int(top_k), "trace": bool(trace), "density": density, "per_layer": bool(per_layer),
                "split": split, "samples": samples, "batch_size": int(batch_size), "tol": float(tol),
                "seed": int(seed), "which": "largest", "max_hvps": default_eigen_budget(top_k),
                "trace_settings": {**TRACE, **(trace_settings or {})} if trace else None,
                "density_settings": {**DENSITY, **(density_settings or {})} if density else None,
                "block_settings": BLOCKS if per_layer else None, "budget_hvps": budget_hvps}
    _check_basis(ck.model, int(top_k), settings["max_hvps"], budget_memory)

    def compute(full: dict) -> tuple[dict, dict]:
        with logs.run_context(ck.run_dir.name):
            result = _compute(ck, full, progress)
        return result, {"split": split, "bn_mode": "eval", "device": result["device"], "dtype": result["dtype"]}

    record = cached(ck, "hessian", settings, compute)
    if json_path is not None:
        write_json(json_path, {k: v for k, v in record.items() if k != "path"})
    if plot_path is not None:
        from landscape.hessian.plot import density_png

        density_png(record["result"]["density"], plot_path, record["result"]["top_k"]["eigenvalues"],
                    title=f"{ck.run_dir.name}: Hessian spectral density ({split}, {record['result']['n_samples']} "
                          "images)")
    return record


def _check_basis(model, top_k: int, max_hvps: int, budget_memory: float | None) -> None:
    """Refuse, before any work, a ``top_k`` beyond the parameter count or a Lanczos basis that does not fit."""
    n = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if top_k > n:
        raise LandscapeError(f"top_k must be at most the number of parameters ({n:,}), got {top_k:,}")
    vectors = min(max_hvps, n)
    check_analysis_memory(model, vectors, f"the Lanczos basis of top_k={top_k:,} ({vectors:,} vectors of {n:,} "
                          "parameters)", budget_memory, params=("top_k",))


def _compute(ck, s: dict, progress: bool) -> dict:
    start = time.perf_counter()
    loader = ck.loader(s["split"], batch_size=s["batch_size"], samples=s["samples"], seed=s["seed"])
    op = HessianOperator(ck.model, ck.loss_fn, loader)
    tr, dens, budget = s["trace_settings"], s["density_settings"], s["budget_hvps"]
    if dens is not None:
        dens = {**dens, "runs": dens["runs"] or runs_needed(op.size, max_runs=dens["max_runs"])}
    plan = CostPlan("Hessian", "HVP", expected_parts(op.size, s["top_k"], tr, dens), cap=budget)
    announce(plan.line(), progress)
    out: dict = {"top_k": None, "trace": None, "density": None, "per_layer": None}
    with warnings.catch_warnings(record=True) as caught, progress_bar("Hessian", plan.planned, progress, "HVPs") as bar:
        warnings.simplefilter("always", ConvergenceWarning)
        meter = Meter(plan, after=2, enabled=progress)
        op.callback = lambda: (bar.advance(), meter.tick())
        krylov = Krylov(op, generator(s["seed"], LANCZOS_STREAM))
        bar.update(description=f"Hessian top-{s['top_k']}")
        eig = top_eigenvalues(op, k=s["top_k"], tol=s["tol"], max_hvps=cap_for(s["max_hvps"], budget, 0),
                              seed=s["seed"], krylov=krylov)
        out["top_k"] = {**eig.to_dict(), "shared_hvps": 0}
        _replan(bar, plan, op.hvps, ["trace", "density"])
        if s["trace"]:
            trace_cap = cap_for(tr["max_hvps"], budget, op.hvps)
            if trace_cap >= PILOT + 10:
                bar.update(description="Hessian trace")
                out["trace"] = estimate_trace(op, method=tr["method"], rtol=tr["rtol"], max_hvps=trace_cap,
                                              seed=s["seed"], krylov=krylov, stop_early=tr["stop_early"]).to_dict()
            else:
                warnings.warn(f"trace skipped: {trace_cap} HVPs left of --budget-hvps {budget}", ConvergenceWarning,
                              stacklevel=2)
        _replan(bar, plan, op.hvps, ["density"])
        if dens is not None:
            bar.update(description="Hessian density")
            out["density"] = spectral_density(op, runs=dens["runs"], steps=dens["steps"], seed=s["seed"],
                                              krylov=krylov if dens["shared"] else None,
                                              max_hvps=cap_for(dens["runs"] * dens["steps"], budget, op.hvps)).to_dict()
        del krylov
        op.release()
        block_hvps = 0
        if s["per_layer"]:
            per = cap_for(BLOCKS["max_hvps"], None if budget is None else (budget - op.hvps) // (2 * _blocks(op)), 0)
            if per >= PILOT + 10:
                bar.update(description="Hessian per layer")
                blocks = per_block(ck.model, ck.loss_fn, op.batches, tol=s["tol"], rtol=BLOCKS["rtol"],
                                   max_hvps=per, seed=s["seed"], progress=bar.advance,
                                   num_samples=op.num_samples)
                out["per_layer"] = [b.to_dict() for b in blocks]
                block_hvps = sum(b["hvps"] for b in out["per_layer"])
            else:
                warnings.warn(f"per-layer blocks skipped: {budget - op.hvps} HVPs left of --budget-hvps {budget}",
                              ConvergenceWarning, stacklevel=2)
    out.update({
        "bn_mode": "eval", "parameterisation": PARAMETERISATION, "n_samples": op.num_samples, "split": s["split"],
        "num_params": op.size,
        "loss_reduction": op.reduction, "autocast": False,
        "hvps": op.hvps + block_hvps, "hvp_seconds": op.seconds / max(op.hvps, 1), "device": str(op.device),
        "dtype": str(op.dtype).replace("torch.", ""), "seconds": time.perf_counter() - start,
        "plan": plan.to_dict(),
        "warnings": [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)],
    })
    return out


def _replan(bar, plan: CostPlan, done: int, rest: list[str]) -> None:
    """Set the bar's total to the products done plus the expected products of the outputs still to come."""
    bar.update(total=done + sum(plan.parts.get(k, 0) for k in rest))


def _blocks(op) -> int:
    return len(module_blocks(op.names))


#: HVP time over gradient time on the same images (retained graph, first products included).
HVP_PER_GRADIENT = 2.5


def cost(ck, kw: dict, measure: bool) -> CostPlan:
    """HVPs of a run with settings ``kw`` on ``ck`` (see :func:`~landscape.hessian.budget.expected_parts`);
    one HVP timed as ``HVP_PER_GRADIENT`` gradient passes over its images, the ratio the retained-graph
    HVP was measured at.
    """
    size = sum(p.numel() for p in ck.model.parameters() if p.requires_grad)
    tr = {**TRACE, **(kw.get("trace_settings") or {})} if kw["trace"] else None
    dens = {**DENSITY, **(kw.get("density_settings") or {})} if kw["density"] else None
    plan = CostPlan("hessian", "HVP", expected_parts(size, kw["top_k"], tr, dens), cap=kw.get("budget_hvps"))
    if measure:
        data = list(ck.loader(kw["split"], batch_size=kw["batch_size"], samples=kw["samples"], seed=kw["seed"]))
        device = next(ck.model.parameters()).device
        data = [(x.to(device), y.to(device)) for x, y in data]
        plan.unit_seconds = HVP_PER_GRADIENT * time_pass(ck.model, ck.loss_fn, data, backward=True)
    return plan


#: What every stored ``hessian`` result must hold (the fields the CLI, the report and the measures read).
SCHEMA = {
    "top_k": {"eigenvalues": [float], "residuals": [(float, None)], "converged": [bool], "hvps": int},
    "trace": (None, {"estimate": (float, None), "stderr": (float, None), "hvps": int}),
    "density": (None, {"grid": [float], "density": [(float, None)]}),
    "per_layer": (None, [{"name": str, "num_params": int}]),
    "n_samples": int, "split": str, "num_params": int, "hvps": int, "warnings": [str],
}
register_schema("hessian", SCHEMA)

register_analysis(AnalysisSpec(
    "hessian", "hessian", analyze, cost=cost, columns=("lambda_max", "hessian_trace"),
    provides={
        "lambda_max": lambda r: bool((r["result"].get("top_k") or {}).get("eigenvalues")),
        "hessian_trace": lambda r: r["result"].get("trace") is not None,
        "density": lambda r: r["result"].get("density") is not None,
    },
    report_defaults={"density": True, "samples": 256},  # 256 images: one run fits 10 min on 2 cores
    quick_defaults={"top_k": 1, "samples": 64, "trace_settings": {"max_hvps": 24, "rtol": 0.05},
                    "density_settings": {"runs": 1, "steps": 16}},
    description="top Hessian eigenvalues (Lanczos), trace (Hutch++) and spectral density (SLQ)",
))
