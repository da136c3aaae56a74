"""An orthonormal Krylov basis grown by Lanczos with full reorthogonalisation.

Each step makes one product ``w = A q_j`` and orthogonalises ``w`` against the
whole basis twice (classical Gram-Schmidt, twice is enough), recording every
coefficient.  The recorded ``(m+1) x m`` matrix ``Hbar`` then satisfies the
Arnoldi relation ``A Q_m = Q_{m+1} Hbar`` up to rounding; for symmetric ``A``
it is tridiagonal up to rounding (``alpha`` on the diagonal, ``beta`` below).
Residual norms computed from ``Hbar`` therefore include the
reorthogonalisation terms: they are the true ``||A v - theta v||`` of the Ritz
pairs without extra products.

When the basis becomes invariant (``beta`` at rounding level) the next
vector is a fresh random one orthogonal to the basis (``restart=True``), so
eigenvalues outside the first Krylov space are still found; with
``restart=False`` the basis stops there (Gauss quadrature is then exact).
"""

from __future__ import annotations

import numpy as np
import torch


def generator(seed: int, stream: int) -> torch.Generator:
    """A CPU generator for ``(seed, stream)``; streams keep start vectors and probes independent."""
    state = np.random.SeedSequence([int(seed), int(stream)]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def rademacher(n: int, gen: torch.Generator, like) -> torch.Tensor:
    """A vector of +-1 of length ``n`` drawn on CPU, moved to ``like``'s device and dtype."""
    z = torch.randint(0, 2, (n,), generator=gen, dtype=torch.int8).mul_(2).sub_(1)
    return z.to(like.device, like.dtype)


def gaussian(n: int, gen: torch.Generator, like) -> torch.Tensor:
    """A standard normal vector drawn on CPU in float64, moved to ``like``'s device and dtype."""
    return torch.randn(n, generator=gen, dtype=torch.float64).to(like.device, like.dtype)


class Krylov:
    """Lanczos basis ``Q`` (rows, ``[m, n]``) of operator ``op`` from a start vector.

    ``start`` defaults to a Gaussian vector from ``gen`` (``random_start`` is
    then True: ``q = z / ||z||`` is uniform on the sphere, ``E[q q^T] = I/n``,
    so the run is also an unbiased SLQ sample).  ``steps`` counts
    the products made; ``exhausted`` is True once no further vector exists
    (the basis spans the space, or it is invariant and ``restart`` is off).
    """

    def __init__(self, op, gen: torch.Generator, start: torch.Tensor | None = None, restart: bool = True):
        self.op = op
        self.n = int(op.size)
        self.gen = gen
        self.restart = restart
        self.eps = torch.finfo(op.dtype).eps
        self._like = torch.empty(0, dtype=op.dtype, device=op.device)
        self._Q = torch.empty(0, self.n, dtype=op.dtype, device=op.device)
        self.hbar = np.zeros((1, 0))
        self.m = 0
        self.steps = 0
        self.block_start = 0  # index of the first vector after the last restart
        self.exhausted = False
        self.random_start = start is None
        q = gaussian(self.n, gen, self._like) if start is None else start.to(op.device, op.dtype).clone()
        self._next = q / torch.linalg.vector_norm(q)

    @property
    def Q(self) -> torch.Tensor:
        """The orthonormal basis, ``[m, n]``."""
        return self._Q[: self.m]

    def _orthogonalise(self, w: torch.Tensor, upto: int) -> tuple[torch.Tensor, torch.Tensor]:
        basis = self._Q[:upto]
        c = basis @ w
        w = w - basis.T @ c
        c2 = basis @ w
        return w - basis.T @ c2, (c + c2)

    def _store(self, q: torch.Tensor) -> None:
        if self.m == self._Q.shape[0]:
            grown = torch.empty(min(self.n, max(8, 2 * self.m)), self.n, dtype=self._Q.dtype, device=self._Q.device)
            grown[: self.m] = self._Q[: self.m]
            self._Q = grown
        self._Q[self.m] = q

    def step(self) -> None:
        """One product: extend the basis by one vector and record its coefficients."""
        if self.exhausted:
            raise RuntimeError("Krylov basis is exhausted")
        q = self._next
        self._store(q)
        j = self.m
        self.m += 1
        w = self.op.matvec(q)
        self.steps += 1
        scale = float(torch.linalg.vector_norm(w))
        w, coeffs = self._orthogonalise(w, self.m)
        beta = float(torch.linalg.vector_norm(w))
        hbar = np.zeros((self.m + 1, self.m))
        hbar[: j + 1, :j] = self.hbar[: j + 1, :j]
        hbar[: j + 1, j] = coeffs.double().cpu().numpy()
        self.hbar = hbar
        if self.m == self.n:
            self.exhausted = True
            return
        if beta > 100 * self.eps * max(scale, np.finfo(float).tiny):
            hbar[j + 1, j] = beta
            self._next = w / beta
            return
        # Invariant subspace: the residual is at rounding level and is dropped.
        if not self.restart:
            self.exhausted = True
            return
        fresh, _ = self._orthogonalise(gaussian(self.n, self.gen, self._like), self.m)
        self._next = fresh / torch.linalg.vector_norm(fresh)
        self.block_start = self.m

    def alpha_beta(self, upto: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Diagonal ``[m]`` and sub-diagonal ``[m-1]`` of the (tridiagonal) projected matrix.

        ``upto`` keeps the leading ``upto`` steps: the Lanczos run had it stopped there.
        """
        m = self.m if upto is None else min(int(upto), self.m)
        h = self.hbar
        return np.diag(h[:m, :m]).copy(), np.diag(h[1:m, : m - 1]).copy()

    def first_block(self) -> int:
        """Steps before the first restart (all of them without one): the Krylov space of the start vector."""
        _, beta = self.alpha_beta()
        zero = np.flatnonzero(beta == 0)
        return int(zero[0]) + 1 if len(zero) else self.m

    def projected(self) -> np.ndarray:
        """``Q^T A Q`` (symmetrised), ``[m, m]`` float64."""
        h = self.hbar[: self.m, : self.m]
        return (h + h.T) / 2 if self.m else h

    def ritz(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Ritz values (ascending), vectors ``[m, m]`` in basis coordinates, true residual norms."""
        theta, y = np.linalg.eigh(self.projected())
        padded = np.vstack([y, np.zeros((1, self.m))])
        residuals = np.linalg.norm(self.hbar @ y - padded * theta, axis=0)
        return theta, y, residuals

    def residual_estimates(self, which: str, k: int, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Cheap ``(theta, |beta_m y_m|)`` of the ``k`` extreme Ritz pairs of the tridiagonal part from ``start``."""
        from scipy.linalg import eigh_tridiagonal

        alpha, beta = self.alpha_beta()
        alpha, beta = alpha[start:], beta[start:]
        size = len(alpha)
        lo, hi = (size - k, size - 1) if which == "largest" else (0, k - 1)
        if size == 1:
            theta, y = alpha.copy(), np.ones((1, 1))
        else:
            theta, y = eigh_tridiagonal(alpha, beta, select="i", select_range=(lo, hi))
        last = self.hbar[self.m, self.m - 1] if not self.exhausted else 0.0
        return theta, np.abs(last * y[-1])

    def vectors(self, coords: np.ndarray) -> torch.Tensor:
        """Ritz vectors ``Q^T y`` for basis coordinates ``coords [m, r]``: ``[r, n]``."""
        y = torch.as_tensor(coords, dtype=self._Q.dtype, device=self._Q.device)
        return y.T @ self.Q
