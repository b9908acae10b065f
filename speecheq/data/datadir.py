"""Kaldi-style data directories: the contract between recipe stages.

A data directory is a folder of plain-text tables, one ``<id> <value>`` per line, sorted by
id, unique. Per-utterance tables are keyed by utterance id, per-speaker tables by speaker id.
``spk2utt`` is always derived from ``utt2spk`` when a directory is written. A missing label is
a missing line, never a placeholder value.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path

from speecheq.console import note
from speecheq.data.scan import Problem, scan_table
from speecheq.data.tables import REQUIRED_TABLES, SPK_TABLES, TABLES, UTT_TABLES
from speecheq.errors import SpeechEQError
from speecheq.fileio import (
    atomic_write,
    make_folder,
    path_problem,
    read_table,
    write_table,
)


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
