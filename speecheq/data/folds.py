"""Fold splits of a protocol (``speecheq data split``): train / valid / test data directories.

Speaker-independent splits hold each test group of speakers out whole: leave one speaker out,
speakers dealt into K groups, one ``utt2group`` value out (an IEMOCAP session), or the groups of
a fold table shipped with a recipe (e.g. EmoBox's). The corpus's own partition (``utt2split``)
and a random stratified split (``--by random``) may put a speaker on both sides: such folds
are **speaker-dependent**, which the split warns of and every report of an experiment on them
repeats (:func:`speaker_dependent_folds`), because their figures are not comparable with
speaker-independent ones.
"""

from __future__ import annotations

import dataclasses
import random
import re
import shutil
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from speecheq.data.datadir import DataDir
from speecheq.data.perturb import with_copies
from speecheq.errors import SpeechEQError
from speecheq.fileio import read_lines, read_table

FOLD_PARTS: tuple[str, ...] = ("train", "valid", "test")
SPLITS = ("speaker", "group", "table", "partition", "random")
VALID_BY = ("utterance", "speaker")
SPEAKER_DEPENDENT_NOTE = (
    "speaker-dependent folds: test speakers are also in training, so these figures are not "
    "comparable with speaker-independent ones"
)


@dataclass(frozen=True)
class Fold:
    """One fold of a protocol: its name and its train / valid / test utterance sets."""

    name: str
    train: DataDir
    valid: DataDir
    test: DataDir

    def save(self, root: str | Path) -> None:
        """Write ``root/<name>/{train,valid,test}``."""
        for part in FOLD_PARTS:
            getattr(self, part).save(Path(root) / self.name / part)

    @property
    def speaker_independent(self) -> bool:
        """No test speaker is among the training or valid speakers."""
        seen = set(self.train.speakers) | set(self.valid.speakers)
        return not seen & set(self.test.speakers)


def split_folds(
    data: DataDir,
    *,
    by: str = "speaker",
    num_folds: int | None = None,
    table: str | Path | None = None,
    valid_fraction: float = 0.1,
    valid_by: str = "utterance",
    seed: int = 0,
    perturbed: tuple[DataDir, str] | None = None,
) -> list[Fold]:
    """Folds of a protocol, named ``fold1``, ``fold2``, ... (zero-padded from 10 folds on, so
    they sort) or as the fold table names them.

    ``by="speaker"``: leave one speaker out, or, with ``num_folds``, speakers dealt round-robin
    (in sorted order) into that many groups. ``by="group"``: leave one ``utt2group`` value out
    (e.g. an IEMOCAP session); every speaker must belong to one group. ``by="table"``: the test
    speakers of each fold as ``table`` lists them (``<fold> <speaker> [<speaker> ...]`` per
    line), every speaker in exactly one fold. ``by="partition"``: the corpus's own
    ``utt2split`` (train/valid/test), one fold. ``by="random"``: ``num_folds`` (default 5) folds
    of utterances drawn per (speaker, emotion class) with ``seed``: speaker-dependent.

    ``valid_by="utterance"``: the valid set is ``valid_fraction`` of the training utterances,
    drawn per speaker and class with ``seed``. ``valid_by="speaker"``: it is that share of the
    training speakers (at least one), drawn with ``seed`` and held out whole, so that the epoch
    kept is the one that generalises to unseen voices. Either way, with a speaker-independent
    split no valid speaker is a test speaker.
    ``perturbed`` (a data directory of speed-perturbed copies and its path) adds to each
    training set the copies of its utterances (:func:`speecheq.data.perturb.with_copies`).
    """
    if valid_by not in VALID_BY:
        raise SpeechEQError(f"the valid set is drawn by {' or '.join(VALID_BY)}, not '{valid_by}'")
    if valid_by == "speaker" and by in ("partition", "random"):
        raise SpeechEQError(
            f"a split by {by} draws its valid set by utterance: "
            + ("the partition gives it" if by == "partition" else "every speaker is in each fold")
        )
    folds = _split(data, by, num_folds, table, valid_fraction, valid_by, seed)
    if perturbed is None:
        return folds
    copies, where = perturbed
    return [
        dataclasses.replace(fold, train=with_copies(fold.train, copies, where)) for fold in folds
    ]


