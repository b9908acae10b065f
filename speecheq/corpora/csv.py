"""Any corpus described by a table with one row per audio file: the template for a new corpus.

To add a corpus that has no preparer of its own, write one table and prepare it::

    speecheq prepare csv --corpus-dir my_corpus/metadata.csv data/all

``--corpus-dir`` is the table file, or a folder holding ``metadata.csv`` or ``metadata.tsv``.
The table is UTF-8 (UTF-16 and GB18030 are detected too), with a header row naming its
columns in any order; it is tab-separated if the header line has a tab, else comma-separated
(quote cells that hold a comma). For example::

    path,speaker,emotion,intensity,gender,text
    wav/anna_001.wav,anna,happy,2,f,What a lovely day.
    wav/anna_002.wav,anna,neutral,0,f,The train leaves at six.
    wav/ben_001.wav,ben,angry,,m,

Required columns:

- ``path``: the audio file, relative to the table's folder (or absolute). Rows whose file is
  missing are skipped, with a warning giving the count.
- ``speaker``: the speaker id (no spaces). Speaker-independent folds hold speakers out whole.
- ``emotion``: a category of the label space (neutral, happy, angry, sad, fear, surprise,
  disgust, calm, boredom, excited, frustrated, contempt, other). Map the corpus's own labels
  onto these when writing the table; merging classes is a recipe's job, not the table's.

Optional columns; an empty cell is a missing label and writes no line:

- ``utt``: the utterance id (no spaces). Without the column it is ``<speaker>-<file stem>``; an
  id that does not start with its speaker id gets ``<speaker>-`` in front.
- ``intensity``: 0 none (neutral speech), 1 low, 2 medium, 3 high.
- ``gender``: ``m``/``f`` (or ``male``/``female``), one per speaker.
- ``text``: the transcript. ``language``: its ISO 639-1 code (``en``, ``zh``, ``de``...).
- ``naturalness``: ``acted`` or ``natural``.
- ``group``: a fold group (e.g. a session) for ``speecheq data split --by group``.
- ``split``: the corpus's own partition, ``train``/``valid``/``test`` (``--by partition``).
- ``arousal``, ``valence``, ``dominance``: numbers, all three or none.

Other columns are ignored, with a warning naming them. Any bad value is an error naming the
table's line.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from speecheq.console import warn
from speecheq.corpora._common import CorpusTables, read_text, warn_missing
from speecheq.data.datadir import DataDir
from speecheq.errors import SpeechEQError
from speecheq.labels import check_category, check_intensity, check_naturalness

TERMS = "the terms of the corpus the table describes."
"""The terms of use of the corpus, as a model card states them."""

REQUIRED_COLUMNS: tuple[str, ...] = ("path", "speaker", "emotion")
OPTIONAL_COLUMNS: tuple[str, ...] = (
    "utt",
    "intensity",
    "gender",
    "text",
    "language",
    "naturalness",
    "group",
    "split",
    "arousal",
    "valence",
    "dominance",
)
AVD_COLUMNS: tuple[str, ...] = ("arousal", "valence", "dominance")

GENDERS: dict[str, str] = {"m": "m", "f": "f", "male": "m", "female": "f"}
SPLITS: tuple[str, ...] = ("train", "valid", "test")
TABLE_NAMES: tuple[str, ...] = ("metadata.csv", "metadata.tsv")


def prepare(corpus_dir: Path) -> DataDir:
    """Prepare the corpus described by the table ``corpus_dir`` (or its ``metadata.csv``)."""
    table = _find_table(corpus_dir)
    rows = _read_rows(table)
    tables = CorpusTables("csv")
    genders: dict[str, tuple[str, str]] = {}
    for where, row in rows:
        wav = Path(row["path"])
        wav = wav if wav.is_absolute() else table.parent / wav
        spk = _identifier(row["speaker"], "speaker", where)
        gender = _gender(row.get("gender", ""), where)
        if gender is not None:
            first = genders.setdefault(spk, (gender, where))
            if first[0] != gender:
                raise SpeechEQError(
                    f"{where}: speaker '{spk}' has gender '{gender}' here but '{first[0]}' "
                    f"at {first[1]}"
                )
        emotion = check_category(row["emotion"], where) if row["emotion"] else None
        intensity = check_intensity(row["intensity"], where) if row.get("intensity") else None
        nat = check_naturalness(row["naturalness"], where) if row.get("naturalness") else None
        language, split, avd = _language(row, where), _split(row, where), _avd(row, where)
        if not wav.is_file():
            continue
        tables.set_gender(spk, gender)
        tables.add(
            _utterance_id(row, spk, wav, where),
            spk,
            wav,
            source=where,
            emotion=emotion,
            intensity=intensity,
            naturalness=nat,
            language=language,
            group=row.get("group") or None,
            split=split,
            avd=avd,
            text=row.get("text") or None,
        )
    warn_missing("csv", len(tables), len(rows), f"audio files named in {table}")
    return tables.data()


def _find_table(corpus_dir: Path) -> Path:
    if corpus_dir.is_file():
        return corpus_dir
    for name in TABLE_NAMES:
        if (corpus_dir / name).is_file():
            return corpus_dir / name
    raise SpeechEQError(
        f"{corpus_dir}: no corpus table: expected a CSV/TSV file, or a folder holding "
        f"{' or '.join(TABLE_NAMES)}"
    )


def _read_rows(table: Path) -> list[tuple[str, dict[str, str]]]:
    """(``file:line``, {column: stripped cell}) for each non-blank data row of the table."""
    text = read_text(table)
    header_line = text.splitlines()[0] if text.strip() else ""
    reader = csv.reader(io.StringIO(text), delimiter="\t" if "\t" in header_line else ",")
    header = [name.strip().lower() for name in next(reader, [])]
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise SpeechEQError(
            f"{table}:1: the header lacks column(s) {', '.join(missing)} "
            f"(required: {', '.join(REQUIRED_COLUMNS)})"
        )
    unknown = [name for name in header if name not in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)]
    if unknown:
        warn(f"{table}: ignoring column(s) {', '.join(unknown)}")
    rows = []
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue
        where = f"{table}:{reader.line_num}"
        if len(cells) != len(header):
            raise SpeechEQError(f"{where}: expected {len(header)} cells, found {len(cells)}")
        row = {name: cell.strip() for name, cell in zip(header, cells, strict=True)}
        for name in ("path", "speaker"):
            if not row[name]:
                raise SpeechEQError(f"{where}: the '{name}' cell is empty")
        rows.append((where, row))
    if not rows:
        raise SpeechEQError(f"{table}: the table has no rows")
    return rows


def _identifier(value: str, what: str, where: str) -> str:
    if re.search(r"\s", value):
        raise SpeechEQError(f"{where}: {what} id '{value}' contains whitespace")
    return value


def _utterance_id(row: dict[str, str], spk: str, wav: Path, where: str) -> str:
    if row.get("utt"):
        utt = _identifier(row["utt"], "utterance", where)
    else:
        utt = re.sub(r"\s+", "_", wav.stem)
    return utt if utt.startswith(spk) else f"{spk}-{utt}"


def _gender(value: str, where: str) -> str | None:
    if not value:
        return None
    if value.lower() not in GENDERS:
        raise SpeechEQError(f"{where}: unknown gender '{value}' (known: m, f, male, female)")
    return GENDERS[value.lower()]


def _language(row: dict[str, str], where: str) -> str | None:
    value = row.get("language", "")
    if value and not re.fullmatch(r"[a-z]{2}", value):
        raise SpeechEQError(f"{where}: language '{value}' is not an ISO 639-1 code like 'en'")
    return value or None


def _split(row: dict[str, str], where: str) -> str | None:
    value = row.get("split", "")
    if value and value not in SPLITS:
        raise SpeechEQError(f"{where}: unknown split '{value}' (known: {', '.join(SPLITS)})")
    return value or None


def _avd(row: dict[str, str], where: str) -> tuple[float, float, float] | None:
    cells = [row.get(name, "") for name in AVD_COLUMNS]
    if not any(cells):
        return None
    try:
        arousal, valence, dominance = (float(cell) for cell in cells)
    except ValueError:
        raise SpeechEQError(
            f"{where}: arousal, valence and dominance must all be numbers, got {cells}"
        ) from None
    return arousal, valence, dominance
