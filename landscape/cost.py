"""Cost plans (:class:`CostPlan`): the units of work an analysis expects (HVPs, gradient or forward passes), an ETA.

Every analysis states its plan before it computes: the units it expects to
use (``planned``), the most it may use (``cap``) and, once one product has
been timed, an ETA ``= seconds so far + units left x seconds per unit``.
The ETA uses the *last* timed unit: the first one of a Hessian analysis also
builds the retained first-order graphs and is slower than the rest.
Plans print one line to stderr (when ``progress`` is on) and are stored in
each result under ``"plan"`` so the ETA can be checked against the time
measured.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

from rich.console import Console


def duration(seconds: float | None) -> str:
    """``seconds`` as ``"42 s"``, ``"6.5 min"`` or ``"2.1 h"`` (``"?"`` when unknown)."""
    if seconds is None:
        return "?"
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def plural(unit: str, n: int) -> str:
    """``"1 HVP"``, ``"2 HVPs"``, ``"2 forward passes"``."""
    return f"{n} {unit}" if n == 1 else f"{n} {unit}{'es' if unit.endswith('s') else 's'}"


@dataclass
class CostPlan:
    """Expected units per output (``parts``), their ``unit``, an optional ``cap`` and the measured unit time."""

    analysis: str
    unit: str
    parts: dict[str, int]
    cap: int | None = None
    unit_seconds: float | None = None
    eta_seconds: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def planned(self) -> int:
        return int(sum(self.parts.values()))

    def line(self) -> str:
        """One line: the parts, the total, the cap and (when measured) the ETA."""
        parts = " + ".join(f"{k} ~{v}" for k, v in self.parts.items()) if len(self.parts) > 1 else ""
        total = "~" + plural(self.unit, self.planned)
        text = f"{self.analysis} plan: {parts + ' = ' if parts else ''}{total}"
        if self.cap is not None:
            text += f" (cap {self.cap})"
        if self.unit_seconds is not None:
            text += f", {self.unit_seconds:.3g} s each: ETA {duration(self.eta_seconds)}"
        return text + "".join(f"; {n}" for n in self.notes)

    def to_dict(self) -> dict:
        return {**asdict(self), "planned": self.planned}


def announce(text: str, enabled: bool = True) -> None:
    """Log ``text`` prefixed with its run (:func:`landscape.logs.info`) when ``enabled``.

    Without a configured ``landscape`` logger (library use) it goes to stderr as before.
    """
    from landscape import logs

    if not enabled or logs.quiet():
        return
    if logs.configured():
        logs.info(text)
    else:
        Console(stderr=True).print(logs.named(text), markup=False, soft_wrap=True)


class Meter:
    """Times units as they complete; after ``after`` units it sets the plan's ETA and announces it.

    Call :meth:`tick` after every unit (e.g. as an operator callback).
    """

    def __init__(self, plan: CostPlan, after: int = 2, enabled: bool = True):
        self.plan, self.after, self.enabled = plan, max(1, int(after)), enabled
        self.start = self._last = time.perf_counter()
        self.done = 0

    def tick(self, n: int = 1) -> None:
        now = time.perf_counter()
        self.done += n
        if self.plan.unit_seconds is None and self.done >= min(self.after, max(self.plan.planned, 1)):
            self.plan.unit_seconds = (now - self._last) / n
            left = max(self.plan.planned - self.done, 0)
            self.plan.eta_seconds = (now - self.start) + left * self.plan.unit_seconds
            announce(self.plan.line(), self.enabled)
        self._last = now


def timed(fn, *args, **kwargs) -> tuple[object, float]:
    """``(fn(*args, **kwargs), seconds)``."""
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def time_pass(model, loss_fn, batches, backward: bool) -> float:
    """Seconds of one pass (forward, plus backward to the parameters if ``backward``) over ``batches``.

    Eval mode, ``.grad`` untouched; the batches go to the model's device
    first (not timed); timed twice, the second time counts (the first warms
    up the allocator).
    """
    import torch

    from landscape.tensors import eval_mode

    params = [p for p in model.parameters() if p.requires_grad]
    device = next(model.parameters()).device
    batches = [(x.to(device), y.to(device)) for x, y in batches]
    seconds = 0.0
    with eval_mode(model):
        for _ in range(2):
            start = time.perf_counter()
            for x, y in batches:
                with torch.set_grad_enabled(backward):
                    loss = loss_fn(model(x), y)
                    if backward:
                        torch.autograd.grad(loss, params, allow_unused=True)
            seconds = time.perf_counter() - start
    return seconds