def _split(
    data: DataDir,
    by: str,
    num_folds: int | None,
    table: str | Path | None,
    valid_fraction: float,
    valid_by: str,
    seed: int,
) -> list[Fold]:
    if num_folds is not None and by not in ("speaker", "random"):
        raise SpeechEQError(
            f"--num-folds applies to speaker and random splits; a split by {by} takes its folds "
            f"from the {'fold table' if by == 'table' else by + 's'}"
        )
    if by == "partition":
        return [_partition_fold(data)]
    if by == "random":
        return _random_folds(data, num_folds or 5, valid_fraction, seed)
    groups = _speaker_groups(data, by, num_folds, table)
    width = len(str(len(groups)))
    spk2utt = data.spk2utt
    folds = []
    for index, (fold_name, test_speakers) in enumerate(groups, start=1):
        test_utts = sorted(utt for spk in test_speakers for utt in spk2utt.get(spk, []))
        rest = sorted(
            utt for spk, utts in spk2utt.items() if spk not in test_speakers for utt in utts
        )
        name = fold_name if by == "table" else f"fold{index:0{width}d}"
        folds.append(_fold(data, name, rest, test_utts, valid_fraction, seed, valid_by))
    return folds


def _fold(
    data: DataDir,
    name: str,
    rest: Sequence[str],
    test_utts: Sequence[str],
    valid_fraction: float,
    seed: int,
    valid_by: str = "utterance",
) -> Fold:
    """The fold testing ``test_utts``, trained and validated on ``rest``."""
    if valid_by == "speaker":
        valid_utts = draw_valid_speakers(data, rest, valid_fraction, seed, name)
    else:
        valid_utts = draw_valid(data, rest, valid_fraction, seed)
    train_utts = sorted(set(rest) - valid_utts)
    if not train_utts or not valid_utts:
        part = "training" if not train_utts else "valid"
        raise SpeechEQError(f"fold {name} leaves no {part} utterances ({len(rest)} to share)")
    return Fold(name, data.subset(train_utts), data.subset(valid_utts), data.subset(test_utts))


def _speaker_groups(
    data: DataDir, by: str, num_folds: int | None, table: str | Path | None
) -> list[tuple[str, set[str]]]:
    speakers = data.speakers
    if by == "speaker":
        if len(speakers) < 2:
            raise SpeechEQError("a speaker-independent split needs at least 2 speakers")
        if num_folds is None:
            return [(spk, {spk}) for spk in speakers]
        if not 2 <= num_folds <= len(speakers):
            raise SpeechEQError(
                f"--num-folds must be between 2 and the number of speakers ({len(speakers)})"
            )
        dealt = deal_speakers(speakers, {}, num_folds)
        return [(",".join(group), set(group)) for group in dealt]
    if by == "group":
        return _group_speakers(data)
    if by == "table":
        if table is None:
            raise SpeechEQError("a split by table needs the fold table (--table FILE)")
        return read_fold_table(table, speakers)
    raise SpeechEQError(f"unknown split '{by}' (known: {', '.join(SPLITS)})")


def deal_speakers(speakers: Sequence[str], genders: Mapping[str, str], k: int) -> list[list[str]]:
    """Deal speakers into ``k`` folds round-robin, ordered by gender (where ``genders`` has one)
    then id, so that folds mix genders."""
    ordered = sorted(speakers, key=lambda spk: (genders.get(spk, ""), spk))
    folds: list[list[str]] = [[] for _ in range(k)]
    for index, speaker in enumerate(ordered):
        folds[index % k].append(speaker)
    return [sorted(fold) for fold in folds]


