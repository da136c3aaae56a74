"""Learning-rate schedules as pure functions of the global step."""

from __future__ import annotations

import math


def lr_at(step: int, total_steps: int, lr: float, schedule: str = "cosine", lr_min: float = 0.0) -> float:
    """Learning rate for optimizer step ``step`` (0-based) of ``total_steps``.

    ``cosine``: ``lr_min + (lr - lr_min) * (1 + cos(pi * step / total_steps)) / 2``;
    ``constant``: ``lr``.
    """
    if schedule == "constant" or total_steps <= 0:
        return lr
    t = min(max(step, 0), total_steps) / total_steps
    return lr_min + 0.5 * (lr - lr_min) * (1.0 + math.cos(math.pi * t))
