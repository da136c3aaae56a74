"""Shared terminal output for CLI commands: rich tables and 'saved to' lines."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.console import Console
from rich.table import Table

console = Console(highlight=False)


def fit_width(con: Console) -> None:
    """Tables at the terminal's width, or unwrapped (one line per row) when stdout is not a terminal."""
    import sys

    if not (sys.stdout is not None and sys.stdout.isatty()):
        con.width = 10_000


def fmt(value, digits: int = 4) -> str:
    """Compact text for a table cell: floats to ``digits`` significant digits, None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def print_table(title: str, columns: Sequence[str], rows: Iterable[Sequence]) -> None:
    """Print a rich table; cells go through :func:`fmt`. Markup in cells is not interpreted."""
    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*[fmt(v) for v in row])
    console.print(table, markup=False)


def now() -> float:
    """The time at the start of a command, to tell a record found in the cache from one it computed."""
    import time

    return time.time()


def was_cached(record: dict, since: float) -> bool:
    """Whether ``record``'s file was written before ``since`` (:func:`now` at the start of the command)."""
    from pathlib import Path

    path = Path(record["path"])
    return path.is_file() and path.stat().st_mtime < since


def settings_text(settings: dict) -> str:
    """``"top_k=5, samples=512, seed=0"``: the scalar settings of a record (the checkpoint's name and hash left out)."""
    skip = {"checkpoint", "checkpoint_sha256"}
    return ", ".join(f"{k}={fmt(v)}" for k, v in settings.items()
                     if k not in skip and (v is None or isinstance(v, (bool, int, float, str))))


def record_saved(record: dict, since: float) -> None:
    """The 'record' line; a record found in the cache says ``cached`` with when and with what settings."""
    if was_cached(record, since):
        created = (record.get("provenance") or {}).get("created", "earlier")
        console.print(f"cached: computed {created} with {settings_text(record['settings'])}"
                      " (other settings compute a new record)", markup=False, soft_wrap=True)
    saved("record", record["path"])


def saved(what: str, path) -> None:
    """One 'saved' line naming a written file."""
    console.print(f"{what}: {path}", markup=False, soft_wrap=True)
