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

import hashlib
import json
import multiprocessing
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import kaldiio
import numpy as np
import torch

from speecheq.audio import is_pipe, read_audio
from speecheq.cluster import SlurmCluster
from speecheq.console import progress_bar
from speecheq.data.datadir import DataDir
from speecheq.errors import SpeechEQError
from speecheq.features.cmvn import utterance_stats
from speecheq.features.config import FeatureConfig
from speecheq.features.fbank import FbankExtractor
from speecheq.features.jobs import follow, split_speakers, worker_context
from speecheq.features.ssl import SSLConfig, SSLExtractor
from speecheq.fileio import atomic_write, make_folder, read_table, write_matrix, write_table

CONF_NAME = "feats.conf"
BACKUP = ".backup"
"""The folder of a data directory where `make_feats` keeps what `skip_bad` dropped."""
"""The file in the data directory's ``conf/`` that records the feature options."""

Extractor = FbankExtractor | SSLExtractor


@dataclass(frozen=True)
class LocalJobs:
    """Feature jobs on this machine: ``at_once`` worker processes at a time (default: all),
    ``threads`` CPU threads each (default: the extractor's share of the cores)."""

    at_once: int | None = None
    threads: int | None = None


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


@dataclass(frozen=True)
class Job:
    """One job: its number (from 1), its utterances as (utt, speaker, wav.scp value), its folder."""

    index: int
    utts: tuple[tuple[str, str, str], ...]
    folder: Path

    @property
    def ark(self) -> Path:
        return self.folder / f"feats.{self.index}.ark"

    @property
    def scp(self) -> Path:
        return self.folder / f"feats.{self.index}.scp"

    @property
    def cmvn(self) -> Path:
        return self.folder / f"cmvn.{self.index}.ark"

    @property
    def record(self) -> Path:
        return self.folder / f"feats.{self.index}.json"

    def key(self, conf: str) -> str:
        """A digest of the options and of every input (wav.scp value, file size and time)."""
        digest = hashlib.sha256(conf.encode())
        for utt, speaker, spec in self.utts:
            stamp = ""
            if not is_pipe(spec) and Path(spec).is_file():
                stat = Path(spec).stat()
                stamp = f"{stat.st_size} {stat.st_mtime_ns}"
            digest.update(f"{utt} {speaker} {spec} {stamp}\n".encode())
        return digest.hexdigest()


