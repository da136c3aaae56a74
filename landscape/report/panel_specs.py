"""The built-in report panels and their series: the only place in ``landscape.report`` that names
the quantities of the built-in analyses (``surface_1d``, ``surface_2d``, ``density``, ``m_sharpness``).
"""

from __future__ import annotations

from functools import partial

from landscape.report import figures, series
from landscape.report.compare_panel import BASELINE, paired_figure, paired_series
from landscape.report.panels import Panel, register_panel, register_series


def _mpl():
    """The matplotlib PNG makers, imported only when PNGs are written."""
    from landscape.report import pngs

    return pngs


register_series("curves_1d", partial(series.curves_1d, quantity="surface_1d"))
register_series("planes_2d", partial(series.planes_2d, quantity="surface_2d"))
register_series("densities", partial(series.densities, quantity="density"))
register_series("sharpness", partial(series.sharpness_curves, quantity="m_sharpness"))

for _panel in (
    Panel("flatness", "Flatness vs generalization", "Each flatness measure against test balanced accuracy and "
          "against the generalization gap (train − test balanced accuracy). Small dots are runs, diamonds the mean "
          "± std over the seeds of a group. Each panel gives Kendall τ within seeds with its 95% CI over seeds and its "
          "Holm p (the predictor table's cell).", (), lambda d, rows, summary: figures.flatness_scatter(rows, summary),
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
          "quadrature, all runs overlaid. The Hessian is taken in the raw weights: a function-preserving rescaling "
          "(a conv's weights × c with its BatchNorm statistics adjusted) moves its eigenvalues, so the spectra of "
          "two optimizers can differ by weight norm alone.", ("densities",),
          lambda d, *_: figures.spectral_density(d["densities"]),
          lambda d, *_: _mpl().curves(d["densities"]["series"], "grid", "density", "eigenvalue λ", "density",
                                    logy=True), "spectral_density"),
    Panel("sharpness", "m-sharpness across radii", "Mean ± std over sub-batches of the loss increase within radius "
          "ρ of the standard (raw-weight, not rescaling-invariant) m-sharpness; the adaptive one is a column of the "
          "runs table.", ("sharpness",), lambda d, *_: figures.sharpness_vs_rho(d["sharpness"]),
          lambda d, *_: _mpl().curves(d["sharpness"]["series"], "rhos", "mean", "radius ρ",
                                    "sharpness (loss increase)", logx=True, err="std"), "sharpness_vs_rho"),
):
    register_panel(_panel)

register_series("paired", paired_series)
register_panel(Panel(
    "paired", f"Paired differences from {BASELINE}",
    f"Each optimizer minus {BASELINE} on the same seed (same initial weights, data order and split): mean over "
    "seeds (dot; diamond when the Holm-adjusted paired t-test p < 0.05) with its 95% t-interval; the dotted line "
    "is no difference. Hover for the number of pairs, p, Holm p and the smallest difference the design detects "
    "(80% power, alpha 0.05). `landscape compare` adds each run's test-set bootstrap CIs.",
    ("paired",), lambda d, *_: paired_figure(d["paired"]), section="correlations"))
