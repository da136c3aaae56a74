"""``build_report``: runs in, one self-contained HTML file (plus its numbers as JSON) out."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from landscape.checks import check_seed
from landscape.errors import LandscapeError
from landscape.io import atomic_write_text, check_writable, to_jsonable, versions, write_json
from landscape.report import content, panel_specs, panels  # noqa: F401  (panel_specs registers the panels)
from landscape.report.collect import Run, collect
from landscape.report.correlate import correlate_runs
from landscape.report.html import Figure, figure_block, page
from landscape.report.predictor_panel import predictors_section
from landscape.report.rows import run_rows
from landscape.report.summary import summarize

#: Largest report the builder accepts before thinning the surfaces further (bytes).
MAX_BYTES = 10 * 1024 * 1024


def build_report(inputs: Sequence[str | Path], out: str | Path = "report.html", compute: bool = True,
                 png_dir: str | Path | None = None, progress: bool = True, seed: int = 0,
                 analyses: dict[str, dict] | None = None, m: int | None = None, dry_run: bool = False,
                 figures_dir: str | Path | None = None, selection: dict | None = None) -> Path | None:
    """Write the flatness report of ``inputs`` (run folders, checkpoints, or folders of runs) to ``out``.

    Missing analyses are computed with the analyzers' defaults (``analyses``
    overrides their keyword arguments) and cached, unless ``compute=False``,
    which lists them in the report instead. ``seed`` seeds those analyses and
    the robust sign error's chance permutations. Also writes ``out`` with suffix ``.json`` (rows, summary,
    provenance) and, with ``png_dir``, matplotlib PNGs of the figures; with
    ``figures_dir``, each figure as a 300 dpi PNG, a PDF and an SVG (print).
    When ``progress`` is True, shows bars and prints the summary table.
    ``m``: the m-sharpness sub-batch size; None adapts it to small data
    (each analysis spec's ``adapt``). Every setting and output
    location is checked before any run is loaded.
    ``dry_run`` prints the plan of the missing analyses (runs x analyses x
    ETA) and returns None without computing or writing anything. ``selection`` (a study's ``study.json``
    ``selection``) adds each group's candidates and chosen setting to the design table.
    """
    from landscape.report.overrides import check_overrides

    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise LandscapeError(f"report output must end in .html, got {out}")
    check_seed(seed)
    analyses = check_overrides(analyses, m)
    check_writable(out, out.with_suffix(".json"))
    check_writable(png_dir, folder=True)
    check_writable(figures_dir, folder=True)
    runs, missing = collect(inputs, compute=compute, seed=seed, progress=progress, analyses=analyses, m=m,
                            dry_run=dry_run)
    if dry_run:
        return None
    document, numbers, data = render(runs, missing, seed=seed, compute=compute, selection=selection)
    atomic_write_text(out, document)
    write_json(out.with_suffix(".json"), numbers)
    if png_dir is not None:
        from landscape.report.pngs import write_pngs

        write_pngs(Path(png_dir), numbers["rows"], numbers["summary"], data)
    if figures_dir is not None:
        from landscape.report.pngs import PRINT_DPI, PRINT_FORMATS, write_pngs

        write_pngs(Path(figures_dir), numbers["rows"], numbers["summary"], data, PRINT_FORMATS, PRINT_DPI)
    if progress:
        _print_summary(numbers, out)
    return out


def render(runs: Sequence[Run], missing: Sequence[dict], seed: int = 0,
           compute: bool = True, selection: dict | None = None) -> tuple[str, dict, dict]:
    """The report of collected runs: ``(html text, numbers for the JSON, plot data)``.

    The summary's correlations are the predictor table's cells (one computation, one set of numbers).

    The page stays under :data:`MAX_BYTES`: when many large 2D surfaces push
    it over, they are thinned to 21 points per axis.
    """
    rows = run_rows(runs)
    order = _grouped_order(rows)
    runs, rows = [runs[i] for i in order], [rows[i] for i in order]
    predictors = correlate_runs(runs, seed=seed)
    summary = summarize(rows, predictors)
    data = panels.series_data(runs, rows)
    report_settings = {"seed": seed, "compute": compute, "inputs": [str(r.path) for r in runs],
                       "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    numbers = {"title": content.title(runs), "rows": rows, "summary": summary, "missing": list(missing),
               "settings": report_settings, "versions": versions(),
               "analysis_settings": content.analysis_settings(runs),
               "predictors": predictors, "selection": selection}
    document = _document(runs, rows, summary, missing, data, numbers)
    if len(document.encode("utf-8")) > MAX_BYTES:
        data["planes_2d"] = panels.SERIES["planes_2d"](runs, rows, max_points=21)
        document = _document(runs, rows, summary, missing, data, numbers)
    return document, numbers, data


def _grouped_order(rows: Sequence[dict]) -> list[int]:
    """Run order with each group together (groups in first-seen order), seeds ascending within a group."""
    first = {g: i for i, g in reversed(list(enumerate(r["group"] for r in rows)))}
    return sorted(range(len(rows)), key=lambda i: (first[rows[i]["group"]], rows[i]["seed"]))


def _figures(rows: list[dict], summary: dict, data: dict) -> list[tuple[str, Figure]]:
    """``(section, figure)`` of every registered panel that has data."""
    made = [(p.section, Figure(p.id, p.title, p.caption, p.plotly(data, rows, summary))) for p in panels.panels()]
    return [(section, f) for section, f in made if f.figure is not None]


def _document(runs, rows, summary, missing, data, numbers) -> str:
    figs = _figures(rows, summary, data)
    groups = list(dict.fromkeys(r["group"] for r in rows))
    subtitle = (f"{len(rows)} runs · {len(groups)} groups ({', '.join(groups)}) · models "
                f"{', '.join(dict.fromkeys(r['model'] for r in rows))} · generated {numbers['settings']['created']}")
    sections = [
        ("summary", "Summary", content.findings(rows, summary) + content.notes(runs, missing)),
        ("design", "Design: chosen settings and compute", content.design_table(rows, numbers["selection"])),
        ("runs", "Runs", content.runs_table(rows)),
        ("groups", "Per optimizer (mean ± std over seeds)", content.groups_table(summary)),
        ("correlations", "Flatness vs generalization", content.correlations_table(summary)
         + "".join(figure_block(f) for section, f in figs if section == "correlations")),
        ("predictors", "Which measure predicts generalization?", predictors_section(numbers["predictors"])),
        ("landscapes", "Landscapes and spectra", "".join(figure_block(f) for section, f in figs
                                                         if section == "landscapes")),
        ("provenance", "Provenance", content.provenance(runs, rows, numbers["settings"], numbers["versions"])),
    ]
    return page(numbers["title"], subtitle, sections, to_jsonable(numbers))


def _print_summary(numbers: dict, out: Path) -> None:
    """The per-group table on stdout: mean ± std, or means only when that does not fit the terminal's width."""
    from rich.table import Table
    from rich.text import Text

    from landscape import logs
    from landscape.measures import REGISTRY
    from landscape.report.style import fmt, fmt_mean_std

    measures = numbers["summary"]["measures"]
    keys = ("balanced_accuracy", "gap", *measures)
    headers = ("group", "runs", "balanced acc.", "gap", *measures)  # names: short; titles are in the report
    groups = numbers["summary"]["groups"]
    console = logs.console()

    def rows(cell):
        return [[g["group"], str(g["n_runs"]), *(cell(g[k]) for k in keys)] for g in groups]

    def width(body):
        return sum(max(len(r[i]) for r in [list(headers), *body]) + 3 for i in range(len(headers))) + 1

    body, note = rows(fmt_mean_std), "mean ± std over seeds"
    if width(body) > console.width:
        body, note = rows(lambda stat: fmt(stat["mean"])), "means over seeds (± std in the report)"
    units = "; ".join(f"{m}: {REGISTRY[m].units}" for m in measures if m in REGISTRY)
    table = Table(title=numbers["title"], caption=f"{note}; balanced acc., gap: fractions" + (f"; {units}" if units
                                                                                                 else ""))
    for col in headers:
        table.add_column(col, justify="left" if col == "group" else "right", overflow="fold")
    for r in body:
        table.add_row(Text(r[0]), *r[1:])
    console.print(table)
    if numbers["missing"]:
        console.print(f"{len(numbers['missing'])} analyses missing (see the report).", markup=False)
    console.print(f"report: {out}", markup=False)
