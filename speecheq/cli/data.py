"""``speecheq data ...``: validate, fix, subset, combine, perturb and split data directories."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from speecheq.console import print_table, status_console, warn
from speecheq.data.check import fix, validate
from speecheq.data.datadir import DataDir
from speecheq.data.folds import SPEAKER_DEPENDENT_NOTE, SPLITS, VALID_BY, save_folds, split_folds
from speecheq.data.ops import check_output, combine, describe, label_fraction, subset
from speecheq.data.perturb import parse_speeds, perturb_speed
from speecheq.errors import SpeechEQError

app = typer.Typer(
    help="Validate, fix, subset, combine, perturb and split Kaldi-style data directories.",
    rich_markup_mode="markdown",
)

DirArg = Annotated[Path, typer.Argument(help="A data directory.")]


@app.command("validate")
def validate_command(
    data_dir: DirArg,
    check_audio: Annotated[
        bool, typer.Option("--check-audio", help="Also decode every audio file.")
    ] = False,
) -> None:
    """Check a data directory; print each problem as 'file:line: what is wrong' (on stderr).

    Checks sorted and unique ids, utt2spk/spk2utt agreement, that every utterance of every
    per-utterance file is in wav.scp, that label values belong to the label space, and that
    audio files exist (and decode, with --check-audio). Exits 1 if there is any problem.
    """
    problems = validate(data_dir, check_audio=check_audio)
    for problem in problems:
        status_console.print(str(problem), soft_wrap=True, markup=False)
    if problems:
        raise SpeechEQError(f"{data_dir}: {len(problems)} problem(s) found")
    print_table(
        f"{data_dir}: valid", ["what", "value", "utterances"], describe(DataDir.load(data_dir))
    )


@app.command("fix")
def fix_command(
    data_dir: DirArg,
    out: Annotated[
        Path | None, typer.Option(help="Write the fixed directory here instead of in place.")
    ] = None,
    check_audio: Annotated[
        bool,
        typer.Option("--check-audio", help="Also drop utterances whose audio does not decode."),
    ] = False,
) -> None:
    """Sort, drop bad lines and incomplete utterances, rebuild spk2utt; report what was dropped."""
    report = fix(data_dir, out, check_audio=check_audio)
    rows = [(file, reason, count) for (file, reason), count in sorted(report.dropped.items())]
    print_table(
        f"{out or data_dir}: {report.kept} utterances kept",
        ["file", "dropped because", "lines"],
        rows,
    )


@app.command("subset")
def subset_command(
    src: DirArg,
    dst: Annotated[Path, typer.Argument(help="Where to write the subset.")],
    speakers: Annotated[
        str | None, typer.Option(help="Comma-separated speaker ids to keep.")
    ] = None,
    speaker_list: Annotated[
        Path | None, typer.Option(help="A file of speaker ids to keep, one per line.")
    ] = None,
    utt_list: Annotated[
        Path | None, typer.Option(help="A file of utterance ids to keep, one per line.")
    ] = None,
    per_class: Annotated[
        int | None, typer.Option(help="Keep the first N utterances of each emotion class.")
    ] = None,
    where: Annotated[
        list[str] | None,
        typer.Option(
            help="TABLE=VALUE: keep the utterances with this value in this table, e.g. "
            "utt2lang=en or spk2gender=f (repeat for several conditions).",
        ),
    ] = None,
    label_fraction_: Annotated[
        float | None,
        typer.Option(
            "--label-fraction",
            help="Of the selected utterances, keep those of this share of the emotion-labeled "
            "ones, drawn per speaker and class (nested: for one seed a smaller share's "
            "utterances are among a larger one's).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the --label-fraction draw.")] = 0,
    unlabeled_out: Annotated[
        Path | None,
        typer.Option(
            help="With --label-fraction: write the other utterances here, without their "
            "emotion labels (utt2emo, utt2intensity, utt2avd), for 'speecheq train "
            "--unlabeled-dir'."
        ),
    ] = None,
) -> None:
    """Keep the utterances selected by speakers, an utterance list, table values and/or N per
    class (an utterance must pass every selection given), then optionally a share of them
    with their emotion labels (--label-fraction)."""
    if unlabeled_out is not None and label_fraction_ is None:
        raise SpeechEQError("--unlabeled-out needs --label-fraction")
    check_output(dst, src)
    if unlabeled_out is not None:
        check_output(unlabeled_out, src, dst)
    chosen_speakers: list[str] | None = None
    if speakers is not None:
        chosen_speakers = [s for s in speakers.split(",") if s]
    if speaker_list is not None:
        chosen_speakers = (chosen_speakers or []) + _read_ids(speaker_list)
    utts = _read_ids(utt_list) if utt_list is not None else None
    data = subset(
        DataDir.load(src),
        speakers=chosen_speakers,
        utts=utts,
        per_class=per_class,
        where=_parse_where(where or []),
    )
    if label_fraction_ is not None:
        data, withheld = label_fraction(data, label_fraction_, seed)
        if unlabeled_out is not None:
            withheld.save(unlabeled_out)
            print_table(f"{unlabeled_out}", ["what", "value", "utterances"], describe(withheld))
    data.save(dst)
    print_table(f"{dst}", ["what", "value", "utterances"], describe(data))


@app.command("combine")
def combine_command(
    dst: Annotated[Path, typer.Argument(help="Where to write the combined directory.")],
    sources: Annotated[list[Path], typer.Argument(help="The data directories to combine.")],
    names: Annotated[
        str | None,
        typer.Option(help="Comma-separated names of the sources (default: their folder names)."),
    ] = None,
    prefix: Annotated[
        bool,
        typer.Option(
            "--prefix", help="Prefix ids with the source's name and a dash, so they cannot collide."
        ),
    ] = False,
) -> None:
    """Combine data directories into one, recording each utterance's source in utt2corpus."""
    source_names = names.split(",") if names else [source.name for source in sources]
    if len(source_names) != len(sources):
        raise SpeechEQError(f"--names gives {len(source_names)} names for {len(sources)} sources")
    check_output(dst, *sources)
    data = combine([DataDir.load(source) for source in sources], source_names, prefix=prefix)
    data.save(dst)
    print_table(f"{dst}", ["what", "value", "utterances"], describe(data))


