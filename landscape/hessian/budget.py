"""HVP budgets of a Hessian analysis: what each output is expected to use, and the most it may use.

Expected counts (for the plan and its ETA; measured on a 5-epoch cnn-small,
BUSI 64 px, 512 images): the top-k Lanczos run certifies ``k`` values to
``1e-3`` in about ``4 k + 3`` products (23 for ``k = 5``); the trace adds its
pilot (``PILOT`` probes, then samples up to the first check) and a few
steps of basis growth; the density extends the shared Krylov run to
``steps`` and adds ``runs_needed - 1`` fresh runs.  Caps are hard: with
``budget_hvps`` the outputs share it in order (top-k, trace, density,
per-layer blocks) and none is given more than is left.
"""

from __future__ import annotations

from landscape.hessian.density import runs_needed
from landscape.hessian.hutchpp import PILOT
from landscape.hessian.lanczos import default_eigen_budget

#: Basis growth the trace typically adds after the top-k run (its patience).
TRACE_GROWTH = 3


def expected_parts(size: int, top_k: int, trace: dict | None, density: dict | None) -> dict[str, int]:
    """Expected HVPs per output for an operator of ``size`` parameters (settings as in ``analyze``)."""
    topk = min(default_eigen_budget(top_k), 4 * top_k + 3, size)
    parts = {f"top-{top_k}": topk}
    basis = topk
    if trace is not None:
        parts["trace"] = min(trace["max_hvps"], PILOT + TRACE_GROWTH + 2 * trace.get("min_samples", 10))
        basis += TRACE_GROWTH
    if density is not None:
        runs = density["runs"] or runs_needed(size, max_runs=density["max_runs"])
        parts["density"] = max(0, density["steps"] - basis) + (runs - 1) * density["steps"]
    return parts


def cap_for(wanted: int, budget: int | None, used: int) -> int:
    """``wanted`` products, or what is left of ``budget`` after ``used`` if that is less."""
    return wanted if budget is None else max(0, min(wanted, budget - used))
