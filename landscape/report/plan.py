"""The plan of a report's missing analyses: runs x analyses x units x ETA, computed before (or instead of) them.

Nothing is analysed: each run's checkpoint is loaded, its analyses' inputs
are cut as the analyzers would cut them, and one product is timed per
architecture (model, image size, data source; runs sharing one share the
times).  Units: HVPs for the Hessian (timed as ``HVP_PER_GRADIENT`` gradient
passes over its images, the ratio the retained-graph HVP was measured at),
gradient (or forward) passes for sharpness, forward passes over the
evaluation set for surfaces.
"""

from __future__ import annotations

import inspect

from rich.console import Console
from rich.table import Table

from landscape.checkpoint import load_checkpoint
from landscape.errors import LandscapeError
from landscape.plan import (
    Plan,
    duration,
    plural,
    sharpness_plan,
    surface_plan,
    time_pass,
)

#: HVP time over gradient time on the same images (retained graph, first products included).
HVP_PER_GRADIENT = 2.5


def analysis_kwargs(analyze, name: str, seed: int, needs: dict, overrides: dict | None) -> dict:
    """The keyword arguments analyzer ``analyze`` runs with: its defaults, the report's needs, the overrides."""
    defaults = {k: p.default for k, p in inspect.signature(analyze).parameters.items()
                if p.default is not inspect.Parameter.empty}
    return {**defaults, "seed": seed, **needs, **(overrides or {})}


def plan_run(ck, todo: list[str], kwargs: dict[str, dict], times: dict, m: int | None = None) -> list[Plan]:
    """Plans of the analyses ``todo`` (keys of the report's ANALYSES) for loaded checkpoint ``ck``.

    ``times`` caches unit seconds per (architecture, analysis) across runs;
    ``m`` is the report's ``--m`` (m-sharpness adapts to the data as the report does when it is None).
    """
    arch = (repr(ck.meta.get("model")), ck.data_name, ck.meta["data"].get("img_size"), ck.split_hash)
    plans = []
    for name in todo:
        kw = kwargs[name]
        key = (arch, name)
        measure = key not in times
        if name == "hessian":
            plan = _hessian_plan(ck, kw, measure)
        elif name == "sharpness":
            from landscape.report.overrides import sharpness_m
            from landscape.sharpness.batches import sub_batches

            x, y = ck.tensors("train")
            batches = sub_batches(x, y, m=sharpness_m(kw, m, len(y)), samples=kw["samples"], seed=kw["seed"])
            plan = sharpness_plan(ck.model, ck.loss_fn, batches, kw["kind"], len(kw["rhos"]), kw["steps"],
                                  kw["draws"], measure=measure)
        elif name == "measures":
            plan = _measures_plan(ck, kw, measure)
        else:
            from landscape.surface.evaluate import forward_seconds, prepare_batches
            from landscape.surface.grid import parse_grid

            data = prepare_batches(ck.loader(kw["split"], batch_size=kw["batch_size"], samples=kw["samples"],
                                             seed=kw["seed"]), ck.model, kw["batch_size"])
            points = 1
            for n in parse_grid(kw["grid"], kw["dim"]):
                points *= n
            plan = surface_plan(points, forward_seconds(ck.model, ck.loss_fn, data, kw["fast"]) if measure else None)
        plan.analysis = name
        if measure:
            times[key] = plan.unit_seconds
        plan.unit_seconds = times[key]
        plan.eta_seconds = plan.planned * plan.unit_seconds
        plans.append(plan)
    return plans


def _hessian_plan(ck, kw: dict, measure: bool) -> Plan:
    from landscape.analysis.hessian import DENSITY, TRACE
    from landscape.hessian.budget import expected_parts

    size = sum(p.numel() for p in ck.model.parameters() if p.requires_grad)
    tr = {**TRACE, **(kw.get("trace_settings") or {})} if kw["trace"] else None
    dens = {**DENSITY, **(kw.get("density_settings") or {})} if kw["density"] else None
    parts = expected_parts(size, kw["top_k"], tr, dens)
    plan = Plan("hessian", "HVP", parts, cap=kw.get("budget_hvps"))
    if measure:
        data = list(ck.loader(kw["split"], batch_size=kw["batch_size"], samples=kw["samples"], seed=kw["seed"]))
        device = next(ck.model.parameters()).device
        data = [(x.to(device), y.to(device)) for x, y in data]
        plan.unit_seconds = HVP_PER_GRADIENT * time_pass(ck.model, ck.loss_fn, data, backward=True)
    return plan


