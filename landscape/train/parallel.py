"""Data-parallel training steps over the ranks of a ``torchrun`` job.

Every rank draws the same global batch (same permutation and augmentation as
one process) and keeps its contiguous slice (:func:`landscape.distributed.shard`),
so the effective batch is ``--batch-size`` whatever the world size.

The gradient is synchronised inside the closure, so every forward/backward
pass of an optimizer step (SAM's clean and perturbed passes alike) yields the
gradient of the *global* batch mean: each rank back-propagates its slice's
mean loss times ``n_rank / n_batch`` (exact for uneven slices), then ONE
all-reduce sums the flattened gradients together with the weighted loss.
This is what ``DistributedDataParallel`` does (bucketed gradient all-reduce),
written out so the sample weights are exact and a pass can skip it; the SAM
ascent direction then comes from the all-reduced gradient and needs no
all-reduce of its own, and training matches one process with the same
global batch (to float rounding).

``sam_local`` (``--sam-local``): each replica computes its clean and perturbed
gradients on its own slice (only the loss is all-reduced), i.e. its own
perturbation and update direction, as in the SAM paper's m-sharpness; the
directions are averaged (sample-weighted) by one all-reduce before the base
update.

BatchNorm: without ``sync_bn`` each rank normalises with its slice's
statistics and the running statistics are averaged over the ranks at the end
of every epoch; with ``sync_bn`` BatchNorm layers become ``SyncBatchNorm``
(statistics of the global batch, identical running statistics; CUDA only,
as torch's SyncBatchNorm).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from landscape import distributed
from landscape.errors import LandscapeError


class DataParallel:
    """Sharding and gradient synchronisation of one training run (inactive in one process)."""

    def __init__(self, model: nn.Module, opt, sync_bn: bool, sam_local: bool, batch_size: int):
        self.active = distributed.active()
        self.world = distributed.world_size()
        self.model, self.opt = model, opt
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.sam_local = bool(sam_local and self.active and opt.passes_per_step > 1)
        self.sync_bn = bool(sync_bn and self.active)
        if not self.active:
            return
        has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
        need = 2 if has_bn and not self.sync_bn else 1
        if batch_size // self.world < need:
            raise LandscapeError(f"--batch-size {batch_size} is too small for {self.world} ranks: each rank needs "
                                 f"{need} sample(s) per step{' (BatchNorm; or pass --sync-bn)' if need == 2 else ''}")
        if self.sam_local:
            opt.direction_hook = self._average

    @staticmethod
    def convert(model: nn.Module, sync_bn: bool, device: torch.device) -> nn.Module:
        """``model`` with BatchNorm turned into SyncBatchNorm when ``sync_bn`` and distributed (CUDA only)."""
        if sync_bn and distributed.active():
            if device.type != "cuda":
                raise LandscapeError("--sync-bn needs CUDA (torch's SyncBatchNorm runs on GPUs only); "
                                     "on CPU train a BN-free model or drop --sync-bn")
            return nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return model

    def local(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's slice of a global batch (the whole batch in one process)."""
        if not self.active:
            return x, y
        part = distributed.shard(len(y))
        return x[part.start:part.stop], y[part.start:part.stop]

    def closure(self, loss_fn: Callable, x: torch.Tensor, y: torch.Tensor, n_global: int) -> Callable[[], torch.Tensor]:
        """A closure for ``opt.step``: one pass on the slice ``(x, y)`` of a global batch of ``n_global``.

        Returns the global batch's mean loss (the same on every rank).
        """
        model, weight = self.model, len(y) / n_global

        def closure() -> torch.Tensor:
            model.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            self.opt.backward(loss if self.sam_local else loss * weight)
            grads = [] if self.sam_local else [p.grad for p in self.params if p.grad is not None]
            total = (loss.detach() * weight).reshape(1)
            sum_over_ranks([*grads, total])
            return total[0]

        self._weight = weight
        return closure

    def _average(self, tensors: list[torch.Tensor]) -> None:
        """Sample-weighted mean over ranks of per-replica update tensors, in place (one all-reduce)."""
        sum_over_ranks(tensors, scale=self._weight)

    def sync_buffers(self) -> None:
        """Average BatchNorm running statistics over ranks (their slices differ); no-op with SyncBatchNorm."""
        if not self.active or self.sync_bn:
            return
        stats = [b for m in self.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
                 for b in (m.running_mean, m.running_var) if b is not None]
        if stats:
            sum_over_ranks(stats, scale=1 / self.world)


def sum_over_ranks(tensors: list[torch.Tensor], scale: float = 1.0) -> None:
    """``t <- sum over ranks of scale * t`` for every tensor, in place, with one all-reduce of a flat buffer.

    The tensors must share a dtype and device.
    """
    flat = torch.cat([t.reshape(-1) for t in tensors])
    if scale != 1.0:
        flat.mul_(scale)
    distributed.all_reduce(flat)
    offset = 0
    for t in tensors:
        t.copy_(flat[offset:offset + t.numel()].view_as(t))
        offset += t.numel()
