"""The one "cached, compute, store" step every checkpoint-level analysis goes through."""

from __future__ import annotations

from collections.abc import Callable

from landscape.checkpoint import cache
from landscape.runlock import run_lock


def checkpoint_settings(ck) -> dict:
    """The settings that tie a record to one checkpoint file: its name and ``ck.fingerprint`` (16 hex digits)."""
    return {"checkpoint": ck.path.name, "checkpoint_sha256": ck.fingerprint[:16]}


def cached(ck, kind: str, settings: dict, compute: Callable[[dict], tuple[dict, dict]],
           valid: Callable[[dict], bool] | None = None, outputs: tuple = ()) -> dict:
    """The record of ``kind`` for ``ck`` with ``settings``: stored if present, else computed, stored and returned.

    ``settings`` (everything that changes the numbers) is prefixed with
    :func:`checkpoint_settings`, so several checkpoints of a run share one
    ``analysis/`` folder. ``compute(full_settings)`` returns ``(result,
    provenance)``; the provenance is merged over ``ck.provenance()``.
    ``valid(record)`` can reject a stored record (e.g. its files are gone).
    Computing and storing hold the run folder's lock (:func:`landscape.runlock.run_lock`),
    after checking that ``analysis/`` and the extra folders ``outputs`` can be
    written; a cache hit takes no lock. Returns ``{"kind", "settings", "result",
    "provenance", "path"}``.
    """
    full = {**checkpoint_settings(ck), **settings}
    path = cache.record_path(ck.run_dir, kind, full)
    hit = cache.cached(ck.run_dir, kind, full)
    if hit is None or (valid is not None and not valid(hit)):
        with run_lock(ck.run_dir, outputs=(ck.analysis_dir, *outputs)):
            result, provenance = compute(full)
            path = cache.store(ck.run_dir, kind, full, result, {**ck.provenance(), **provenance})
        hit = cache.cached(ck.run_dir, kind, full)
    return {**hit, "path": str(path)}


def model_provenance(model) -> dict:
    """Device and dtype of ``model``'s parameters, as every record's provenance states them."""
    p = next(model.parameters())
    return {"device": str(p.device), "dtype": str(p.dtype).removeprefix("torch.")}


def as_checkpoint(ck, device=None, data_root=None):
    """``ck`` itself if it is a loaded :class:`~landscape.checkpoint.Checkpoint`, else the checkpoint at that path."""
    from landscape.checkpoint import Checkpoint, load_checkpoint

    return ck if isinstance(ck, Checkpoint) else load_checkpoint(ck, device=device, data_root=data_root)
