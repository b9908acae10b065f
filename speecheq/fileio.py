"""Kaldi-style text tables (``<key> <value>`` per line) and atomic file writing."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import kaldiio
import numpy as np

from speecheq.console import warn
from speecheq.errors import SpeechEQError

BOM = "\ufeff"


def _file_mode() -> int:
    """The mode a new file gets under this process's umask (as ``open`` would give it)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


FILE_MODE = _file_mode()


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success rename it over ``path``.

    If the block raises, the temporary file is removed and ``path`` is left as it was, so a
    reader never sees a half-written file. The file gets the mode the umask gives new files.
    A failure to write (a read-only or full disk, a path under a file) is a
    :class:`SpeechEQError` naming ``path``.
    """
    path = Path(path)
    if path.is_dir():
        raise SpeechEQError(f"{path}: is a folder, cannot write a file there")
    make_folder(path.parent, for_path=path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise cannot_write(path, err) from None
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(err, OSError) and err.filename in (None, tmp, str(path)):
            raise cannot_write(path, err) from None
        raise


def make_folder(folder: str | Path, for_path: str | Path | None = None) -> None:
    """``mkdir -p folder``; a failure is a :class:`SpeechEQError` naming ``for_path`` (the
    output the folder is made for, by default the folder) and the real reason, such as a file
    standing where a folder must be."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise cannot_write(Path(for_path or folder), err, folder) from None


def cannot_write(path: Path, err: OSError, folder: Path | None = None) -> SpeechEQError:
    """The error for an output ``path`` that could not be written into ``folder`` (by default
    its parent): a file standing where a folder must be is named as the reason."""
    folder = folder or path.parent
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            if not candidate.is_dir():
                where = "it is" if candidate == path else f"{candidate} is"
                return SpeechEQError(f"{path}: cannot write it: {where} a file, not a folder")
            break
    return SpeechEQError(f"{path}: cannot write it ({err.strerror or err})")


def path_problem(path: str | Path, folder: bool = False) -> str | None:
    """Why ``path`` is not an existing file (or ``folder``), as the end of a sentence naming it
    ("does not exist", "is a folder, not a file", ...); None when it is one."""
    path = Path(path)
    if path.is_dir():
        return None if folder else "is a folder, not a file"
    if path.is_file():
        return "is a file, not a folder" if folder else None
    return "is neither a file nor a folder" if path.exists() else "does not exist"


@dataclass(frozen=True)
class Line:
    """One parsed line of a table: its key, the rest of the line, and its 1-based number."""

    key: str
    value: str
    lineno: int


def read_lines(path: str | Path, *, allow_empty_value: bool = False) -> list[Line]:
    """Parse a ``<key> <value>`` table, raising on a malformed line (no key or no value).

    Blank lines are malformed too: Kaldi tools reject them. Duplicates are not checked here
    (see :func:`read_table`), so that validation can report every problem at once.
    """
    path = Path(path)
    text = read_text_file(path)
    lines = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        parts = raw.strip().split(maxsplit=1)
        if not parts or (len(parts) == 1 and not allow_empty_value):
            raise SpeechEQError(f"{path}:{lineno}: malformed line {raw!r}, expected '<id> <value>'")
        lines.append(Line(parts[0], parts[1] if len(parts) == 2 else "", lineno))
    return lines


def read_text_file(path: str | Path) -> str:
    """The UTF-8 text of a table; a leading byte-order mark is dropped, with a warning."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpeechEQError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise SpeechEQError(f"{path}: is a folder, expected a text file") from None
    except UnicodeDecodeError as err:
        raise SpeechEQError(
            f"{path}: not UTF-8 text ({err.reason} at byte {err.start}); convert it, e.g. with "
            f"iconv -f GB18030 -t UTF-8"
        ) from None
    if text.startswith(BOM):
        warn(f"{path}: starts with a byte-order mark, ignored")
        text = text[len(BOM) :]
    return text


def read_table(path: str | Path, *, allow_empty_value: bool = False) -> dict[str, str]:
    """Read a table into a dict, raising on malformed lines and duplicate keys."""
    table: dict[str, str] = {}
    for line in read_lines(path, allow_empty_value=allow_empty_value):
        if line.key in table:
            raise SpeechEQError(f"{path}:{line.lineno}: duplicate id '{line.key}'")
        table[line.key] = line.value
    return table


def write_table(path: str | Path, table: Mapping[str, str] | Iterable[tuple[str, str]]) -> None:
    """Write a table atomically, sorted by key in C-locale (code point) order."""
    items = sorted(table.items() if isinstance(table, Mapping) else table)
    with atomic_write(path) as out:
        for key, value in items:
            out.write(f"{key} {value}\n" if value != "" else f"{key}\n")


def write_matrix(ark: IO[bytes], key: str, matrix: np.ndarray) -> int:
    """Append ``key`` and ``matrix`` to an open ark; return the offset an scp entry points to.

    Matrices of 32 or 64-bit floats are written in Kaldi's format, others (half precision) in
    NumPy's, which kaldiio reads back the same way."""
    offset = ark.tell() + len(key.encode()) + 1
    kaldi = matrix.dtype in (np.float32, np.float64)
    kaldiio.save_ark(ark, {key: matrix}, write_function="numpy" if not kaldi else None)
    return offset
