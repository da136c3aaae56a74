"""The result of a sharpness computation over a grid of radii."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class SharpnessResult:
    """Sharpness per radius, aggregated over sub-batches.

    * ``rhos``: the radius grid, length R.
    * ``per_batch``: float64 array [n_batches x R]; entry (b, r) is sub-batch
      b's sharpness at ``rhos[r]`` (loss units: the loss function's own).
    * ``mean``, ``std``: over sub-batches per radius (``std`` with ddof=1;
      NaN for a single sub-batch).
    * ``base_loss``: ``L_B(w)`` per sub-batch, length n_batches.
    * ``mc_stderr``: average-case only, the Monte-Carlo standard error of
      ``mean`` per radius (sub-batch errors combined); ``None`` for worst-case.
    * ``passes``: forward passes (worst-case: forward+backward) over one
      sub-batch, the unit of cost; ``seconds``: wall time.
    * ``settings``: ``kind``, ``norm``, ``adaptive``, ``m``, ``n_batches``,
      ``n_samples``, ``steps`` or ``draws``, ``seed``.
    """

    rhos: list[float]
    per_batch: np.ndarray
    base_loss: list[float]
    settings: dict
    passes: int
    seconds: float
    mc_stderr: list[float] | None = None
    mean: list[float] = field(init=False)
    std: list[float] = field(init=False)

    def __post_init__(self) -> None:
        values = np.asarray(self.per_batch, dtype=np.float64)
        self.per_batch = values
        self.mean = values.mean(axis=0).tolist()
        if len(values) > 1:
            self.std = values.std(axis=0, ddof=1).tolist()
        else:
            self.std = [float("nan")] * values.shape[1]

    def to_dict(self) -> dict:
        """Plain data: the ``sharpness`` result record of docs/records.md plus details."""
        s = self.settings
        return {
            "kind": s["kind"],
            "norm": s["norm"],
            "adaptive": s["adaptive"],
            "m": s["m"],
            "rhos": list(self.rhos),
            "mean": self.mean,
            "std": self.std,
            "n_batches": s["n_batches"],
            "steps": s.get("steps"),
            "draws": s.get("draws"),
            "n_samples": s["n_samples"],
            "seed": s["seed"],
            "mc_stderr": self.mc_stderr,
            "per_batch": self.per_batch.tolist(),
            "base_loss": list(self.base_loss),
            "passes": self.passes,
            "seconds": self.seconds,
        }


def summed_over_ranks(values: np.ndarray, base_losses: np.ndarray, passes: int) -> tuple[np.ndarray, list[float], int]:
    """Sub-batch values, base losses and passes summed over ``torchrun`` ranks (each filled only its own
    sub-batches, zeros elsewhere); unchanged in one process.
    """
    from landscape import distributed

    return (distributed.sum_array(values), distributed.sum_array(base_losses).tolist(),
            int(distributed.sum_array(np.array([passes]))[0]))


def run_settings(kind: str, norm: str | None, adaptive: bool, m: int, n_batches: int, seed: int, **extra) -> dict:
    """The settings a :class:`SharpnessResult` records: estimator, sub-batches, seed and ``steps``/``draws``."""
    return {"kind": kind, "norm": norm, "adaptive": bool(adaptive), "m": m, "n_batches": n_batches,
            "n_samples": m * n_batches, **extra, "seed": seed}
