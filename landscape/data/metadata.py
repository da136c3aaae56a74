"""Per-image metadata from a CSV file beside an image folder: label, group (patient) and environment (site/scanner).

A general option of the folder reader, not tied to one dataset. The file
column names each image by its relative path (``benign/x.png``), its file
name (``x.png``) or its stem (``x``); the first match in that order is used.
Every image of the folder must have exactly one row; rows without an image
are ignored (counted in ``unmatched_rows``). A label column, when named, must
agree with the class folder of every image. The file must be UTF-8 (with or
without BOM), text, and every row as long as the header; an empty group
(patient) ID is an error unless ``singleton_groups``, which makes each such
image its own group (with a warning giving the count). Every problem is one
:class:`LandscapeError` naming the row.
"""

from __future__ import annotations

import csv
import io
import warnings
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
    singleton_groups: int = 0  # images whose empty group ID made them their own group

    def settings(self) -> dict:
        """What identifies this metadata in provenance and cache keys."""
        return {"csv": self.path, "csv_sha256": self.sha256[:16], "columns": self.columns,
                **({"singleton_groups": self.singleton_groups} if self.singleton_groups else {})}


#: Longest CSV field accepted (characters); a longer one is an error naming its row.
MAX_FIELD = 1 << 16


NUL = b"\0"


def _line(data: bytes, offset: int) -> int:
    """1-based line of byte ``offset``."""
    return data.count(b"\n", 0, offset) + 1


def _read_rows(path: Path, needed: list[str]) -> list[dict]:
    """The rows as dicts; :class:`LandscapeError` naming the row (1 = the header) for binary, non-UTF-8,
    ragged or huge-field input.
    """
    if not path.is_file():
        raise LandscapeError(f"metadata CSV not found: {path}" if not path.exists() else
                             f"metadata CSV {path} is not a regular file")
    data = path.read_bytes()
    if NUL in data:
        raise LandscapeError(f"{path} row {_line(data, data.index(NUL))} holds a NUL byte: a binary file, not a CSV")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LandscapeError(f"{path} row {_line(data, exc.start)} is not UTF-8 (byte 0x{data[exc.start]:02x}); "
                             "expected UTF-8 with or without BOM: re-save the file as UTF-8") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows = []
    try:
        header = reader.fieldnames or []
        missing = [c for c in needed if c not in header]
        if missing:
            raise LandscapeError(f"{path} has no column(s) {', '.join(missing)}; its columns: {', '.join(header)}")
        for row in reader:
            if None in row or None in row.values():
                got = len(header) + len(row.get(None) or []) - sum(v is None for v in row.values())
                raise LandscapeError(f"{path} row {reader.line_num} has {got} field(s), the header {len(header)}")
            longest = max(row.values(), key=len, default="")
            if len(longest) > MAX_FIELD:
                raise LandscapeError(f"{path} row {reader.line_num} has a field of {len(longest):,} characters "
                                     f"(at most {MAX_FIELD:,})")
            rows.append(row)
    except csv.Error as exc:
        raise LandscapeError(f"{path} row {reader.line_num} is not valid CSV ({exc})") from None
    return rows


def read_metadata(images: Images, csv_path: str | Path, file_col: str, label_col: str | None = None,
                  group_col: str | None = None, env_col: str | None = None,
                  singleton_groups: bool = False) -> Metadata:
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
    groups, singletons = _groups(path, images.files, matched, rows, group_col, singleton_groups)
    return Metadata(
        path=str(path.resolve()), sha256=sha256_file(path), columns={k: v for k, v in columns.items() if v},
        groups=groups, envs=[r[env_col].strip() for r in matched] if env_col else None,
        unmatched_rows=sum(1 for r in rows if id(r) not in used), singleton_groups=singletons,
    )


def _groups(path: Path, files: list[str], matched: list[dict], rows: list[dict], group_col: str | None,
            singleton_groups: bool) -> tuple[list[str] | None, int]:
    """Group IDs aligned with ``files`` and the number of empty ones made singletons (see module docstring)."""
    if not group_col:
        return None, 0
    groups = [r[group_col].strip() for r in matched]
    empty = [i for i, g in enumerate(groups) if not g]
    if empty and not singleton_groups:
        row = next(n for n, r in enumerate(rows, start=2) if r is matched[empty[0]])
        raise LandscapeError(f"{path} row {row} ({files[empty[0]]}) has an empty {group_col!r}, like {len(empty)} "
                             "image(s) in all: every image would merge into one group; fill it in, or pass "
                             "singleton_groups to make each such image its own group", params=("singleton_groups",))
    for i in empty:
        groups[i] = f"<singleton> {files[i]}"
    if empty:
        warnings.warn(f"{len(empty)} image(s) have an empty {group_col!r} in {path}: each is its own group",
                      stacklevel=3)
    return groups, len(empty)
