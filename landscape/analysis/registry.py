"""The analysis registry: one :class:`AnalysisSpec` per analysis that the report and the study run.

``landscape report`` finds (or computes) every quantity some spec provides;
``landscape study`` runs every spec, grouped by ``stage``; ``landscape list
analyses`` prints them. A new analysis is one driver module (an
``analyze(ck, ..., seed, progress) -> record`` that goes through
:func:`landscape.analysis.cache.cached`) plus one :func:`register_analysis`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from landscape.errors import LandscapeError


@dataclass(frozen=True)
class AnalysisSpec:
    """One analysis of a checkpoint, as the report and the study see it.

    * ``name``: unique (``"surface_1d"``); ``kind``: the record kind it writes
      in ``analysis/`` (``"surface"``; several specs may share one);
    * ``compute(ck, seed=..., progress=..., **kwargs) -> record``: the driver;
    * ``provides``: quantity -> test that a stored record of ``kind`` provides it;
    * ``report_defaults``: keyword arguments the report needs on top of the
      driver's defaults; ``quick_defaults``: what ``study --quick`` adds on top;
    * ``stage``: the study's timing stage (default ``name``); ``description``: one line.
    """

    name: str
    kind: str
    compute: Callable[..., dict]
    provides: dict[str, Callable[[dict], bool]]
    report_defaults: dict = field(default_factory=dict)
    quick_defaults: dict = field(default_factory=dict)
    stage: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        if not self.stage:
            object.__setattr__(self, "stage", self.name)

    def run(self, ck, seed: int = 0, overrides: dict | None = None, progress: bool = True) -> dict:
        """The (cached) record on ``ck``: driver defaults, then ``report_defaults``, then ``overrides``."""
        return self.compute(ck, **{"seed": seed, **self.report_defaults, **(overrides or {})}, progress=progress)


_REGISTRY: dict[str, AnalysisSpec] = {}


def register_analysis(spec: AnalysisSpec, overwrite: bool = False) -> AnalysisSpec:
    """Add ``spec`` (``overwrite`` replaces one of that name); a quantity may be provided by one spec only."""
    if spec.name in _REGISTRY and not overwrite:
        raise LandscapeError(f"analysis {spec.name!r} is already registered (pass overwrite=True to replace it)")
    taken = {q: s.name for s in _REGISTRY.values() if s.name != spec.name for q in s.provides}
    clash = sorted(q for q in spec.provides if q in taken)
    if clash:
        raise LandscapeError(f"analysis {spec.name!r}: quantities {clash} are already provided by {taken[clash[0]]!r}")
    _REGISTRY[spec.name] = spec
    return spec


def list_analyses() -> list[str]:
    """Registered analysis names, in registration order."""
    return list(_REGISTRY)


def get_analysis(name: str) -> AnalysisSpec:
    """The spec of ``name``; LandscapeError naming the choices if unknown."""
    if name not in _REGISTRY:
        raise LandscapeError(f"unknown analysis {name!r}; choose from: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def quantities() -> dict[str, tuple[str, Callable[[dict], bool]]]:
    """Every quantity some analysis provides -> ``(record kind, test)``, in registration order."""
    return {q: (s.kind, test) for s in _REGISTRY.values() for q, test in s.provides.items()}
