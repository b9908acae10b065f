"""Checking and repairing a data directory: :func:`validate` lists every problem (``file:line:
message``), :func:`fix` keeps what is sound (Kaldi's ``validate_data_dir.sh`` and
``fix_data_dir.sh``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from speecheq.data.datadir import DataDir
from speecheq.data.scan import Problem, scan_table
from speecheq.data.tables import REQUIRED_TABLES, TABLES
from speecheq.errors import SpeechEQError
from speecheq.fileio import path_problem


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
