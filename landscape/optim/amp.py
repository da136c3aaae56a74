"""Mixed precision for the closure optimizers: autocast for every pass, one loss scale over all passes.

``amp="bf16"`` or ``"fp16"`` runs every forward pass of a step (one, two or
three) under ``torch.autocast`` with that dtype; the weights and the update
stay in the parameters' dtype.  With fp16 a :class:`LossScaler` multiplies
each pass's loss before its backward (``opt.backward(loss)``), and each
pass's gradients are unscaled before anything reads them, so SAM's ascent
direction comes from unscaled gradients.  A step in which any pass has an
inf/NaN gradient is skipped whole: the weights go back to the unperturbed
point, no base update happens, and the scale backs off (fp16).

:class:`LossScaler` follows ``torch.amp.GradScaler``'s dynamic rule (start at
``2**16``, halve on an overflow, double after 2000 clean steps) but checks
all passes of a step together, which ``GradScaler`` (one ``unscale_`` per
optimizer and step) cannot.
"""

from __future__ import annotations

import torch

from landscape.errors import LandscapeError

#: ``amp`` values and their autocast dtypes (None: full precision).
AMP_DTYPES: dict[str, torch.dtype] = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_amp(amp: str | None) -> str | None:
    """``amp`` if it is None, "bf16" or "fp16", else LandscapeError."""
    if amp is not None and amp not in AMP_DTYPES:
        raise LandscapeError(f"amp must be bf16 or fp16 (or None), got {amp!r}")
    return amp


class LossScaler:
    """Dynamic loss scale for fp16: ``scale`` (float), halved on overflow, doubled every ``interval`` clean steps."""

    def __init__(self, scale: float = 2.0**16, growth: float = 2.0, backoff: float = 0.5, interval: int = 2000):
        self.scale, self.growth, self.backoff, self.interval = float(scale), growth, backoff, interval
        self.clean_steps = 0

    def update(self, found_inf: bool) -> None:
        """After a step: back off on an overflow, grow after ``interval`` clean steps in a row."""
        if found_inf:
            self.scale *= self.backoff
            self.clean_steps = 0
        else:
            self.clean_steps += 1
            if self.clean_steps == self.interval:
                self.scale *= self.growth
                self.clean_steps = 0

    def state_dict(self) -> dict:
        """Plain data."""
        return {"scale": self.scale, "clean_steps": self.clean_steps}

    def load_state_dict(self, state: dict) -> None:
        self.scale = float(state["scale"])
        self.clean_steps = int(state["clean_steps"])
