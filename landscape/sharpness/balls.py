"""Norms, projections and steepest-ascent directions on parameter-shaped vectors.

A vector is a ``dict[str, Tensor]``; every norm is taken over all parameters
together (the concatenation of the flattened tensors):

* ``"l2"``:   ``||u||_2 = sqrt(sum_i u_i^2)``
* ``"linf"``: ``||u||_inf = max_i |u_i|``

``project(u, rho, norm)`` is the Euclidean projection onto the ball
``{u : ||u|| <= rho}``; ``steepest(g, norm)`` is the unit-norm direction that
maximises ``<g, d>`` over that ball's unit sphere (``g / ||g||_2`` for l2,
``sign(g)`` for linf).
"""

from __future__ import annotations

import math

import torch

from landscape.errors import LandscapeError
from landscape.tensors import Vector

NORMS = ("l2", "linf")


def check_norm(norm: str) -> str:
    """Return ``norm`` if it is a supported ball, else raise :class:`LandscapeError`."""
    if norm not in NORMS:
        raise LandscapeError(f"unknown norm {norm!r}; use one of {', '.join(NORMS)}")
    return norm


def norm_of(u: Vector, norm: str) -> float:
    """``||u||`` over all tensors together."""
    if norm == "l2":
        return math.sqrt(sum(float(t.pow(2).sum()) for t in u.values()))
    return max(float(t.abs().max()) if t.numel() else 0.0 for t in u.values())


def project(u: Vector, rho: float, norm: str) -> Vector:
    """Closest point to ``u`` in the ball of radius ``rho`` (a new dict)."""
    if norm == "l2":
        size = norm_of(u, "l2")
        factor = 1.0 if size <= rho else rho / size
        return {n: t * factor for n, t in u.items()}
    return {n: t.clamp(-rho, rho) for n, t in u.items()}


def steepest(g: Vector, norm: str) -> Vector | None:
    """Unit steepest-ascent direction for ``g`` in ``norm``; ``None`` when ``g`` is zero."""
    if norm == "l2":
        size = norm_of(g, "l2")
        if size == 0.0:
            return None
        return {n: t / size for n, t in g.items()}
    if all(not bool(t.any()) for t in g.values()):
        return None
    return {n: torch.sign(t) for n, t in g.items()}


def same(u: Vector, v: Vector) -> bool:
    """Whether two vectors are exactly equal."""
    return all(torch.equal(t, v[n]) for n, t in u.items())


def random_direction(like: Vector, norm: str, generator: torch.Generator) -> Vector:
    """A seeded random unit direction (Gaussian, normalised in ``norm``).

    Drawn on the CPU from ``generator`` so it is the same on every device.
    """
    z = {n: torch.randn(t.shape, generator=generator, dtype=torch.float64) for n, t in like.items()}
    d = steepest(z, norm)
    if d is None:  # pragma: no cover - a Gaussian draw is never exactly zero
        raise LandscapeError("random direction is zero")
    return {n: t.to(like[n].device, like[n].dtype) for n, t in d.items()}


def check_rhos(rhos) -> list[float]:
    """Validate a radius grid: a non-empty sequence of finite numbers > 0."""
    try:
        values = [float(r) for r in rhos]
    except (TypeError, ValueError):
        raise LandscapeError(f"rho must be a list of numbers, got {rhos!r}") from None
    if not values:
        raise LandscapeError("rho list is empty; give at least one radius, e.g. 0.05")
    bad = [r for r in values if not (math.isfinite(r) and r > 0)]
    if bad:
        raise LandscapeError(f"every rho must be a finite number > 0, got {bad[0]}")
    return values
