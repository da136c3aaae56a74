"""The plan of a report's missing analyses: runs x analyses x units x ETA, computed before (or instead of) them.

Nothing is analysed: each run's checkpoint is loaded and every missing
analysis states its cost with its spec's ``cost`` (the units it will use on
that run, one unit timed per architecture: model, image size, data source;
runs sharing one share the times). An analysis without ``cost`` is planned as
one run of unknown duration.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from landscape.analysis import get_analysis
from landscape.checkpoint import load_checkpoint
from landscape.cost import CostPlan, duration, plural


def plan_run(ck, todo: list[str], kwargs: dict[str, dict], times: dict) -> list[CostPlan]:
    """Plans of the registered analyses ``todo`` for loaded checkpoint ``ck``, each run with ``kwargs[name]``.

    ``times`` caches unit seconds per (architecture, analysis) across runs.
    """
    arch = (repr(ck.meta.get("model")), ck.data_name, ck.meta["data"].get("img_size"), ck.split_hash)
    plans = []
    for name in todo:
        key = (arch, name)
        measure = key not in times
        cost = get_analysis(name).cost
        plan = CostPlan(name, "run", {name: 1}) if cost is None else cost(ck, kwargs[name], measure)
        plan.analysis = name
        if measure:
            times[key] = plan.unit_seconds
        plan.unit_seconds = times[key]
        plan.eta_seconds = None if plan.unit_seconds is None else plan.planned * plan.unit_seconds
        plans.append(plan)
    return plans


def build_plan(todo: list[tuple], kwargs_for) -> list[dict]:
    """Rows ``{"run", "analysis", "unit", "planned", "unit_seconds", "eta_seconds"}`` for ``todo``
    (``(run, analysis names)`` pairs); ``kwargs_for(ck, name)`` gives an analysis's keyword arguments on ``ck``.
    """
    rows, times = [], {}
    for run, names in todo:
        if not names:
            continue
        ck = load_checkpoint(run.path)
        for plan in plan_run(ck, names, {n: kwargs_for(ck, n) for n in names}, times):
            rows.append({"run": run.name, "analysis": plan.analysis, "unit": plan.unit, "planned": plan.planned,
                         "unit_seconds": plan.unit_seconds, "eta_seconds": plan.eta_seconds})
    return rows


def print_plan(rows: list[dict]) -> None:
    """The plan as a table on stderr, with the total ETA (unknown when some analysis has none)."""
    console = Console(stderr=True)
    etas = [r["eta_seconds"] for r in rows]
    total = None if None in etas else sum(etas)
    runs = len({r["run"] for r in rows})
    table = Table(title=f"report plan: {runs} runs x {len(rows)} missing analyses, ETA {duration(total)}")
    for col in ("run", "analysis", "planned units", "s / unit", "ETA"):
        table.add_column(col)
    for r in rows:
        unit = "?" if r["unit_seconds"] is None else f"{r['unit_seconds']:.3g}"
        table.add_row(r["run"], r["analysis"], plural(r["unit"], r["planned"]), unit, duration(r["eta_seconds"]))
    console.print(table)
