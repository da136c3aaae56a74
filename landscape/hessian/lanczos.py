"""Extreme Hessian eigenvalues by Lanczos with full reorthogonalisation, certified by residuals.

The Krylov space grows one product at a time (no restarts needed at the
budgets used here).  After each step the ``k`` extreme Ritz pairs are
checked with the cheap Lanczos estimate ``|beta_m y_m|``; once that passes,
the full Rayleigh-Ritz residuals ``||H v - theta v||`` are computed from the
recorded coefficients (which include every reorthogonalisation term, so they
are the true residuals of the returned pairs, up to rounding in the products
themselves; no extra products).  A pair is *converged* when its residual is
at most ``tol * |theta|``.  Each converged ``theta`` is then within
``tol * |theta|`` of an eigenvalue of ``H`` (and within ``residual^2 / gap``
when the gap to the rest of the spectrum is known).

What a residual cannot certify: that no eigenvalue beyond the returned ones
was missed.  A random start makes that unlikely.  A Krylov space holds only
one copy of a repeated eigenvalue; when it becomes invariant (the sign of
exact repeats), Lanczos restarts in the orthogonal complement and only stops
once the newest block's extreme Ritz value has converged and is matched by
``k`` others, so repeated eigenvalues are returned with their copies.

Unconverged policy: when the budget ends first, the unconverged values are
returned with ``converged`` False and a :class:`ConvergenceWarning` is issued;
``strict=True`` raises :class:`~landscape.errors.LandscapeError` instead.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from landscape.checks import check_positive_int
from landscape.errors import LandscapeError
from landscape.hessian.krylov import Krylov, generator
from landscape.hessian.operator import as_operator

LANCZOS_STREAM = 0


class ConvergenceWarning(UserWarning):
    """Some requested quantity did not reach its tolerance within the product budget."""


@dataclass
class EigenResult:
    """Extreme eigenvalues of a Hessian.

    ``eigenvalues`` are ordered from the extreme inwards (descending for
    ``which="largest"``, ascending for ``"smallest"``); ``residuals`` are
    ``||H v - lambda v||`` (same units as the eigenvalues); ``hvps`` counts
    Hessian-vector products; ``eigenvectors`` (on request) are unit-norm,
    parameter-shaped dicts for a model operator, flat tensors otherwise.
    """

    eigenvalues: list[float]
    residuals: list[float]
    converged: list[bool]
    hvps: int
    seconds: float
    seed: int
    which: str
    tol: float
    eigenvectors: list | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        """Plain data (no eigenvectors)."""
        out = asdict(self)
        out.pop("eigenvectors")
        return out


def check_which(which: str) -> str:
    """``which`` if it is ``"largest"`` or ``"smallest"``, else LandscapeError."""
    if which not in ("largest", "smallest"):
        raise LandscapeError(f"which must be 'largest' or 'smallest', got {which!r}")
    return which


def default_eigen_budget(k: int) -> int:
    """Default product budget for ``k`` eigenpairs: ``40 + 20 k``."""
    return 40 + 20 * k


def extreme(theta: np.ndarray, which: str, k: int) -> np.ndarray:
    """Indices of the ``k`` extreme values of ascending ``theta``, from the extreme inwards."""
    idx = np.arange(len(theta))
    return idx[::-1][:k] if which == "largest" else idx[:k]


def _no_missed_copies(krylov: Krylov, theta: np.ndarray, which: str, k: int, tol: float) -> bool:
    """After a restart, whether the newest block rules out further copies of the ``k`` extreme values.

    A restart means an invariant subspace was found, so eigenvalues may be
    repeated.  The newest block explores the rest of the space; once its own
    extreme Ritz value has converged and at least ``k`` other Ritz values are
    as extreme (within ``tol``), no further copy is in sight.
    """
    if krylov.block_start == 0 or krylov.exhausted:
        return True
    if krylov.m == krylov.block_start:
        return False
    block_theta, block_res = krylov.residual_estimates(which, 1, start=krylov.block_start)
    lam, res = float(block_theta[0]), float(block_res[0])
    if res > tol * abs(lam):
        return False
    sign = 1.0 if which == "largest" else -1.0
    as_extreme = int(np.sum(sign * theta >= sign * lam - tol * abs(lam))) - 1
    return as_extreme >= k


def run_lanczos(op, k: int, tol: float, max_hvps: int, which: str, krylov: Krylov) -> tuple:
    """Grow ``krylov`` until its ``k`` extreme pairs converge or ``max_hvps`` new products are spent.

    Returns ``(theta [k], coords [m, k], residuals [k], converged [k])``.
    """
    budget_end = krylov.steps + max_hvps
    while True:
        spent = krylov.steps >= budget_end
        if krylov.m >= k:
            estimate_ok = krylov.exhausted
            if not estimate_ok:
                theta, res = krylov.residual_estimates(which, k)
                estimate_ok = bool(np.all(res <= tol * np.abs(theta)))
            if estimate_ok or spent:
                theta, y, res = krylov.ritz()
                idx = extreme(theta, which, k)
                converged = (res[idx] <= tol * np.abs(theta[idx])) & _no_missed_copies(krylov, theta, which, k, tol)
                if converged.all() or krylov.exhausted or spent:
                    return theta[idx], y[:, idx], res[idx], converged
        if spent:
            raise LandscapeError(f"max_hvps={max_hvps} is too small for k={k}")
        krylov.step()


def top_eigenvalues(model, loss_fn=None, data=None, k: int = 1, tol: float = 1e-3, max_hvps: int | None = None,
                    seed: int = 0, which: str = "largest", return_eigenvectors: bool = False,
                    strict: bool = False, krylov: Krylov | None = None) -> EigenResult:
    """The ``k`` algebraically largest (or smallest) Hessian eigenvalues, each certified to ``tol``.

    ``model`` may be an ``nn.Module`` (with ``loss_fn`` and ``data``) or an
    operator (see :mod:`landscape.hessian.operator`).  ``max_hvps`` defaults
    to ``40 + 20 k``.  ``krylov`` continues an existing basis (used to share
    products with :func:`~landscape.hessian.hutchpp.trace`).  Same seed, same numbers.
    """
    op = as_operator(model, loss_fn, data)
    k = check_positive_int(k, "k")
    which = check_which(which)
    if k > op.size:
        raise LandscapeError(f"k={k} exceeds the number of parameters ({op.size})")
    if not tol > 0:
        raise LandscapeError(f"tol must be > 0, got {tol!r}")
    max_hvps = default_eigen_budget(k) if max_hvps is None else check_positive_int(max_hvps, "max_hvps", k)
    start = time.perf_counter()
    if krylov is None:
        krylov = Krylov(op, generator(seed, LANCZOS_STREAM))
    used = krylov.steps
    theta, coords, res, converged = run_lanczos(op, k, tol, max_hvps, which, krylov)
    result = EigenResult(
        eigenvalues=[float(t) for t in theta], residuals=[float(r) for r in res],
        converged=[bool(c) for c in converged], hvps=krylov.steps - used,
        seconds=time.perf_counter() - start, seed=seed, which=which, tol=tol,
    )
    if return_eigenvectors:
        vecs = krylov.vectors(coords)
        vecs = vecs / torch.linalg.vector_norm(vecs, dim=1, keepdim=True)
        unflatten = getattr(op, "unflatten", None)
        result.eigenvectors = [unflatten(v.clone()) if unflatten else v.clone() for v in vecs]
    if not all(result.converged):
        bad = sum(not c for c in result.converged)
        msg = (f"{bad} of {k} {which} eigenvalues did not reach residual <= tol*|lambda| (tol={tol}) "
               f"within max_hvps={max_hvps}; raise max_hvps or tol")
        if strict:
            raise LandscapeError(msg)
        warnings.warn(msg, ConvergenceWarning, stacklevel=2)
    return result
