"""Checkpoint-level Hessian analysis, cached in the run folder's ``analysis/``."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

from landscape.analysis.cache import as_checkpoint, cached
from landscape.analysis.registry import AnalysisSpec, register_analysis
from landscape.checkpoint.load import SPLITS
from landscape.checks import check_seed
from landscape.errors import LandscapeError
from landscape.hessian.blocks import per_block
from landscape.hessian.density import spectral_density
from landscape.hessian.hutchpp import trace as estimate_trace
from landscape.hessian.krylov import Krylov, generator
from landscape.hessian.lanczos import (
    LANCZOS_STREAM,
    ConvergenceWarning,
    check_positive_int,
    default_eigen_budget,
    top_eigenvalues,
)
from landscape.hessian.operator import HessianOperator
from landscape.io import check_writable, write_json
from landscape.progress import progress_bar

# Engine settings recorded with every result (they change the numbers).
TRACE = {"method": "hutch++", "rtol": 0.01, "max_hvps": 200}
DENSITY = {"runs": 4, "steps": 40}
BLOCKS = {"rtol": 0.05, "max_hvps": 100}


def _check(top_k, split, samples, batch_size, tol, seed) -> None:
    check_seed(seed)
    check_positive_int(top_k, "top_k")
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
            density_settings: dict | None = None) -> dict:
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
    quick studies).
    """
    _check(top_k, split, samples, batch_size, tol, seed)
    check_writable(json_path, plot_path)
    density = bool(density or plot_path is not None)
    ck = as_checkpoint(ck, device, data_root)
    settings = {"top_k": int(top_k), "trace": bool(trace), "density": density, "per_layer": bool(per_layer),
                "split": split, "samples": samples, "batch_size": int(batch_size), "tol": float(tol),
                "seed": int(seed), "which": "largest", "max_hvps": default_eigen_budget(top_k),
                "trace_settings": {**TRACE, **(trace_settings or {})} if trace else None,
                "density_settings": {**DENSITY, **(density_settings or {})} if density else None,
                "block_settings": BLOCKS if per_layer else None}

    def compute(full: dict) -> tuple[dict, dict]:
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


def _compute(ck, s: dict, progress: bool) -> dict:
    start = time.perf_counter()
    loader = ck.loader(s["split"], batch_size=s["batch_size"], samples=s["samples"], seed=s["seed"])
    op = HessianOperator(ck.model, ck.loss_fn, loader)
    tr, dens = s["trace_settings"], s["density_settings"]
    total = s["max_hvps"] + (tr["max_hvps"] if s["trace"] else 0)
    total += dens["runs"] * dens["steps"] if s["density"] else 0
    out: dict = {"top_k": None, "trace": None, "density": None, "per_layer": None}
    with warnings.catch_warnings(record=True) as caught, progress_bar("Hessian", total, progress) as bar:
        warnings.simplefilter("always", ConvergenceWarning)
        op.callback = bar.advance
        krylov = Krylov(op, generator(s["seed"], LANCZOS_STREAM))
        bar.update(description=f"Hessian top-{s['top_k']}")
        eig = top_eigenvalues(op, k=s["top_k"], tol=s["tol"], max_hvps=s["max_hvps"], seed=s["seed"], krylov=krylov)
        out["top_k"] = eig.to_dict()
        if s["trace"]:
            bar.update(description="Hessian trace")
            out["trace"] = estimate_trace(op, method=tr["method"], rtol=tr["rtol"], max_hvps=tr["max_hvps"],
                                          seed=s["seed"], krylov=krylov).to_dict()
        del krylov
        if s["density"]:
            bar.update(description="Hessian density")
            out["density"] = spectral_density(op, runs=dens["runs"], steps=dens["steps"], seed=s["seed"]).to_dict()
        op.release()
        if s["per_layer"]:
            bar.update(description="Hessian per layer")
            blocks = per_block(ck.model, ck.loss_fn, op.batches, tol=s["tol"], rtol=BLOCKS["rtol"],
                               max_hvps=BLOCKS["max_hvps"], seed=s["seed"], progress=bar.advance,
                               num_samples=op.num_samples)
            out["per_layer"] = [b.to_dict() for b in blocks]
    block_hvps = sum(b["hvps"] for b in out["per_layer"] or [])
    out.update({
        "bn_mode": "eval", "n_samples": op.num_samples, "split": s["split"], "num_params": op.size,
        "hvps": op.hvps + block_hvps, "hvp_seconds": op.seconds / max(op.hvps, 1), "device": str(op.device),
        "dtype": str(op.dtype).replace("torch.", ""), "seconds": time.perf_counter() - start,
        "warnings": [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)],
    })
    return out


register_analysis(AnalysisSpec(
    "hessian", "hessian", analyze,
    provides={
        "lambda_max": lambda r: bool((r["result"].get("top_k") or {}).get("eigenvalues")),
        "trace": lambda r: r["result"].get("trace") is not None,
        "density": lambda r: r["result"].get("density") is not None,
    },
    report_defaults={"density": True},
    quick_defaults={"top_k": 1, "samples": 64, "trace_settings": {"max_hvps": 24, "rtol": 0.05},
                    "density_settings": {"runs": 1, "steps": 16}},
    description="top Hessian eigenvalues (Lanczos), trace (Hutch++) and spectral density (SLQ)",
))
