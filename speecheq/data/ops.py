"""Operations on data directories: subset, a labelled share, combine, and summaries."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from speecheq.data.datadir import DataDir
from speecheq.data.tables import EMOTION_TABLES, SPK_TABLES, TABLES
from speecheq.errors import SpeechEQError


def subset(
    data: DataDir,
    *,
    speakers: Iterable[str] | None = None,
    utts: Iterable[str] | None = None,
    per_class: int | None = None,
    where: Mapping[str, str] | None = None,
) -> DataDir:
    """The utterances selected by speaker list, utterance list, table values and/or first N per
    emotion class.

    Selections combine (an utterance must pass each one given). ``where`` maps a table to the
    value an utterance must have in it (e.g. ``{"utt2lang": "en"}``; a per-speaker table such as
    ``spk2gender`` applies through the utterance's speaker); an utterance without a line in the
    table is not kept. ``per_class`` keeps the first ``per_class`` utterances (in id order) of
    each class in ``utt2emo``; utterances without an emotion label are not kept by it. A
    selection that keeps no utterance is an error.
    """
    if per_class is not None and per_class < 1:
        raise SpeechEQError(f"--per-class must be at least 1, got {per_class}")
    keep = set(data.utts)
    for table, value in (where or {}).items():
        keep &= _utts_where(data, table, value)
    if speakers is not None:
        wanted = set(speakers)
        unknown = wanted - set(data.speakers)
        if unknown:
            raise SpeechEQError(
                f"speaker(s) not in the data directory: {', '.join(sorted(unknown))}"
            )
        keep = {utt for utt in keep if data.utt2spk[utt] in wanted}
    if utts is not None:
        wanted = set(utts)
        unknown = wanted - set(data.utts)
        if unknown:
            raise SpeechEQError(
                f"utterance(s) not in the data directory: {', '.join(sorted(unknown)[:5])}"
            )
        keep &= wanted
    if per_class is not None:
        counts: dict[str, int] = defaultdict(int)
        chosen = set()
        for utt, emotion in sorted(data.get("utt2emo").items()):
            if utt in keep and counts[emotion] < per_class:
                counts[emotion] += 1
                chosen.add(utt)
        keep = chosen
    if not keep:
        raise SpeechEQError("the selection keeps no utterance (each selection given must pass)")
    return data.subset(keep)


def label_fraction(data: DataDir, fraction: float, seed: int = 0) -> tuple[DataDir, DataDir]:
    """Keep the emotion labels of ``fraction`` of the utterances: ``(labeled, withheld)``.

    The utterances with an emotion label (a line in one of :data:`EMOTION_TABLES`) are drawn
    per stratum, a (speaker, ``utt2emo`` class) pair: each stratum's utterances are shuffled by
    a generator seeded with (``seed``, speaker, class) only, and the first ``fraction * n`` of
    its ``n`` (rounded half up, at least one) are kept. So the draw is stratified, the same for
    the same seed, and nested: for one seed, the utterances of a smaller fraction are among
    those of a larger one. ``labeled`` holds the kept utterances with all their tables;
    ``withheld`` the others (those that had no emotion label too) without the emotion tables,
    as unlabeled speech for ``speecheq train --unlabeled-dir``.
    """
    if not 0 < fraction <= 1:
        raise SpeechEQError(f"the label fraction must be in (0, 1], got {fraction}")
    utt2emo = data.get("utt2emo")
    strata: dict[tuple[str, str], list[str]] = defaultdict(list)
    for utt in sorted(set().union(*(data.get(table) for table in EMOTION_TABLES))):
        strata[(data.utt2spk[utt], utt2emo.get(utt, ""))].append(utt)
    if not strata:
        raise SpeechEQError(
            f"no utterance has an emotion label ({', '.join(EMOTION_TABLES)}) to keep a share of"
        )
    kept: set[str] = set()
    for (speaker, category), members in strata.items():
        random.Random(f"{seed} {speaker} {category}").shuffle(members)
        kept.update(members[: max(1, math.floor(fraction * len(members) + 0.5))])
    withheld = data.subset(set(data.utts) - kept)
    tables = {name: t for name, t in withheld.tables.items() if name not in EMOTION_TABLES}
    return data.subset(kept), DataDir(tables, withheld.conf)


def _utts_where(data: DataDir, table: str, value: str) -> set[str]:
    """The utterances whose line in ``table`` has the value ``value``."""
    if table not in TABLES:
        known = ", ".join(name for name in TABLES if data.has(name))
        raise SpeechEQError(f"unknown table '{table}' in a selection (this directory has: {known})")
    if not data.has(table):
        raise SpeechEQError(f"the data directory has no {table} to select '{table}={value}' from")
    values = data.get(table)
    if value not in set(values.values()):
        known = ", ".join(sorted(set(values.values()))[:10])
        raise SpeechEQError(f"no line of {table} has the value '{value}' (its values: {known})")
    if table in SPK_TABLES:
        return {utt for utt, spk in data.utt2spk.items() if values.get(spk) == value}
    return {utt for utt, found in values.items() if found == value}


def speaker_corpora(data: DataDir, where: str = "utt2corpus") -> dict[str, str]:
    """Speaker -> the corpus (``utt2corpus``) of its utterances, for the speakers that have one.

    A speaker with utterances of several corpora is an error naming ``where``: per-corpus
    statistics and folds take whole speakers.
    """
    corpus_of: dict[str, str] = {}
    for utt, corpus in sorted(data.get("utt2corpus").items()):
        speaker = data.utt2spk[utt]
        if corpus_of.setdefault(speaker, corpus) != corpus:
            raise SpeechEQError(
                f"{where}: speaker '{speaker}' has utterances of corpora '{corpus_of[speaker]}' "
                f"and '{corpus}' (utterance '{utt}'); combine corpora with --prefix to keep "
                "their speakers apart"
            )
    return corpus_of


def combine(sources: Sequence[DataDir], names: Sequence[str], prefix: bool = False) -> DataDir:
    """Combine data directories into one, recording each utterance's source in ``utt2corpus``.

    ``names`` names each source (used for ``utt2corpus`` where a source has none, and as the
    id prefix ``<name>-`` with ``prefix``). Colliding utterance or speaker ids are an error
    unless ``prefix`` is set. A table present in only some sources is kept for those utterances
    (a missing label stays missing). Sources whose ``conf/`` files differ (features computed
    with other options) cannot be combined.
    """
    if len(sources) != len(names):
        raise ValueError("one name per source is required")
    if len(set(names)) != len(names):
        raise SpeechEQError(f"source names must differ, got {list(names)}")
    tables: dict[str, dict[str, str]] = defaultdict(dict)
    owners: dict[str, dict[str, str]] = {"utterance": {}, "speaker": {}}
    conf: dict[str, str] = {}
    conf_owner: dict[str, str] = {}
    for data, name in zip(sources, names, strict=True):
        for file, text in data.conf.items():
            if conf.setdefault(file, text) != text:
                raise SpeechEQError(
                    f"conf/{file} differs between '{conf_owner[file]}' and '{name}': their "
                    "features were computed with different options"
                )
            conf_owner.setdefault(file, name)
        rename = (lambda key, n=name: f"{n}-{key}") if prefix else (lambda key: key)
        for kind, ids in (("utterance", data.utts), ("speaker", data.speakers)):
            for key in ids:
                first = owners[kind].setdefault(rename(key), name)
                if first != name:
                    raise SpeechEQError(
                        f"{kind} id '{rename(key)}' is in both '{first}' and '{name}'; "
                        "combine with a prefix to keep them apart"
                    )
        source_tables = dict(data.tables)
        if not source_tables.get("utt2corpus"):
            source_tables["utt2corpus"] = {utt: name for utt in data.utts}
        for table_name, table in source_tables.items():
            for key, value in table.items():
                tables[table_name][rename(key)] = (
                    rename(value) if table_name == "utt2spk" else value
                )
    return DataDir(tables, conf)


def check_output(output: str | Path, *inputs: str | Path) -> None:
    """Raise if ``output`` is, contains or lies inside one of ``inputs``."""
    out = Path(output).resolve()
    for item in map(Path, inputs):
        source = item.resolve()
        if out == source or source.is_relative_to(out) or out.is_relative_to(source):
            raise SpeechEQError(
                f"{output}: the output would overwrite the input {item} (it is, holds or lies "
                "inside it); write to another folder"
            )


def describe(data: DataDir) -> list[tuple[str, str, int]]:
    """Counts for a summary: (what, value, number of utterances), e.g. ('emotion', 'sad', 50)."""
    rows: list[tuple[str, str, int]] = [
        ("utterances", "", len(data.utts)),
        ("speakers", "", len(data.speakers)),
    ]
    spk2gender = data.get("spk2gender")
    labelled = {
        "speaker": data.utt2spk,
        "emotion": data.get("utt2emo"),
        "intensity": data.get("utt2intensity"),
        "gender": {utt: spk2gender[spk] for utt, spk in data.utt2spk.items() if spk in spk2gender},
        "naturalness": data.get("utt2nat"),
        "corpus": data.get("utt2corpus"),
        "language": data.get("utt2lang"),
    }
    for what, table in labelled.items():
        counts: dict[str, int] = defaultdict(int)
        for value in table.values():
            counts[value] += 1
        rows.extend((what, value, count) for value, count in sorted(counts.items()))
    return rows
