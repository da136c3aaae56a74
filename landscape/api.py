"""The Hessian functions of the package (``landscape.top_eigenvalues`` ...): a checkpoint or the engine's inputs.

Each takes either what its engine in :mod:`landscape.hessian` takes (a model
with ``loss_fn`` and ``data``, or an :class:`~landscape.hessian.Operator`) or
a loaded :class:`~landscape.checkpoint.Checkpoint`, a run folder or a ``.pt``
path. For a checkpoint the Hessian is that of its mean cross-entropy over
``samples`` seeded images of ``split`` (all when None), in batches of
``batch_size``, BatchNorm in eval mode: what ``landscape hessian`` analyses,
uncached. This module sits on the analysis layer (it loads checkpoints); the
engines stay pure math.
"""

from __future__ import annotations

import os

from landscape.analysis.cache import as_checkpoint
from landscape.checkpoint import Checkpoint
from landscape.hessian import density, hutchpp, lanczos


def _inputs(target, loss_fn, data, split: str, samples: int | None, batch_size: int, seed: int) -> tuple:
    """``(model or operator, loss_fn, data)`` for the engine: a checkpoint becomes its model, loss and images."""
    if loss_fn is None and data is None and isinstance(target, (Checkpoint, str, os.PathLike)):
        ck = as_checkpoint(target)
        return ck.model, ck.loss_fn, ck.loader(split, batch_size=batch_size, samples=samples, seed=seed)
    return target, loss_fn, data


def top_eigenvalues(target, loss_fn=None, data=None, *, split: str = "train", samples: int | None = 512,
                    batch_size: int = 128, **kwargs) -> lanczos.EigenResult:
    """Certified top-``k`` Hessian eigenvalues of a checkpoint (or model + loss + data, or an operator).

    ``landscape.top_eigenvalues(landscape.load_checkpoint(run), k=1)``; ``kwargs`` go to
    :func:`landscape.hessian.top_eigenvalues` (``k``, ``tol``, ``max_hvps``, ``seed``, ...).
    """
    seed = kwargs.get("seed", 0)
    return lanczos.top_eigenvalues(*_inputs(target, loss_fn, data, split, samples, batch_size, seed), **kwargs)


def trace(target, loss_fn=None, data=None, *, split: str = "train", samples: int | None = 512,
          batch_size: int = 128, **kwargs) -> hutchpp.TraceResult:
    """Hessian trace with a 95% CI of a checkpoint (or model + loss + data, or an operator).

    ``kwargs`` go to :func:`landscape.hessian.trace` (``method``, ``rtol``, ``max_hvps``, ``seed``, ...).
    """
    seed = kwargs.get("seed", 0)
    return hutchpp.trace(*_inputs(target, loss_fn, data, split, samples, batch_size, seed), **kwargs)


def spectral_density(target, loss_fn=None, data=None, *, split: str = "train", samples: int | None = 512,
                     batch_size: int = 128, **kwargs) -> density.DensityResult:
    """Hessian spectral density (SLQ) of a checkpoint (or model + loss + data, or an operator).

    ``kwargs`` go to :func:`landscape.hessian.spectral_density` (``runs``, ``steps``, ``seed``, ...).
    """
    seed = kwargs.get("seed", 0)
    return density.spectral_density(*_inputs(target, loss_fn, data, split, samples, batch_size, seed), **kwargs)
