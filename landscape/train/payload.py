"""The checkpoint dictionary written by the trainer (format in docs/records.md)."""

from __future__ import annotations

import torch
from torch import nn

from landscape import distributed
from landscape.checkpoint.format import FORMAT_VERSION, KIND
from landscape.io import versions


def checkpoint_payload(
    model: nn.Module,
    *,
    model_meta: dict,
    optimizer_meta: dict,
    data_meta: dict,
    config: dict,
    epoch: int,
    metrics: dict,
    wall_time_s: float,
    optimizer_state: dict | None = None,
    history: list | None = None,
    run_id: str | None = None,
    stopping: dict | None = None,
    gradient_evaluations: int = 0,
) -> dict:
    """Tensors and plain data only, so that ``torch.load(weights_only=True)`` reads it.

    ``gradient_evaluations``: forward/backward passes over a mini-batch that training used up to ``epoch``
    (:mod:`landscape.train.loop`; evaluation passes are not counted).
    """
    payload = {
        "format_version": FORMAT_VERSION,
        "kind": KIND,
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "model": model_meta,
        "optimizer": optimizer_meta,
        "data": data_meta,
        "seed": config["seed"],
        "epoch": epoch,
        "metrics": metrics,
        "train": config,
        "versions": versions(),
        "wall_time_s": wall_time_s,
        "world_size": distributed.world_size(),
        "run_id": run_id,
        "stopping": stopping,
        "gradient_evaluations": int(gradient_evaluations),
    }
    if optimizer_state is not None:
        payload["optimizer_state"] = _to_cpu(optimizer_state)
        payload["history"] = history or []
    return payload


def _to_cpu(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj
