"""Stage 2: features for every utterance of a data directory, in parallel, resumable jobs.

Speakers are split across jobs in contiguous blocks balanced by utterance count (as Kaldi's
``split_data.sh --per-spk``), so each job also owns the CMVN stats of its speakers. A job
streams: it reads, computes and appends one utterance at a time to ``data/feats.<job>.ark``
(and its per-job scp), writes its speakers' stats to ``data/cmvn.<job>.ark``, then writes
``data/feats.<job>.json``, the record that marks it complete. A re-run reuses each job whose
record matches its options and input, and redoes the others; the data directory's tables are
written only once every job is complete.

Jobs run on this machine (:class:`LocalJobs`: worker processes, a few at a time, the cores
divided among them) or as Slurm jobs (a :class:`~speecheq.cluster.SlurmCluster`, each job with
its own GPU for an upstream); either way each writes the same files, and a failed job is named
and redone alone by running the same command again.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import kaldiio

from speecheq.cluster import SlurmCluster
from speecheq.data.datadir import DataDir
from speecheq.errors import SpeechEQError
from speecheq.features.config import FeatureConfig
from speecheq.features.jobs import (
    Job,
    LocalJobs,
    build_extractor,
    remove_temporaries,
    run_jobs,
    split_speakers,
    submit_jobs,
)
from speecheq.features.ssl import SSLConfig
from speecheq.fileio import atomic_write, make_folder, read_table, write_matrix, write_table

CONF_NAME = "feats.conf"
"""The file in the data directory's ``conf/`` that records the feature options."""
BACKUP = ".backup"
"""The folder of a data directory where `make_feats` keeps what `skip_bad` dropped."""


@dataclass
class FeatsReport:
    """What :func:`make_feats` computed."""

    utterances: int
    seconds: float
    frames: int
    dim: int
    jobs: int
    reused_jobs: int
    wall_seconds: float
    skipped: dict[str, str] = field(default_factory=dict)
    """Utterances dropped with ``skip_bad``, and why (kept in :data:`BACKUP` too)."""

    @property
    def hours(self) -> float:
        return self.seconds / 3600

    @property
    def real_time_factor(self) -> float:
        """Seconds of audio processed per second of wall time."""
        return self.seconds / self.wall_seconds if self.wall_seconds > 0 else float("inf")


def make_feats(
    data_dir: str | Path,
    config: FeatureConfig | SSLConfig,
    nj: int = 1,
    skip_bad: bool = False,
    device: str = "cpu",
    launcher: LocalJobs | SlurmCluster | None = None,
) -> FeatsReport:
    """Compute features for a data directory and write them with their tables (stage 2):
    filterbanks (a :class:`FeatureConfig`), or the hidden layers of a pretrained upstream (an
    :class:`~speecheq.features.ssl.SSLConfig`, on ``device``).

    Writes ``data/feats.<job>.ark`` and per-job scp files, then ``feats.scp``,
    ``utt2num_frames``, ``utt2dur``, per-speaker CMVN stats (``cmvn.scp``, ``data/cmvn.ark``)
    and ``conf/feats.conf``. Bad audio (missing, corrupt, empty, too short, a forbidden
    resampling) raises :class:`SpeechEQError` naming the utterance, leaving the tables as they
    were; with ``skip_bad`` such utterances are dropped from every table and reported instead,
    their lines kept in the data directory's :data:`BACKUP` folder (see :func:`keep_dropped`).
    The ``nj`` jobs run through ``launcher`` (default: all at once on this machine).
    """
    start = time.perf_counter()
    if nj < 1:
        raise SpeechEQError(f"the number of jobs must be at least 1, got {nj}")
    data_dir = Path(data_dir)
    data = DataDir.load(data_dir)
    if not data.utts:
        raise SpeechEQError(f"{data_dir}: the data directory has no utterances")
    folder = data_dir.resolve() / "data"
    make_folder(folder)
    remove_temporaries(folder)
    wav, spk2utt = data.get("wav.scp"), data.spk2utt
    jobs = [
        Job(
            index,
            tuple((utt, speaker, wav[utt]) for speaker in block for utt in spk2utt[speaker]),
            folder,
        )
        for index, block in enumerate(split_speakers(spk2utt, nj), start=1)
    ]
    conf = config.to_conf()
    keys = {job.index: job.key(conf) for job in jobs}
    records = {job.index: _complete_record(job, keys[job.index], skip_bad) for job in jobs}
    todo = [job for job in jobs if records[job.index] is None]
    if isinstance(launcher, SlurmCluster):
        submit_jobs(todo, len(jobs), launcher, config, device, skip_bad, keys)
    else:
        extractor = build_extractor(config, device)
        run_jobs(todo, extractor, skip_bad, keys, len(data.utts), launcher or LocalJobs())
    for job in todo:
        records[job.index] = _complete_record(job, keys[job.index], skip_bad)
        if records[job.index] is None:
            raise RuntimeError(f"feature job {job.index} finished without a complete record")
    frames, skipped = _publish(data, data_dir, folder, jobs, records, config)
    _remove_stale_jobs(folder, len(jobs))
    return FeatsReport(
        utterances=len(frames),
        seconds=sum(seconds for _, seconds in frames.values()),
        frames=sum(count for count, _ in frames.values()),
        dim=config.dim,
        jobs=len(jobs),
        reused_jobs=len(jobs) - len(todo),
        wall_seconds=time.perf_counter() - start,
        skipped=skipped,
    )


