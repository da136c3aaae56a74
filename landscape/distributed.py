"""``torch.distributed`` under ``torchrun``: the process group, rank helpers and collectives.

Launched by ``torchrun`` (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` in the
environment) :func:`init` joins the process group: backend ``nccl`` when CUDA
is available (each rank on ``cuda:LOCAL_RANK``), ``gloo`` otherwise, with a
timeout (``--dist-timeout`` minutes, default 30) on the rendezvous and on
every collective. Without ``torchrun`` nothing is initialised and every helper
acts as one process: rank 0 of 1, collectives are no-ops.

Inside :func:`local` the helpers act as one process too, even under
``torchrun`` (``study --parallel runs`` gives each rank whole runs of its own).

Conventions: only rank 0 (:func:`is_main`) writes files (``landscape.io``
skips writes on other ranks) and prints; collectives sum (``all_reduce``) in
the tensor's dtype; CPU tensors travel through the backend's device and come
back in place.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING

from landscape.errors import LandscapeError

#: Default timeout of the process group and of every collective, minutes.
DEFAULT_TIMEOUT_MINUTES = 30.0
#: Environment variable that sets the timeout when ``--dist-timeout`` is not given.
TIMEOUT_ENV = "LANDSCAPE_DIST_TIMEOUT"

_local_depth = 0

if TYPE_CHECKING:  # torch is imported where it is used: ``landscape COMMAND --help`` must not load it
    import numpy as np
    import torch


def _initialized() -> bool:
    """Whether a process group exists; none can before torch is imported, so this never imports it."""
    torch = sys.modules.get("torch")
    return torch is not None and torch.distributed.is_available() and torch.distributed.is_initialized()


def launched() -> bool:
    """Whether this process was started by ``torchrun`` (``RANK`` and ``WORLD_SIZE`` are set)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def timeout_minutes(value: float | None = None) -> float:
    """``value``, else ``$LANDSCAPE_DIST_TIMEOUT``, else 30; LandscapeError unless positive."""
    raw = value if value is not None else os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_MINUTES)
    try:
        minutes = float(raw)
    except ValueError:
        raise LandscapeError(f"--dist-timeout must be a number of minutes, got {raw!r}") from None
    if not minutes > 0:
        raise LandscapeError(f"--dist-timeout must be > 0 minutes, got {raw!r}")
    return minutes


def init(timeout: float | None = None) -> bool:
    """Join the process group when launched by ``torchrun``; returns whether distributed mode is on.

    ``timeout``: minutes (see :func:`timeout_minutes`). Idempotent.
    """
    if not launched():
        return False
    minutes = timeout_minutes(timeout)
    import torch

    if torch.distributed.is_initialized():
        return True
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(local_rank())
    torch.distributed.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(minutes=minutes))
    return True


def finish() -> None:
    """Leave the process group (no-op when none)."""
    if _initialized():
        sys.modules["torch"].distributed.destroy_process_group()


def active() -> bool:
    """Whether collectives reach other ranks (a process group exists and we are not inside :func:`local`)."""
    return _local_depth == 0 and _initialized() and sys.modules["torch"].distributed.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 without ``torchrun`` or inside :func:`local`)."""
    return sys.modules["torch"].distributed.get_rank() if active() else 0


def world_size() -> int:
    """Processes taking part (1 without ``torchrun`` or inside :func:`local`)."""
    return sys.modules["torch"].distributed.get_world_size() if active() else 1


def global_rank() -> int:
    """The ``torchrun`` rank, also inside :func:`local` (0 without ``torchrun``)."""
    return int(os.environ.get("RANK", "0")) if launched() else 0


def global_world_size() -> int:
    """The ``torchrun`` world size, also inside :func:`local` (1 without ``torchrun``)."""
    return int(os.environ.get("WORLD_SIZE", "1")) if launched() else 1


def local_rank() -> int:
    """``LOCAL_RANK`` (the rank on this machine), 0 without ``torchrun``."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    """Whether this rank writes files and prints (rank 0, or any rank inside :func:`local`)."""
    return rank() == 0


def device(name: str = "auto") -> torch.device:
    """Resolve ``auto``/``cuda``: under ``torchrun`` with CUDA, ``cuda:LOCAL_RANK``."""
    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and launched() and torch.cuda.is_available():
        return torch.device("cuda", local_rank())
    return torch.device(name)


@contextlib.contextmanager
def local() -> Iterator[None]:
    """Within the block this rank acts as a single process: no collectives, it writes its own files."""
    global _local_depth
    _local_depth += 1
    try:
        yield
    finally:
        _local_depth -= 1


def shard(n: int, part: int | None = None, parts: int | None = None) -> range:
    """Indices ``[lo, hi)`` of part ``part`` of ``parts`` near-equal contiguous parts of ``range(n)``.

    Defaults: this rank's part of ``world_size()``; the first ``n % parts`` parts get one more.
    """
    part = rank() if part is None else part
    parts = world_size() if parts is None else parts
    size, extra = divmod(n, parts)
    lo = part * size + min(part, extra)
    return range(lo, lo + size + (part < extra))


def _comm(t: torch.Tensor) -> torch.Tensor:
    """``t`` on a device the backend can use (CUDA for nccl)."""
    import torch

    if torch.distributed.get_backend() == "nccl" and t.device.type != "cuda":
        return t.to(torch.device("cuda", torch.cuda.current_device()))
    return t


def all_reduce(t: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """Reduce ``t`` over ranks in place (``sum`` or ``max``); returns ``t``. No-op in one process."""
    if not active():
        return t
    import torch

    buf = _comm(t)
    torch.distributed.all_reduce(buf,
                                 op=torch.distributed.ReduceOp.SUM if op == "sum" else torch.distributed.ReduceOp.MAX)
    if buf is not t:
        t.copy_(buf)
    return t


def sum_array(a: np.ndarray) -> np.ndarray:
    """Element-wise float64 sum of ``a`` over ranks (each rank fills its own entries, zeros elsewhere)."""
    if not active():
        return a
    import numpy as np
    import torch

    t = torch.from_numpy(np.array(a, dtype=np.float64))
    all_reduce(t)
    return t.numpy()


def all_gather_object(obj, group=None) -> list:
    """Every rank's ``obj`` (picklable plain data), in rank order; ``[obj]`` in one process.

    ``group``: a process group of all ranks with its own timeout (default: the main group).
    """
    if not active():
        return [obj]
    out = [None] * world_size()
    sys.modules["torch"].distributed.all_gather_object(out, obj, group=group)
    return out


def barrier() -> None:
    """Wait for every rank (bounded by the process-group timeout). No-op in one process."""
    if active():
        import torch

        if torch.distributed.get_backend() == "nccl":
            torch.distributed.barrier(device_ids=[torch.cuda.current_device()])
        else:
            torch.distributed.barrier()


def where() -> str:
    """``"rank R of W: "`` under ``torchrun`` (the prefix of every error line), else ``""``."""
    return f"rank {global_rank()} of {global_world_size()}: " if launched() else ""


def peer_lost(exc: BaseException) -> bool:
    """Whether ``exc`` is a collective broken because another rank exited (that rank reports its own error)."""
    if not launched() or isinstance(exc, LandscapeError):
        return False
    text = str(exc).lower()
    if "timed out" in text or "timeout" in text:
        return False
    return isinstance(exc, (RuntimeError, ConnectionError)) and any(
        s in text for s in ("connection closed", "connection reset", "broken pipe", "peer", "gloo", "nccl"))
