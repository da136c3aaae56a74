"""``landscape train``: one run folder per optimizer."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from landscape.cli.app import app
from landscape.cli.render import print_table, saved
from landscape.errors import LandscapeError
from landscape.io import check_writable, write_json
from landscape.optim.registry import flag_help, list_optimizers

#: Hyper-parameters with a flag of their own (help text from the specs); any other goes through --opt-arg.
HYPER_FLAGS = ("rho", "eta", "alpha", "gamma", "beta")


#: ``create`` arguments that have their own ``landscape train`` flag.
OWN_FLAGS = {"num_classes": "(from the data)", "in_chans": "--in-chans", "img_size": "--img-size",
             "pretrained": "--pretrained"}


#: Help of the options train and study share.
STOP_HELP = ("Stop at the end of the first epoch whose cross-entropy over the whole training split (eval mode, no "
             "augmentation) is at most this (nats); --epochs is the cap.")
CLASSES_HELP = "Train on these classes of the folder only, e.g. benign,malignant."
AUGMENT_HELP = "Train without the random flip and small affine augmentation."
IN_CHANS_HELP = "Input channels: 1 (grey) or 3 (grey replicated to RGB)."


def parse_opt_args(pairs: list[str], flag: str = "--opt-arg") -> dict:
    """``["rho=0.1", "adaptive=true", "depths=1,1"]`` -> ``{"rho": 0.1, "adaptive": True, "depths": [1, 1]}``.

    Numbers and booleans are parsed; a value with commas becomes a list.
    """
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise LandscapeError(f"{flag} takes key=value, got {pair!r}")
        out[key.strip().replace("-", "_")] = parse_value(value.strip())
    return out


def parse_model_args(pairs: list[str]) -> dict:
    """``--model-arg`` pairs as constructor keyword arguments; keys that have their own flag are refused."""
    kwargs = parse_opt_args(pairs, "--model-arg")
    for key in kwargs:
        if key in OWN_FLAGS:
            raise LandscapeError(f"--model-arg {key} is not allowed: it is set by {OWN_FLAGS[key]}")
    return kwargs


def parse_value(text: str):
    """``"true"`` -> True, ``"3"`` -> 3, ``"0.1"`` -> 0.1, ``"0.01,0.05"`` -> [0.01, 0.05], else the text."""
    if "," in text:
        return [parse_value(part.strip()) for part in text.split(",")]
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


@app.command("train")
def train_command(
    data: Optional[Path] = typer.Option(None, "--data",
                                        help="Image folder with one sub-folder per class (BUSI layout). Default: the "
                                             "built-in phantom."),
    model: str = typer.Option("cnn-small",
                              help="cnn-small, or any timm model name (resnet18, vgg16, vit_tiny_patch16_224, ...)."),
    model_arg: list[str] = typer.Option([], "--model-arg", metavar="KEY=VALUE",
                                        help="Model constructor argument as key=value, e.g. depth=2 or layers=1,1,1,1 "
                                             "(repeatable; stored in the checkpoint)."),
    optimizer: str = typer.Option("adam", "--optimizer", "-o",
                                  help=f"{', '.join(list_optimizers())}, a comma list, or 'all' (see: landscape list "
                                       "optimizers)."),
    base: str = typer.Option("adam", help="Base optimizer under the SAM family: adam, adamw or sgd."),
    no_decay_norm_bias: bool = typer.Option(False, "--no-decay-norm-bias",
                                            help="No weight decay on normalisation weights and biases (a second "
                                                 "parameter group; the fine-tuning recipe)."),
    amp: Optional[str] = typer.Option(None, "--amp",
                                      help="Mixed precision for every pass: bf16 or fp16 (fp16 with a loss scale; "
                                           "steps with inf/NaN gradients are skipped)."),
    epochs: int = typer.Option(10, help="Training epochs."),
    batch_size: int = typer.Option(32, help="Mini-batch size."),
    lr: Optional[float] = typer.Option(None, help="Peak learning rate (default 1e-3 for adam, 0.05 for sgd)."),
    weight_decay: float = typer.Option(0.0, help="Weight decay of the base optimizer."),
    schedule: str = typer.Option("cosine", help="Learning-rate schedule: cosine or constant."),
    img_size: int = typer.Option(64, help="Images are resized to img_size x img_size, 1 channel."),
    seed: int = typer.Option(0, help="Seed of weights, shuffling, augmentation and dropout."),
    split_seed: int = typer.Option(0, help="Seed of the train/val/test split (shared across --seed values)."),
    kfold: Optional[int] = typer.Option(None, help="Use k-fold cross-validation splits instead of 70/10/20."),
    fold: int = typer.Option(0, help="Which fold is the test fold (with --kfold)."),
    keep_conflicts: bool = typer.Option(False, "--keep-conflicts",
                                        help="Keep images whose near-duplicates carry another label."),
    no_augment: bool = typer.Option(False, "--no-augment",
                                    help=AUGMENT_HELP),
    rho: Optional[float] = typer.Option(None, help=flag_help("rho")),
    eta: Optional[float] = typer.Option(None, help=flag_help("eta")),
    alpha: Optional[float] = typer.Option(None, help=flag_help("alpha")),
    gamma: Optional[float] = typer.Option(None, help=flag_help("gamma")),
    beta: Optional[float] = typer.Option(None, help=flag_help("beta")),
    opt_arg: list[str] = typer.Option([], "--opt-arg", metavar="KEY=VALUE",
                                      help="Any other optimizer argument as key=value (repeatable)."),
    compute_matched: Optional[Path] = typer.Option(None, "--compute-matched", metavar="RUN",
                                                   help="Take exactly as many gradient evaluations (forward/backward "
                                                        "passes) as the finished run folder RUN recorded (e.g. a SAM "
                                                        "run of the same seed); --epochs and --stop-train-loss then "
                                                        "do not stop the run."),
    stop_train_loss: Optional[float] = typer.Option(None, "--stop-train-loss", help=STOP_HELP),
    classes: Optional[str] = typer.Option(None, "--classes", help=CLASSES_HELP),
    keep: str = typer.Option("all", help="Per-epoch checkpoints to keep: all (for PCA trajectories) or last."),
    out: Path = typer.Option(Path("checkpoints"), help="Folder that receives the run folders."),
    run_name: Optional[str] = typer.Option(None, help="Run folder name (default <data>-<model>-<optimizer>-s<seed>)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run from its last epoch."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Retrain even if the run folder holds a finished run."),
    pretrained: bool = typer.Option(False, "--pretrained",
                                    help="Start from timm's pretrained weights (needs them cached or online); "
                                         "--pretrained PATH is --weights PATH."),
    weights: Optional[Path] = typer.Option(None, "--weights",
                                           help="Start from a local .safetensors/.pth state dict or timm/Hugging Face "
                                                "cache folder (no network): first conv adapted, head new."),
    in_chans: int = typer.Option(1, "--in-chans", help=IN_CHANS_HELP),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    sync_bn: bool = typer.Option(False, "--sync-bn",
                                 help="Under torchrun: BatchNorm statistics over the global batch (SyncBatchNorm)."),
    sam_local: bool = typer.Option(False, "--sam-local",
                                   help="Under torchrun: each replica its own SAM perturbation (m-sharpness), "
                                        "directions averaged."),
    json_path: Optional[Path] = typer.Option(None, "--json",
                                             help="Also write the final metrics of every run to this JSON file."),
    tensorboard: bool = typer.Option(False, "--tensorboard",
                                     help="TensorBoard scalars per epoch in RUN/tensorboard ([tracking] extra); "
                                          "--tensorboard DIR: in DIR/RUN, one TensorBoard run per run folder."),
    tensorboard_dir: Optional[Path] = typer.Option(None, "--tensorboard-dir", hidden=True),
):
    """Train a classifier and save checkpoints: final.pt, best.pt, epoch_NNN.pt, history.json.

    In the examples busi/ is the BUSI folder (e.g. ../shared/data/busi).

    Examples:
      landscape train                 # cnn-small on the built-in phantom

      landscape train --data busi/ --epochs 30 --optimizer sam --rho 0.05

      landscape train --data busi/ --optimizer all --seed 1

      landscape train --optimizer asam --opt-arg eta=0.01 --base sgd --lr 0.05

      landscape train --resume        # continue an interrupted run

      landscape train --data busi/ --classes benign,malignant --epochs 60

      landscape train --data busi/ --stop-train-loss 0.01 --epochs 60

      landscape train --compute-matched checkpoints/phantom-cnn-small-sam-s0

      landscape train --model vit_tiny_patch16_224 --model-arg patch_size=8

      landscape train --model vit_tiny_patch16_224 --model-arg depth=4

      landscape train --model resnet18 --pretrained r18.safetensors --amp bf16

      landscape train -o sam --base adamw --no-decay-norm-bias --weight-decay 0.05

      torchrun --nproc-per-node 4 --no-python landscape train --optimizer sam

      landscape train -o all --tensorboard tb/ && tensorboard --logdir tb/

    """
    from landscape.train import TrainConfig, check_hyper, parse_optimizers, train, train_all
    from landscape.train.matching import matched_budget

    flags = {k: v for k, v in zip(HYPER_FLAGS, (rho, eta, alpha, gamma, beta)) if v is not None}
    hyper = {**parse_opt_args(opt_arg), **flags}
    model_kwargs = parse_model_args(model_arg)
    names = parse_optimizers(optimizer)
    check_hyper(names, hyper, base)
    check_writable(json_path)
    matched = matched_budget(compute_matched) if compute_matched is not None else None
    if matched is not None and matched["seed"] != seed:
        raise LandscapeError(f"--compute-matched: {compute_matched} was trained with seed {matched['seed']}, this "
                             f"run with --seed {seed}; match runs seed by seed", params=("compute_matched",))
    cfg = TrainConfig(
        data=str(data) if data is not None else None, model=model, model_kwargs=model_kwargs, optimizer=names[0],
        base=base, lr=lr, weight_decay=weight_decay, opt_args=hyper, schedule=schedule, epochs=epochs,
        batch_size=batch_size,
        img_size=img_size, seed=seed, split_seed=split_seed, kfold=kfold, fold=fold, keep_conflicts=keep_conflicts,
        augment=not no_augment, keep=keep, out=str(out), run_name=run_name,
        gradient_budget=matched and matched["gradient_evaluations"], matched_to=matched and matched["optimizer"],
        matched_run=matched and matched["run"],
        pretrained=pretrained, weights=str(weights) if weights is not None else None, in_chans=in_chans,
        device=device, sync_bn=sync_bn, sam_local=sam_local, no_decay_norm_bias=no_decay_norm_bias, amp=amp,
        classes=classes, stop_train_loss=stop_train_loss,
        tensorboard=tensorboard or tensorboard_dir is not None,
        tensorboard_dir=None if tensorboard_dir is None else str(tensorboard_dir),
    )
    if len(names) == 1:
        results = [train(cfg, resume=resume, overwrite=overwrite)]
    else:
        results = train_all(cfg, names, resume=resume, overwrite=overwrite)
    rows = []
    for r in results:
        test = r.metrics.get("test", {})
        rows.append([r.run_dir.name, test.get("accuracy"), test.get("balanced_accuracy"), test.get("macro_f1"),
                     test.get("auroc_macro"), test.get("ece"), round(r.wall_time_s, 1)])
    print_table("test metrics (final weights)", ["run", "acc", "bal. acc", "macro-F1", "AUROC", "ECE", "train s"], rows)
    for r in results:
        saved("checkpoint", r.final)
    if json_path is not None:
        write_json(json_path, [{"run_dir": str(r.run_dir), "metrics": r.metrics,
                                "wall_time_s": r.wall_time_s} for r in results])
        saved("metrics", json_path)