def _complete_record(job: Job, key: str, skip_bad: bool) -> dict | None:
    """The job's record if its outputs are complete and were made from the same input.

    A record that skipped bad utterances is reused only where skipping is asked for again.
    """
    try:
        record = json.loads(job.record.read_text())
    except (FileNotFoundError, ValueError):
        return None
    if (
        record.get("key") != key
        or (record["skipped"] and not skip_bad)
        or not job.scp.is_file()
        or not job.ark.is_file()
        or job.ark.stat().st_size != record["ark_bytes"]
        or not job.cmvn.is_file()
        or job.cmvn.stat().st_size != record["cmvn_bytes"]
    ):
        return None
    return record


def _publish(
    data: DataDir,
    data_dir: Path,
    folder: Path,
    jobs: list[Job],
    records: dict[int, dict | None],
    config: FeatureConfig,
) -> tuple[dict[str, tuple[int, float]], dict[str, str]]:
    """Write the CMVN ark and the data directory's tables from the complete jobs.

    Returns the frames and seconds of each utterance kept, and the reasons for those skipped.
    """
    feats_scp: dict[str, str] = {}
    frames: dict[str, tuple[int, float]] = {}
    skipped: dict[str, str] = {}
    for job in jobs:
        record = records[job.index]
        assert record is not None
        feats_scp.update(read_table(job.scp))
        frames.update((utt, (count, seconds)) for utt, (count, seconds) in record["frames"].items())
        skipped.update(record["skipped"])
    if not frames:
        first = next(iter(skipped.items()))
        raise SpeechEQError(f"no utterance has usable audio (the first: {first[1]})")
    cmvn_ark = folder / "cmvn.ark"
    cmvn_scp = {}
    with atomic_write(cmvn_ark, "wb") as ark:
        for job in jobs:
            for speaker, matrix in kaldiio.load_ark(str(job.cmvn)):
                cmvn_scp[speaker] = f"{cmvn_ark}:{write_matrix(ark, speaker, matrix)}"
    if skipped:
        keep_dropped(data, data_dir, skipped)
    kept = data.subset(frames) if skipped else data
    tables = {
        **kept.tables,
        "feats.scp": feats_scp,
        "utt2num_frames": {utt: str(count) for utt, (count, _) in frames.items()},
        "utt2dur": {utt: f"{seconds:g}" for utt, (_, seconds) in frames.items()},
        "cmvn.scp": cmvn_scp,
    }
    DataDir(tables, {**kept.conf, CONF_NAME: config.to_conf()}).save(data_dir)
    return frames, skipped


def keep_dropped(data: DataDir, data_dir: Path, skipped: dict[str, str]) -> None:
    """Keep what ``skip_bad`` drops, as Kaldi's ``fix_data_dir.sh`` does: every table as it was
    in ``BACKUP/<table>``, and why each utterance was dropped in ``BACKUP/skipped``. Lines of an
    earlier backup stay, so a second run that drops more loses nothing either."""
    backup = data_dir / BACKUP
    for name, table in [*data.tables.items(), ("skipped", skipped)]:
        path = backup / name
        earlier = read_table(path, allow_empty_value=True) if path.is_file() else {}
        write_table(path, {**table, **earlier})


def _remove_stale_jobs(folder: Path, num_jobs: int) -> None:
    """Remove the job files of an earlier run with more jobs, which no table names any more."""
    for path in [*folder.glob("feats.*.*"), *folder.glob("cmvn.*.ark")]:
        index = path.name.split(".")[1]
        if index.isdigit() and int(index) > num_jobs:
            path.unlink()
