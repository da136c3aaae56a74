"""``landscape evaluate``: score a trained model on an external image folder (another site)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from landscape.cli.app import app
from landscape.cli.render import console, fmt, now, print_table, record_saved, saved
from landscape.io import check_writable, write_json


@app.command("evaluate")
def evaluate_command(
    run: Path = typer.Argument(..., help="Checkpoint .pt file or run folder (its final.pt)."),
    data: Path = typer.Option(..., "--data", help="External image folder with one sub-folder per class."),
    csv: Optional[Path] = typer.Option(None, "--csv", help="Metadata CSV beside the images (one row per image)."),
    file_col: Optional[str] = typer.Option(None, "--csv-file-col",
                                           help="CSV column naming each image (relative path, file name or stem)."),
    label_col: Optional[str] = typer.Option(None, "--csv-label-col",
                                            help="CSV column with the label, checked against the class folder."),
    group_col: Optional[str] = typer.Option(None, "--csv-group-col",
                                            help="CSV column with the group (patient): CIs resample whole groups."),
    singleton_groups: bool = typer.Option(False, "--singleton-groups",
                                          help="Make each image with an empty group ID its own group (else an "
                                               "error)."),
    env_col: Optional[str] = typer.Option(None, "--csv-env-col",
                                          help="CSV column with the environment (scanner, site): metrics per value."),
    positive: str = typer.Option("malignant", "--positive",
                                 help="Class whose score p(pos)/(p(pos)+p(other)) is ranked for the AUROC."),
    classes: Optional[str] = typer.Option(None, "--classes",
                                          help="Score only these classes of the external set, e.g. benign,malignant."),
    n_boot: int = typer.Option(1000, "--n-boot", help="Bootstrap resamples for the CIs."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    train_data: Optional[Path] = typer.Option(None, "--train-data",
                                              help="The run's own data folder, if it moved since training."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Also write the record to this JSON file."),
):
    """Cross-site evaluation on the classes both sets share (AUROC and balanced accuracy, per environment too).

    The model's preprocessing (image size, normalisation) is taken from the
    checkpoint. An external class the model does not know is an error. The
    result is cached as a `metrics` record in the run's analysis/.
    When you use BUS-BRA, cite Gómez-Flores et al., Medical Physics 2023 (see its README).

    For BUS-BRA (busbra/ below, e.g. ../shared/data/busbra), CSV is its
    bus_data.csv; add --csv-label-col Pathology --csv-group-col Case
    --csv-env-col Device to check labels, resample patients, score per scanner.

    Examples:
      landscape evaluate RUN --data busbra/ --csv CSV --csv-file-col ID

      landscape evaluate RUN --data other_site/ --json external.json

    """
    from landscape.analysis.external import analyze

    check_writable(json_path)  # before any work: the JSON is written here, after it

    since = now()
    record = analyze(run, data, csv=csv, file_col=file_col, label_col=label_col, group_col=group_col,
                     env_col=env_col, positive=positive, classes=classes, n_boot=n_boot, seed=seed,
                     device=None if device == "auto" else device, data_root=train_data, progress=True,
                     singleton_groups=singleton_groups)
    ext = record["result"]["external"]
    console.print(f"{record['provenance']['run']} on {ext['source']} (classes {', '.join(ext['classes'])}; "
                  f"score p({ext['positive']}) renormalised over them)", markup=False)
    rows = [["internal test", *_cells(ext["internal"])], [f"{ext['source']} (all)", *_cells(ext["overall"])]]
    rows += [[env, *_cells(m)] for env, m in ext["environments"].items()]
    print_table("cross-site metrics (95% CIs: bootstrap over groups)",
                ["set", "n", "groups", "AUROC", "AUROC CI", "bal. acc.", "bal. acc. CI"], rows)
    drop = ext["drop"]
    console.print(f"drop (internal − external): AUROC {fmt(drop['auroc'], 3)}, balanced accuracy "
                  f"{fmt(drop['balanced_accuracy'], 3)}", markup=False)
    trained_on = record["provenance"].get("data")
    if trained_on == "phantom" and ext["source"] != "phantom":
        console.print(f"warning: {record['provenance']['run']} was trained on the synthetic phantom; its scores on "
                      f"real images ({ext['source']}) measure nothing clinical (train with --data first)",
                      markup=False, soft_wrap=True)
    record_saved(record, since)
    if json_path is not None:
        write_json(json_path, {k: v for k, v in record.items() if k != "path"})
        saved("json", json_path)


def _cells(m: dict) -> list:
    def ci(v):
        return "-" if not v else f"[{v[0]:.3f}, {v[1]:.3f}]"

    return [m["n"], m["n_groups"], m["auroc"], ci(m["auroc_ci"]), m["balanced_accuracy"], ci(m["balanced_accuracy_ci"])]
