"""Lenient reading of Kaldi tables: every good line, and every problem of the bad ones, each
named ``file:line: message``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from speecheq.data.tables import TABLES
from speecheq.errors import SpeechEQError
from speecheq.fileio import Line, read_text_file


@dataclass(frozen=True)
class Problem:
    """One problem found in a data directory, printed as ``file:line: message``."""

    file: str
    line: int | None
    message: str
    key: str | None = None
    kind: str = "consistency"
    """One of: encoding, malformed, duplicate, order, value, consistency, audio."""

    def __str__(self) -> str:
        return (
            f"{self.file}:{self.line}: {self.message}"
            if self.line
            else f"{self.file}: {self.message}"
        )


@dataclass
class Scan:
    """A lenient read of one table: the good lines and the problems of the bad ones."""

    lines: list[Line] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def scan_table(path: Path, value_check: Callable[[str, str], object] | None = None) -> Scan:
    """Read a table without stopping at the first problem.

    Malformed lines, duplicate ids, out-of-order ids and values that fail ``value_check`` are
    reported as problems; every well-formed line is kept (the first of duplicates).
    """
    scan = Scan()
    empty_values = path.name in TABLES and TABLES[path.name].empty_values
    try:
        text = read_text_file(path)
    except SpeechEQError as err:
        scan.problems.append(Problem(str(path), None, str(err).split(": ", 1)[1], kind="encoding"))
        return scan
    seen: set[str] = set()
    previous: str | None = None
    for lineno, raw in enumerate(text.splitlines(), start=1):
        parts = raw.strip().split(maxsplit=1)
        if not parts or (len(parts) == 1 and not empty_values):
            scan.problems.append(
                Problem(
                    str(path),
                    lineno,
                    f"malformed line {raw!r}, expected '<id> <value>'",
                    kind="malformed",
                )
            )
            continue
        key, value = parts[0], parts[1] if len(parts) == 2 else ""
        if key in seen:
            scan.problems.append(
                Problem(str(path), lineno, f"duplicate id '{key}'", key, "duplicate")
            )
            continue
        if previous is not None and key < previous:
            scan.problems.append(
                Problem(
                    str(path),
                    lineno,
                    f"id '{key}' is out of order (after '{previous}')",
                    key,
                    "order",
                )
            )
        previous = key
        seen.add(key)
        if value_check is not None:
            try:
                value_check(value, f"{path}:{lineno}")
            except SpeechEQError as err:
                message = str(err).split(": ", 1)[1]
                scan.problems.append(Problem(str(path), lineno, message, key, "value"))
                continue
        scan.lines.append(Line(key, value, lineno))
    return scan
