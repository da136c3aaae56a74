"""Pretrained weights from a local file or a timm / Hugging Face cache folder, without network.

``load_weights(model, path)`` reads a ``.safetensors`` or ``.pth``/``.pt``/
``.bin`` state dict (a ``state_dict`` / ``model`` entry of a training
checkpoint is unwrapped), or a folder holding one (a timm or Hugging Face
hub cache folder such as ``models--timm--resnet18.a1_in1k``, or a snapshot
folder with ``model.safetensors`` / ``pytorch_model.bin`` and ``config.json``),
into a model built for the task (``num_classes``, ``in_chans``), the way timm
loads pretrained weights (``timm.models.load_pretrained``):

* the first conv (``pretrained_cfg["first_conv"]``) is adapted to the model's
  input channels with ``timm.models._manipulate.adapt_input_conv`` (summed
  over RGB for one channel, repeated and rescaled for more);
* the classifier (``pretrained_cfg["classifier"]``) is not loaded: the head
  keeps the model's fresh (seeded) initialisation for the task's classes;
* every other key must match by name and shape: missing or unexpected keys
  are listed in one :class:`LandscapeError` (a file of another architecture).

Normalisation: when the weights say how they were trained (``mean``/``std``
in the folder's ``config.json`` ``pretrained_cfg``, or in the safetensors
metadata), ``info["normalization"]`` holds them; otherwise it is None (use
the data's own statistics).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from landscape.errors import LandscapeError
from landscape.io import sha256_file

#: Weight file names looked for inside a folder, in order of preference.
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "pytorch_model.pth", "model.pth")


def find_weight_file(path: Path) -> Path:
    """The weights file of ``path``: the file itself, or the one weight file inside a (cache) folder."""
    if path.is_file():
        return path
    if not path.is_dir():
        raise LandscapeError(f"weights {path} not found", params=("weights",))
    for name in WEIGHT_FILES:
        found = sorted(path.rglob(name))
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            main = path / "refs" / "main"
            if main.is_file():
                snap = path / "snapshots" / main.read_text().strip() / name
                if snap.is_file():
                    return snap
            raise LandscapeError(f"weights folder {path} holds {len(found)} {name} files; pass one of them",
                                 params=("weights",))
    raise LandscapeError(f"weights folder {path} holds no {' or '.join(WEIGHT_FILES)}", params=("weights",))


def weights_normalization(path: str | Path) -> dict | None:
    """``{"mean": [...], "std": [...]}`` the weights at ``path`` were trained with, or None when they do not say.

    Read from the safetensors metadata (``pretrained_cfg``) or the
    ``config.json`` beside the file (timm / Hugging Face layout); no tensor is loaded.
    """
    file = find_weight_file(Path(path))
    norm = None
    if file.suffix == ".safetensors":
        try:
            from safetensors import safe_open

            with safe_open(str(file), framework="pt") as fh:
                meta = fh.metadata() or {}
            norm = _norm_of(json.loads(meta["pretrained_cfg"])) if "pretrained_cfg" in meta else None
        except (OSError, RuntimeError, ValueError) as exc:
            raise LandscapeError(f"weights {file} could not be read: {str(exc).splitlines()[0][:160]}",
                                 params=("weights",)) from None
    config = file.parent / "config.json"
    if norm is None and config.is_file():
        try:
            cfg = json.loads(config.read_text())
        except (OSError, ValueError):
            cfg = {}
        norm = _norm_of(cfg.get("pretrained_cfg", cfg)) if isinstance(cfg, dict) else None
    return norm


def read_state_dict(file: Path) -> dict[str, torch.Tensor]:
    """The state dict of a weights file, read without executing code (``module.`` prefixes dropped)."""
    try:
        if file.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(file))
        else:
            state = torch.load(file, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise LandscapeError(f"weights {file} could not be read: {str(exc).splitlines()[0][:160]}",
                             params=("weights",)) from None
    for key in ("state_dict", "model", "module"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise LandscapeError(f"weights {file} is not a state dict of tensors", params=("weights",))
    return {k.removeprefix("module."): v for k, v in state.items()}


def _norm_of(cfg: dict) -> dict | None:
    """``{"mean": [...], "std": [...]}`` from a timm ``pretrained_cfg`` (None without both)."""
    if isinstance(cfg, dict) and cfg.get("mean") and cfg.get("std"):
        return {"mean": [float(v) for v in cfg["mean"]], "std": [float(v) for v in cfg["std"]]}
    return None


def _names(value) -> list[str]:
    """A ``pretrained_cfg`` entry (one module name or several) as a list."""
    if not value:
        return []
    return [value] if isinstance(value, str) else list(value)


def fit_state(model: nn.Module, state: dict[str, torch.Tensor], file: Path) -> tuple[dict, list[str], list[str]]:
    """``(state to load, adapted first-conv keys, fresh head keys)``: ``state`` matched to ``model``.

    Only ``model``'s shapes are read, so a model on the meta device checks a
    file without memory. Raises one :class:`LandscapeError` listing missing,
    unexpected and wrongly shaped keys (the head excepted).
    """
    cfg = getattr(model, "pretrained_cfg", None) or {}
    own = model.state_dict()
    classifier = _names(cfg.get("classifier"))
    head = [k for k in own if any(k.startswith(c + ".") for c in classifier)]
    state, adapted = dict(state), []
    for conv in _names(cfg.get("first_conv")):
        key = conv + ".weight"
        if key in state and key in own and state[key].ndim == 4 and state[key].shape[1] != own[key].shape[1]:
            from timm.models._manipulate import adapt_input_conv

            try:
                state[key] = adapt_input_conv(own[key].shape[1], state[key])
            except (NotImplementedError, ValueError, AssertionError) as exc:
                raise LandscapeError(f"weights {file}: cannot adapt {key} to {own[key].shape[1]} input channels "
                                     f"({exc})", params=("weights",)) from None
            adapted.append(key)
    skip = set(head) | {k for k in state if any(k.startswith(c + ".") for c in classifier)}
    missing = [k for k in own if k not in state and k not in skip]
    unexpected = [k for k in state if k not in own and k not in skip]
    wrong = [k for k in own if k in state and k not in skip and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        arch = cfg.get("architecture") or type(model).__name__
        parts = [f"{label} {len(keys)} ({', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''})"
                 for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if keys]
        raise LandscapeError(f"weights {file} do not fit {arch}: {'; '.join(parts)}", params=("weights",))
    return {k: v for k, v in state.items() if k not in skip}, adapted, head


def check_weights(model: nn.Module, path: str | Path) -> None:
    """Raise what :func:`load_weights` would raise for ``path`` and ``model`` (e.g. built on the meta device)."""
    file = find_weight_file(Path(path))
    fit_state(model, read_state_dict(file), file)


def load_weights(model: nn.Module, path: str | Path) -> dict:
    """Load local pretrained weights into ``model`` (timm's rules, see the module doc); returns what was done.

    Returns ``{"path", "file", "sha256", "adapted": [first-conv keys], "head": [keys left fresh],
    "normalization": {"mean", "std"} | None}``.
    """
    path = Path(path)
    file = find_weight_file(path)
    state, adapted, head = fit_state(model, read_state_dict(file), file)
    with torch.no_grad():
        model.load_state_dict(state, strict=False)
    return {"path": str(path), "file": str(file), "sha256": sha256_file(file), "adapted": adapted, "head": head,
            "normalization": weights_normalization(file)}
