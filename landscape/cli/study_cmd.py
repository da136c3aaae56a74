"""``landscape study``: train every (model, optimizer, seed), analyse, and write the report."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from landscape.cli.app import app
from landscape.cli.train_cmd import AUGMENT_HELP, CLASSES_HELP, IN_CHANS_HELP, STOP_HELP
from landscape.errors import LandscapeError
from landscape.optim.registry import list_optimizers


@app.command("study")
def study_command(
    data: Optional[Path] = typer.Option(None, "--data",
                                        help="Image folder with one sub-folder per class (BUSI layout). Default: the "
                                             "built-in phantom."),
    models: str = typer.Option("cnn-small", "--models", help="Comma list of models (cnn-small or timm names)."),
    optimizers: str = typer.Option("all", "--optimizers",
                                   help=f"'all' or a comma list of: {', '.join(list_optimizers())}."),
    seeds: Optional[int] = typer.Option(None, "--seeds",
                                        show_default="3; 2 with --quick",
                                        help="Seeds per (model, optimizer)."),
    epochs: Optional[int] = typer.Option(None, "--epochs", show_default="30; 4 with --quick",
                                         help="Training epochs."),
    img_size: Optional[int] = typer.Option(None, "--img-size", show_default="64; 32 with --quick",
                                           help="Image size (pixels per side)."),
    out: Path = typer.Option(Path("checkpoints"), "--out",
                             help="Folder of the run folders, report.html and study.json."),
    quick: bool = typer.Option(False, "--quick",
                               help="Small preset: phantom, 4 epochs, 2 seeds, 32 px, quick analysis budgets."),
    seed: int = typer.Option(0, "--seed", help="First seed; also the split seed and the analyses' seed."),
    parallel: Optional[str] = typer.Option(None, "--parallel",
                                           show_default="runs if there are at least as many runs as ranks",
                                           help="Under torchrun: 'runs' deals the runs out over the ranks, 'data' puts "
                                                "all ranks on each run."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", show_default="32",
                                              help="Training mini-batch size."),
    m: Optional[int] = typer.Option(None, "--m", show_default="128 (32 with --quick), at most the training images",
                                    help="m-sharpness sub-batch size."),
    set_: list[str] = typer.Option([], "--set", metavar="A.KEY=VALUE",
                                   help="Any other analysis setting as ANALYSIS.KEY=VALUE (repeatable), e.g. "
                                        "hessian.top_k=3, surface_2d.grid=11."),
    external: Optional[Path] = typer.Option(None, "--external",
                                            help="External image folder (another site) every run is evaluated on."),
    csv: Optional[Path] = typer.Option(None, "--csv", help="Metadata CSV beside the external images."),
    file_col: Optional[str] = typer.Option(None, "--csv-file-col", help="CSV column naming each image."),
    label_col: Optional[str] = typer.Option(None, "--csv-label-col", help="CSV column with the label (checked)."),
    group_col: Optional[str] = typer.Option(None, "--csv-group-col",
                                            help="CSV column with the patient (bootstrap unit)."),
    env_col: Optional[str] = typer.Option(None, "--csv-env-col", help="CSV column with the environment (scanner)."),
    grid: list[str] = typer.Option([], "--grid", help="Train every value and keep the best on validation: "
                                                      "PARAM=V1,V2 or OPTIMIZER:PARAM=V1,V2 (repeatable; lr too). "
                                                      "Equal tuning budget: as many values per optimizer, e.g. "
                                                      "--grid adam,sgd:lr=... --grid sam,gsam:rho=... (three "
                                                      "each)."),
    select_by: str = typer.Option("balanced_accuracy", "--select-by",
                                  help="Validation metric that picks each optimizer's setting from --grid."),
    compute_matched: Optional[str] = typer.Option(None, "--compute-matched", metavar="OPTIMIZERS",
                                                  help="After the selection, also train each one-pass optimizer "
                                                       "(adam, sgd) at its selected setting with exactly the "
                                                       "gradient evaluations of this optimizer's selected run of "
                                                       "the same seed, reported as adam-cm (sam) or "
                                                       "adam-cm-<optimizer>."),
    stop_train_loss: Optional[float] = typer.Option(None, "--stop-train-loss", help=STOP_HELP),
    no_augment: bool = typer.Option(False, "--no-augment",
                                    help=AUGMENT_HELP),
    classes: Optional[str] = typer.Option(None, "--classes", help=CLASSES_HELP),
    pretrained: bool = typer.Option(False, "--pretrained",
                                    help="Start every model from timm's pretrained weights (cached locally); "
                                         "--pretrained MODEL=PATH is --weights MODEL=PATH."),
    weights: Optional[list[str]] = typer.Option(None, "--weights", metavar="MODEL=PATH",
                                                help="A model's local .safetensors/.pth file or timm cache folder "
                                                     "(repeatable; no network)."),
    in_chans: int = typer.Option(1, "--in-chans", help=IN_CHANS_HELP),
    tensorboard: bool = typer.Option(False, "--tensorboard",
                                     help="TensorBoard scalars of every run in OUT/tensorboard/RUN ([tracking] "
                                          "extra); --tensorboard DIR: in DIR/RUN."),
    tensorboard_dir: Optional[Path] = typer.Option(None, "--tensorboard-dir", hidden=True),
):
    """Train every (model, optimizer, seed), run the Hessian, sharpness, surface and measure analyses, write the report.

    With --external every run is also scored on another site's images
    (`landscape evaluate`), and the report's "Which measure predicts
    generalization?" panel gets the cross-site targets.

    Re-running the same command resumes: finished runs and cached analyses are
    reused, interrupted runs continue from their last epoch. Beside the
    report it writes runs.csv and tables.tex (see `landscape export`).

    Time of --quick: 230 s (3.8 min) on an idle 2-core machine, training
    and analyses included (benchmarks/bench_startup.py --study, 2026-12-06);
    on a busy machine it takes several times longer.

    With --grid every setting is trained; each optimizer keeps the one with the
    best validation score (never test or external data), recorded in
    study.json with its number of candidates (tuning_budget; a warning when
    optimizers get different numbers); only the selected runs are analysed
    and reported.

    In the examples busi/ is the BUSI folder (e.g. ../shared/data/busi),
    busbra/ BUS-BRA's and CSV its bus_data.csv; --external takes the CSV
    options of `landscape evaluate`.

    Examples:
      landscape study --quick               # phantom, 16 runs

      landscape study --data busi/ --seeds 3 --epochs 30 --out busi_study/

      landscape study --data busi/ --models cnn-small,resnet18

      landscape study --data busi/ --optimizers adam,sam,asam

      landscape study --grid adam:lr=3e-4,1e-3,3e-3 --grid sam:rho=0.02,0.05,0.1

      landscape study --compute-matched sam,crsam --stop-train-loss 0.05

      landscape study --data busi/ --classes benign,malignant --seeds 5

      torchrun --nproc-per-node 8 --no-python landscape study --parallel runs

      landscape study --data busi/ --external busbra/ --csv CSV --csv-file-col ID

    """
    from landscape.cli.train_cmd import parse_value
    from landscape.report.overrides import parse_set
    from landscape.study import run_study
    from landscape.study.grid import parse_grid

    def parse_weights(items: list[str]) -> dict[str, str]:
        pairs = [item.partition("=") for item in items]
        bad = [item for item, (model, sep, path) in zip(items, pairs) if not (sep and model.strip() and path.strip())]
        if bad:
            raise LandscapeError(f"--weights takes MODEL=PATH, got {bad[0]!r}")
        return {model.strip(): path.strip() for model, _, path in pairs}

    run_study(data=data, models=models.split(","), optimizers=optimizers, seeds=seeds, epochs=epochs, out=out,
              quick=quick, progress=True, seed=seed, img_size=img_size, batch_size=batch_size, m=m,
              analyses=parse_set(set_, parse_value), parallel=parallel, external=external,
              external_options={"csv": csv, "file_col": file_col, "label_col": label_col,
                                "group_col": group_col, "env_col": env_col},
              grid=parse_grid(grid, parse_value), select_by=select_by, compute_matched=compute_matched,
              stop_train_loss=stop_train_loss, classes=classes, augment=not no_augment, pretrained=pretrained,
              weights=parse_weights(weights or []), in_chans=in_chans,
              tensorboard=tensorboard or tensorboard_dir is not None, tensorboard_dir=tensorboard_dir)
