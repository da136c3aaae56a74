"""Hessian analysis: certified extreme eigenvalues, trace with a CI, spectral density, per-block breakdown.

Everything works on an *operator* (``size``, ``dtype``, ``device``, ``hvps``,
``matvec``); the functions accept either a model with ``loss_fn`` and
``data`` (the Hessian of the sample-weighted mean loss, BatchNorm in eval
mode) or an operator directly.  Cost is counted in Hessian-vector products.

>>> res = top_eigenvalues(model, nn.CrossEntropyLoss(), loader, k=5, tol=1e-3)
>>> res.eigenvalues, res.residuals, res.converged, res.hvps
"""

from landscape.hessian.analyze import analyze
from landscape.hessian.blocks import BlockResult, per_block
from landscape.hessian.density import DensityResult, spectral_density
from landscape.hessian.lanczos import ConvergenceWarning, EigenResult, top_eigenvalues
from landscape.hessian.operator import HessianOperator, MatrixOperator, hvp_operator
from landscape.hessian.trace import TraceResult, trace

__all__ = [
    "BlockResult", "ConvergenceWarning", "DensityResult", "EigenResult", "HessianOperator", "MatrixOperator",
    "TraceResult", "analyze", "hvp_operator", "per_block", "spectral_density", "top_eigenvalues", "trace",
]
