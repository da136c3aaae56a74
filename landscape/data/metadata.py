"""Per-image metadata from a CSV file beside an image folder: label, group (patient) and environment (site/scanner).

A general option of the folder reader, not tied to one dataset. The file
column names each image by its relative path (``benign/x.png``), its file
name (``x.png``) or its stem (``x``); the first match in that order is used.
Every image of the folder must have exactly one row; rows without an image
are ignored (counted in ``unmatched_rows``). A label column, when named, must
agree with the class folder of every image.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from landscape.data.images import Images
from landscape.errors import LandscapeError
from landscape.io import sha256_file


@dataclass
class Metadata:
    """Columns of the CSV aligned with ``images.files`` (None where a column was not named)."""

    path: str
    sha256: str
    columns: dict  # role ("file", "label", "group", "env") -> CSV column name
    groups: list[str] | None
    envs: list[str] | None
    unmatched_rows: int

    def settings(self) -> dict:
        """What identifies this metadata in provenance and cache keys."""
        return {"csv": self.path, "csv_sha256": self.sha256[:16], "columns": self.columns}


def _read_rows(path: Path, needed: list[str]) -> list[dict]:
    if not path.is_file():
        raise LandscapeError(f"metadata CSV not found: {path}")
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        missing = [c for c in needed if c not in header]
        if missing:
            raise LandscapeError(f"{path} has no column(s) {', '.join(missing)}; its columns: {', '.join(header)}")
        return list(reader)


def read_metadata(images: Images, csv_path: str | Path, file_col: str, label_col: str | None = None,
                  group_col: str | None = None, env_col: str | None = None) -> Metadata:
    """Align the CSV's group and environment columns with ``images`` (see module docstring)."""
    path = Path(csv_path)
    columns = {"file": file_col, "label": label_col, "group": group_col, "env": env_col}
    rows = _read_rows(path, [c for c in columns.values() if c])
    by_key: dict[str, dict] = {}
    for row in rows:
        key = (row.get(file_col) or "").strip()
        if key in by_key:
            raise LandscapeError(f"{path}: {file_col}={key!r} appears in more than one row")
        by_key[key] = row
    matched: list[dict] = []
    missing: list[str] = []
    for rel in images.files:
        p = PurePosixPath(rel)
        row = by_key.get(rel) or by_key.get(p.name) or by_key.get(p.stem)
        if row is None:
            missing.append(rel)
        matched.append(row)
    if missing:
        raise LandscapeError(f"{len(missing)} image(s) of {images.root} have no row in {path} "
                             f"(column {file_col!r}), e.g. {missing[0]}")
    if label_col:
        wrong = [(rel, row[label_col]) for rel, row, lab in zip(images.files, matched, images.labels)
                 if row[label_col].strip().lower() != images.classes[lab].lower()]
        if wrong:
            raise LandscapeError(f"{len(wrong)} image(s) are labelled differently in {path} ({label_col}) than by "
                                 f"their folder, e.g. {wrong[0][0]}: {wrong[0][1]!r}")
    used = {id(r) for r in matched}
    return Metadata(
        path=str(path.resolve()), sha256=sha256_file(path), columns={k: v for k, v in columns.items() if v},
        groups=[r[group_col].strip() for r in matched] if group_col else None,
        envs=[r[env_col].strip() for r in matched] if env_col else None,
        unmatched_rows=sum(1 for r in rows if id(r) not in used),
    )
