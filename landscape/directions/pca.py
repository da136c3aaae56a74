"""PCA directions of a training trajectory (Li et al., 2018, section 7).

Rows ``m_e = w_e - w`` for every saved epoch ``e`` (trainable parameters,
float64), where ``w`` is the analysed model. The directions are the top right
singular vectors of ``M = [m_0; m_1; ...]``, *uncentred*: the plotted plane
must pass through ``w`` itself, and the uncentred components are the plane
through ``w`` that minimises the summed squared distance of the epochs to it.

* ``explained_variance[k] = s_k^2 / sum_j s_j^2``: the share of the squared
  trajectory length that component ``k`` captures.
* ``coords[e, k] = <m_e, pc_k>``: each epoch's coordinates on the plane, in
  parameter-space L2 units (the components have unit norm).
* ``distance[e] = ||m_e - sum_k coords[e, k] pc_k||``: how far epoch ``e`` is
  off the plane (same units).

Sign convention: each component points from the first epoch towards ``w``
(the first epoch's coordinate is <= 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from landscape.directions.vectors import Vector
from landscape.errors import LandscapeError

_RANK_RTOL = 1e-10


@dataclass
class TrajectoryPCA:
    """Result of :func:`trajectory_pca`; arrays are float64 numpy, ``E`` epochs, ``k`` components."""

    directions: list[Vector]  # k unit-norm components, shaped like the weights
    explained_variance: np.ndarray  # [k] ratios in [0, 1]
    coords: np.ndarray  # [E, k]
    distance: np.ndarray  # [E] distance off the plane
    length: np.ndarray  # [E] ||w_e - w||


def trajectory_pca(weights: Vector, trajectory: list[dict[str, torch.Tensor]], k: int = 2) -> TrajectoryPCA:
    """Top-``k`` uncentred principal directions of ``trajectory - weights`` (see the module doc).

    ``weights``: the model's trainable parameters; ``trajectory``: one state
    dict per saved epoch (only the names in ``weights`` are read).
    """
    names = list(weights)
    if len(trajectory) < k:
        raise LandscapeError(f"PCA of the trajectory needs at least {k} saved epochs, found {len(trajectory)}")
    rows = []
    for e, state in enumerate(trajectory):
        missing = [n for n in names if n not in state or tuple(state[n].shape) != tuple(weights[n].shape)]
        if missing:
            raise LandscapeError(f"epoch weights #{e} do not match the model (first mismatch: {missing[0]!r})")
        rows.append(torch.cat([(state[n].detach().cpu().double() - weights[n].detach().cpu().double()).reshape(-1)
                               for n in names]))
    m = torch.stack(rows)  # [E, P]
    u, s, vh = torch.linalg.svd(m, full_matrices=False)
    if s.numel() < k or s[0] <= 0 or s[k - 1] <= _RANK_RTOL * s[0]:
        raise LandscapeError(
            f"the training trajectory ({len(trajectory)} saved epochs) spans fewer than {k} directions; "
            "use dim=1 or train more epochs"
        )
    pcs = vh[:k].clone()
    coords = m @ pcs.T  # [E, k]
    flip = torch.where(coords[0] > 0, -1.0, 1.0).to(pcs.dtype)
    pcs *= flip[:, None]
    coords *= flip[None, :]
    residual = m - coords @ pcs
    sizes = [weights[n].numel() for n in names]
    directions = []
    for pc in pcs:
        parts = torch.split(pc, sizes)
        directions.append(
            {n: part.reshape(weights[n].shape).to(device=weights[n].device, dtype=weights[n].dtype) for n,
             part in zip(names, parts)}
        )
    return TrajectoryPCA(
        directions=directions,
        explained_variance=((s[:k] ** 2) / (s**2).sum()).numpy(),
        coords=coords.numpy(),
        distance=residual.norm(dim=1).numpy(),
        length=m.norm(dim=1).numpy(),
    )
