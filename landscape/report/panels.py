"""The report's figures as a list of small :class:`Panel` objects.

A panel names the plot-ready series it needs (:data:`SERIES`, computed once
per report from the collected runs) and makes its interactive plotly figure
and its matplotlib PNG from them. The report shows every registered panel
that has data, in order; ``--png DIR`` writes each one's PNG. A new analysis
adds its panel with :func:`register_panel` (and its series with
:func:`register_series`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from landscape.errors import LandscapeError
from landscape.report import figures, series

#: series name -> ``make(runs, rows) -> dict`` of plot-ready data (:mod:`landscape.report.series`)
SERIES: dict[str, Callable] = {
    "curves_1d": series.curves_1d,
    "planes_2d": series.planes_2d,
    "densities": series.densities,
    "sharpness": series.sharpness_curves,
}


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


def _mpl():
    """The matplotlib PNG makers, imported only when PNGs are written."""
    from landscape.report import pngs

    return pngs


def series_data(runs, rows, names: Sequence[str] | None = None) -> dict:
    """``{series name: data}`` for every series a panel needs (or ``names``)."""
    wanted = names if names is not None else dict.fromkeys(s for p in _PANELS for s in p.series)
    return {name: SERIES[name](runs, rows) for name in wanted}


for _panel in (
    Panel("flatness", "Flatness vs generalization", "Each flatness measure against test balanced accuracy and "
          "against the generalization gap (train − test balanced accuracy). Small dots are runs, diamonds the mean "
          "± std over the seeds of a group. Each panel gives Kendall τ and Spearman ρ over runs with bootstrap 95% "
          "CIs.", (), lambda d, rows, summary: figures.flatness_scatter(rows, summary),
          lambda d, rows, summary: _mpl().flatness(rows, summary), "flatness_vs_generalization", "correlations"),
    Panel("landscape-1d", "1D loss landscapes", "Loss along one filter-normalised random direction per run (Li et "
          "al. 2018); all runs on one axis. Use the log button for wide ranges.", ("curves_1d",),
          lambda d, *_: figures.landscape_1d(d["curves_1d"]),
          lambda d, *_: _mpl().curves(d["curves_1d"]["series"], "x", "loss", "α", "loss"), "landscape_1d"),
    Panel("surfaces-2d", "2D loss surfaces", "Contours on one shared colour scale and shared levels, so basins can "
          "be compared side by side; x marks the trained weights.", ("planes_2d",),
          lambda d, *_: figures.surface_contours(d["planes_2d"]), lambda d, *_: _mpl().contours(d["planes_2d"]),
          "surfaces_2d"),
    Panel("surfaces-3d", "2D loss surfaces in 3D", "Pick a run in the menu; the z-axis and colours stay fixed.",
          ("planes_2d",), lambda d, *_: figures.surface_3d(d["planes_2d"])),
    Panel("density", "Hessian spectral density", "Gaussian-smoothed eigenvalue density from stochastic Lanczos "
          "quadrature, all runs overlaid.", ("densities",), lambda d, *_: figures.spectral_density(d["densities"]),
          lambda d, *_: _mpl().curves(d["densities"]["series"], "grid", "density", "eigenvalue λ", "density",
                                    logy=True), "spectral_density"),
    Panel("sharpness", "m-sharpness across radii", "Mean ± std over sub-batches of the loss increase within radius "
          "ρ.", ("sharpness",), lambda d, *_: figures.sharpness_vs_rho(d["sharpness"]),
          lambda d, *_: _mpl().curves(d["sharpness"]["series"], "rhos", "mean", "radius ρ",
                                    "sharpness (loss increase)", logx=True, err="std"), "sharpness_vs_rho"),
):
    register_panel(_panel)
