"""From a ``--directions`` spec to directions, axis ranges and labels for a checkpoint.

Specs and their axes (``span`` scales them all):

* ``random``: filter-normalised Gaussian directions (seeded); ``x, y`` in
  ``[-span, span]``, so ``span = 1`` moves every filter by up to its own norm.
* ``eigen``: top Hessian eigenvectors (unit norm) of the loss on the surface's
  own data; ``x, y`` in ``[-span, span]`` in parameter-space L2 units.
* ``interp:OTHER.pt``: ``x = t`` along ``w_other - w`` from about ``-span/2``
  to ``1 + span/2`` (``t = 1`` is the other checkpoint), on a grid that holds
  ``t = 0`` and ``t = 1`` exactly whatever its size
  (:func:`~landscape.surface.grid.interp_axis`); for 2D, ``y`` along a
  filter-normalised random direction in ``[-span, span]``.
* ``pca``: principal directions of the run's trajectory (``epoch_NNN.pt``
  files, uncentred, through the model); each axis covers
  ``[-R, R]``, ``R = span * PCA_MARGIN * max_e |coordinate of epoch e|``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from landscape.checkpoint import read_payload, resolve_checkpoint_path
from landscape.directions.eigen import eigen_directions
from landscape.directions.interp import interp_direction
from landscape.directions.pca import trajectory_pca
from landscape.directions.random import random_directions
from landscape.directions.vectors import Vector, norm, tensor_hash, trainable
from landscape.errors import LandscapeError
from landscape.io import sha256_bytes

KINDS = ("random", "eigen", "interp", "pca")
PCA_MARGIN = 1.2  # the PCA axes reach 20% beyond the farthest epoch


@dataclass
class DirectionPlan:
    """Directions with their axis ranges, labels and provenance."""

    kind: str
    directions: list[Vector]
    ranges: list[tuple[float, float]]
    labels: list[str]
    info: dict = field(default_factory=dict)  # kind-specific, JSON-able
    trajectory: dict | None = None  # PCA: {"epochs", "x", "y" | None, "distance", "length"}

    def describe(self, seed: int) -> list[dict]:
        """Per direction: label, seed, norm and a hash of its tensors."""
        return [{"label": lab, "seed": seed, "norm": norm(d), "hash": tensor_hash(d)}
                for lab, d in zip(self.labels, self.directions)]


def parse_spec(spec: str) -> tuple[str, Path | None]:
    """``"random"``, ``"eigen"``, ``"pca"`` or ``"interp:PATH"`` -> (kind, path or None)."""
    text = str(spec).strip()
    if text.startswith("interp:"):
        other = text[len("interp:"):]
        if not other:
            raise LandscapeError("directions interp: needs a checkpoint, e.g. interp:checkpoints/RUN/final.pt",
                                 params=("directions",))
        return "interp", Path(other)
    if text in ("random", "eigen", "pca"):
        return text, None
    raise LandscapeError(f"directions must be random, eigen, interp:OTHER.pt or pca, got {spec!r}")


def spec_settings(kind: str, other: Path | None, ck) -> dict:
    """What in the spec changes the numbers: the other checkpoint's or the epoch files' content hashes."""
    if kind == "interp":
        path = resolve_checkpoint_path(other)
        if not path.is_file():
            raise LandscapeError(f"interp: checkpoint not found: {other}")
        return {"other": path.name, "other_sha256": sha256_bytes(path.read_bytes())[:16]}
    if kind == "pca":
        return {"epochs": [[p.name, sha256_bytes(p.read_bytes())[:16]] for p in _epoch_paths(ck)]}
    return {}


def _epoch_number(path: Path) -> int:
    return int(re.search(r"(\d+)$", path.stem).group(1))


def _epoch_paths(ck) -> list[Path]:
    """Every epoch file of this run (same ``run_id`` as the checkpoint).

    Without a consecutive run of at least two, a LandscapeError says to train with ``--keep all``.
    Epoch files left by another run in the same folder are skipped.
    """
    mine = ck.meta.get("run_id")
    paths = [p for p in ck.epoch_paths() if read_payload(p).get("run_id") == mine]
    epochs = [_epoch_number(p) for p in paths]
    if len(paths) < 2 or epochs != list(range(epochs[0], epochs[-1] + 1)):
        found = ", ".join(str(e) for e in epochs) or "none"
        raise LandscapeError(
            f"directions pca needs the run's per-epoch weights (epoch_NNN.pt) but {ck.run_dir} has epochs: {found}; "
            "train with --keep all"
        )
    return paths


def make_plan(ck, kind: str, other: Path | None, dim: int, span: float, seed: int, data,
              include_bias_bn: bool = False) -> DirectionPlan:
    """Build the directions for ``ck.model`` (``data``: the surface's batches, used by ``eigen``); none may be zero."""
    return _check_nonzero(_make_plan(ck, kind, other, dim, span, seed, data, include_bias_bn))


def _make_plan(ck, kind: str, other: Path | None, dim: int, span: float, seed: int, data,
               include_bias_bn: bool) -> DirectionPlan:
    model = ck.model
    if kind == "random":
        dirs = random_directions(model, dim, seed=seed, include_bias_bn=include_bias_bn)
        labels = [f"direction {i + 1} (filter-normalised, seed {seed})" for i in range(dim)]
        return DirectionPlan(kind, dirs, [(-span, span)] * dim, labels, {"include_bias_bn": include_bias_bn})
    if kind == "eigen":
        dirs, info = eigen_directions(model, ck.loss_fn, data, k=dim, seed=seed)
        labels = [f"Hessian eigenvector {i + 1} (lambda = {lam:.4g})" for i, lam in enumerate(info["eigenvalues"])]
        return DirectionPlan(kind, dirs, [(-span, span)] * dim, labels, info)
    if kind == "interp":
        other = resolve_checkpoint_path(other)
        other_state = ck.load_weights(other)
        dirs = [interp_direction(model, other_state)]
        labels = [f"t (0 = this model, 1 = {other.parent.name}/{other.name})"]
        ranges = [(-span / 2, 1 + span / 2)]
        if dim == 2:
            dirs += random_directions(model, 1, seed=seed, include_bias_bn=include_bias_bn)
            labels.append(f"random direction (filter-normalised, seed {seed})")
            ranges.append((-span, span))
        return DirectionPlan(kind, dirs, ranges, labels, {"other": str(other), "include_bias_bn": include_bias_bn})
    if kind == "pca":
        return _pca_plan(ck, dim, span)
    raise LandscapeError(f"unknown direction kind {kind!r}")


def _check_nonzero(plan: DirectionPlan) -> DirectionPlan:
    """A zero direction (e.g. ``interp:`` the same weights) would draw a flat line: refuse it."""
    for label, d in zip(plan.labels, plan.directions):
        if norm(d) == 0:
            raise LandscapeError(f"the {plan.kind} direction '{label}' is zero (the other weights equal this "
                                 "model's?); a surface along it would be flat")
    return plan


def _pca_plan(ck, dim: int, span: float) -> DirectionPlan:
    paths = _epoch_paths(ck)
    states = [read_payload(p)["state_dict"] for p in paths]
    pca = trajectory_pca(trainable(ck.model), states, k=dim)
    epochs = [_epoch_number(p) for p in paths]
    reach = np.abs(pca.coords).max(axis=0) * PCA_MARGIN * span
    ranges = [(-float(r), float(r)) for r in reach]
    labels = [f"PC{i + 1} ({100 * v:.1f}% of the trajectory)" for i, v in enumerate(pca.explained_variance)]
    trajectory = {
        "epochs": epochs,
        "x": pca.coords[:, 0].tolist(),
        "y": pca.coords[:, 1].tolist() if dim == 2 else None,
        "distance": pca.distance.tolist(),
        "length": pca.length.tolist(),
    }
    info = {"explained_variance": pca.explained_variance.tolist(), "epochs": epochs}
    return DirectionPlan("pca", pca.directions, ranges, labels, info, trajectory)
