"""m-sharpness of a checkpoint, cached as a ``sharpness`` record in its run's ``analysis/``.

Two registered analyses write these records: ``sharpness`` (standard worst-case m-sharpness, ``c = 1``,
l2 ball, :data:`DEFAULT_RHOS`) and ``sharpness_adaptive`` (adaptive worst-case m-sharpness, ``c = |w|``
elementwise, l_inf ball, :data:`ADAPTIVE_RHOS`; Kwon et al. 2021, Andriushchenko et al. 2023). Only the
adaptive one is invariant to function-preserving rescaling of the weights; every record says which it is
in ``result["parameterisation"]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from landscape import logs
from landscape.analysis.cache import as_checkpoint, cached, model_provenance
from landscape.analysis.memory import check_analysis_memory
from landscape.analysis.registry import AnalysisSpec, register_analysis
from landscape.checkpoint import Checkpoint
from landscape.checkpoint.cache import register_schema
from landscape.checks import check_positive_int, check_seed
from landscape.cost import CostPlan, announce, time_pass
from landscape.errors import LandscapeError
from landscape.sharpness.average import DEFAULT_DRAWS, average_case_sharpness
from landscape.sharpness.balls import check_norm, check_rhos
from landscape.sharpness.batches import sub_batches
from landscape.sharpness.worst import DEFAULT_STEPS, worst_case_sharpness

KINDS = ("worst", "average")
DEFAULT_RHOS = (0.01, 0.02, 0.05, 0.1)
#: Radii of the adaptive analysis: relative sizes, under l_inf each weight moves by at most rho |w_i|
#: (Andriushchenko et al. use 0.001-0.008 for a CIFAR-10 ResNet-18; a 6-epoch cnn-small on BUSI at 32 px
#: rose by 0.06 nats at 0.001 and 1.0 nat at 0.01).
ADAPTIVE_RHOS = (0.002, 0.005, 0.01)
ADAPTIVE_NORM = "linf"
#: What ``result["parameterisation"]`` says of a standard (raw weights) and an adaptive record.
RAW = "raw weights; not invariant to BatchNorm rescaling"
ADAPTIVE = "elementwise |w| scaling; invariant to function-preserving elementwise rescaling (BatchNorm, ReLU layers)"


def analyze(
    ck: Checkpoint | str | Path,
    rhos: Sequence[float] = DEFAULT_RHOS,
    m: int = 128,
    kind: str = "worst",
    norm: str | None = None,
    adaptive: bool = False,
    samples: int = 1024,
    steps: int = DEFAULT_STEPS,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
    batch_size: int | None = None,
    device: str | None = None,
    data_root: str | Path | None = None,
    progress: bool = True,
    budget_memory: float | None = None,
) -> dict:
    """Worst- or average-case m-sharpness of a checkpoint on its training split.

    ``ck`` is a loaded :class:`~landscape.checkpoint.Checkpoint` or a path
    (``.pt`` or run folder; then ``device`` and ``data_root`` are used to load
    it). ``samples`` training images (a subset seeded by ``seed``) are cut into
    sub-batches of ``m``; ``norm`` (``"l2"`` by default, or ``"linf"``) and
    ``steps`` apply to ``kind="worst"``, ``draws`` (antithetic pairs) to
    ``kind="average"``. ``batch_size`` caps images per forward pass.

    Returns the cache record ``{"kind", "settings", "result", "provenance"}``
    plus ``"path"`` (the record's JSON file); a stored record with the same
    settings (which include the checkpoint's name and file hash) is returned
    without recomputing.
    """
    check_seed(seed)
    if kind not in KINDS:
        raise LandscapeError(f"kind must be worst or average, got {kind!r}")
    if kind == "average" and norm is not None:
        raise LandscapeError("norm applies to kind worst only (average-case sharpness uses a Gaussian)",
                             params=("norm", "kind"))
    norm = check_norm(norm or "l2") if kind == "worst" else None
    rhos = check_rhos(rhos)
    check_positive_int(draws if kind == "average" else steps, "draws" if kind == "average" else "steps")
    if isinstance(m, bool) or not isinstance(m, int) or m < 1:
        raise LandscapeError(f"m (sub-batch size) must be a positive integer, got {m!r}")
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < m:
        raise LandscapeError(f"samples must be an integer >= m={m}, got {samples!r}")
    ck = as_checkpoint(ck, device, data_root)
    # the weights, the perturbation, its gradient and the ascent's momentum beside the model (before any work)
    check_analysis_memory(ck.model, 4, f"the m-sharpness of {ck.run_dir.name}", budget_memory)
    settings = {
        "split": "train",
        "kind": kind,
        "norm": norm,
        "adaptive": bool(adaptive),
        "m": m,
        "rhos": rhos,
        "samples": samples,
        "seed": seed,
        **({"steps": steps} if kind == "worst" else {"draws": draws}),
    }

    def compute(full: dict) -> tuple[dict, dict]:
        with logs.run_context(ck.run_dir.name):
            x, y = ck.tensors("train")
            batches = sub_batches(x, y, m=m, samples=samples, seed=seed)
            plan = sharpness_plan(ck.model, ck.loss_fn, batches, kind, len(rhos), steps, draws)
            announce(plan.line(), progress)
            common = {"adaptive": adaptive, "seed": seed, "batch_size": batch_size, "progress": progress}
            if kind == "worst":
                res = worst_case_sharpness(ck.model, ck.loss_fn, batches, rhos, norm=norm, steps=steps, **common)
            else:
                res = average_case_sharpness(ck.model, ck.loss_fn, batches, rhos, draws=draws, **common)
            return ({**res.to_dict(), "plan": plan.to_dict(), "parameterisation": ADAPTIVE if adaptive else RAW},
                    {"split": "train", "bn_mode": "eval", **model_provenance(ck.model)})

    return cached(ck, "sharpness", settings, compute)


def analyze_adaptive(
    ck: Checkpoint | str | Path,
    rhos: Sequence[float] = ADAPTIVE_RHOS,
    m: int = 128,
    norm: str = ADAPTIVE_NORM,
    samples: int = 1024,
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
    batch_size: int | None = None,
    device: str | None = None,
    data_root: str | Path | None = None,
    progress: bool = True,
    budget_memory: float | None = None,
) -> dict:
    """Adaptive worst-case m-sharpness of a checkpoint: :func:`analyze` with ``kind="worst"``, ``adaptive=True``.

    ``max_{||delta / |w| ||_p <= rho} L_B(w + delta) - L_B(w)`` averaged over sub-batches, every trainable
    parameter perturbed (BatchNorm affine parameters and biases included; exact zeros stay put), BatchNorm
    in eval mode: the quantity of Andriushchenko et al.'s code (``eval_APGD_sharpness`` with ``adaptive``,
    ``m = 128``, 1024 images, 20 steps), l_inf by default as in their README and m ablation. The inner maximum
    is found by :func:`landscape.sharpness.worst_case_sharpness`'s ascent in ``u = delta / |w|``, not their
    Auto-PGD schedule, and without their optional logit normalisation. Cost:
    ``n_batches x (1 + len(rhos) x (steps + 1))`` gradient passes of ``m`` images at most. Returns (and
    caches) the same ``sharpness`` record as ``landscape sharpness --adaptive --norm linf``.
    """
    return analyze(ck, rhos=rhos, m=m, kind="worst", norm=norm, adaptive=True, samples=samples, steps=steps,
                   seed=seed, batch_size=batch_size, device=device, data_root=data_root, progress=progress,
                   budget_memory=budget_memory)


def sharpness_plan(model, loss_fn, batches, kind: str, n_rhos: int, steps: int, draws: int,
                   measure: bool = True) -> CostPlan:
    """Worst case: ``batches x (1 + rhos x (steps + 1))`` gradient passes of ``m`` images, at most (the ascent
    seldom stops early, so that is also the expectation); average case: ``batches x (1 + 2 draws rhos)`` forward passes.
    """
    n = len(batches)
    if kind == "worst":
        plan = CostPlan("sharpness", "gradient pass", {"sharpness": n * (1 + n_rhos * (steps + 1))})
    else:
        plan = CostPlan("sharpness", "forward pass", {"sharpness": n * (1 + 2 * draws * n_rhos)})
    plan.cap = plan.planned
    if measure:
        plan.unit_seconds = time_pass(model, loss_fn, batches[:1], backward=kind == "worst")
        plan.eta_seconds = plan.planned * plan.unit_seconds
    return plan


def cost(ck, kw: dict, measure: bool) -> CostPlan:
    """Gradient (worst case) or forward (average case) passes of a run with settings ``kw`` on ``ck``."""
    batches = sub_batches(*ck.tensors("train"), m=kw["m"], samples=kw["samples"], seed=kw["seed"])
    return sharpness_plan(ck.model, ck.loss_fn, batches, kw["kind"], len(kw["rhos"]), kw["steps"], kw["draws"],
                          measure=measure)


def cost_adaptive(ck, kw: dict, measure: bool) -> CostPlan:
    """Gradient passes of an adaptive run with settings ``kw`` on ``ck`` (worst case)."""
    return cost(ck, {**kw, "kind": "worst", "draws": DEFAULT_DRAWS}, measure)


def adapt(ck, kw: dict) -> dict:
    """The sub-batch size ``m`` capped at the training images of ``ck``, so small data sets still work."""
    return {**kw, "m": max(1, min(int(kw["m"]), len(ck.tensors("train")[1])))}


#: What every stored ``sharpness`` result must hold.
SCHEMA = {"kind": str, "norm": (str, None), "adaptive": bool, "m": int, "rhos": [float], "mean": [(float, None)],
          "std": [(float, None)], "n_batches": int}
register_schema("sharpness", SCHEMA)

register_analysis(AnalysisSpec(
    "sharpness", "sharpness", analyze, cost=cost, adapt=adapt, columns=("sharpness_worst", "sharpness_average"),
    provides={"m_sharpness": lambda r: bool(r["result"].get("rhos")) and not r["result"].get("adaptive")},
    report_defaults={"samples": 256, "steps": 10},  # 2 sub-batches of 128, 10 steps: one run fits 10 min on 2 cores
    quick_defaults={"rhos": (0.02, 0.05, 0.1), "m": 32, "samples": 64, "steps": 4},
    description="worst-case m-sharpness over a rho grid",
))

register_analysis(AnalysisSpec(
    "sharpness_adaptive", "sharpness", analyze_adaptive, cost=cost_adaptive, adapt=adapt, stage="sharpness",
    columns=("sharpness_adaptive_worst",),
    provides={"m_sharpness_adaptive": lambda r: bool(r["result"].get("rhos")) and bool(r["result"].get("adaptive"))},
    # 2 sub-batches of 128, 3 radii, 5 steps: 2 x (1 + 3 x 6) = 38 gradient passes (the standard one: 90); on a
    # BUSI cnn-small the l_inf ascent's value at 5 steps equalled that at 20 to 4 digits (2 steps: within 0.05%)
    report_defaults={"samples": 256, "steps": 5},
    # 2 sub-batches of 32, 2 radii, 4 steps: 2 x (1 + 2 x 5) = 22 gradient passes of 32 images
    quick_defaults={"rhos": (0.005, 0.01), "m": 32, "samples": 64, "steps": 4},
    description="adaptive worst-case m-sharpness (|w|-scaled l_inf ball; invariant to rescaling)",
))
