"""Top Hessian eigenvectors as landscape directions.

The eigenvectors come from :func:`landscape.hessian.top_eigenvalues` (Lanczos,
BN in eval mode) and have unit L2 norm over all parameters together, so a
surface coordinate along one is a parameter-space distance. Along ``v_i`` the
loss curves like ``lambda_i x^2 / 2`` near the centre.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from torch import nn

from landscape.directions.vectors import Vector


def eigen_directions(
    model: nn.Module,
    loss_fn: Callable,
    data: Iterable,
    k: int = 2,
    seed: int = 0,
    tol: float = 1e-3,
    max_hvps: int | None = None,
) -> tuple[list[Vector], dict]:
    """The top-``k`` eigenvectors of the Hessian of ``loss_fn`` on ``data`` (batches), and their info.

    Info: ``eigenvalues``, ``residuals``, ``hvps``, ``tol``. Raises
    :class:`~landscape.errors.LandscapeError` when Lanczos cannot certify
    every pair within ``max_hvps`` (the Hessian engine's default budget if None).
    """
    from landscape.hessian.lanczos import top_eigenvalues

    res = top_eigenvalues(model, loss_fn, data, k=k, tol=tol, max_hvps=max_hvps, seed=seed,
                          return_eigenvectors=True, strict=True)
    info = {
        "eigenvalues": [float(v) for v in res.eigenvalues],
        "residuals": [float(v) for v in res.residuals],
        "hvps": int(res.hvps),
        "tol": tol,
    }
    return [dict(v) for v in res.eigenvectors], info
