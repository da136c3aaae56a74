"""The schema of a checkpoint's metadata, checked field by field when it is loaded (before any work).

:data:`SCHEMA` lists every entry loading, analyses and reports read, with its
type (see :func:`landscape.checks.schema_problem`); :data:`RANGES` the values
a field may take. :func:`check_metadata` raises one :class:`LandscapeError`
naming the first bad field. :func:`check_model_size` builds the model on the
``meta`` device and refuses one that would not fit in memory.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from landscape.checks import SEED_LIMIT, check_memory, schema_problem
from landscape.errors import LandscapeError

_NUMBERS = {"*": (float, None, bool, str, [(float, None)], {"*": (float, None, bool, str)})}

#: Types of a checkpoint's entries (a key ending in ``?`` may be absent; ``*``: any other key).
SCHEMA = {
    "format_version": int,
    "kind": str,
    "state_dict": dict,
    "model": {"name": str, "kwargs": dict, "num_params?": int},
    "optimizer": {"name": str, "base?": (str, None), "lr": float, "hyper?": dict},
    "data": {"source": str, "kind": str, "root?": (str, None), "classes": [str], "img_size": int,
             "mean": (float, [float]), "std": (float, [float]), "channels?": int, "split": {"hash": str}},
    "seed": int,
    "epoch?": int,
    "metrics?": {"*": (None, _NUMBERS)},
    "train?": dict,
    "run_id?": (str, None),
    "gradient_evaluations?": int,  # absent in checkpoints from before the count
}

#: Field -> (test of its value, what it must be), checked once the types fit.
RANGES = {
    "data.kind": (lambda v: v in ("phantom", "folder"), "'phantom' or 'folder'"),
    "data.classes": (lambda v: len(v) >= 1 and len(set(v)) == len(v), "a non-empty list of distinct names"),
    "data.img_size": (lambda v: v >= 1, "a positive integer"),
    "data.mean": (lambda v: np.size(v) >= 1 and bool(np.all(np.isfinite(v))), "finite (one per channel)"),
    "data.std": (lambda v: np.size(v) >= 1 and bool(np.all(np.isfinite(v)) and np.all(np.asarray(v) > 0)),
                 "finite and > 0 (one per channel)"),
    "data.channels": (lambda v: v >= 1, "a positive integer"),
    "optimizer.lr": (lambda v: math.isfinite(v) and v > 0, "a finite number > 0"),
    "seed": (lambda v: 0 <= v < SEED_LIMIT, "an integer from 0 to 2**32 - 1"),
    "epoch": (lambda v: v >= 0, "an integer >= 0"),
    "gradient_evaluations": (lambda v: v >= 0, "an integer >= 0"),
}


def _get(payload: dict, field: str):
    value = payload
    for part in field.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def check_metadata(path: str | Path, payload: dict) -> None:
    """:class:`LandscapeError` naming the first missing, mistyped or out-of-range field of ``payload``."""
    problem = schema_problem(payload, SCHEMA)
    if problem is None:
        for field, (ok, words) in RANGES.items():
            value = _get(payload, field)
            if value is not None and not ok(value):
                problem = f"{field} is {value!r}, not {words}"
                break
    if problem is not None:
        raise LandscapeError(f"checkpoint {path} is damaged: {problem}")


def check_model_size(path: str | Path, name: str, kwargs: dict, budget_memory: float | None = None,
                     device=None) -> int:
    """Build the model on the ``meta`` device (no memory) and return its bytes of parameters and buffers.

    :class:`LandscapeError` when they exceed ``budget_memory`` GiB (default:
    what ``device`` has available), before anything is allocated.
    """
    from landscape.models import create

    with torch.device("meta"):
        model = create(name, **kwargs)
    need = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
    check_memory(need, f"the model of {path} ({name} {kwargs})", budget_memory, device)
    return need
