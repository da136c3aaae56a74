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


def saved(what: str, path) -> None:
    """One 'saved' line naming a written file."""
    console.print(f"{what}: {path}", markup=False, soft_wrap=True)
