"""Peak-memory checks of the analyses, before any work (``--budget-memory``).

Each analysis states how many parameter-sized vectors it holds at once beside
the loaded model (``copies``) plus any other large buffer (``extra`` bytes);
:func:`check_analysis_memory` refuses what exceeds ``budget_memory`` GiB, or
the memory available on the model's device when no budget is given.
"""

from __future__ import annotations

from torch import nn

from landscape.checks import check_memory


def parameter_bytes(model: nn.Module) -> int:
    """Bytes of one parameter-sized vector of ``model`` (its trainable parameters, in their dtype)."""
    return sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)


def check_analysis_memory(model: nn.Module, copies: float, what: str, budget_memory: float | None = None,
                          extra: int = 0, params: tuple[str, ...] = ()) -> int:
    """Bytes ``what`` needs (``copies`` parameter vectors plus ``extra``); LandscapeError when they do not fit."""
    need = int(copies * parameter_bytes(model)) + int(extra)
    device = next(model.parameters()).device
    check_memory(need, what, budget_memory, device, params=params)
    return need
