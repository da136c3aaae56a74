"""Presentation shared by the HTML, plotly and matplotlib outputs: colours and number formats."""

from __future__ import annotations

from collections.abc import Sequence

from landscape.report.stats import MIN_POINTS

#: One colour per group (optimizer), colour-blind-safe first (Okabe-Ito), then Tableau.
PALETTE = (
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442",
    "#4E79A7", "#F28E2B", "#E15759", "#76B7B2", "#59A14F", "#EDC948", "#B07AA1", "#FF9DA7",
)


def group_colours(groups: Sequence[str]) -> dict[str, str]:
    """A stable colour per group, in first-seen order (cycling after 16 groups)."""
    order = list(dict.fromkeys(groups))
    return {g: PALETTE[i % len(PALETTE)] for i, g in enumerate(order)}


def scatter_parts(rows: Sequence[dict], summary: dict) -> tuple[dict, dict, dict, dict] | None:
    """What both flatness scatters (plotly, PNG) draw: ``(measures {name: title}, colours by group,
    correlations by (measure, target), group summaries by group)``; None when there is nothing to plot.
    """
    if not rows or not summary["measures"]:
        return None
    return (summary["measures"], group_colours([r["group"] for r in rows]),
            {(c["measure"], c["target"]): c for c in summary["correlations"]},
            {g["group"]: g for g in summary["groups"]})


def fmt(value, digits: int = 3) -> str:
    """A number with ``digits`` significant digits, or an em dash when unknown."""
    if value is None:
        return "—"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return f"{value:.{digits}g}"


def fmt_ci(ci, digits: int = 2) -> str:
    """``[lo, hi]`` of a confidence interval, or an em dash."""
    if not ci or ci[0] is None or ci[1] is None:
        return "—"
    return f"[{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


def fmt_mean_std(stat: dict, digits: int = 3) -> str:
    """``mean ± std`` from :func:`landscape.report.stats.mean_std` (std omitted for one run)."""
    if stat["mean"] is None:
        return "—"
    if stat["std"] is None:
        return fmt(stat["mean"], digits)
    return f"{fmt(stat['mean'], digits)} ± {fmt(stat['std'], 2)}"


def corr_text(c: dict, sep: str = " · ") -> str:
    """One line: Kendall tau within seeds with its 95% CI, Holm p and n, for a figure panel."""
    if c["kendall_tau"] is None:
        if c["n"] < MIN_POINTS:
            return f"n = {c['n']} runs: too few for a rank correlation"
        return f"n = {c['n']} runs: rank correlation undefined (all values equal)"
    level = round(100 * c["level"])
    return (f"τ = {c['kendall_tau']:.2f} {fmt_ci(c['kendall_ci'])} ({level}% CI){sep}Holm p = {fmt(c['p_holm'], 2)}"
            f"{sep}n = {c['n']}, {c['n_strata']} seed(s)")