@app.command("perturb")
def perturb_command(
    src: DirArg,
    dst: Annotated[Path, typer.Argument(help="Where to write the copies (audio in DST/wav).")],
    speeds: Annotated[str, typer.Option(help="Comma-separated speeds.")] = "0.9,1.1",
) -> None:
    """Write speed-perturbed copies of every utterance (Kaldi's speed perturbation): ids
    sp<speed>-<utt>, each copy of a speaker a pseudo-speaker; compute their features in stage 2
    and give them to 'speecheq data split --perturbed', which trains each fold on its copies."""
    check_output(dst, src)
    data = perturb_speed(DataDir.load(src), dst, parse_speeds(speeds))
    print_table(f"{dst}", ["what", "value", "utterances"], describe(data))


@app.command("split")
def split_command(
    src: DirArg,
    dst: Annotated[Path, typer.Argument(help="Where to write fold1/{train,valid,test}, ...")],
    by: Annotated[
        str,
        typer.Option(
            help="speaker (leave speakers out), group (utt2group), table (--table), partition "
            "(utt2split) or random (speaker-dependent)."
        ),
    ] = "speaker",
    num_folds: Annotated[
        int | None,
        typer.Option(help="With --by speaker: deal speakers into K folds; --by random: K [5]."),
    ] = None,
    table: Annotated[
        Path | None,
        typer.Option(help="With --by table: lines '<fold> <speaker> [<speaker> ...]'."),
    ] = None,
    valid_fraction: Annotated[
        float,
        typer.Option(help="Share of the training utterances (or speakers) held out for valid."),
    ] = 0.1,
    valid_by: Annotated[
        str,
        typer.Option(
            help="utterance: valid utterances drawn from every training speaker; speaker: whole "
            "training speakers held out, so the epoch kept generalises to unseen voices."
        ),
    ] = "utterance",
    seed: Annotated[int, typer.Option(help="Seed of the valid draw (and of --by random).")] = 0,
    perturbed: Annotated[
        Path | None,
        typer.Option(
            help="Speed-perturbed copies ('speecheq data perturb', with features): each fold "
            "trains on the copies of its training utterances too."
        ),
    ] = None,
) -> None:
    """Write the folds of a protocol: each a train/valid/test trio of data directories.

    Speaker-independent splits (speaker, group, table) hold each fold's test speakers out of
    train and valid. A split that puts a test speaker in training too (random, or a corpus
    partition that does) is speaker-dependent: it is written with a warning, and every report of
    an experiment on it says so.
    """
    if by not in SPLITS:
        raise SpeechEQError(f"--by takes {', '.join(SPLITS)}, got '{by}'")
    if valid_by not in VALID_BY:
        raise SpeechEQError(f"--valid-by takes {' or '.join(VALID_BY)}, got '{valid_by}'")
    if table is not None and by != "table":
        raise SpeechEQError("--table is read with --by table only")
    check_output(dst, src, *(path for path in (table, perturbed) if path is not None))
    folds = split_folds(
        DataDir.load(src),
        by=by,
        num_folds=num_folds,
        table=table,
        valid_fraction=valid_fraction,
        valid_by=valid_by,
        seed=seed,
        perturbed=None if perturbed is None else (DataDir.load(perturbed), str(perturbed)),
    )
    dependent = [fold.name for fold in folds if not fold.speaker_independent]
    if dependent:
        warn(f"{dst}: {SPEAKER_DEPENDENT_NOTE} ({', '.join(dependent)})")
    save_folds(folds, dst)
    rows = [
        (
            fold.name,
            _speakers_text(fold.test.speakers),
            len(fold.train.utts),
            len(fold.valid.utts),
            len(fold.test.utts),
        )
        for fold in folds
    ]
    print_table(
        f"{dst}: {len(folds)} folds", ["fold", "test speakers", "train", "valid", "test"], rows
    )


def _speakers_text(speakers: list[str]) -> str:
    return ",".join(speakers) if len(speakers) <= 6 else f"{len(speakers)} speakers"


def _parse_where(conditions: list[str]) -> dict[str, str]:
    where: dict[str, str] = {}
    for condition in conditions:
        table, sep, value = condition.partition("=")
        if not sep or not table or not value:
            raise SpeechEQError(f"--where '{condition}': expected TABLE=VALUE, e.g. utt2lang=en")
        if where.setdefault(table, value) != value:
            raise SpeechEQError(f"--where gives two values for {table}, so nothing could match")
    return where


def _read_ids(path: Path) -> list[str]:
    try:
        return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        raise SpeechEQError(f"{path}: file not found") from None