def _group_speakers(data: DataDir) -> list[tuple[str, set[str]]]:
    """Each ``utt2group`` value and its speakers (every speaker in one group)."""
    utt2group = data.get("utt2group")
    if not utt2group:
        raise SpeechEQError("a split by group needs a utt2group file")
    spk2groups: dict[str, set[str]] = defaultdict(set)
    for utt in data.utts:
        if utt not in utt2group:
            raise SpeechEQError(f"utt2group: utterance '{utt}' has no group")
        spk2groups[data.utt2spk[utt]].add(utt2group[utt])
    for spk, spk_groups in spk2groups.items():
        if len(spk_groups) > 1:
            raise SpeechEQError(
                f"speaker '{spk}' is in several groups ({', '.join(sorted(spk_groups))}); "
                "a fold would not be speaker-independent"
            )
    group2spk: dict[str, set[str]] = defaultdict(set)
    for spk, spk_groups in spk2groups.items():
        group2spk[next(iter(spk_groups))].add(spk)
    if len(group2spk) < 2:
        raise SpeechEQError("a split by group needs at least 2 groups in utt2group")
    return sorted(group2spk.items())


def read_fold_table(path: str | Path, speakers: Sequence[str]) -> list[tuple[str, set[str]]]:
    """The folds of a fold table, in its order: ``<fold> <speaker> [<speaker> ...]`` per line,
    each of ``speakers`` in exactly one fold; raise naming the file and line."""
    folds: list[tuple[str, set[str]]] = []
    where: dict[str, str] = {}
    for line in read_lines(path):
        location = f"{path}:{line.lineno}"
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", line.key) or line.key in dict(folds):
            raise SpeechEQError(
                f"{location}: '{line.key}' is not a new fold name (letters, digits, _ . -)"
            )
        group = set(line.value.split())
        for spk in sorted(group):
            if spk not in speakers:
                raise SpeechEQError(
                    f"{location}: speaker '{spk}' is not in the data (its speakers: "
                    f"{', '.join(speakers[:8])}{', ...' if len(speakers) > 8 else ''})"
                )
            if spk in where:
                raise SpeechEQError(f"{location}: speaker '{spk}' is already in {where[spk]}")
            where[spk] = f"fold {line.key}"
        folds.append((line.key, group))
    missing = [spk for spk in speakers if spk not in where]
    if missing:
        raise SpeechEQError(f"{path}: speaker(s) in no fold: {', '.join(missing[:8])}")
    if len(folds) < 2:
        raise SpeechEQError(f"{path}: a fold table needs at least 2 folds")
    return folds


def _check_valid_fraction(fraction: float) -> None:
    """Raise unless ``fraction`` is strictly between 0 and 1."""
    if not 0 < fraction < 1:
        raise SpeechEQError(
            f"the valid fraction must be in (0, 1), got {fraction}: training keeps the epoch "
            "that scores best on the valid set"
        )


def draw_valid(data: DataDir, utts: Sequence[str], fraction: float, seed: int) -> set[str]:
    """``fraction`` of ``utts`` for validation, drawn per (speaker, emotion class) with ``seed``.

    Where every stratum is too small to give an utterance, the draw is made over all of ``utts``
    instead, so the valid set is never empty while ``utts`` has two utterances or more.
    """
    _check_valid_fraction(fraction)
    rng = random.Random(seed)
    chosen: set[str] = set()
    for members in _strata(data, utts):
        rng.shuffle(members)
        chosen.update(members[: round(len(members) * fraction)])
    if not chosen and len(utts) > 1:
        chosen.update(rng.sample(sorted(utts), max(1, round(len(utts) * fraction))))
    return chosen


def draw_valid_speakers(
    data: DataDir, utts: Sequence[str], fraction: float, seed: int, fold: str
) -> set[str]:
    """The utterances among ``utts`` of ``fraction`` of their speakers (at least one, never all),
    drawn with ``seed`` and the ``fold``'s name, so that each fold holds out other speakers."""
    _check_valid_fraction(fraction)
    speakers = sorted({data.utt2spk[utt] for utt in utts})
    if len(speakers) < 2:
        raise SpeechEQError(
            f"a valid set of held-out speakers needs 2 training speakers or more, not "
            f"{len(speakers)} ({', '.join(speakers)})"
        )
    count = min(len(speakers) - 1, max(1, round(len(speakers) * fraction)))
    held_out = set(random.Random(f"{seed} {fold}").sample(speakers, count))
    return {utt for utt in utts if data.utt2spk[utt] in held_out}


def _strata(data: DataDir, utts: Sequence[str]) -> list[list[str]]:
    """``utts`` grouped by (speaker, ``utt2emo`` class), each group sorted, in key order."""
    utt2emo = data.get("utt2emo")
    strata: dict[tuple[str, str], list[str]] = defaultdict(list)
    for utt in utts:
        strata[(data.utt2spk[utt], utt2emo.get(utt, ""))].append(utt)
    return [sorted(strata[key]) for key in sorted(strata)]


def _random_folds(data: DataDir, num_folds: int, valid_fraction: float, seed: int) -> list[Fold]:
    """Speaker-dependent folds: each (speaker, class) stratum's utterances, shuffled with
    ``seed``, dealt in turn into ``num_folds`` test sets."""
    if not 2 <= num_folds <= len(data.utts):
        raise SpeechEQError(f"--num-folds must be between 2 and {len(data.utts)}, got {num_folds}")
    rng = random.Random(seed)
    tests: list[list[str]] = [[] for _ in range(num_folds)]
    dealt = 0
    for members in _strata(data, data.utts):
        rng.shuffle(members)
        for utt in members:
            tests[dealt % num_folds].append(utt)
            dealt += 1
    width = len(str(num_folds))
    folds = []
    for index, test_utts in enumerate(tests, start=1):
        rest = sorted(set(data.utts) - set(test_utts))
        folds.append(_fold(data, f"fold{index:0{width}d}", rest, test_utts, valid_fraction, seed))
    return folds


def _partition_fold(data: DataDir) -> Fold:
    utt2split = data.get("utt2split")
    if not utt2split:
        raise SpeechEQError("a split by partition needs a utt2split file")
    parts: dict[str, list[str]] = defaultdict(list)
    for utt in data.utts:
        if utt not in utt2split:
            raise SpeechEQError(f"utt2split: utterance '{utt}' has no partition")
        parts[utt2split[utt]].append(utt)
    for part in ("train", "valid", "test"):
        if not parts[part]:
            raise SpeechEQError(f"utt2split has no '{part}' utterances")
    return Fold(
        "partition",
        data.subset(parts["train"]),
        data.subset(parts["valid"]),
        data.subset(parts["test"]),
    )


def _written_by_split(path: Path) -> bool:
    """Whether ``path`` holds only folds as :func:`save_folds` writes them."""
    return all(
        fold.is_dir() and {part.name for part in fold.iterdir()} <= set(FOLD_PARTS)
        for fold in path.iterdir()
    )


def save_folds(folds: Sequence[Fold], root: str | Path) -> None:
    """Write folds under ``root``, replacing what was there only once all are written.

    A ``root`` that holds anything but folds (files this function did not write) is an error,
    and nothing is written or removed.
    """
    root = Path(root)
    if root.exists() and not (root.is_dir() and _written_by_split(root)):
        raise SpeechEQError(
            f"{root}: holds files that are not folds of 'speecheq data split'; write the folds "
            "to a new or empty folder"
        )
    staging = root.with_name(f".{root.name}.tmp")
    if staging.exists():
        shutil.rmtree(staging)
    for fold in folds:
        fold.save(staging)
    if root.exists():
        shutil.rmtree(root)
    staging.rename(root)


def fold_names(folds_dir: Path) -> list[str]:
    """The folds written by ``speecheq data split`` under ``folds_dir``, sorted."""
    if not folds_dir.is_dir():
        raise SpeechEQError(f"{folds_dir}: no folds here (write them with 'speecheq data split')")
    names = sorted(
        path.name
        for path in folds_dir.iterdir()
        if all((path / part).is_dir() for part in ("train", "valid", "test"))
    )
    if not names:
        raise SpeechEQError(f"{folds_dir}: no fold (a folder with train/, valid/ and test/)")
    return names


def speaker_dependent_folds(folds_dir: str | Path, folds: Sequence[str]) -> list[str]:
    """The folds among ``folds`` (under ``folds_dir``) whose test speakers are also training or
    valid speakers, read from their ``utt2spk`` files."""
    dependent = []
    for fold in folds:
        speakers = {
            part: set(read_table(Path(folds_dir) / fold / part / "utt2spk").values())
            for part in FOLD_PARTS
            if (Path(folds_dir) / fold / part / "utt2spk").is_file()
        }
        test = speakers.get("test", set())
        if test & (speakers.get("train", set()) | speakers.get("valid", set())):
            dependent.append(fold)
    return dependent
