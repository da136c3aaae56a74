"""Rebuild a trained model and its exact data split from a checkpoint file."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from landscape.checkpoint.format import FORMAT_VERSION, KIND
from landscape.data import load_images, normalise, select
from landscape.errors import LandscapeError
from landscape.io import nonfinite_entries, safe_torch_load, sha256_file
from landscape.models import create

SPLITS = ("train", "val", "test")


def resolve_checkpoint_path(path: str | Path) -> Path:
    """A ``.pt`` file as given, or ``final.pt`` inside a run folder."""
    path = Path(path)
    if path.is_dir():
        final = path / "final.pt"
        if not final.exists():
            raise LandscapeError(f"run folder {path} has no final.pt (unfinished run? `landscape train --resume` "
                                 "completes it)")
        return final
    return path


def read_payload(path: str | Path) -> dict:
    """The checkpoint dict, validated as a landscape checkpoint of a known format."""
    path = resolve_checkpoint_path(path)
    payload = safe_torch_load(path)
    if payload.get("kind") != KIND or "state_dict" not in payload or "model" not in payload:
        raise LandscapeError(f"not a landscape checkpoint: {path} (no '{KIND}' marker, model or state_dict)")
    version = payload.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        raise LandscapeError(f"checkpoint {path} has format_version {version!r}; "
                             f"this landscape reads 1 to {FORMAT_VERSION}")
    _check_fields(path, payload)
    return payload


#: Entries of a checkpoint's ``data`` dict that loading its split needs.
DATA_KEYS = ("source", "kind", "classes", "img_size", "mean", "std", "split")


def _check_fields(path: Path, payload: dict) -> None:
    """LandscapeError naming the first missing or mistyped ``model``/``data`` entry."""
    model, data = payload.get("model"), payload.get("data")
    if (not isinstance(model, dict) or not isinstance(model.get("name"), str)
            or not isinstance(model.get("kwargs"), dict)):
        raise LandscapeError(f"checkpoint {path} is damaged: its 'model' entry is not a dict with a name and kwargs")
    if not isinstance(data, dict):
        raise LandscapeError(f"checkpoint {path} is damaged: its 'data' entry is {type(data).__name__}, not a dict")
    missing = [k for k in DATA_KEYS if k not in data]
    if missing:
        raise LandscapeError(f"checkpoint {path} is damaged: its 'data' entry lacks {', '.join(missing)}")
    if not isinstance(data["split"], dict) or "hash" not in data["split"] or data["kind"] not in ("phantom", "folder"):
        raise LandscapeError(f"checkpoint {path} is damaged: its 'data' entry has no valid split or kind")
    if not isinstance(payload["state_dict"], dict):
        raise LandscapeError(f"checkpoint {path} is damaged: its 'state_dict' is not a dict")


def architecture(payload: dict) -> tuple[str, dict]:
    """(model name, constructor kwargs) recorded in a checkpoint."""
    return payload["model"]["name"], dict(payload["model"]["kwargs"])


class Checkpoint:
    """A loaded checkpoint: ``model`` (eval mode, on ``device``), ``meta`` and its data.

    Data come from the split manifest stored in the checkpoint and are
    preprocessed exactly as in training, without augmentation. ``data_root``
    overrides the recorded folder when the data moved.
    """

    def __init__(self, path: str | Path, device: str | torch.device | None = None, data_root: str | Path | None = None):
        self.path = resolve_checkpoint_path(path)
        payload = read_payload(self.path)
        state = payload.pop("state_dict")
        payload.pop("optimizer_state", None)
        self.meta: dict = payload
        self.run_dir: Path = self.path.parent
        if data_root is not None and self.meta["data"]["kind"] == "phantom":
            raise LandscapeError(f"data_root {data_root} was given, but {self.path} was trained on the built-in "
                                 "phantom, which has no data folder; drop data_root", params=("data_root",))
        self.data_root = str(data_root) if data_root is not None else self.meta["data"].get("root")
        from landscape.train.prepare import resolve_device  # on use: train imports the format from checkpoint

        self.device = resolve_device("auto" if device is None else str(device))
        bad = nonfinite_entries(state)
        if bad:
            more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
            raise LandscapeError(f"{self.path} has non-finite weights or buffers ({bad[0]}{more}): a diverged run "
                                 "cannot be analysed")
        name, kwargs = architecture(payload)
        model = create(name, **kwargs)
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            detail = " ".join(str(exc).split()).split(":", 1)[-1].strip()  # every line, not just the heading
            detail = detail if len(detail) <= 400 else detail[:400] + " ..."
            raise LandscapeError(f"weights in {self.path} do not fit model {name!r}: {detail}") from None
        self.model: nn.Module = model.to(self.device).eval()
        self._tensors: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def data_name(self) -> str:
        """``"phantom"`` or the data folder's name, e.g. ``"busi"``."""
        return self.meta["data"]["source"]

    @property
    def classes(self) -> list[str]:
        return list(self.meta["data"]["classes"])

    @property
    def split_hash(self) -> str:
        return self.meta["data"]["split"]["hash"]

    @property
    def analysis_dir(self) -> Path:
        return self.run_dir / "analysis"

    @cached_property
    def loss_fn(self) -> nn.Module:
        """Mean cross-entropy over a batch, as in training."""
        return nn.CrossEntropyLoss()

    def tensors(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x float32 [N,C,S,S] normalised as in training, y int64 [N])`` on CPU, in manifest order."""
        if split not in SPLITS:
            raise LandscapeError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")
        if split not in self._tensors:
            data = self.meta["data"]
            source = None if data["kind"] == "phantom" else self.data_root
            if source is not None and not Path(source).is_dir():
                raise LandscapeError(f"data folder {source} of {self.path} not found; pass data_root to point at it",
                                     params=("data_root",))
            images = load_images(source, img_size=data["img_size"], seed=data.get("phantom_seed") or 0)
            x, y = select(images, data["split"], split)
            self._tensors[split] = (normalise(x, data), torch.as_tensor(y, dtype=torch.long))
        return self._tensors[split]

    def loader(self, split: str, batch_size: int = 128, samples: int | None = None, seed: int = 0) -> DataLoader:
        """Batches of ``(x, y)`` from ``split``; ``samples`` draws a seeded subset (sorted, so order is stable)."""
        x, y = self.tensors(split)
        if samples is not None:
            if samples < 1:
                raise LandscapeError(f"samples must be >= 1, got {samples}")
            if samples < len(y):
                idx = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))[:samples].sort().values
                x, y = x[idx], y[idx]
        if batch_size < 1:
            raise LandscapeError(f"batch_size must be >= 1, got {batch_size}")
        return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=False)

    def epoch_paths(self) -> list[Path]:
        """The run's ``epoch_NNN.pt`` files, sorted (``epoch_000`` = initial weights)."""
        from landscape.train.loop import epoch_files

        return epoch_files(self.run_dir)

    def load_weights(self, other: str | Path) -> dict[str, torch.Tensor]:
        """State dict of another checkpoint, on this model's device; it must share the architecture."""
        payload = read_payload(other)
        mine, theirs = architecture(self.meta), architecture(payload)
        if mine != theirs:
            raise LandscapeError(
                f"{other} is a {theirs[0]} {theirs[1]} checkpoint, not the same architecture as {self.path} "
                f"({mine[0]} {mine[1]})"
            )
        bad = nonfinite_entries(payload["state_dict"])
        if bad:
            raise LandscapeError(f"{other} has non-finite weights or buffers ({bad[0]}): a diverged run cannot be used")
        return {k: v.to(self.device) for k, v in payload["state_dict"].items()}

    @cached_property
    def fingerprint(self) -> str:
        """SHA-256 of the checkpoint file: keys analysis caches shared by several checkpoints of a run."""
        return sha256_file(self.path)

    def provenance(self) -> dict:
        """What every analysis records about where its numbers come from."""
        return {
            "checkpoint": str(self.path),
            "checkpoint_sha256": self.fingerprint,
            "run": self.run_dir.name,
            "data": self.data_name,
            "split_hash": self.split_hash,
            "model": self.meta["model"]["name"],
            "optimizer": self.meta["optimizer"]["name"],
            "seed": self.meta["seed"],
        }


def load_checkpoint(path: str | Path, device: str | torch.device | None = None,
                    data_root: str | Path | None = None) -> Checkpoint:
    """Load ``path`` (a ``.pt`` file or a run folder's ``final.pt``) as a :class:`Checkpoint`."""
    return Checkpoint(path, device=device, data_root=data_root)
