"""The one "cached, compute, store" step every checkpoint-level analysis goes through."""

from __future__ import annotations

from collections.abc import Callable

from landscape.checkpoint import cache
from landscape.errors import LandscapeError
from landscape.io import check_inside
from landscape.runlock import run_lock


def checkpoint_settings(ck) -> dict:
    """The settings that tie a record to one checkpoint file: its name and ``ck.fingerprint`` (16 hex digits)."""
    return {"checkpoint": ck.path.name, "checkpoint_sha256": ck.fingerprint[:16]}


def cached(ck, kind: str, settings: dict, compute: Callable[[dict], tuple[dict, dict]],
           valid: Callable[[dict], bool] | None = None, outputs: tuple = ()) -> dict:
    """The record of ``kind`` for ``ck`` with ``settings``: stored if sound, else computed, stored and returned.

    ``settings`` (everything that changes the numbers) is prefixed with
    :func:`checkpoint_settings`, so several checkpoints of a run share one
    ``analysis/`` folder. ``compute(full_settings)`` returns ``(result,
    provenance)``; the provenance is merged over ``ck.provenance()``.
    A stored record is used only if :func:`~landscape.checkpoint.cache.record_problem`
    finds nothing (its kind's schema, its digest, this checkpoint's SHA-256
    and split hash, these settings) and ``valid(record)`` (e.g. its files
    exist) holds; otherwise it is recomputed with one
    :class:`~landscape.checkpoint.cache.RecordWarning` naming the reason.
    Computing and storing hold the run folder's lock (:func:`landscape.runlock.run_lock`),
    after checking that ``analysis/`` and the extra folders ``outputs`` can be
    written inside the run folder; a cache hit takes no lock. Returns
    ``{"kind", "settings", "result", "provenance", "digest", "path"}``.
    """
    full = {**checkpoint_settings(ck), **settings}
    path = cache.record_path(ck.run_dir, kind, full)
    hit = _sound(ck, kind, full, path)
    if hit is not None and valid is not None and not valid(hit):
        hit = None
    if hit is None:
        check_inside(ck.run_dir, ck.analysis_dir, path)
        with run_lock(ck.run_dir, outputs=(ck.analysis_dir, *outputs)):
            result, provenance = compute(full)
            path = cache.store(ck.run_dir, kind, full, result, {**ck.provenance(), **provenance})
        hit = cache.find_record(ck.run_dir, kind, full)
    return {**hit, "path": str(path)}


def _sound(ck, kind: str, full: dict, path) -> dict | None:
    """The stored record at ``path`` if it passes every check, else None (with a warning naming why)."""
    try:
        hit = cache.find_record(ck.run_dir, kind, full)
    except LandscapeError:
        cache.warn_unused(path, f"{cache.MALFORMED} (not JSON)", "recomputing")
        return None
    if hit is None:
        return None
    problem = cache.record_problem(hit, kind, ck.fingerprint, ck.split_hash, full)
    if problem is not None:
        cache.warn_unused(path, problem, "recomputing")
        return None
    return hit


def model_provenance(model) -> dict:
    """Device and dtype of ``model``'s parameters, as every record's provenance states them."""
    p = next(model.parameters())
    return {"device": str(p.device), "dtype": str(p.dtype).removeprefix("torch.")}


def as_checkpoint(ck, device=None, data_root=None):
    """``ck`` itself if it is a loaded :class:`~landscape.checkpoint.Checkpoint`, else the checkpoint at that path."""
    from landscape.checkpoint import Checkpoint, load_checkpoint

    return ck if isinstance(ck, Checkpoint) else load_checkpoint(ck, device=device, data_root=data_root)
