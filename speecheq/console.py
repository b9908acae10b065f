"""Console output: results to stdout, progress and warnings to stderr (rich)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

console = Console(highlight=False)
"""Results: tables and reports a user may pipe or save."""

status_console = Console(stderr=True, highlight=False)
"""Progress bars, warnings and notes."""


def warn(message: str) -> None:
    """Print a warning to stderr."""
    status_console.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)


def note(message: str) -> None:
    """Print an informational line to stderr."""
    status_console.print(message, soft_wrap=True, markup=False)


@contextlib.contextmanager
def progress_bar(description: str, total: float | None) -> Iterator[Callable[[float], None]]:
    """A progress bar on stderr; yields ``advance(n)``. Rich hides it when stderr is no terminal."""
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=status_console) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n=1: progress.advance(task, n)


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print a table of results to stdout, every text as it is (``UA[f]`` is not markup)."""
    table = Table(title=escape(title), title_justify="left")
    for index, name in enumerate(header):
        table.add_column(escape(name), justify="left" if index == 0 else "right")
    for row in rows:
        table.add_row(*(escape(str(cell)) for cell in row))
    console.print(table)
