"""Checkpoint-level drivers: each analysis of a checkpoint, cached in its run's ``analysis/``.

The engines (:mod:`landscape.hessian`, :mod:`landscape.sharpness`,
:mod:`landscape.directions`, :mod:`landscape.surface`) are pure math over a
model, a loss and data.  This layer loads checkpoints, picks their data and
caches every result through one step, :func:`~landscape.analysis.cache.cached`
(keyed by ``ck.fingerprint``):

* :func:`landscape.analysis.hessian.analyze` - top-k eigenvalues, trace, density, per-layer;
* :func:`landscape.analysis.sharpness.analyze` - worst/average m-sharpness;
* :func:`landscape.analysis.surface.analyze` - 1D/2D loss surfaces;
* :func:`landscape.analysis.measures.analyze` - the generalization-measure suite (``measures``);
* :func:`landscape.analysis.external.analyze` - cross-site evaluation (``metrics`` with ``external``).

Each registers an :class:`AnalysisSpec` (:mod:`landscape.analysis.registry`)
that the report, the study and ``landscape list analyses`` iterate over.
"""

# isort: off
from landscape.analysis.cache import cached, checkpoint_settings
from landscape.analysis.registry import (AnalysisSpec, columns, get_analysis, list_analyses, quantities,
                                        register_analysis)
from landscape.analysis import hessian, sharpness, surface, measures  # noqa: F401  (each registers its spec; this order)
# isort: on

__all__ = ["AnalysisSpec", "cached", "checkpoint_settings", "columns", "get_analysis", "list_analyses", "quantities",
           "register_analysis"]
