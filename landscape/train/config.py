"""Training configuration: everything that determines a run, stored in its checkpoints."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

from landscape.checks import check_finite, check_seed
from landscape.errors import LandscapeError
from landscape.optim.base import BASE_DEFAULTS, BASE_LR, DEFAULT_BASE

#: A run name is one path component of these characters (no separators, no "..").
RUN_NAME = re.compile(r"[A-Za-z0-9._-]+")
#: The optimizer a compute-matched run is matched to when its name carries no target (``adam-cm``).
MATCHED_DEFAULT = "sam"


def cm_suffix(matched_to: str) -> str:
    """Tag of a run compute-matched to a run of ``matched_to``: ``-cm`` for ``"sam"``, else ``-cm-<matched_to>``."""
    return "-cm" if matched_to == MATCHED_DEFAULT else f"-cm-{matched_to}"


@dataclass
class TrainConfig:
    """One training run.

    ``data=None`` selects the built-in phantom. ``lr=None`` uses
    :data:`~landscape.optim.base.BASE_LR` of the base optimizer. ``split_seed`` fixes the data split
    independently of ``seed`` (weights, shuffling, augmentation, dropout), so runs
    with different seeds are evaluated on the same images. ``sync_bn`` and ``sam_local``
    apply under ``torchrun`` only (see :mod:`landscape.train.parallel`).
    ``classes`` trains on those classes of the folder only (e.g. ``["benign",
    "malignant"]``; None: all). ``stop_train_loss`` stops at the end of the
    first epoch whose cross-entropy over the whole training split, in eval mode
    and without augmentation, is at most the target (nats; Jiang et al.'s
    equal-fit rule), ``epochs`` being the cap; the checkpoint records the
    stopped epoch and whether the target was reached (``stopping``).
    ``gradient_budget`` (compute matching, :mod:`landscape.train.matching`):
    the run takes exactly ``gradient_budget // passes_per_step`` optimizer
    steps, whatever ``epochs`` and ``stop_train_loss`` say (its last epoch may
    be partial; the learning-rate schedule spans those steps); ``matched_to``
    names the optimizer of the run the budget was taken from (required with a
    budget; it names the folder, ``-cm`` for ``sam``, else ``-cm-<matched_to>``)
    and ``matched_run`` that run's folder (provenance only).
    ``weights``: a local weights file or timm / Hugging Face cache folder
    (:mod:`landscape.models.weights`); ``in_chans`` 3 replicates grey images to
    RGB. ``no_decay_norm_bias`` puts normalisation weights and biases in a
    parameter group without weight decay. ``amp``: None, "bf16" or "fp16"
    (:mod:`landscape.optim.amp`).
    ``tensorboard`` writes TensorBoard scalars to ``<run>/tensorboard``, or to
    ``<tensorboard_dir>/<run name>`` when that is set (:mod:`landscape.train.tracking`).
    """

    data: str | None = None
    model: str = "cnn-small"
    model_kwargs: dict = field(default_factory=dict)
    pretrained: bool = False
    weights: str | None = None
    in_chans: int = 1
    optimizer: str = DEFAULT_BASE
    base: str = DEFAULT_BASE
    lr: float | None = None
    weight_decay: float = 0.0
    opt_args: dict = field(default_factory=dict)
    schedule: str = "cosine"
    epochs: int = 10
    batch_size: int = 32
    img_size: int = 64
    seed: int = 0
    split_seed: int = 0
    fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)
    kfold: int | None = None
    fold: int = 0
    keep_conflicts: bool = False
    augment: bool = True
    gradient_budget: int | None = None
    matched_to: str | None = None
    matched_run: str | None = None
    keep: str = "all"
    out: str = "checkpoints"
    run_name: str | None = None
    device: str = "auto"
    sync_bn: bool = False
    sam_local: bool = False
    no_decay_norm_bias: bool = False
    amp: str | None = None
    classes: list[str] | None = None
    stop_train_loss: float | None = None
    tensorboard: bool = False
    tensorboard_dir: str | None = None

    def validate(self) -> "TrainConfig":
        """Raise :class:`LandscapeError` for values that cannot work; return self."""
        check_seed(self.seed)
        check_seed(self.split_seed, "split_seed")
        if self.run_name is not None and (not RUN_NAME.fullmatch(self.run_name) or set(self.run_name) == {"."}):
            raise LandscapeError(f"run_name must be one folder name of letters, digits, '.', '_' and '-' "
                                 f"(not '.' or '..'), got {self.run_name!r}")
        checks = [
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.batch_size >= 2, f"batch_size must be >= 2 (BatchNorm needs two samples), got {self.batch_size}"),
            (self.img_size >= 8, f"img_size must be >= 8, got {self.img_size}"),
            (self.lr is None or (isinstance(self.lr, (int, float)) and not isinstance(self.lr, bool) and self.lr > 0),
             f"lr must be a number > 0, got {self.lr!r}"),
            (self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}"),
            (self.schedule in ("cosine", "constant"), f"schedule must be cosine or constant, got {self.schedule!r}"),
            (self.keep in ("all", "last"), f"keep must be all or last, got {self.keep!r}"),
            (self.base in BASE_DEFAULTS, f"base must be one of {', '.join(BASE_DEFAULTS)}, got {self.base!r}"),
            (self.in_chans in (1, 3), f"in_chans must be 1 (grey) or 3 (grey replicated to RGB), got {self.in_chans}"),
            (not (self.pretrained and self.weights), "weights (a local file) and pretrained (timm's hub) exclude "
                                                     "each other"),
            (self.amp in (None, "bf16", "fp16"), f"amp must be bf16 or fp16, got {self.amp!r}"),
            (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"),
             f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}"),
            (len(self.fractions) == 3 and abs(sum(self.fractions) - 1) < 1e-6 and min(self.fractions) >= 0,
             f"split fractions must be three non-negative numbers summing to 1, got {self.fractions}"),
            (self.kfold is None or (self.kfold >= 2 and 0 <= self.fold < self.kfold),
             f"kfold must be >= 2 and fold in [0, kfold), got kfold={self.kfold} fold={self.fold}"),
            (self.stop_train_loss is None or (isinstance(self.stop_train_loss, (int, float))
                                              and 0 < self.stop_train_loss < float("inf")),
             f"stop_train_loss must be a positive number of nats, got {self.stop_train_loss!r}"),
            (self.gradient_budget is None or (isinstance(self.gradient_budget, int)
                                              and not isinstance(self.gradient_budget, bool)
                                              and self.gradient_budget >= 1),
             f"gradient_budget must be an integer >= 1 (forward/backward passes), got {self.gradient_budget!r}"),
            ((self.gradient_budget is None) == (self.matched_to is None),
             "gradient_budget and matched_to go together: a budget is matched to some optimizer's run"),
            (self.matched_to is None or (isinstance(self.matched_to, str) and RUN_NAME.fullmatch(self.matched_to)),
             f"matched_to must be an optimizer name (letters, digits, '.', '_', '-'), got {self.matched_to!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise LandscapeError(message)
        if self.gradient_budget is not None:
            from landscape.optim.registry import get_optimizer

            passes = get_optimizer(self.optimizer).passes
            if self.gradient_budget < passes:
                raise LandscapeError(f"gradient_budget must be at least one step of {self.optimizer} ({passes} "
                                     f"passes), got {self.gradient_budget}")
        check_finite(self.lr, "lr")
        check_finite(self.weight_decay, "weight_decay")
        if self.tensorboard:
            from landscape.train.tracking import check_tensorboard

            check_tensorboard()
        from landscape.data.subset import parse_classes
        from landscape.models.registry import check_arguments

        self.classes = parse_classes(self.classes)

        check_arguments(self.model, self.model_kwargs)
        if self.weights is not None:  # a file of another architecture fails here, before the data are loaded
            import torch

            from landscape.models import create
            from landscape.models.weights import check_weights

            with torch.device("meta"):
                model = create(self.model, num_classes=2, in_chans=self.in_chans, img_size=self.img_size,
                               **self.model_kwargs)
            check_weights(model, self.weights)
        return self

    @property
    def effective_lr(self) -> float:
        if self.lr is not None:
            return self.lr
        from landscape.optim.registry import base_of

        return BASE_LR[base_of(self.optimizer, self.base)]

    def run_dir(self, data_name: str) -> Path:
        """``<out>/<data>-<model>-<optimizer>-s<seed>`` (plus base, fold and :func:`cm_suffix` tags)."""
        if self.run_name:
            return Path(self.out) / self.run_name
        from landscape.optim.registry import get_optimizer

        own_base = get_optimizer(self.optimizer).is_base or self.base == DEFAULT_BASE
        opt = self.optimizer if own_base else f"{self.optimizer}_{self.base}"
        name = f"{data_name}-{self.model}-{opt}-s{self.seed}"
        if self.kfold:
            name += f"-f{self.fold}of{self.kfold}"
        if self.gradient_budget is not None:
            name += cm_suffix(self.matched_to)
        return Path(self.out) / name

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["fractions"] = list(self.fractions)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        if "fractions" in d:
            d["fractions"] = tuple(d["fractions"])
        return cls(**d)

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)
