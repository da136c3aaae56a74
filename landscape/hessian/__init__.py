"""Hessian engine: certified extreme eigenvalues, trace with a CI, spectral density, per-block breakdown.

Everything works on an :class:`Operator` (``size``, ``dtype``, ``device``,
``matvec``, optional ``matmat``); the functions accept either a model with
``loss_fn`` and ``data`` (the Hessian of the sample-weighted mean loss,
BatchNorm in eval mode, attention on the math kernel: see
:mod:`landscape.hessian.second_order`) or an operator directly.  Cost is counted in
Hessian-vector products.  Pure math: this package imports nothing from
``data``, ``train``, ``checkpoint`` or ``report``; the checkpoint-level,
cached driver is :func:`landscape.analysis.hessian.analyze` (also reachable as
``landscape.hessian.analyze``).

Modules and the functions they define have different names, so both stay
reachable: :mod:`~landscape.hessian.lanczos` (:func:`top_eigenvalues`),
:mod:`~landscape.hessian.hutchpp` (:func:`trace`), :mod:`~landscape.hessian.density`
(:func:`spectral_density`), :mod:`~landscape.hessian.blocks` (:func:`per_block`),
:mod:`~landscape.hessian.operator` (:class:`Operator`, :class:`HessianOperator`,
:func:`hessian_operator`), :mod:`~landscape.hessian.ggn` (:func:`ggn_operator`,
:func:`fisher_operator`).

Example (``A`` has eigenvalues 1, 2, 3)::

    >>> import torch
    >>> from landscape.hessian import MatrixOperator, top_eigenvalues
    >>> A = torch.diag(torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
    >>> res = top_eigenvalues(MatrixOperator(A), k=2, tol=1e-8)
    >>> [round(v, 6) for v in res.eigenvalues]
    [3.0, 2.0]
"""

from landscape.drivers import make_callable
from landscape.hessian.blocks import BlockResult, per_block
from landscape.hessian.density import DensityResult, spectral_density
from landscape.hessian.ggn import FisherOperator, GGNOperator, fisher_operator, ggn_operator
from landscape.hessian.hutchpp import TraceResult, trace
from landscape.hessian.lanczos import ConvergenceWarning, EigenResult, top_eigenvalues
from landscape.hessian.operator import (
    HessianOperator,
    MatrixOperator,
    ModelOperator,
    Operator,
    hessian_operator,
    hvp_operator,
)

__all__ = [
    "BlockResult", "ConvergenceWarning", "DensityResult", "EigenResult", "FisherOperator", "GGNOperator",
    "HessianOperator", "MatrixOperator", "ModelOperator", "Operator", "TraceResult", "fisher_operator",
    "ggn_operator", "hessian_operator", "hvp_operator", "per_block", "spectral_density", "top_eigenvalues",
    "trace",
]

make_callable(__name__, "landscape.analysis.hessian")
