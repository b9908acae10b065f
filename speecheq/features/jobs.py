"""How feature jobs are divided among processes and followed from the parent."""

from __future__ import annotations

import itertools
import multiprocessing
import queue
from collections.abc import Callable

import numpy as np

from speecheq.errors import SpeechEQError


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
    context.set_forkserver_preload(["speecheq.features.extract"])
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
