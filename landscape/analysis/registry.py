"""The analysis registry: one :class:`AnalysisSpec` per analysis that the report and the study run.

``landscape report`` finds (or computes) every quantity some spec provides,
plans the cost of what is missing with the spec's ``cost`` and adapts its
settings to each run with ``adapt``; ``landscape study`` runs every spec,
grouped by ``stage``; ``landscape list analyses`` prints them. A new analysis
is one driver module (an ``analyze(ck, ..., seed, progress) -> record`` that
goes through :func:`landscape.analysis.cache.cached`) plus one
:func:`register_analysis`; its runs-table columns are measures
(:func:`landscape.measures.register`) and its figures report panels
(:func:`landscape.report.panels.register_panel`). Nothing else lists analysis
names (see ``examples/custom_analysis.py``).
"""

from __future__ import annotations

import inspect
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
    * ``stage``: the study's timing stage (default ``name``); ``description``: one line;
    * ``cost(ck, kwargs, measure) -> CostPlan``: the units a run with ``kwargs`` will use on ``ck``,
      with ``unit_seconds`` timed on ``ck`` when ``measure`` (None: the report plans one "run" of
      unknown duration);
    * ``columns``: measure names (:data:`landscape.measures.REGISTRY`, read from this analysis's records)
      that the report shows in its runs table and correlates with generalization;
    * ``adapt(ck, kwargs) -> kwargs``: the report's settings fitted to ``ck`` (e.g. a sub-batch size
      capped at the training images); a setting the user fixed with a report option (``--m``) is
      applied after it.
    """

    name: str
    kind: str
    compute: Callable[..., dict]
    provides: dict[str, Callable[[dict], bool]]
    report_defaults: dict = field(default_factory=dict)
    quick_defaults: dict = field(default_factory=dict)
    stage: str = ""
    description: str = ""
    columns: tuple[str, ...] = ()
    cost: Callable[..., object] | None = None
    adapt: Callable[..., dict] | None = None

    def __post_init__(self) -> None:
        if not self.stage:
            object.__setattr__(self, "stage", self.name)

    def defaults(self) -> dict:
        """The driver's keyword arguments with their defaults (``ck`` and ``progress`` left out)."""
        params = inspect.signature(self.compute).parameters
        return {k: p.default for k, p in params.items()
                if p.default is not inspect.Parameter.empty and k not in ("ck", "progress")}

    def settings(self, ck, seed: int = 0, overrides: dict | None = None, options: dict | None = None) -> dict:
        """What the report runs the driver with on ``ck``: its defaults, ``seed``, ``report_defaults`` and
        ``overrides``, fitted by ``adapt``; then each report option (``{"m": 32}``; None: not given) that
        the driver takes.
        """
        kwargs = {**self.defaults(), "seed": seed, **self.report_defaults, **(overrides or {})}
        if self.adapt is not None:
            kwargs = self.adapt(ck, kwargs)
        kwargs.update({k: v for k, v in (options or {}).items() if v is not None and k in kwargs})
        return kwargs

    def run(self, ck, seed: int = 0, overrides: dict | None = None, progress: bool = True,
            options: dict | None = None) -> dict:
        """The (cached) record on ``ck``, run with :meth:`settings`."""
        return self.compute(ck, **self.settings(ck, seed, overrides, options), progress=progress)


_REGISTRY: dict[str, AnalysisSpec] = {}


def register_analysis(spec: AnalysisSpec, overwrite: bool = False) -> AnalysisSpec:
    """Add ``spec`` (``overwrite`` replaces one of that name); a quantity may be provided by one spec only."""
    if spec.name in _REGISTRY and not overwrite:
        raise LandscapeError(f"analysis {spec.name!r} is already registered (pass overwrite=True to replace it)")
    from landscape.measures import REGISTRY

    unknown = [c for c in spec.columns if c not in REGISTRY or REGISTRY[c].source != spec.kind]
    if unknown:
        raise LandscapeError(f"analysis {spec.name!r}: columns {unknown} are not measures read from {spec.kind!r} "
                             "records; register them first (landscape.measures.register)")
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


def columns() -> list[str]:
    """The measure names of every analysis's ``columns``, in registration order (the report's flatness measures)."""
    return list(dict.fromkeys(c for s in _REGISTRY.values() for c in s.columns))
