"""Plot-ready data per run, shared by the plotly figures and the matplotlib PNGs.

Every function takes the collected runs, their rows (same order) and the
quantity whose record it reads (see :mod:`landscape.report.panel_specs`), and
returns plain dicts with numpy arrays; runs lacking the quantity are skipped.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from landscape.report.collect import Run
from landscape.report.grids import MAX_POINTS, curve_arrays, downsample, shared_range, surface_arrays


def _describe(records: list[dict], keys: Sequence[str]) -> dict:
    """Settings shared by all ``records`` (value) or differing (list of the distinct values)."""
    out = {}
    for key in keys:
        values = list(dict.fromkeys(repr(r["result"].get(key)) for r in records))
        raw = [r["result"].get(key) for r in records]
        out[key] = raw[0] if len(values) == 1 else sorted({str(v) for v in raw})
    return out


def _with_records(runs: Sequence[Run], rows: Sequence[dict], quantity: str) -> list[tuple[dict, dict]]:
    """``(row, record)`` of every run that has a record providing ``quantity``, in order."""
    return [(row, run.found[quantity]) for run, row in zip(runs, rows) if run.found.get(quantity) is not None]


def curves_1d(runs: Sequence[Run], rows: Sequence[dict], quantity: str) -> dict:
    """``{"series": [{label, group, x, loss, accuracy}], "settings": {...}}`` of the 1D surface records."""
    series, used = [], []
    for row, rec in _with_records(runs, rows, quantity):
        x, loss = curve_arrays(rec["result"])
        acc = curve_arrays(rec["result"], "accuracy")[1] if rec["result"].get("accuracy") is not None else None
        series.append({"label": row["label"], "group": row["group"], "x": x, "loss": loss, "accuracy": acc})
        used.append(rec)
    return {"series": series, "settings": _describe(used, ("directions", "split", "bn")) if used else {}}


def planes_2d(runs: Sequence[Run], rows: Sequence[dict], quantity: str, max_points: int = MAX_POINTS) -> dict:
    """Downsampled 2D surfaces ``{label, group, seed, x, y, z [M, N]}`` and their shared colour range."""
    series, used = [], []
    for row, rec in _with_records(runs, rows, quantity):
        x, y, z = downsample(*surface_arrays(rec["result"]), max_points)
        series.append({"label": row["label"], "group": row["group"], "seed": row["seed"], "x": x, "y": y, "z": z,
                       "center_loss": rec["result"].get("center_loss")})
        used.append(rec)
    return {
        "series": series,
        "range": shared_range([s["z"] for s in series]),
        "settings": _describe(used, ("directions", "split", "bn")) if used else {},
    }


def densities(runs: Sequence[Run], rows: Sequence[dict], quantity: str) -> dict:
    """Spectral densities ``{label, group, grid, density, bandwidth}`` of the Hessian records."""
    series = []
    for row, rec in _with_records(runs, rows, quantity):
        d = rec["result"]["density"]
        series.append({"label": row["label"], "group": row["group"], "grid": np.asarray(d["grid"], float),
                       "density": np.asarray(d["density"], float), "bandwidth": d.get("bandwidth")})
    return {"series": series}


def sharpness_curves(runs: Sequence[Run], rows: Sequence[dict], quantity: str) -> dict:
    """m-sharpness against the radius ``{label, group, rhos, mean, std}`` and the shared settings."""
    series, used = [], []
    for row, rec in _with_records(runs, rows, quantity):
        res = rec["result"]
        std = [np.nan if v is None else v for v in (res.get("std") or [None] * len(res["rhos"]))]
        series.append({"label": row["label"], "group": row["group"], "rhos": np.asarray(res["rhos"], float),
                       "mean": np.asarray([np.nan if v is None else v for v in res["mean"]], float),
                       "std": np.asarray(std, float)})
        used.append(rec)
    return {"series": series, "settings": _describe(used, ("kind", "norm", "adaptive", "m")) if used else {}}
