"""The report's figures as a list of small :class:`Panel` objects.

A panel names the plot-ready series it needs (:data:`SERIES`, computed once
per report from the collected runs) and makes its interactive plotly figure
and its matplotlib PNG from them. The report shows every registered panel
that has data, in order; ``--png DIR`` writes each one's PNG. A new analysis
adds its panel with :func:`register_panel` (and its series with
:func:`register_series`); the built-in ones are registered in
:mod:`landscape.report.panel_specs`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from landscape.errors import LandscapeError

#: series name -> ``make(runs, rows) -> dict`` of plot-ready data (:func:`register_series`)
SERIES: dict[str, Callable] = {}


@dataclass(frozen=True)
class Panel:
    """One report figure.

    ``id``: anchor in the page; ``title`` and ``caption``: plain text;
    ``series``: the :data:`SERIES` it reads; ``plotly(data, rows, summary)`` and
    ``png(data, rows, summary)`` return a figure or None (no data; ``png`` None:
    no PNG); ``png_name``: the PNG's file stem; ``section``: one of :data:`SECTIONS`.
    """

    id: str
    title: str
    caption: str
    series: tuple[str, ...]
    plotly: Callable[[dict, Sequence[dict], dict], object]
    png: Callable[[dict, Sequence[dict], dict], object] | None = None
    png_name: str = ""
    section: str = "landscapes"


#: The report sections a panel may go to (their figures are shown in this order of registration).
SECTIONS = ("correlations", "landscapes")

_PANELS: list[Panel] = []


def register_panel(panel: Panel, before: str | None = None) -> Panel:
    """Add ``panel`` at the end (or before the panel with id ``before``); ids are unique."""
    if any(p.id == panel.id for p in _PANELS):
        raise LandscapeError(f"report panel {panel.id!r} is already registered")
    if panel.section not in SECTIONS:
        raise LandscapeError(f"report panel {panel.id!r}: unknown section {panel.section!r}; use one of "
                             f"{', '.join(SECTIONS)}")
    unknown = [s for s in panel.series if s not in SERIES]
    if unknown:
        raise LandscapeError(f"report panel {panel.id!r} needs unknown series {unknown}; register them first")
    ids = [p.id for p in _PANELS]
    _PANELS.insert(ids.index(before) if before in ids else len(_PANELS), panel)
    return panel


def register_series(name: str, make: Callable) -> None:
    """Add plot-ready series ``name``: ``make(runs, rows) -> dict`` (runs lacking the data are skipped)."""
    if name in SERIES:
        raise LandscapeError(f"report series {name!r} is already registered")
    SERIES[name] = make


def panels() -> list[Panel]:
    """The registered panels, in page order."""
    return list(_PANELS)


def series_data(runs, rows, names: Sequence[str] | None = None) -> dict:
    """``{series name: data}`` for every series a panel needs (or ``names``)."""
    wanted = names if names is not None else dict.fromkeys(s for p in _PANELS for s in p.series)
    return {name: SERIES[name](runs, rows) for name in wanted}
