"""Data and model set-up shared by training, resuming and ``--optimizer all``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from landscape import distributed
from landscape.data import kfold_split, load_images, make_split, norm_stats, select, to_float
from landscape.data.subset import keep_classes
from landscape.models import create, describe
from landscape.models.weights import load_weights, weights_normalization
from landscape.train.config import TrainConfig

#: Seed of the phantom's pixels. Fixed, so every run sees the same phantom.
PHANTOM_SEED = 0


@dataclass
class Prepared:
    """Normalised split tensors (CPU) and the data metadata stored in checkpoints."""

    tensors: dict[str, tuple[torch.Tensor, torch.Tensor]]
    data_meta: dict
    classes: list[str]


def prepare_data(cfg: TrainConfig) -> Prepared:
    """Load (cached) images (of ``cfg.classes`` only, when set), split them and normalise with train statistics."""
    images = keep_classes(load_images(cfg.data, img_size=cfg.img_size, seed=PHANTOM_SEED), cfg.classes)
    if cfg.kfold:
        manifest = kfold_split(images, k=cfg.kfold, fold=cfg.fold, seed=cfg.split_seed,
                               keep_conflicts=cfg.keep_conflicts)
    else:
        manifest = make_split(images, fractions=cfg.fractions, seed=cfg.split_seed, keep_conflicts=cfg.keep_conflicts)
    raw = {s: select(images, manifest, s) for s in ("train", "val", "test")}
    asked = weights_normalization(cfg.weights) if cfg.weights is not None else None
    if asked is None:
        mean, std = norm_stats(raw["train"][0])
    elif cfg.in_chans == 1:  # the adapted first conv sums RGB: one grey value stands for all three (timm's rule)
        mean, std = float(np.mean(asked["mean"])), float(np.mean(asked["std"]))
    else:
        mean, std = asked["mean"], asked["std"]
    tensors = {s: (to_float(x, mean, std, cfg.in_chans), torch.as_tensor(y, dtype=torch.long))
               for s, (x, y) in raw.items()}
    data_meta = {
        "source": images.name,
        "kind": images.kind,
        "root": images.root,
        "phantom_seed": PHANTOM_SEED if images.kind == "phantom" else None,
        "classes": list(images.classes),
        "img_size": cfg.img_size,
        "mean": mean,
        "std": std,
        "channels": cfg.in_chans,
        "normalization": "data" if asked is None else "weights",
        "split": manifest,
    }
    return Prepared(tensors, data_meta, list(images.classes))


def build_model(cfg: TrainConfig, num_classes: int) -> tuple[nn.Module, dict]:
    """Seeded model and its rebuild recipe ``{"name", "kwargs", "num_params"}``.

    With ``cfg.weights`` the recipe also holds ``weights``: what
    :func:`~landscape.models.weights.load_weights` did (file, SHA-256, adapted
    first conv, fresh head, normalisation).
    """
    torch.manual_seed(cfg.seed)
    kwargs = {"num_classes": num_classes, "in_chans": cfg.in_chans, "img_size": cfg.img_size, **cfg.model_kwargs}
    model = create(cfg.model, pretrained=cfg.pretrained, **kwargs)
    meta = {"name": cfg.model, "kwargs": kwargs, **describe(model)}
    if cfg.weights is not None:
        meta["weights"] = load_weights(model, cfg.weights)
    return model, meta


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when available; under ``torchrun`` ``auto``/``cuda`` mean ``cuda:LOCAL_RANK``."""
    from landscape.errors import LandscapeError

    if name == "auto":
        return distributed.device("auto")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise LandscapeError(f"device must be auto, cpu or cuda, got {name!r}") from None
    if device.type not in ("cpu", "cuda"):
        raise LandscapeError(f"device must be auto, cpu or cuda, got {name!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise LandscapeError(f"device {name} requested but CUDA is not available", params=("device",))
    return distributed.device(name)
