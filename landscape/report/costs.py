"""The plan of a report's missing analyses: runs x analyses x units x ETA, computed before (or instead of) them.

Nothing is analysed: each run's checkpoint is loaded and every missing
analysis states its cost with its spec's ``cost`` (the units it will use on
that run, one unit timed per architecture: model, image size, data source;
runs sharing one share the times). An analysis without ``cost`` is planned as
one run of unknown duration. Beside each run stands the compute its training
took (``gradient_evaluations``: forward/backward passes over a mini-batch, as
the checkpoint records it; unknown for checkpoints from before the count).
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from landscape.analysis import get_analysis
from landscape.checkpoint import load_checkpoint
from landscape.cost import CostPlan, duration, plural
from landscape.errors import LandscapeError


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
    """Rows ``{"run", "analysis", "unit", "planned", "unit_seconds", "eta_seconds", "problem",
    "gradient_evaluations"}`` for ``todo`` (``(run, analysis names)`` pairs; ``gradient_evaluations``: the
    run's training compute, None when not recorded); ``kwargs_for(ck, name)`` gives an analysis's keyword
    arguments on ``ck``.
    An analysis that would fail (e.g. ``m`` larger than its images, a damaged checkpoint) is a row whose
    ``problem`` is the error's message (else None), so a dry run lists every problem instead of stopping.
    """
    rows, times = [], {}
    for run, names in todo:
        if not names:
            continue
        evals = run.meta.get("gradient_evaluations")
        try:
            ck = load_checkpoint(run.path)
        except LandscapeError as exc:
            rows.append(_problem(run.name, "(checkpoint)", exc, evals))
            continue
        for name in names:
            try:
                plans = plan_run(ck, [name], {name: kwargs_for(ck, name)}, times)
            except LandscapeError as exc:
                rows.append(_problem(run.name, name, exc, evals))
                continue
            rows.extend({"run": run.name, "analysis": p.analysis, "unit": p.unit, "planned": p.planned,
                         "unit_seconds": p.unit_seconds, "eta_seconds": p.eta_seconds, "problem": None,
                         "gradient_evaluations": evals}
                        for p in plans)
    return rows


def _problem(run: str, analysis: str, exc: LandscapeError, evals: int | None) -> dict:
    return {"run": run, "analysis": analysis, "unit": "", "planned": 0, "unit_seconds": None, "eta_seconds": 0.0,
            "problem": str(exc), "gradient_evaluations": evals}


def print_plan(rows: list[dict]) -> None:
    """The plan as a table on stderr, with the total ETA (unknown when some analysis has none), then one line
    with each run's training compute (gradient evaluations, ``?`` when not recorded).
    """
    console = Console(stderr=True)
    etas = [r["eta_seconds"] for r in rows]
    total = None if None in etas else sum(etas)
    runs = len({r["run"] for r in rows})
    table = Table(title=f"report plan: {runs} runs x {len(rows)} missing analyses, ETA {duration(total)}")
    for col in ("run", "analysis", "planned units", "s / unit", "ETA"):
        table.add_column(col)
    for r in rows:
        if r.get("problem"):
            table.add_row(r["run"], r["analysis"], "problem (below)", "-", "-")
            continue
        unit = "?" if r["unit_seconds"] is None else f"{r['unit_seconds']:.3g}"
        table.add_row(r["run"], r["analysis"], plural(r["unit"], r["planned"]), unit, duration(r["eta_seconds"]))
    console.print(table)
    trained = {r["run"]: r.get("gradient_evaluations") for r in rows}
    if trained:
        console.print("training compute (gradient evaluations; ? = not recorded): "
                      + ", ".join(f"{run} {'?' if n is None else n}" for run, n in trained.items()),
                      markup=False, soft_wrap=True)
    for r in rows:
        if r.get("problem"):
            console.print(f"problem: {r['run']} {r['analysis']}: {r['problem']}", markup=False, soft_wrap=True)
