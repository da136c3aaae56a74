"""1D and 2D loss surfaces around a model (Li et al., 2018), with resumable evaluation (pure math).

* :func:`evaluate_surface` - the evaluator: model, loss, data, directions, coordinates;
* :func:`axis` - grid coordinates with an exact 0 and exact symmetry.

The checkpoint-level, cached driver (``.npz``, PNG, JSON record in the run's
``analysis/``) is :func:`landscape.analysis.surface.analyze`, also reachable by
calling the package (``landscape.surface(ck, ...)``) or as ``landscape.surface.analyze``.
"""

from landscape.drivers import make_callable
from landscape.surface.evaluate import SurfaceArrays, evaluate_point, evaluate_surface, prepare_batches, recompute_bn
from landscape.surface.grid import axis, interp_axis, parse_grid

__all__ = ["SurfaceArrays", "axis", "evaluate_point", "evaluate_surface", "interp_axis", "parse_grid",
           "prepare_batches", "recompute_bn"]

make_callable(__name__, "landscape.analysis.surface")
