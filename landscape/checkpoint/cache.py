"""Analysis results cached as JSON records in a run folder's ``analysis/``.

A record is ``{"kind", "settings", "result", "provenance", "digest"}`` stored
at ``analysis/<kind>-<hash of settings>.json``; the same settings find the
same file, so reports and studies compose without recomputing. ``digest`` is
the SHA-256 of the rest (canonical JSON), so an edited record is detected;
``settings`` name the checkpoint file and its hash, ``provenance`` its full
SHA-256 and split hash. :func:`record_problem` says why a stored record must
not be used; a schema per kind (:func:`register_schema`) checks the result.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from landscape import distributed
from landscape.checks import schema_problem
from landscape.io import read_json, stable_hash, to_jsonable, versions, write_json

#: The reasons a stored record is not used (the first words of the warning).
OTHER_CHECKPOINT = "record was computed for another checkpoint"
EDITED = "record was edited"
MALFORMED = "record is malformed"

#: record kind -> schema of its ``result`` (see :func:`landscape.checks.schema_problem`).
_SCHEMAS: dict[str, object] = {}


class RecordWarning(UserWarning):
    """A stored analysis record failed its checks and is not used."""


def register_schema(kind: str, schema) -> None:
    """Declare the schema every stored ``result`` of ``kind`` must fit (the analysis driver does, next to its spec)."""
    _SCHEMAS[kind] = schema


def record_path(run_dir: str | Path, kind: str, settings: dict) -> Path:
    """Where the record of ``kind`` with ``settings`` lives."""
    return Path(run_dir) / "analysis" / f"{kind}-{stable_hash(settings)}.json"


def digest(record: dict) -> str:
    """SHA-256 (64 hex digits) of a record's kind, settings, result and provenance, as canonical JSON."""
    return stable_hash({k: record.get(k) for k in ("kind", "settings", "result", "provenance")}, length=64)


def record_problem(record, kind: str, sha: str | None = None, split_hash: str | None = None,
                   settings: dict | None = None) -> str | None:
    """Why ``record`` must not be used for checkpoint hash ``sha`` (16+ hex digits); None when it may.

    In order: :data:`MALFORMED` (not a record of ``kind``, or its result
    breaks the kind's schema; the words after it say where), :data:`EDITED`
    (its digest does not match its content), :data:`OTHER_CHECKPOINT` (its
    settings or provenance name another file hash or split, or other
    ``settings`` than asked for).
    """
    shape = {"kind": str, "settings": dict, "result": dict, "provenance": dict, "digest": str}
    problem = schema_problem(record, shape) or schema_problem(record["result"], _SCHEMAS.get(kind, dict), "result")
    if problem or record["kind"] != kind:
        return f"{MALFORMED} ({problem or 'kind is ' + repr(record['kind'])})"
    if record["digest"] != digest(record):
        return EDITED
    prov, recorded = record["provenance"], record["settings"]
    full = str(prov.get("checkpoint_sha256") or "")
    if sha is not None and (recorded.get("checkpoint_sha256") != sha[:16] or not full.startswith(sha)):
        return OTHER_CHECKPOINT
    if split_hash is not None and prov.get("split_hash") != split_hash:
        return f"{OTHER_CHECKPOINT} (another split)"
    if settings is not None and recorded != to_jsonable(settings):
        return f"{OTHER_CHECKPOINT} (other settings)"
    return None


def warn_unused(path: Path, reason: str, action: str) -> None:
    """One :class:`RecordWarning` line: ``<path>: <reason>; <action>``."""
    warnings.warn(f"{path}: {reason}; {action}", RecordWarning, stacklevel=3)


def find_record(run_dir: str | Path, kind: str, settings: dict) -> dict | None:
    """The stored record at these settings' path as it is on disk (unchecked: see :func:`record_problem`), or None."""
    path = record_path(run_dir, kind, settings)
    return read_json(path) if path.is_file() else None


def store(run_dir: str | Path, kind: str, settings: dict, result: dict, provenance: dict) -> Path:
    """Write a record atomically (adding versions, the world size, a UTC timestamp and its digest); returns its path.

    Under ``torchrun`` every rank calls it, rank 0 writes, and all ranks wait
    until the record is on disk (so a following :func:`find_record` finds it).
    """
    record = to_jsonable({
        "kind": kind,
        "settings": settings,
        "result": result,
        "provenance": {**to_jsonable(provenance), "versions": versions(), "world_size": distributed.world_size(),
                       "created": datetime.now(timezone.utc).isoformat(timespec="seconds")},
    })
    record["digest"] = digest(record)
    path = write_json(record_path(run_dir, kind, settings), record)
    distributed.barrier()
    return path


def _paths(run_dir: str | Path, kind: str) -> list[Path]:
    folder = Path(run_dir) / "analysis"
    return sorted(folder.glob(f"{kind}-*.json"), key=lambda p: p.stat().st_mtime) if folder.is_dir() else []


def records(run_dir: str | Path, kind: str) -> list[dict]:
    """Every stored record of ``kind``, oldest first, as on disk (unchecked)."""
    return [read_json(p) for p in _paths(run_dir, kind)]


def latest(run_dir: str | Path, kind: str) -> dict | None:
    """The newest stored record of ``kind`` (unchecked), or None."""
    found = records(run_dir, kind)
    return found[-1] if found else None


def newest_for(path: str | Path, sha: str, kind: str, test: Callable[[dict], bool] = lambda r: True) -> dict | None:
    """The newest sound record of ``kind`` for exactly the checkpoint file ``path`` that passes ``test``.

    Records name their checkpoint (settings) and its hash (first 16 hex
    digits ``sha``); a record of another file of the run, or of an older
    version of this file (retrained since) stored under its own name, is
    skipped. A record that fails :func:`record_problem` otherwise (malformed,
    edited, or another checkpoint's record put under this one's name) is
    skipped with one :class:`RecordWarning`, so no number of it is shown.
    """
    path = Path(path)
    for file in reversed(_paths(path.parent, kind)):
        try:
            rec = read_json(file)
        except Exception:  # noqa: BLE001 - unreadable JSON is a malformed record
            warn_unused(file, f"{MALFORMED} (not JSON)", "not used")
            continue
        problem = record_problem(rec, kind)
        if problem is None:
            recorded = rec["settings"]
            if recorded.get("checkpoint") != path.name:
                continue  # another file of the run
            if recorded.get("checkpoint_sha256") != sha or not str(
                    rec["provenance"].get("checkpoint_sha256", "")).startswith(sha):
                if file == record_path(path.parent, kind, recorded):
                    continue  # an older version of this file, under its own name
                problem = OTHER_CHECKPOINT
            elif file != record_path(path.parent, kind, recorded):
                problem = f"{EDITED} (its name does not match its settings)"
        if problem is not None:
            warn_unused(file, problem, "not used")
            continue
        try:
            if test(rec):
                return rec
        except (KeyError, TypeError, AttributeError, IndexError):  # fits the schema, lacks what test needs
            continue
    return None
