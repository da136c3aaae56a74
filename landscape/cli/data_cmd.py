"""``landscape data inspect``: class counts, image sizes, near-duplicates and label conflicts."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from landscape.checks import check_seed
from landscape.cli.app import app
from landscape.cli.render import print_table, saved
from landscape.data.defaults import THRESHOLD
from landscape.io import check_writable, write_json

data_app = typer.Typer(help="Look at a data folder before training on it.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("inspect")
def inspect_command(
    path: Optional[Path] = typer.Argument(None, metavar="DIR",
                                          help="Folder with one sub-folder per class (BUSI layout). Default: the "
                                               "built-in phantom."),
    json_path: Optional[Path] = typer.Option(None, "--json",
                                             help="Also write the full report (every group, with file names) to this "
                                                  "JSON file."),
    img_size: int = typer.Option(64, help="Size the images are loaded at (duplicate detection does not depend on it)."),
    threshold: float = typer.Option(THRESHOLD,
                                    help="Near-duplicate threshold on the fine-structure score, 0..1 (lower groups "
                                         "more)."),
    seed: int = typer.Option(0, help="Phantom seed (ignored for folders)."),
    show: int = typer.Option(10, help="How many duplicate groups to list on screen (all go to --json)."),
) -> None:
    """Class counts, stored image sizes, near-duplicate groups and label conflicts.

    Near-duplicates (the same scan saved twice, with or without calipers) are
    kept in one split by training; groups whose images carry different labels
    are label conflicts, excluded from training unless --keep-conflicts.

    Examples:
        landscape data inspect ../shared/data/busi

        landscape data inspect ~/Dataset_BUSI_with_GT --json busi-inspect.json

        landscape data inspect            # the built-in phantom

    """
    from landscape.data import inspect_data

    check_seed(seed)
    check_writable(json_path)
    report = inspect_data(path, img_size=img_size, threshold=threshold, seed=seed)
    _render(report, show)
    if json_path is not None:
        saved("report", write_json(json_path, report))


def _render(report: dict, show: int) -> None:
    dup = report["duplicates"]
    print_table(
        f"{report['source']} ({report['kind']}{', ' + report['root'] if report['root'] else ''}): {report['n_images']} "
        "images",
        ["class", "images", "in duplicate groups", "in label conflicts"],
        [[c["name"], c["images"], c["in_duplicate_groups"], c["in_conflicts"]] for c in report["classes"]],
    )
    sizes = report["sizes"]
    common = ", ".join(f"{s['width']}x{s['height']} ({s['images']})" for s in sizes["most_common"])
    print_table(
        "images",
        ["item", "value"],
        [
            ["width min / median / max",
             f"{sizes['width']['min']} / {sizes['width']['median']:g} / {sizes['width']['max']}"],
            ["height min / median / max",
             f"{sizes['height']['min']} / {sizes['height']['median']:g} / {sizes['height']['max']}"],
            ["distinct sizes", f"{sizes['distinct']}: {common}"],
            ["stored modes", ", ".join(f"{m} ({n})" for m, n in report["modes"].items())],
            ["masks skipped", report["skipped_masks"]],
            ["duplicate groups", f"{dup['n_groups']} groups, {dup['n_images']} images, largest {dup['largest']}"],
            ["label conflicts", f"{dup['n_conflicts']} groups, {dup['n_conflict_images']} images"],
            ["threshold", f"fine >= {dup['threshold']:g}, layout >= {dup['coarse_threshold']:g}"],
        ],
    )
    if report["conflicts"]:
        print_table("label conflicts (excluded from training by default)", ["files", "classes", "score"],
                    [["\n".join(g["files"]), ", ".join(g["classes"]),
                      f"{g['score_min']:.2f}"] for g in report["conflicts"]])
    groups = sorted(dup["groups"], key=lambda g: -len(g["files"]))[: max(show, 0)]
    if groups:
        print_table(f"largest duplicate groups ({len(groups)} of {dup['n_groups']})",
                    ["files", "classes", "score min-max"],
                    [["\n".join(g["files"]), ", ".join(sorted(set(g["classes"]))),
                      f"{g['score_min']:.2f}-{g['score_max']:.2f}"] for g in groups])
