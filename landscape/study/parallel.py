"""How a study uses the ranks of a ``torchrun`` job (``--parallel runs|data``).

* ``runs``: the (model, optimizer, seed) runs are dealt out round-robin; each
  rank trains and analyses its own runs as a single process
  (:func:`landscape.distributed.local`), then every rank waits for the others
  and learns their run folders. The default when there are at least as many
  runs as ranks and a run fits one device.
* ``data``: all ranks work on each run in turn (data-parallel training,
  Hessian, sharpness and surfaces).

Ranks wait for each other's runs on a gloo group of their own whose timeout
is :data:`RUNS_WAIT` (runs take hours; a rank that fails stops the job at
once through ``torchrun``, so only a stuck rank can make the others wait).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta

import torch

from landscape import distributed
from landscape.errors import LandscapeError

MODES = ("runs", "data")
#: How long a rank that finished its runs waits for the others in ``--parallel runs``.
RUNS_WAIT = timedelta(days=7)


def parallel_mode(parallel: str | None, n_runs: int) -> str:
    """``"single"`` without ``torchrun``, else ``parallel`` (default ``runs`` if ``n_runs`` >= ranks, else ``data``)."""
    if parallel is not None and parallel not in MODES:
        raise LandscapeError(f"--parallel must be runs or data, got {parallel!r}")
    if not distributed.active():
        return "single"
    if parallel is None:
        return "runs" if n_runs >= distributed.world_size() else "data"
    return parallel


def deal(jobs: Sequence, work: Callable[[object], object]) -> tuple[list, list[int]]:
    """``(results in job order, rank of each job)``: job ``k`` runs on rank ``k % world`` as a single process."""
    ranks, me = distributed.world_size(), distributed.rank()
    wait = torch.distributed.new_group(backend="gloo", timeout=RUNS_WAIT)
    with distributed.local():
        mine = {k: work(job) for k, job in enumerate(jobs) if k % ranks == me}
    everyone = distributed.all_gather_object(mine, group=wait)
    merged = {k: v for part in everyone for k, v in part.items()}
    return [merged[k] for k in range(len(jobs))], [k % ranks for k in range(len(jobs))]
