"""Hessian-vector products (HVPs) of a model's average loss over a data set.

An operator is anything that satisfies :class:`Operator`: ``size`` (int),
``dtype``, ``device`` and ``matvec(v: Tensor[size]) -> Tensor[size]`` for a
symmetric matrix, optionally ``matmat(V: Tensor[size, b]) -> Tensor[size, b]``.
:class:`HessianOperator` (:func:`hessian_operator`) is the model Hessian, and
:mod:`landscape.hessian.ggn` adds the Gauss-Newton and empirical Fisher
matrices; :class:`MatrixOperator` wraps an explicit matrix (tests, small
problems).  All count their products in ``hvps`` and have ``H @ v``,
``H @ V``, ``shape`` and ``to_scipy()`` (:class:`LinearOps`).

How an HVP is computed (measured, not assumed).  On CPU, one thread, a 241k
parameter BatchNorm CNN at 64 px, batch 128, float32, HVP time over gradient
time (best of 7, interleaved):

* forward-over-reverse, ``torch.func.jvp(torch.func.grad(f))`` with
  ``functional_call``: 4.6-5.5x;
* reverse-over-reverse (double backward), graph rebuilt every HVP: 3.4-4.0x;
* reverse-over-reverse on a *retained* first-order graph (forward and
  ``create_graph`` backward done once per batch, kept alive): 2.1x.

So this module uses double backward and keeps the leading batches and their
first-order graphs on the device while they fit a memory budget (a quarter of
the memory available when the operator is built; ``graph_memory`` overrides
it); batches past the budget are read again from the data and rebuild their
graph on each HVP, one batch on the device at a time.  The retained graph is
~4.5 MB per 64 px image for that CNN (measured with saved-tensor hooks).

Data parallel (under ``torchrun``, see :mod:`landscape.distributed`): every
rank reads the same batches and keeps its contiguous slice of each one
(:func:`landscape.distributed.shard`), so a rank holds about ``1/N`` of the
samples and their activations.  A product sums each rank's sample-weighted
part (weights ``n_b / N_total``) with ONE all-reduce of the ``[size]`` result;
every rank then holds the same vector, so Krylov methods seeded alike take
identical steps on every rank, with the same HVP count as one process.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, runtime_checkable

import torch
from torch import nn
from torch.func import functional_call

from landscape import distributed
from landscape.checks import available_memory
from landscape.errors import LandscapeError
from landscape.hessian.batches import Batches
from landscape.hessian.second_order import check_twice_differentiable, second_order
from landscape.tensors import eval_mode


@runtime_checkable
class Operator(Protocol):
    """A symmetric linear map on flat vectors ``[size]`` of ``dtype`` on ``device``.

    Implementations may add ``matmat(V)`` for ``V: [size, b]`` (``b`` products
    at once); it is optional, so callers check for it.
    """

    size: int
    dtype: torch.dtype
    device: torch.device

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """``A v`` for ``v: [size]``."""
        ...


class LinearOps:
    """``A @ v``, ``A @ V``, ``shape``, ``matmat``, ``to_scipy()`` and ``krylov()`` for an operator's ``matvec``."""

    size: int
    dtype: torch.dtype
    device: torch.device

    @property
    def shape(self) -> tuple[int, int]:
        """``(size, size)``."""
        return (self.size, self.size)

    def matmat(self, vectors: torch.Tensor) -> torch.Tensor:
        """``A V`` for ``V: [size, b]``, one ``matvec`` per column (``b`` products)."""
        return torch.stack([self.matvec(v) for v in vectors.T], dim=1)

    def __matmul__(self, other: torch.Tensor) -> torch.Tensor:
        """``A @ v`` (``[size]``) or ``A @ V`` (``[size, b]``)."""
        if not isinstance(other, torch.Tensor) or other.dim() not in (1, 2) or other.shape[0] != self.size:
            shape = tuple(other.shape) if hasattr(other, "shape") else type(other).__name__
            raise LandscapeError(f"an operator of shape {self.shape} multiplies a tensor [{self.size}] or "
                                 f"[{self.size}, b], got {shape}")
        return self.matvec(other) if other.dim() == 1 else self.matmat(other)

    def to_scipy(self):
        """A ``scipy.sparse.linalg.LinearOperator`` (NumPy in, NumPy out, in this operator's dtype).

        For SciPy's solvers, e.g. ``eigsh(H.to_scipy(), k=3)``; every product
        runs on ``device``.
        """
        import numpy as np
        from scipy.sparse.linalg import LinearOperator

        def matvec(v):
            v = torch.as_tensor(np.asarray(v).reshape(-1)).to(self.device, self.dtype)
            return self.matvec(v).cpu().numpy()

        def matmat(vectors):
            vectors = torch.as_tensor(np.asarray(vectors)).to(self.device, self.dtype)
            return self.matmat(vectors).cpu().numpy()

        np_dtype = torch.empty(0, dtype=self.dtype).numpy().dtype
        return LinearOperator(self.shape, matvec=matvec, rmatvec=matvec, matmat=matmat, dtype=np_dtype)

    def krylov(self, seed: int = 0):
        """A Lanczos basis to pass as ``krylov=`` to ``top_eigenvalues``, ``trace`` and ``spectral_density``.

        They then share its products (one Krylov run); the numbers are those
        each would get alone with the same ``seed``.
        """
        from landscape.hessian.krylov import Krylov, generator
        from landscape.hessian.lanczos import LANCZOS_STREAM

        return Krylov(self, generator(seed, LANCZOS_STREAM))


