"""The data of a curvature operator: any iterable of batches, read one batch at a time.

``data`` is any iterable of batches (a ``DataLoader``, a list, ...).  A
``batch_fn(batch) -> (inputs, targets)`` reads other layouts; the default,
:func:`default_batch_fn`, takes 2-tuples / 2-lists and dicts with ``image`` /
``label`` or ``input`` / ``target`` keys.

:class:`Batches` moves one batch at a time to the device.  The leading
batches stay there while they fit a byte budget (so products do not re-read
them); the rest are read from ``data`` again on every pass and freed after
use, so the data set never has to fit the device (nor the host) at once.
Re-read batches must be the same as on the first pass (same order, same
content: no shuffling); a cheap fingerprint of each batch (size, sums of
inputs and targets) is checked on every pass.  Under ``torchrun`` each rank
keeps its slice of every batch (:func:`landscape.distributed.shard`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping

import torch

from landscape import distributed
from landscape.errors import LandscapeError

#: (inputs key, targets key) pairs the default ``batch_fn`` reads from dict batches, in order.
DICT_KEYS: tuple[tuple[str, str], ...] = (("image", "label"), ("input", "target"))

BatchFn = Callable[[object], tuple[torch.Tensor, torch.Tensor]]


def default_batch_fn(batch) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs, targets)`` of a 2-tuple / 2-list, or of a dict with ``image``/``label`` or ``input``/``target``."""
    if isinstance(batch, Mapping):
        for x_key, y_key in DICT_KEYS:
            if x_key in batch and y_key in batch:
                return batch[x_key], batch[y_key]
        keys = ", ".join(sorted(map(str, batch)))
        raise LandscapeError(f"data yields dicts with keys {keys}: the default batch_fn reads image/label or "
                             "input/target; pass batch_fn=lambda b: (inputs, targets)")
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], batch[1]
    raise LandscapeError("data must yield (inputs, targets) batches or dicts with image/label or input/target "
                         "keys; pass batch_fn=lambda b: (inputs, targets) for other layouts")


def _fingerprint(x: torch.Tensor, y: torch.Tensor) -> tuple[int, float, float]:
    """(samples, sum of inputs, sum of targets) in float64: tells a re-read batch from another one."""
    return len(y), float(x.detach().sum(dtype=torch.float64)), float(y.detach().sum(dtype=torch.float64))


def _nbytes(*tensors: torch.Tensor) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


class Batches:
    """``(inputs, targets)`` batches of ``data`` on ``device``, re-iterable, read one at a time.

    Float inputs / targets are cast to ``dtype``.  The leading batches are
    kept on the device while their bytes stay within ``budget``; the others
    are read from ``data`` on each pass (``streamed``).  ``num_samples``:
    samples in all (every rank), ``local_samples``: this rank's;
    ``first``: this rank's first non-empty batch (kept, for checks).
    With ``shard`` each rank keeps its slice of every batch.
    """

    def __init__(self, data: Iterable, device: torch.device, dtype: torch.dtype, batch_fn: BatchFn | None = None,
                 shard: bool = True, budget: int = 0):
        self.data = data
        self.device, self.dtype = device, dtype
        self.batch_fn = default_batch_fn if batch_fn is None else batch_fn
        self.shard = shard
        self.kept: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.kept_bytes = 0
        self.first: tuple[torch.Tensor, torch.Tensor] | None = None
        self._prints: list[tuple[int, float, float]] = []
        self.streamed = False
        self.num_samples = self.local_samples = 0
        for x, y in self._read(check=False):
            self.num_samples += self._total
            self.local_samples += len(y)
            if self.first is None:
                self.first = (x, y)
            size = _nbytes(x, y)
            if not self.streamed and self.kept_bytes + size <= budget:
                self.kept.append((x, y))
                self.kept_bytes += size
            else:
                self.streamed = True
        if self.num_samples == 0:
            raise LandscapeError("data has no samples")
        if self.first is None:
            raise LandscapeError(f"{self.num_samples} samples cannot be spread over {distributed.world_size()} "
                                 "ranks: use more samples or fewer ranks")
        if self.streamed and iter(data) is data:
            raise LandscapeError("data does not fit the device memory budget and is a one-shot iterator: pass a "
                                 "re-iterable (a DataLoader or a list), it is read again on every product")

    def _read(self, check: bool, skip: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This rank's non-empty batches on the device, after ``skip`` of them; ``check`` compares fingerprints.

        No reference to a batch survives into the reading of the next one.
        """
        local, count = 0, 0
        for batch in self.data:
            pair = self._prepare(count, batch, check)
            count += 1
            del batch
            if pair is not None:
                local += 1
                if local > skip:  # kept batches are on the device already: only their fingerprints are read
                    yield tuple(t.to(self.device, self.dtype) if t.is_floating_point() else t.to(self.device)
                                for t in pair)
            del pair
        if check and count != len(self._prints):
            raise LandscapeError("data yielded a different number of batches than on the first pass")

    def _prepare(self, i: int, batch, check: bool) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Batch ``i`` as this rank's ``(inputs, targets)``, where ``data`` has them (None if its part is empty)."""
        x, y = self.batch_fn(batch)
        if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)):
            raise LandscapeError("batch_fn must return (inputs, targets) tensors")
        if len(x) != len(y):
            raise LandscapeError(f"a batch has {len(x)} inputs but {len(y)} targets")
        if check:
            if i >= len(self._prints) or _fingerprint(x, y) != self._prints[i]:
                raise LandscapeError("data yielded different batches than on the first pass: a curvature "
                                     "operator re-reads its data, so it must give the same batches every time "
                                     "(shuffle=False, no random augmentation)")
        else:
            self._prints.append(_fingerprint(x, y))
        self._total = len(y)
        if self.shard:
            part = distributed.shard(len(y))
            x, y = x[part.start:part.stop], y[part.start:part.stop]
        return None if len(y) == 0 else (x, y)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The kept batches, then the others read from ``data`` (one on the device at a time)."""
        yield from self.kept
        if self.streamed:
            yield from self._read(check=True, skip=len(self.kept))