def _measures_plan(ck, kw: dict, measure: bool) -> Plan:
    """Forward passes over ``samples`` training images: the two PAC-Bayes sigma searches (bracketing plus
    ``depth`` bisection steps, ``draws`` each), the exact GGN trace (``C`` per-sample gradients of
    ``ggn_samples`` images, ~3 forward passes each) and ~3 for the output measures and norms.
    """
    import math

    x, y = ck.tensors("train")
    n = min(int(kw["samples"]), len(y))
    classes = len(ck.classes)
    parts = {"pacbayes": 2 * (int(kw["depth"]) + 5) * int(kw["draws"]),
             "ggn": math.ceil(3 * classes * min(int(kw["ggn_samples"]), len(y)) / max(n, 1)), "outputs": 3}
    plan = Plan("measures", "forward pass", parts)
    if measure:
        device = next(ck.model.parameters()).device
        plan.unit_seconds = time_pass(ck.model, ck.loss_fn, [(x[:n].to(device), y[:n].to(device))], backward=False)
    return plan


def build_plan(todo: list[tuple], kwargs_for, m: int | None = None) -> list[dict]:
    """Rows ``{"run", "analysis", "unit", "planned", "unit_seconds", "eta_seconds", "problem"}`` for ``todo``
    (``(run, analysis names)`` pairs); ``kwargs_for(name)`` gives an analysis's keyword arguments, ``m``
    the report's ``--m``. An analysis that would fail (e.g. ``m`` larger than its images) is a row whose
    ``problem`` is the error's message (else None), so a dry run lists every problem instead of stopping.
    """
    rows, times = [], {}
    for run, names in todo:
        if not names:
            continue
        try:
            ck = load_checkpoint(run.path)
        except LandscapeError as exc:
            rows.append(_problem(run.name, "(checkpoint)", exc))
            continue
        for name in names:
            try:
                plans = plan_run(ck, [name], {name: kwargs_for(name)}, times, m)
            except LandscapeError as exc:
                rows.append(_problem(run.name, name, exc))
                continue
            rows.extend({"run": run.name, "analysis": p.analysis, "unit": p.unit, "planned": p.planned,
                         "unit_seconds": p.unit_seconds, "eta_seconds": p.eta_seconds, "problem": None}
                        for p in plans)
    return rows


def _problem(run: str, analysis: str, exc: LandscapeError) -> dict:
    return {"run": run, "analysis": analysis, "unit": "", "planned": 0, "unit_seconds": 0.0, "eta_seconds": 0.0,
            "problem": str(exc)}


def print_plan(rows: list[dict]) -> None:
    """The plan as a table on stderr, with the total ETA."""
    console = Console(stderr=True)
    total = sum(r["eta_seconds"] for r in rows)
    runs = len({r["run"] for r in rows})
    table = Table(title=f"report plan: {runs} runs x {len(rows)} missing analyses, ETA {duration(total)}")
    for col in ("run", "analysis", "planned units", "s / unit", "ETA"):
        table.add_column(col)
    for r in rows:
        if r.get("problem"):
            table.add_row(r["run"], r["analysis"], "problem (below)", "-", "-")
        else:
            table.add_row(r["run"], r["analysis"], plural(r["unit"], r["planned"]), f"{r['unit_seconds']:.3g}",
                          duration(r["eta_seconds"]))
    console.print(table)
    for r in rows:
        if r.get("problem"):
            console.print(f"problem: {r['run']} {r['analysis']}: {r['problem']}", markup=False, soft_wrap=True)
