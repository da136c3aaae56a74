"""Compute matching: a run that takes as many gradient evaluations as another, finished run.

A gradient evaluation is one forward/backward pass over a mini-batch
(:mod:`landscape.train.loop`; SAM takes 2 per step, CR-SAM 3, Adam 1). The
matched run records the count in its ``final.pt`` (``gradient_evaluations``)
whatever stopped it (``--epochs``, ``--stop-train-loss``); the run matched to
it gets that count as its ``gradient_budget`` and takes ``budget //
passes_per_step`` steps, so the two have done the same number of passes
(to a remainder below one step, which its ``stopping`` record states).
"""

from __future__ import annotations

from pathlib import Path

from landscape.errors import LandscapeError
from landscape.io import safe_torch_load


def matched_budget(run: str | Path) -> dict:
    """``{"gradient_evaluations", "optimizer", "seed", "run"}`` of the finished run folder ``run``.

    Raises :class:`LandscapeError` (naming ``compute_matched``) when ``run`` is
    not a folder, holds no ``final.pt`` (unfinished), or its ``final.pt``
    records no gradient evaluations (trained before they were counted).
    """
    run = Path(run)
    if not run.is_dir():
        raise LandscapeError(f"compute_matched: {run} is not a run folder", params=("compute_matched",))
    final = run / "final.pt"
    if not final.is_file():
        raise LandscapeError(f"compute_matched: {run} holds no final.pt (an unfinished run?): finish it first",
                             params=("compute_matched",))
    payload = safe_torch_load(final)
    count = payload.get("gradient_evaluations")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise LandscapeError(f"compute_matched: {final} records no gradient_evaluations (trained before they were "
                             "counted): retrain it with --overwrite", params=("compute_matched",))
    return {"gradient_evaluations": count, "optimizer": str(payload["optimizer"]["name"]),
            "seed": int(payload["seed"]), "run": str(run)}
