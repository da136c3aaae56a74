"""The measure registry: one :class:`MeasureSpec` per generalization measure.

A spec either computes its value from a loaded checkpoint (``compute``, run
by :func:`landscape.analysis.measures.analyze` and cached in a
``measures`` record) or reads it from another analysis record (``source`` =
``"hessian"`` or ``"sharpness"``, ``extract``), so nothing is computed twice.
Adding a measure is one :func:`register` call (see :mod:`landscape.measures.catalogue`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from landscape.errors import LandscapeError


@dataclass(frozen=True)
class MeasureSpec:
    """A generalization measure.

    ``compute(ctx) -> dict`` returns ``{name: value, ...}`` for one or more
    measures of a *group* (e.g. the PAC-Bayes search gives sigma and the
    bound terms together) plus optional ``"details"``; ``group`` names that
    computation so it runs once. ``extract(record) -> float | None`` reads a
    reused value from the newest record of kind ``source``; ``extras(record)``
    adds what the report shows next to it (keys ``ci``, ``std``, ``certified``,
    ``rho``). ``label``: axis and column title (default ``name``).

    ``direction`` is the expected sign, fixed before looking at any data:
    ``+1`` when a larger value should mean a larger generalization gap (a
    complexity measure), ``-1`` when it should mean a smaller one. The robust
    sign error and ``worst_domain_tau`` score against it. ``monotone_of``
    names a measure this one is a strictly monotone transform of (rank
    statistics agree up to sign), ``monotone_axis`` an axis that must be fixed
    for that to hold (e.g. ``"model"``: the layer count is constant); tables
    show the first and list the others beside it.
    """

    name: str
    units: str
    reference: str
    definition: str
    group: str = ""
    compute: Callable[[object], dict] | None = None
    source: str = "measures"
    extract: Callable[[dict], float | None] | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)
    direction: int = 1
    monotone_of: str = ""
    monotone_axis: str = ""
    label: str = ""
    extras: Callable[[dict], dict] | None = None

    @property
    def title(self) -> str:
        """``label`` or, without one, ``name``."""
        return self.label or self.name

    def read(self, record: dict | None) -> tuple[float | None, dict]:
        """``(value, extras)`` of a record of kind ``source`` (``(None, {})`` for no record or no value)."""
        value = None if record is None or self.extract is None else self.extract(record)
        if value is None:
            return None, {}
        return value, dict(self.extras(record)) if self.extras else {}


REGISTRY: dict[str, MeasureSpec] = {}


def register(spec: MeasureSpec) -> MeasureSpec:
    """Add ``spec`` to :data:`REGISTRY` (a name can be registered once)."""
    if spec.name in REGISTRY:
        raise LandscapeError(f"measure {spec.name!r} is already registered")
    if (spec.compute is None) == (spec.extract is None):
        raise LandscapeError(f"measure {spec.name!r} needs exactly one of compute or extract")
    if spec.direction not in (1, -1):
        raise LandscapeError(f"measure {spec.name!r}: direction must be +1 or -1")
    if spec.monotone_of and spec.monotone_of not in REGISTRY:
        raise LandscapeError(f"measure {spec.name!r}: monotone_of {spec.monotone_of!r} is not registered (register "
                             "it first)")
    REGISTRY[spec.name] = spec
    return spec


def select_measures(names: str | list[str] | None) -> list[MeasureSpec]:
    """Specs for ``"all"``/None, a comma list or a list of names; unknown names are a LandscapeError."""
    if names is None or names == "all":
        return list(REGISTRY.values())
    items = [n.strip() for n in (names.split(",") if isinstance(names, str) else names) if n.strip()]
    unknown = [n for n in items if n not in REGISTRY]
    if unknown:
        raise LandscapeError(f"unknown measure(s) {', '.join(unknown)}; known: {', '.join(REGISTRY)}")
    if not items:
        raise LandscapeError("no measure named: pass 'all' or a comma list")
    return [REGISTRY[n] for n in items]