class MatrixOperator(LinearOps):
    """An explicit symmetric matrix ``[n, n]`` as an operator (counts products)."""

    def __init__(self, matrix: torch.Tensor):
        if matrix.dim() != 2 or matrix.shape[0] != matrix.shape[1]:
            raise LandscapeError(f"MatrixOperator needs a square matrix, got shape {tuple(matrix.shape)}")
        self.matrix = matrix
        self.size = int(matrix.shape[0])
        self.dtype = matrix.dtype
        self.device = matrix.device
        self.hvps = 0

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """``A v``."""
        self.hvps += 1
        return self.matrix @ v

    def matmat(self, vectors: torch.Tensor) -> torch.Tensor:
        """``A V`` for ``V: [size, b]`` (counts ``b`` products)."""
        self.hvps += int(vectors.shape[1])
        return self.matrix @ vectors


REDUCTIONS = ("mean", "sum")


class ModelOperator(LinearOps):
    """A curvature matrix of the sample-mean loss of ``model`` over ``data`` (base of Hessian, GGN, Fisher).

    The loss over the whole data is ``L = (1/N) sum_i l_i`` whatever the batch
    sizes: ``loss_fn(outputs, targets)`` returns a batch's mean (``reduction``
    "mean": batch ``b`` weighs ``n_b / N``) or its sum ("sum": ``1 / N``).
    ``reduction=None`` reads ``loss_fn.reduction`` or, failing that, tells
    the two apart on the first batch (whole batch against its two halves).
    ``data``: any iterable of batches, ``batch_fn`` reads each as
    ``(inputs, targets)`` (:mod:`landscape.hessian.batches`); batches go to
    the device one at a time, and those past the memory budget are re-read on
    every product.  The matrix is taken with respect to ``params`` (names;
    default: every parameter with ``requires_grad``), less those the loss does
    not use on the first batch (``unused``), at the weights the model has when
    the operator is built (parameters and buffers are copied).  Products run
    in eval mode (BatchNorm running statistics, no dropout), with math
    attention and never under autocast: in the model's dtype, float32 for a
    half-precision model (:mod:`landscape.hessian.second_order`); the model's
    modes and the SDPA settings are restored afterwards.

    Vectors are flat, ``[size]``, in ``dtype`` on ``device``, laid out in
    ``names`` order; :meth:`unflatten` turns one into parameter-shaped
    tensors.  ``callback`` (if set) is called after every product.
    ``graph_memory`` (bytes; default a quarter of the free memory) bounds the
    batches and graphs kept on the device.

    Under ``torchrun`` ``data`` (the same on every rank) is split over the
    ranks; ``num_samples`` instead says ``data`` already is this rank's shard
    of that many samples in all (e.g. another operator's ``batches``).
    ``num_samples`` is the global count, ``local_samples`` this rank's.
    """

    #: what the matrix is, for results and messages
    kind = "curvature"

    def __init__(self, model: nn.Module, loss_fn: Callable, data: Iterable, params: Sequence[str] | None = None,
                 graph_memory: int | None = None, num_samples: int | None = None,
                 batch_fn: Callable | None = None, reduction: str | None = None):
        try:
            first = next(model.parameters())
        except StopIteration:
            raise LandscapeError("the model has no parameters") from None
        self.model = model
        self.loss_fn = loss_fn
        self.device = first.device
        self.dtype = first.dtype if first.dtype in (torch.float32, torch.float64) else torch.float32
        budget = available_memory(self.device) // 4 if graph_memory is None else int(graph_memory)
        self.batches = Batches(data, self.device, self.dtype, batch_fn=batch_fn, shard=num_samples is None,
                               budget=budget)
        self.num_samples = self.batches.num_samples if num_samples is None else int(num_samples)
        self.local_samples = self.batches.local_samples
        named = dict(model.named_parameters())
        if params is None:
            chosen = [n for n, p in named.items() if p.requires_grad]
        else:
            chosen = list(params)
            unknown = [n for n in chosen if n not in named]
            if unknown:
                raise LandscapeError(f"not a parameter of the model: {unknown[0]!r}")
            if len(set(chosen)) != len(chosen):
                raise LandscapeError("params lists a parameter twice")
        # Constant copies of everything the forward pass reads (float tensors in self.dtype), plus leaves.
        self._state = {n: t.detach().to(self.dtype, copy=True) if t.is_floating_point() else t.detach().clone()
                       for n, t in list(named.items()) + list(model.named_buffers())}
        self.reduction = self._reduction(reduction)
        leaves = {n: self._state[n].requires_grad_(True) for n in chosen}
        used = self._used(leaves)
        if not used:
            raise LandscapeError("none of the chosen parameters affects the loss")
        self.names: list[str] = used
        self.unused: list[str] = [n for n in chosen if n not in used]
        for n in self.unused:
            self._state[n].requires_grad_(False)
        self._leaves = [self._state[n] for n in self.names]
        self.shapes = [tuple(t.shape) for t in self._leaves]
        self.numels = [t.numel() for t in self._leaves]
        self.size = sum(self.numels)
        self.hvps = 0
        self.seconds = 0.0
        self.callback: Callable[[], None] | None = None
        self._budget = max(budget - self.batches.kept_bytes, 0)

    # ----------------------------------------------------------------- helpers
    @contextlib.contextmanager
    def _eval(self):
        with eval_mode(self.model), torch.enable_grad(), torch.autocast(self.device.type, enabled=False), \
                second_order(self.model):
            yield

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return functional_call(self.model, self._state, (x,))

    def _criterion(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = self.loss_fn(out, y)
        if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
            shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
            raise LandscapeError(f"loss_fn must return a scalar (the batch mean or sum), got {shape}")
        return loss

    def _loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self._criterion(self._forward(x), y)

    def _reduction(self, given: str | None) -> str:
        """``given``, else ``loss_fn.reduction``, else mean or sum as the first batch shows; agreed by all ranks."""
        declared = given if given is not None else getattr(self.loss_fn, "reduction", None)
        if declared is not None:
            if declared not in REDUCTIONS:
                raise LandscapeError(f"loss_fn must return a scalar: reduction must be 'mean' or 'sum', "
                                     f"got {declared!r}")
            return declared
        x, y = self.batches.first
        code = 1.0  # mean (also when a single sample cannot tell)
        if len(y) >= 2:
            half = len(y) // 2
            with self._eval(), torch.no_grad():
                whole, a, b = (float(self._loss(x[s], y[s])) for s in (slice(None), slice(0, half), slice(half, None)))
            tol = float(torch.finfo(self.dtype).eps) ** 0.5 * max(abs(whole), abs(a), abs(b), 1e-30)
            if not math.isfinite(tol) or abs(whole - (half * a + (len(y) - half) * b) / len(y)) <= tol:
                code = 1.0  # a non-finite loss is reported by _used
            elif abs(whole - (a + b)) <= tol:
                code = 2.0
            else:
                code = 3.0
        flag = torch.tensor([code], dtype=torch.float64)
        distributed.all_reduce(flag, op="max")
        if flag.item() == 3.0:
            raise LandscapeError("loss_fn is neither the mean nor the sum of per-sample losses on the first batch; "
                                 "pass reduction='mean' or 'sum' if it is")
        return "mean" if flag.item() == 1.0 else "sum"

    def _used(self, leaves: dict[str, torch.Tensor]) -> list[str]:
        """Names whose gradient exists on the first batch (unused parameters have none), agreed by all ranks."""
        if not leaves:
            return []
        x, y = self.batches.first
        with self._eval():
            loss = self._loss(x, y)
            finite = bool(torch.isfinite(loss))
            if finite:
                check_twice_differentiable(loss, self.model)
            grads = torch.autograd.grad(loss, list(leaves.values()),
                                        allow_unused=True) if finite else [None] * len(leaves)
        flags = torch.tensor([float(g is not None) for g in grads] + [float(not finite)], dtype=torch.float64)
        distributed.all_reduce(flags, op="max")
        if flags[-1]:
            raise LandscapeError(f"the loss is not finite on the first batch ({distributed.where()}{loss.item()})")
        return [n for n, f in zip(leaves, flags.tolist()) if f]

    def unflatten(self, v: torch.Tensor) -> dict[str, torch.Tensor]:
        """Split a flat ``[size]`` vector into parameter-shaped tensors keyed by name."""
        return {n: t.view(s) for n, t, s in zip(self.names, torch.split(v, self.numels), self.shapes)}

    def flatten(self, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        """Concatenate parameter-shaped tensors (absent names are zero) into a flat vector."""
        parts = [tensors[n].reshape(-1).to(self.device, self.dtype) if n in tensors
                 else torch.zeros(k, device=self.device, dtype=self.dtype) for n, k in zip(self.names, self.numels)]
        return torch.cat(parts)

    # ------------------------------------------------------------------ product
    def _weight(self, n: int) -> float:
        """Weight of a batch of ``n`` samples' product in the whole-data mean."""
        return (n if self.reduction == "mean" else 1) / self.num_samples

    def _batch_product(self, i: int, x: torch.Tensor, y: torch.Tensor,
                       pieces: list[torch.Tensor]) -> Sequence[torch.Tensor | None]:
        """Batch ``i``'s matrix (of ``loss_fn`` on it) times ``pieces`` (parameter-shaped), one tensor per leaf."""
        raise NotImplementedError

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """The matrix times a flat ``v`` of length ``size``."""
        start = time.perf_counter()
        pieces = [t.view(s) for t, s in zip(torch.split(v.to(self.device, self.dtype), self.numels), self.shapes)]
        out = torch.zeros(self.size, device=self.device, dtype=self.dtype)
        outs = [t.view(s) for t, s in zip(torch.split(out, self.numels), self.shapes)]
        with self._eval():
            i = 0  # not enumerate(): its reused result tuple would hold the last batch while the next is read
            for x, y in self.batches:
                weight = self._weight(len(y))
                for o, h in zip(outs, self._batch_product(i, x, y, pieces)):
                    if h is not None:
                        o.add_(h, alpha=weight)
                i += 1
                del x, y  # free this batch before the next one is read
        distributed.all_reduce(out)  # the one collective of a product (no-op in one process)
        self.hvps += 1
        self.seconds += time.perf_counter() - start
        if self.callback is not None:
            self.callback()
        return out

    def release(self) -> None:
        """Free what the operator keeps between products (rebuilt on demand)."""


class HessianOperator(ModelOperator):
    """The Hessian of the mean loss over ``data`` (see :class:`ModelOperator` for data, reduction and precision).

    Each kept batch's first-order graph stays alive between products while it
    fits the memory budget (see the module docstring for why).
    """

    kind = "hessian"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._graphs: dict[int, tuple] = {}
        self._graph_bytes = 0

    def _first_order(self, x: torch.Tensor, y: torch.Tensor, count: bool) -> tuple:
        """(gradient entries that depend on the weights, their leaves), with ``create_graph``.

        With ``count`` the saved tensors are measured (bytes, de-duplicated by storage).
        """
        seen: dict[int, int] = {}

        def pack(t):
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        hooks = torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t) if count else contextlib.nullcontext()
        with hooks:
            loss = self._loss(x, y)
            grads = torch.autograd.grad(loss, self._leaves, create_graph=True, allow_unused=True)
        keep = [i for i, g in enumerate(grads) if g is not None and g.requires_grad]
        return tuple(grads[i] for i in keep), keep, sum(seen.values())

    def _batch_product(self, i, x, y, pieces):
        graph = self._graphs.get(i)
        retain = graph is not None
        if graph is None:
            keepable = i < len(self.batches.kept)
            grads, keep, nbytes = self._first_order(x, y, count=keepable and self._graph_bytes < self._budget)
            graph = (grads, keep)
            if keepable and nbytes and self._graph_bytes + nbytes <= self._budget:
                self._graphs[i], self._graph_bytes, retain = graph, self._graph_bytes + nbytes, True
            elif keepable:
                self._budget = self._graph_bytes  # stop measuring: later batches will not fit either
        grads, keep = graph
        if not grads:
            return []
        return torch.autograd.grad(grads, self._leaves, grad_outputs=[pieces[j] for j in keep],
                                   retain_graph=retain, allow_unused=True)

    def release(self) -> None:
        """Free the retained graphs (they are rebuilt on demand)."""
        self._graphs = {}
        self._graph_bytes = 0


def hessian_operator(model: nn.Module, loss_fn: Callable, data: Iterable, batch_fn: Callable | None = None,
                     params: Sequence[str] | None = None, reduction: str | None = None,
                     graph_memory: int | None = None) -> HessianOperator:
    """The Hessian of the mean loss of ``model`` over ``data`` as an operator (``H @ v``, ``H.to_scipy()``).

    ``data``: any iterable of batches, read one batch at a time;
    ``batch_fn(batch) -> (inputs, targets)`` for layouts other than tuples
    and ``image``/``label`` or ``input``/``target`` dicts; ``reduction``:
    "mean" or "sum" (default: detected, see :class:`ModelOperator`).
    """
    return HessianOperator(model, loss_fn, data, params=params, graph_memory=graph_memory, batch_fn=batch_fn,
                           reduction=reduction)


def hvp_operator(model: nn.Module, loss_fn: Callable, data: Iterable, params: Sequence[str] | None = None,
                 graph_memory: int | None = None) -> HessianOperator:
    """:func:`hessian_operator` under its older name (same operator)."""
    return hessian_operator(model, loss_fn, data, params=params, graph_memory=graph_memory)


def as_operator(model, loss_fn=None, data=None) -> Operator:
    """``model`` itself if it is already an :class:`Operator`, else the Hessian operator of its loss on ``data``."""
    if isinstance(model, Operator):
        return model
    if loss_fn is None or data is None:
        raise LandscapeError("pass loss_fn and data with a model (or pass an operator)")
    return HessianOperator(model, loss_fn, data)
