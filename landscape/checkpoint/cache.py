"""Analysis results cached as JSON records in a run folder's ``analysis/``.

A record is ``{"kind", "settings", "result", "provenance"}`` stored at
``analysis/<kind>-<hash of settings>.json``; the same settings find the same
file, so reports and studies compose without recomputing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from landscape import distributed
from landscape.io import read_json, stable_hash, to_jsonable, versions, write_json


def record_path(run_dir: str | Path, kind: str, settings: dict) -> Path:
    """Where the record of ``kind`` with ``settings`` lives."""
    return Path(run_dir) / "analysis" / f"{kind}-{stable_hash(settings)}.json"


def cached(run_dir: str | Path, kind: str, settings: dict) -> dict | None:
    """The stored record for exactly these settings, or None."""
    path = record_path(run_dir, kind, settings)
    return read_json(path) if path.is_file() else None


def store(run_dir: str | Path, kind: str, settings: dict, result: dict, provenance: dict) -> Path:
    """Write a record atomically (adding versions, the world size and a UTC timestamp); returns its path.

    Under ``torchrun`` every rank calls it, rank 0 writes, and all ranks wait
    until the record is on disk (so a following :func:`cached` finds it).
    """
    record = {
        "kind": kind,
        "settings": to_jsonable(settings),
        "result": to_jsonable(result),
        "provenance": {**to_jsonable(provenance), "versions": versions(), "world_size": distributed.world_size(),
                       "created": datetime.now(timezone.utc).isoformat(timespec="seconds")},
    }
    path = write_json(record_path(run_dir, kind, settings), record)
    distributed.barrier()
    return path


def records(run_dir: str | Path, kind: str) -> list[dict]:
    """Every stored record of ``kind``, oldest first."""
    folder = Path(run_dir) / "analysis"
    paths = sorted(folder.glob(f"{kind}-*.json"), key=lambda p: p.stat().st_mtime) if folder.is_dir() else []
    return [read_json(p) for p in paths]


def latest(run_dir: str | Path, kind: str) -> dict | None:
    """The newest record of ``kind``, or None."""
    found = records(run_dir, kind)
    return found[-1] if found else None


def newest_for(path: str | Path, sha: str, kind: str, test: Callable[[dict], bool] = lambda r: True) -> dict | None:
    """The newest record of ``kind`` for exactly the checkpoint file ``path`` that passes ``test``.

    Records name their checkpoint (provenance) and its hash (settings, first
    16 hex digits ``sha``); a record of another file of the run, or of an
    older version of this file (retrained since), is skipped.
    """
    path = Path(path)
    for rec in reversed(records(path.parent, kind)):
        source = (rec.get("provenance") or {}).get("checkpoint")
        recorded_sha = (rec.get("settings") or {}).get("checkpoint_sha256")
        if (source is not None and Path(source).name != path.name) or recorded_sha not in (None, sha):
            continue
        try:
            if test(rec):
                return rec
        except (KeyError, TypeError, AttributeError):  # a record of an older layout
            continue
    return None
