"""1D and 2D loss surfaces around a model (Li et al., 2018), with resumable evaluation.

* :func:`analyze` - a checkpoint's surface, cached in its run's ``analysis/``
  (``.npz`` arrays, PNG, self-contained HTML, JSON record);
* :func:`evaluate_surface` - the pure evaluator: model, loss, data, directions, coordinates;
* :func:`axis` - grid coordinates with an exact 0 and exact symmetry.
"""

from landscape.surface.analyze import analyze
from landscape.surface.evaluate import SurfaceArrays, evaluate_point, evaluate_surface, prepare_batches, recompute_bn
from landscape.surface.grid import axis, parse_grid

__all__ = ["SurfaceArrays", "analyze", "axis", "evaluate_point", "evaluate_surface", "parse_grid", "prepare_batches",
           "recompute_bn"]
