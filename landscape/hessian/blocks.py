"""Per-block Hessian breakdown: top eigenvalue and trace of each diagonal block.

A block is a set of parameters (by default those of one module, e.g. a conv
layer's weight or a BatchNorm's weight and bias); its diagonal block of the
Hessian is the Hessian with respect to those parameters with all others
fixed.  Each block runs Lanczos for its top eigenvalue and then Hutch++ for
its trace, reusing the same Krylov basis (so a block of ``p`` parameters
with ``p`` within budget gets its trace exactly).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

from torch import nn

from landscape.errors import LandscapeError
from landscape.hessian.hutchpp import trace
from landscape.hessian.krylov import Krylov, generator
from landscape.hessian.lanczos import LANCZOS_STREAM, top_eigenvalues
from landscape.hessian.operator import HessianOperator


@dataclass
class BlockResult:
    """One block: its parameter names and size, top eigenvalue (certified to ``tol``) and trace (95% CI)."""

    name: str
    params: list[str]
    num_params: int
    top_eigenvalue: float
    residual: float
    converged: bool
    trace: float
    trace_stderr: float
    trace_ci: tuple[float, float]
    trace_stopped_by: str
    hvps: int

    def to_dict(self) -> dict:
        out = asdict(self)
        out["trace_ci"] = list(self.trace_ci)
        return out


def module_blocks(names: Sequence[str]) -> dict[str, list[str]]:
    """Group parameter names by owning module (``features.0.weight`` -> ``features.0``), in order."""
    groups: dict[str, list[str]] = {}
    for name in names:
        owner = name.rsplit(".", 1)[0] if "." in name else name
        groups.setdefault(owner, []).append(name)
    return groups


def per_block(model: nn.Module | HessianOperator, loss_fn: Callable | None = None, data: Iterable | None = None,
              blocks: str | Mapping[str, Sequence[str]] = "module", tol: float = 1e-3, rtol: float = 0.05,
              max_hvps: int = 100, seed: int = 0, progress: Callable[[], None] | None = None,
              num_samples: int | None = None) -> list[BlockResult]:
    """Top eigenvalue and trace of the Hessian's diagonal block for each block of parameters.

    ``blocks``: ``"module"`` (parameters grouped by module), ``"parameter"``
    (one block per parameter tensor) or a mapping ``name -> parameter names``.
    Only trainable parameters the loss uses are included.  ``max_hvps`` is
    per block and per quantity (eigenvalue, then trace); ``progress`` is
    called after every product.  ``num_samples``: ``data`` is already this
    rank's shard of that many samples (see :class:`HessianOperator`).
    ``model`` may instead be a :class:`HessianOperator`: its model, loss,
    data and reduction are used (its model should still hold its weights).
    """
    if isinstance(model, HessianOperator):
        full = model
        model, loss_fn = full.model, full.loss_fn
    elif loss_fn is None or data is None:
        raise LandscapeError("pass loss_fn and data with a model (or pass a HessianOperator)")
    else:
        full = HessianOperator(model, loss_fn, data, graph_memory=0, num_samples=num_samples)
    used = full.names
    if blocks == "module":
        groups = module_blocks(used)
    elif blocks == "parameter":
        groups = {n: [n] for n in used}
    elif isinstance(blocks, Mapping):
        groups = {str(k): list(v) for k, v in blocks.items()}
        for name, members in groups.items():
            missing = [m for m in members if m not in used]
            if not members:
                raise LandscapeError(f"block {name!r} is empty")
            if missing:
                raise LandscapeError(f"block {name!r}: {missing[0]!r} is not a trainable parameter that the loss uses")
    else:
        raise LandscapeError(f"blocks must be 'module', 'parameter' or a mapping, got {blocks!r}")
    results = []
    for name, members in groups.items():
        op = HessianOperator(model, loss_fn, full.batches, params=members, num_samples=full.num_samples,
                             reduction=full.reduction)
        op.callback = progress
        krylov = Krylov(op, generator(seed, LANCZOS_STREAM))
        eig = top_eigenvalues(op, k=1, tol=tol, max_hvps=min(max_hvps, op.size), seed=seed, krylov=krylov)
        tr = trace(op, method="hutch++", rtol=rtol, max_hvps=max_hvps, seed=seed, krylov=krylov)
        op.release()
        results.append(BlockResult(
            name=name, params=list(members), num_params=op.size, top_eigenvalue=eig.eigenvalues[0],
            residual=eig.residuals[0], converged=eig.converged[0], trace=tr.estimate, trace_stderr=tr.stderr,
            trace_ci=tr.ci, trace_stopped_by=tr.stopped_by, hvps=op.hvps,
        ))
    return results
