"""Cutting a fixed, seeded subset of a split into sub-batches of size m."""

from __future__ import annotations

import torch

from landscape.errors import LandscapeError

Batch = tuple[torch.Tensor, torch.Tensor]


def sub_batches(x: torch.Tensor, y: torch.Tensor, m: int, samples: int | None = 1024, seed: int = 0) -> list[Batch]:
    """Split a seeded random subset of ``(x, y)`` into sub-batches of exactly ``m``.

    The subset is the first ``min(samples, N)`` entries of a permutation drawn
    from ``torch.Generator().manual_seed(seed)`` (``samples=None`` takes all N);
    it is cut in order into ``floor(subset / m)`` sub-batches and the remainder
    is dropped, so every sub-batch has exactly ``m`` samples. Tensors stay on
    their device (CPU for ``Checkpoint.tensors``).
    """
    if isinstance(m, bool) or not isinstance(m, int) or m < 1:
        raise LandscapeError(f"m (sub-batch size) must be a positive integer, got {m!r}")
    if samples is not None and (isinstance(samples, bool) or not isinstance(samples, int) or samples < 1):
        raise LandscapeError(f"samples must be a positive integer, got {samples!r}")
    if len(x) != len(y):
        raise LandscapeError(f"x and y differ in length ({len(x)} vs {len(y)})")
    n = len(x) if samples is None else min(samples, len(x))
    if n < m:
        raise LandscapeError(f"m={m} is larger than the {n} samples available; use a smaller m", params=("m",))
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[: n - n % m]
    return [(x[idx], y[idx]) for idx in order.to(x.device).split(m)]


def batch_size_of(batches: list[Batch]) -> int:
    """The common size m of the sub-batches; LandscapeError if none or unequal."""
    if not batches:
        raise LandscapeError("no sub-batches given")
    sizes = {len(b[0]) for b in batches}
    if len(sizes) != 1:
        raise LandscapeError(f"sub-batches must all have the same size m, got sizes {sorted(sizes)}")
    return sizes.pop()