def make_feats(
    data_dir: str | Path,
    config: FeatureConfig | SSLConfig,
    nj: int = 1,
    skip_bad: bool = False,
    device: str = "cpu",
    launcher: LocalJobs | SlurmCluster = LocalJobs(),
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
    The ``nj`` jobs run through ``launcher``.
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
    _remove_temporaries(folder)
    wav, spk2utt = data.get("wav.scp"), data.spk2utt
    jobs = [
        Job(
            index,
            tuple((utt, speaker, wav[utt]) for speaker in block for utt in spk2utt[speaker]),
            folder,
        )
        for index, block in enumerate(split_speakers(spk2utt, nj), start=1)
    ]
    extractor: Extractor = (
        SSLExtractor(config, device) if isinstance(config, SSLConfig) else FbankExtractor(config)
    )
    keys = {job.index: job.key(config.to_conf()) for job in jobs}
    records = {job.index: _complete_record(job, keys[job.index], skip_bad) for job in jobs}
    todo = [job for job in jobs if records[job.index] is None]
    if isinstance(launcher, SlurmCluster):
        _submit_jobs(todo, len(jobs), launcher, config, device, skip_bad, keys)
    else:
        _run_jobs(todo, extractor, skip_bad, keys, len(data.utts), launcher)
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


def run_job(
    job: Job,
    extractor: Extractor,
    skip_bad: bool,
    key: str,
    advance: Callable[[int], None],
) -> None:
    """Compute one job's features, a few utterances at a time, then write its record."""
    frames: dict[str, tuple[int, float]] = {}
    skipped: dict[str, str] = {}
    stats: dict[str, np.ndarray] = {}
    with atomic_write(job.ark, "wb") as ark, atomic_write(job.scp) as scp:
        for first in range(0, len(job.utts), extractor.chunk):
            chunk = job.utts[first : first + extractor.chunk]
            read: list[tuple[str, str, np.ndarray, int]] = []
            for utt, speaker, spec in chunk:
                try:
                    read.append((utt, speaker, *read_audio(spec, utt)))
                except SpeechEQError as err:
                    if not skip_bad:
                        raise
                    skipped[utt] = str(err)
            computed = _compute(extractor, read, job, skip_bad, skipped)
            for (utt, speaker, samples, rate), feats in zip(read, computed, strict=True):
                if feats is not None:
                    scp.write(f"{utt} {job.ark}:{write_matrix(ark, utt, feats)}\n")
                    frames[utt] = (len(feats), len(samples) / rate)
                    stats[speaker] = stats.get(speaker, 0.0) + utterance_stats(feats)
            advance(len(chunk))
        ark_bytes = ark.tell()
    with atomic_write(job.cmvn, "wb") as ark:
        for speaker, matrix in sorted(stats.items()):
            write_matrix(ark, speaker, matrix)
        cmvn_bytes = ark.tell()
    record = {
        "key": key,
        "ark_bytes": ark_bytes,
        "cmvn_bytes": cmvn_bytes,
        "frames": frames,
        "skipped": skipped,
    }
    with atomic_write(job.record) as out:
        json.dump(record, out)


def _compute(
    extractor: Extractor,
    read: Sequence[tuple[str, str, np.ndarray, int]],
    job: Job,
    skip_bad: bool,
    skipped: dict[str, str],
) -> list[np.ndarray | None]:
    """The features of a chunk's utterances (None for those skipped as bad)."""
    items = [(samples, rate, f"utterance '{utt}'") for utt, _, samples, rate in read]
    try:
        return list(extractor.compute_batch(items))
    except SpeechEQError:
        if not skip_bad or len(items) == 1:
            if skip_bad:
                skipped[read[0][0]] = str(sys.exc_info()[1])
                return [None]
            raise
    results: list[np.ndarray | None] = []
    for item, (utt, *_) in zip(items, read, strict=True):
        try:
            results.extend(extractor.compute_batch([item]))
        except SpeechEQError as err:
            skipped[utt] = str(err)
            results.append(None)
    return results


def _submit_jobs(
    todo: list[Job],
    total: int,
    cluster: SlurmCluster,
    config: FeatureConfig | SSLConfig,
    device: str,
    skip_bad: bool,
    keys: dict[int, str],
) -> None:
    """Run each job as a Slurm job; raise naming every job that failed (the others are kept)."""
    threads = cluster.options.job_threads
    calls = [
        (
            f"features {job.index}/{total}",
            partial(run_cluster_job, job, config, device, skip_bad, keys[job.index], threads),
        )
        for job in todo
    ]
    cluster.run_parts(calls, total, "feature")


def run_cluster_job(
    job: Job,
    config: FeatureConfig | SSLConfig,
    device: str,
    skip_bad: bool,
    key: str,
    threads: int,
) -> None:
    """A Slurm job's work: one job's features, with its own extractor and ``threads``."""
    torch.set_num_threads(threads)
    extractor: Extractor = (
        SSLExtractor(config, device) if isinstance(config, SSLConfig) else FbankExtractor(config)
    )
    run_job(job, extractor, skip_bad, key, lambda count: None)


def _run_jobs(
    todo: list[Job],
    extractor: Extractor,
    skip_bad: bool,
    keys: dict[int, str],
    total: int,
    local: LocalJobs,
) -> None:
    """Run jobs under one progress bar over ``total`` utterances (those of reused jobs done).

    A single job runs in this process; several run in worker processes (:func:`worker_context`),
    ``local.at_once`` at a time, which report progress and their end to this one. A process
    forked from this one after torch ran here on several threads would hang in its own
    multithreaded operations (the OpenMP runtime is not fork-safe).
    """
    done = total - sum(len(job.utts) for job in todo)
    at_once = min(local.at_once or len(todo), len(todo))
    threads = local.threads or extractor.threads(max(at_once, 1))
    if len(todo) <= 1:
        with progress_bar("features", total) as advance:
            advance(done)
            if todo:
                before = torch.get_num_threads()
                torch.set_num_threads(threads)
                try:
                    run_job(todo[0], extractor, skip_bad, keys[todo[0].index], advance)
                finally:
                    torch.set_num_threads(before)
        return
    context = worker_context()
    messages = context.Queue()
    workers = {
        job.index: context.Process(
            target=_worker,
            args=(job, extractor, skip_bad, keys[job.index], messages, threads),
            daemon=True,
        )
        for job in todo
    }
    try:
        with progress_bar("features", total) as advance:
            advance(done)
            follow(workers, messages, advance, at_once)
    finally:
        for worker in workers.values():
            if worker.is_alive():
                worker.terminate()
        for worker in workers.values():
            if worker.pid is not None:
                worker.join()
        _remove_temporaries(todo[0].folder)


def _worker(
    job: Job,
    extractor: Extractor,
    skip_bad: bool,
    key: str,
    messages: multiprocessing.Queue,
    threads: int,
) -> None:
    """A job's process: runs the job, sending progress, completion or failure to the parent.

    If the parent dies (its child is adopted by another process), the job stops as if
    interrupted, rather than computing for nobody and blocking on a queue nobody reads.
    """
    torch.set_num_threads(threads)
    parent = os.getppid()

    def report(count: int) -> None:
        if os.getppid() != parent:
            raise KeyboardInterrupt
        messages.put(("progress", job.index, count))

    try:
        run_job(job, extractor, skip_bad, key, report)
        messages.put(("done", job.index, None))
    except SpeechEQError as err:
        messages.put(("error", job.index, str(err)))
    except KeyboardInterrupt:
        messages.cancel_join_thread()
    except Exception:
        messages.put(("crash", job.index, traceback.format_exc()))


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


def _remove_temporaries(folder: Path) -> None:
    """Remove temporary files that an interrupted run left in the feature folder."""
    for path in folder.glob(".*.tmp"):
        path.unlink(missing_ok=True)


def _remove_stale_jobs(folder: Path, num_jobs: int) -> None:
    """Remove the job files of an earlier run with more jobs, which no table names any more."""
    for path in [*folder.glob("feats.*.*"), *folder.glob("cmvn.*.ark")]:
        index = path.name.split(".")[1]
        if index.isdigit() and int(index) > num_jobs:
            path.unlink()
