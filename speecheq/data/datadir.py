"""Kaldi-style data directories: the contract between recipe stages.

A data directory is a folder of plain-text tables, one ``<id> <value>`` per line, sorted by
id, unique. Per-utterance tables are keyed by utterance id, per-speaker tables by speaker id.
``spk2utt`` is always derived from ``utt2spk`` when a directory is written. A missing label is
a missing line, never a placeholder value.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from speecheq.console import note
from speecheq.data.tables import REQUIRED_TABLES, SPK_TABLES, TABLES, UTT_TABLES
from speecheq.errors import SpeechEQError
from speecheq.fileio import (
    Line,
    atomic_write,
    make_folder,
    path_problem,
    read_table,
    read_text_file,
    write_table,
)


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


class DataDir:
    """An in-memory data directory: table name -> {id: value}, plus its ``conf/`` files.

    ``conf`` holds the text of the files in the directory's ``conf/`` folder (as Kaldi's
    ``copy_data_dir.sh`` carries it): the options its features were computed with, so that
    every subset, and every model trained on one, knows them. Build one with :meth:`load` or
    from tables; write it with :meth:`save`. Operations return new instances and never modify
    the tables they were given.
    """

    def __init__(
        self, tables: Mapping[str, Mapping[str, str]], conf: Mapping[str, str] | None = None
    ) -> None:
        unknown = set(tables) - set(TABLES)
        if unknown:
            raise ValueError(f"unknown data-dir tables: {sorted(unknown)}")
        self.tables: dict[str, dict[str, str]] = {name: dict(t) for name, t in tables.items()}
        for name in REQUIRED_TABLES:
            self.tables.setdefault(name, {})
        self.conf: dict[str, str] = dict(conf or {})

    @classmethod
    def load(cls, path: str | Path) -> DataDir:
        """Read every known table present in ``path``; raise on the first problem.

        Use :func:`validate` to see every problem at once, and :func:`fix` to repair them.
        """
        path = Path(path)
        problem = path_problem(path, folder=True)
        if problem:
            raise SpeechEQError(f"{path}: data directory {problem}")
        for name in REQUIRED_TABLES:
            if not (path / name).is_file():
                raise SpeechEQError(f"{path}: required file '{name}' is missing")
        tables = {}
        for name in TABLES:
            if (path / name).is_file():
                scan = scan_table(path / name, TABLES[name].check)
                if scan.problems:
                    raise SpeechEQError(str(scan.problems[0]))
                tables[name] = {line.key: line.value for line in scan.lines}
        conf_files = sorted((path / "conf").glob("*"))
        conf = {file.name: file.read_text() for file in conf_files if file.is_file()}
        data = cls(tables, conf)
        problems = data.consistency_problems(path)
        if problems:
            raise SpeechEQError(f"{problems[0]} (run 'speecheq data validate {path}' for all)")
        return data

    def save(self, path: str | Path) -> None:
        """Write every table (sorted, atomically) plus the derived ``spk2utt``.

        Where ``path`` already holds a data directory, this one replaces it: its tables and
        ``conf/`` files that this one does not have are removed (they would describe other
        utterances), and said so; other files are left alone. Where it already holds the same
        tables and ``conf/`` files (stage 1 run again on the same corpus), nothing changes, so
        the tables derived from them (features, tokens) stay. A directory without utterances is
        never written: whatever made it selected nothing, and saying so is the caller's job.
        """
        path = Path(path)
        if not self.tables["wav.scp"]:
            raise SpeechEQError(f"{path}: refusing to write a data directory with no utterances")
        if self._saved_in(path):
            return
        make_folder(path)
        for name, table in self.tables.items():
            write_table(path / name, table)
        write_table(path / "spk2utt", {spk: " ".join(utts) for spk, utts in self.spk2utt.items()})
        for name, text in self.conf.items():
            with atomic_write(path / "conf" / name) as out:
                out.write(text)
        stale = [path / name for name in TABLES if name not in self.tables]
        stale += [file for file in path.glob("conf/*") if file.name not in self.conf]
        removed = [file for file in stale if file.is_file()]
        for file in removed:
            file.unlink()
        if removed:
            names = ", ".join(str(file.relative_to(path)) for file in removed)
            note(f"{path}: removed {names} of the data directory this one replaces")

    def _saved_in(self, path: Path) -> bool:
        """Whether ``path`` holds every table and ``conf/`` file of this directory, unchanged."""
        try:
            return all(
                read_table(path / name, allow_empty_value=True) == table
                for name, table in self.tables.items()
            ) and all(
                (path / "conf" / name).read_text(encoding="utf-8") == text
                for name, text in self.conf.items()
            )
        except (OSError, SpeechEQError):
            return False

    @property
    def utts(self) -> list[str]:
        """Utterance ids, sorted."""
        return sorted(self.tables["wav.scp"])

    @property
    def utt2spk(self) -> dict[str, str]:
        return self.tables["utt2spk"]

    @property
    def spk2utt(self) -> dict[str, list[str]]:
        """Speaker id -> sorted utterance ids."""
        spk2utt: dict[str, list[str]] = defaultdict(list)
        for utt in sorted(self.utt2spk):
            spk2utt[self.utt2spk[utt]].append(utt)
        return dict(sorted(spk2utt.items()))

    @property
    def utt2gender(self) -> dict[str, str]:
        """Each utterance's speaker's gender, where ``spk2gender`` gives it."""
        genders = self.get("spk2gender")
        return {utt: genders[spk] for utt, spk in self.utt2spk.items() if spk in genders}

    @property
    def speakers(self) -> list[str]:
        return sorted(set(self.utt2spk.values()))

    def get(self, name: str) -> dict[str, str]:
        """A table by name; empty if the directory does not have it."""
        return self.tables.get(name, {})

    def has(self, name: str) -> bool:
        return bool(self.tables.get(name))

    def subset(self, utts: Iterable[str]) -> DataDir:
        """The utterances ``utts`` (and their speakers) with every table restricted to them."""
        keep = set(utts) & set(self.tables["wav.scp"])
        speakers = {self.utt2spk[utt] for utt in keep if utt in self.utt2spk}
        tables = {}
        for name, table in self.tables.items():
            ids = speakers if name in SPK_TABLES else keep
            tables[name] = {key: value for key, value in table.items() if key in ids}
        return DataDir(tables, self.conf)

    def consistency_problems(self, path: str | Path = ".") -> list[Problem]:
        """Cross-table problems: ids missing from required tables, speaker-prefix rule."""
        path = Path(path)
        problems = []
        wav = self.tables["wav.scp"]
        for utt in sorted(wav):
            if utt not in self.utt2spk:
                problems.append(
                    Problem(str(path / "utt2spk"), None, f"utterance '{utt}' has no speaker", utt)
                )
            elif not utt.startswith(self.utt2spk[utt]):
                problems.append(
                    Problem(
                        str(path / "utt2spk"),
                        None,
                        f"utterance id '{utt}' does not start with its speaker id "
                        f"'{self.utt2spk[utt]}'",
                        utt,
                    )
                )
        for name in UTT_TABLES:
            if name == "wav.scp":
                continue
            for utt in sorted(set(self.get(name)) - set(wav)):
                problems.append(
                    Problem(str(path / name), None, f"utterance '{utt}' is not in wav.scp", utt)
                )
        speakers = set(self.utt2spk.values())
        for name in SPK_TABLES:
            for spk in sorted(set(self.get(name)) - speakers):
                problems.append(
                    Problem(str(path / name), None, f"speaker '{spk}' has no utterances", spk)
                )
        return problems


def validate(path: str | Path, check_audio: bool = False) -> list[Problem]:
    """Every problem of the data directory at ``path`` (empty if it is valid).

    Checks: required files exist; every line is well formed, sorted, unique; label values belong
    to the label space; per-utterance ids exist in wav.scp; spk2utt agrees with utt2spk; audio
    files exist (and, with ``check_audio``, decode).
    """
    from speecheq.audio import is_pipe, read_audio

    path = Path(path)
    problem = path_problem(path, folder=True)
    if problem:
        return [Problem(str(path), None, f"data directory {problem}")]
    problems: list[Problem] = []
    tables: dict[str, dict[str, str]] = {}
    for name in REQUIRED_TABLES:
        if not (path / name).is_file():
            problems.append(Problem(str(path / name), None, "required file is missing"))
    for name in TABLES:
        if (path / name).is_file():
            scan = scan_table(path / name, TABLES[name].check)
            problems.extend(scan.problems)
            tables[name] = {line.key: line.value for line in scan.lines}
    data = DataDir(tables)
    for name in REQUIRED_TABLES:
        if (
            (path / name).is_file()
            and not tables.get(name)
            and not any(problem.file == str(path / name) for problem in problems)
        ):
            problems.append(Problem(str(path / name), None, "has no utterances"))
    problems.extend(data.consistency_problems(path))
    if (path / "spk2utt").is_file():
        scan = scan_table(path / "spk2utt")
        problems.extend(scan.problems)
        stored = {line.key: line.value.split() for line in scan.lines}
        if stored != data.spk2utt:
            problems.append(
                Problem(
                    str(path / "spk2utt"),
                    None,
                    "does not agree with utt2spk (run 'speecheq data fix' to rebuild it)",
                )
            )
    for utt, spec in sorted(data.get("wav.scp").items()):
        if check_audio:
            try:
                read_audio(spec, utt)
            except SpeechEQError as err:
                problems.append(Problem(str(path / "wav.scp"), None, str(err), utt, "audio"))
        elif not is_pipe(spec) and path_problem(spec):
            problems.append(
                Problem(
                    str(path / "wav.scp"),
                    None,
                    f"utterance '{utt}': '{spec}' {path_problem(spec)}",
                    utt,
                    "audio",
                )
            )
    return problems


FIX_REASONS = {
    "malformed": "malformed line",
    "duplicate": "duplicate id",
    "value": "value not in the label space",
}


@dataclass
class FixReport:
    """What :func:`fix` dropped: (file, reason) -> number of utterances."""

    dropped: dict[tuple[str, str], int] = field(default_factory=dict)
    kept: int = 0

    def add(self, file: str, reason: str) -> None:
        self.dropped[(file, reason)] = self.dropped.get((file, reason), 0) + 1


def fix(src: str | Path, dst: str | Path | None = None, check_audio: bool = False) -> FixReport:
    """Repair a data directory: sort, drop bad lines and the utterances they leave incomplete.

    An utterance is dropped when it is missing from a required table (wav.scp, utt2spk), its
    audio is missing (or, with ``check_audio``, does not decode), or it does not start with its
    speaker id. Malformed, duplicate or invalid lines of other tables are dropped (the
    utterance keeps its other labels). ``spk2utt`` is rebuilt. Writes to ``dst`` (default: in
    place) and returns what was dropped, from which file, and why.
    """
    from speecheq.audio import is_pipe, read_audio

    src = Path(src)
    dst = Path(dst) if dst is not None else src
    problem = path_problem(src, folder=True)
    if problem:
        raise SpeechEQError(f"{src}: data directory {problem}")
    report = FixReport()
    tables: dict[str, dict[str, str]] = {}
    for name in TABLES:
        if (src / name).is_file():
            scan = scan_table(src / name, TABLES[name].check)
            for problem in scan.problems:
                if problem.kind == "encoding":
                    raise SpeechEQError(f"{problem}; 'data fix' cannot repair an encoding")
                if problem.kind != "order":
                    report.add(name, FIX_REASONS[problem.kind])
            tables[name] = {line.key: line.value for line in scan.lines}
    for name in REQUIRED_TABLES:
        if name not in tables:
            raise SpeechEQError(f"{src}: required file '{name}' is missing; nothing to fix from")
    wav, utt2spk = tables["wav.scp"], tables["utt2spk"]
    keep = []
    for utt in sorted(set(wav) | set(utt2spk)):
        if utt not in wav:
            report.add("wav.scp", "utterance missing")
        elif utt not in utt2spk:
            report.add("utt2spk", "utterance missing")
        elif not utt.startswith(utt2spk[utt]):
            report.add("utt2spk", "utterance id does not start with its speaker id")
        elif not is_pipe(wav[utt]) and not Path(wav[utt]).is_file():
            report.add("wav.scp", "audio file missing")
        elif check_audio and not _decodes(read_audio, wav[utt], utt):
            report.add("wav.scp", "audio does not decode")
        else:
            keep.append(utt)
    data = DataDir(tables).subset(keep)
    report.kept = len(data.utts)
    data.save(dst)
    return report


def _decodes(reader: Callable[[str, str], object], spec: str, utt: str) -> bool:
    try:
        reader(spec, utt)
    except SpeechEQError:
        return False
    return True
