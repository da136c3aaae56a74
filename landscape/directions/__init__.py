"""Landscape directions: parameter-shaped vectors ``dict[str, Tensor]`` to move the weights along.

* :func:`random_directions` - Gaussian, filter-normalised (Li et al., 2018);
* :func:`eigen_directions` - top Hessian eigenvectors (unit norm);
* :func:`interp_direction` - towards another checkpoint's weights (``t = 1`` is the other model);
* :func:`trajectory_pca` - principal directions of the training trajectory.
"""

from landscape.directions.eigen import eigen_directions
from landscape.directions.interp import interp_direction
from landscape.directions.pca import TrajectoryPCA, trajectory_pca
from landscape.directions.random import filter_normalize, random_directions
from landscape.directions.vectors import Vector, check_fits, norm, tensor_hash, trainable

__all__ = [
    "TrajectoryPCA",
    "Vector",
    "check_fits",
    "eigen_directions",
    "filter_normalize",
    "interp_direction",
    "norm",
    "random_directions",
    "tensor_hash",
    "trainable",
    "trajectory_pca",
]
