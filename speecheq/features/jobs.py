"""How feature jobs run: the data directory's speakers split into jobs, each job's features
computed and written (:func:`run_job`), and the jobs run in worker processes of this machine
(:class:`LocalJobs`) or as Slurm jobs (:func:`submit_jobs`)."""

from __future__ import annotations

import hashlib
import itertools
import json
import multiprocessing
import os
import queue
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch

from speecheq.audio import is_pipe, read_audio
from speecheq.cluster import SlurmCluster
from speecheq.console import progress_bar
from speecheq.errors import SpeechEQError
from speecheq.features.cmvn import utterance_stats
from speecheq.features.config import FeatureConfig
from speecheq.features.fbank import FbankExtractor
from speecheq.features.ssl import SSLConfig, SSLExtractor
from speecheq.fileio import atomic_write, write_matrix

Extractor = FbankExtractor | SSLExtractor


def build_extractor(config: FeatureConfig | SSLConfig, device: str) -> Extractor:
    """Filterbanks (a :class:`FeatureConfig`), or an upstream's layers on ``device``."""
    return SSLExtractor(config, device) if isinstance(config, SSLConfig) else FbankExtractor(config)


@dataclass(frozen=True)
class LocalJobs:
    """Feature jobs on this machine: ``at_once`` worker processes at a time (default: all),
    ``threads`` CPU threads each (default: the extractor's share of the cores)."""

    at_once: int | None = None
    threads: int | None = None


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


def submit_jobs(
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
    run_job(job, build_extractor(config, device), skip_bad, key, lambda count: None)


def run_jobs(
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
        remove_temporaries(todo[0].folder)


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


def remove_temporaries(folder: Path) -> None:
    """Remove temporary files that an interrupted run left in the feature folder."""
    for path in folder.glob(".*.tmp"):
        path.unlink(missing_ok=True)


def split_speakers(spk2utt: dict[str, list[str]], num_jobs: int) -> list[list[str]]:
    """Split sorted speakers into ``num_jobs`` contiguous, non-empty blocks of similar size.

    Block boundaries fall where the running utterance count is closest to an equal share, as in
    Kaldi's ``split_data.sh --per-spk``. There are never more blocks than speakers.
    """
    speakers = sorted(spk2utt)
    num_jobs = min(num_jobs, len(speakers))
    cumulative = np.cumsum([len(spk2utt[speaker]) for speaker in speakers])
    bounds = [0]
    for block in range(1, num_jobs):
        target = cumulative[-1] * block / num_jobs
        low, high = bounds[-1] + 1, len(speakers) - (num_jobs - block)
        candidates = range(low, high + 1)
        bounds.append(min(candidates, key=lambda end: abs(cumulative[end - 1] - target)))
    bounds.append(len(speakers))
    return [speakers[start:end] for start, end in itertools.pairwise(bounds)]


def worker_context() -> multiprocessing.context.BaseContext:
    """Where feature jobs' processes come from: forked from a server process that has run no
    torch operation, so that they may use several threads."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["speecheq.features.jobs"])
    return context


def follow(
    workers: dict[int, multiprocessing.Process],
    messages: multiprocessing.Queue,
    advance: Callable[[int], None],
    at_once: int,
) -> None:
    """Start the workers (jobs by number), ``at_once`` at a time, and relay their progress
    until all are done; raise the first failure."""
    pending = sorted(workers)
    running: set[int] = set()

    def start_more() -> None:
        while pending and len(running) < at_once:
            index = pending.pop(0)
            workers[index].start()
            running.add(index)

    start_more()
    while running:
        try:
            kind, index, payload = messages.get(timeout=0.5)
        except queue.Empty:
            for index in running:
                if workers[index].exitcode not in (None, 0):
                    raise RuntimeError(
                        f"feature job {index} died (exit code {workers[index].exitcode})"
                    ) from None
            continue
        if kind == "progress":
            advance(payload)
        elif kind == "done":
            running.discard(index)
            start_more()
        elif kind == "error":
            raise SpeechEQError(payload)
        else:
            raise RuntimeError(f"feature job {index} failed:\n{payload}")
